{#- The "now" of recency windows, decay and segments.
    var('outflow_as_of') pins it (reproducible builds, tests, backfills), else the
    environment variable OUTFLOW_AS_OF (a changed var makes dbt re-parse the whole
    project; a changed environment variable no file: see outflow_as_of_text); neither
    set means the current time in UTC. Returns a SQL timestamp expression. -#}
{% macro outflow_as_of() -%}
  {%- set as_of = outflow_as_of_text() -%}
  {%- if as_of is none -%}
    cast({{ dbt.current_timestamp() }} at time zone 'UTC' as timestamp)
  {%- else -%}
    {%- set text = as_of -%}
    {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$', text) -%}
      {{ exceptions.raise_compiler_error(
          "var outflow_as_of (or env OUTFLOW_AS_OF) must be an ISO date or timestamp such as "
          ~ "'2025-06-30' or '2025-06-30 12:00:00' (or null for now), got '" ~ text ~ "'") }}
    {%- endif -%}
    cast('{{ text | replace("T", " ") }}' as timestamp)
  {%- endif -%}
{%- endmacro %}


{#- The pinned as_of as written (var outflow_as_of, else env OUTFLOW_AS_OF), or none.
    Read when a model is compiled to run, not when dbt parses the project: dbt re-parses
    every file that read an environment variable at parse time when its value changes
    (34 files, 0.8 s of each daily build with a new OUTFLOW_AS_OF), and the parsed SQL
    is compiled again before it runs anyway. -#}
{% macro outflow_as_of_text() -%}
  {%- if not execute -%}
    {{ return(none) }}
  {%- endif -%}
  {%- for as_of in [var('outflow_as_of', none), env_var('OUTFLOW_AS_OF', '')] -%}
    {%- if as_of is not none and (as_of | string | trim) not in ('', 'None', 'null') -%}
      {{ return(as_of | string | trim) }}
    {%- endif -%}
  {%- endfor -%}
  {{ return(none) }}
{%- endmacro %}


{#- Age in (fractional) days of timestamp `ts` at outflow_as_of(); negative for the future. -#}
{% macro outflow_age_days(ts) -%}
  ({{ dbt.datediff(ts, outflow_as_of(), 'second') }} / 86400.0)
{%- endmacro %}
