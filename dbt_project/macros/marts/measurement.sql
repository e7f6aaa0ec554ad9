{#- A relation of the sync engine's schema `outflow` (written by `outflow run`, not by dbt),
    or none while no sync has run. Execution time only. -#}
{% macro outflow_engine_relation(identifier) -%}
  {%- if not execute -%}{{ return(none) }}{%- endif -%}
  {{ return(adapter.get_relation(database=target.database, schema='outflow', identifier=identifier)) }}
{%- endmacro %}


{#- Wilson score interval bound for x successes in n trials (sign -1 lower, +1 upper). -#}
{% macro wilson_bound(x, n, z, sign) -%}
  (({{ x }} * 1.0 / {{ n }} + {{ z }} * {{ z }} / (2.0 * {{ n }}))
    {{ '-' if sign < 0 else '+' }} {{ z }} * sqrt(({{ x }} * 1.0 / {{ n }}) * (1 - {{ x }} * 1.0 / {{ n }}) / {{ n }}
                     + {{ z }} * {{ z }} / (4.0 * {{ n }} * {{ n }})))
  / (1 + {{ z }} * {{ z }} / {{ n }})
{%- endmacro %}
