{#- Fairness audit helpers (docs/lead_scoring.md "Fairness audit"). -#}

{#- Lower-cased column names of a built relation; empty before it is built (parse time). -#}
{% macro outflow_columns_of(relation) -%}
  {%- if not execute -%}{{ return([]) }}{%- endif -%}
  {{ return(adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list) }}
{%- endmacro %}


{#- Age band of a date of birth at outflow_as_of(): under_25, 25_34 ... 55_64, 65_plus, unknown. -#}
{% macro outflow_age_band(date_of_birth) -%}
  {%- set age = 'floor(' ~ dbt.datediff(date_of_birth, outflow_as_of(), 'day') ~ ' / 365.25)' -%}
  case
    when {{ date_of_birth }} is null or {{ age }} < 0 then 'unknown'
    when {{ age }} < 25 then 'under_25'
    when {{ age }} < 35 then '25_34'
    when {{ age }} < 45 then '35_44'
    when {{ age }} < 55 then '45_54'
    when {{ age }} < 65 then '55_64'
    else '65_plus'
  end
{%- endmacro %}
