{#- Fails for every row whose `column_name` is outside [min_value, max_value] (either bound
    may be left out), or null unless allow_null. -#}
{% test outflow_accepted_range(model, column_name, min_value=none, max_value=none, allow_null=false) %}
select {{ column_name }}
from {{ model }}
where {% if allow_null %}false{% else %}{{ column_name }} is null{% endif %}
    {%- if min_value is not none %}
    or {{ column_name }} < {{ min_value }}
    {%- endif %}
    {%- if max_value is not none %}
    or {{ column_name }} > {{ max_value }}
    {%- endif %}
{% endtest %}
