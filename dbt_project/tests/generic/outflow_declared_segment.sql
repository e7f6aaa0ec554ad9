{#- Fails for every value of `column_name` that is not the name of a seg_ model
    (its name without the prefix): accepted_values for segments, with the list read
    from the project graph instead of kept by hand. -#}
{% test outflow_declared_segment(model, column_name) %}
{%- set names = [] -%}
{%- for node in outflow_segment_nodes() -%}
  {%- do names.append(outflow_segment_name(node)) -%}
{%- endfor %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is null
{%- if names %}
    or {{ column_name }} not in ('{{ names | join("', '") }}')
{%- endif %}
{% endtest %}
