{#- The "now" of recency windows, decay and segments.
    var('outflow_as_of') pins it (reproducible builds, tests, backfills); unset or
    null means the current time in UTC. Returns a SQL timestamp expression. -#}
{% macro outflow_as_of() -%}
  {%- set as_of = var('outflow_as_of', none) -%}
  {%- if as_of is none or (as_of | string | trim) in ('', 'None', 'null') -%}
    cast({{ dbt.current_timestamp() }} at time zone 'UTC' as timestamp)
  {%- else -%}
    {%- set text = as_of | string | trim -%}
    {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$', text) -%}
      {{ exceptions.raise_compiler_error(
          "var outflow_as_of must be an ISO date or timestamp such as '2025-06-30' or "
          ~ "'2025-06-30 12:00:00' (or null for now), got '" ~ text ~ "'") }}
    {%- endif -%}
    cast('{{ text | replace("T", " ") }}' as timestamp)
  {%- endif -%}
{%- endmacro %}


{#- Age in (fractional) days of timestamp `ts` at outflow_as_of(); negative for the future. -#}
{% macro outflow_age_days(ts) -%}
  ({{ dbt.datediff(ts, outflow_as_of(), 'second') }} / 86400.0)
{%- endmacro %}
