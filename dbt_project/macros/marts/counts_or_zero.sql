{#- `relation`.<name><suffix> as <name><suffix> for each name of `names`, 0 where the left
    join found no row (a profile without activity in a window counts 0, not null). Each
    line ends with a comma, so the select goes on after it. -#}
{% macro counts_or_zero(relation, names, suffix='') -%}
  {%- for name in names %}
    coalesce({{ relation }}.{{ name }}{{ suffix }}, 0) as {{ name }}{{ suffix }},
  {%- endfor %}
{%- endmacro %}
