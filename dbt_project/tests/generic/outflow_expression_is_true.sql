{#- Model-level: fails for every row where `expression` (SQL over the model's columns) is
    not true. -#}
{% test outflow_expression_is_true(model, expression) %}
select *
from {{ model }}
where not coalesce({{ expression }}, false)
{% endtest %}
