{#- Fails for every row whose `column_name` is at or after the column `before` (nulls pass):
    e.g. a point-in-time feature row that used an event from its own future. -#}
{% test outflow_before_column(model, column_name, before) %}
select {{ column_name }}, {{ before }}
from {{ model }}
where {{ column_name }} >= {{ before }}
{% endtest %}
