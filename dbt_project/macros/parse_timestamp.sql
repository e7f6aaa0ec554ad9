{#
  parse_timestamp(col) -> timestamp (UTC, no time zone) or null.
  Accepts any input type (cast through varchar). Order of attempts:
    1. ISO 8601 / anything DuckDB casts ('2024-03-01', '2024-03-01 10:00:00', '...T10:00:00Z');
       an explicit offset (+01, +01:00, Z) is converted to UTC.
    2. 'YYYYMMDD' (febrl style, e.g. 19300213), 'YYYYMMDDHHMMSS', 'YYYY/MM/DD[ HH:MM:SS]'.
    3. 'DD/MM/YYYY', 'DD.MM.YYYY', 'DD-MM-YYYY' (day first: ambiguous dates like 03/04/2024
       read as 3 April), then 'MM/DD/YYYY' only when day-first is impossible (12/31/2024).
    4. Unix epoch seconds (10 digits) or milliseconds (13 digits).
  Anything else is null.
#}
{% macro parse_timestamp(col) %}
  {{ return(adapter.dispatch('parse_timestamp')(col)) }}
{% endmacro %}

{% macro default__parse_timestamp(col) -%}
  (select case
      when _ts_v is null then null
      when regexp_full_match(_ts_v, '\d{10}') then to_timestamp(cast(_ts_v as bigint)) at time zone 'UTC'
      when regexp_full_match(_ts_v, '\d{13}') then to_timestamp(cast(_ts_v as bigint) / 1000.0) at time zone 'UTC'
      when regexp_full_match(_ts_v, '\d{8}(\d{6})?') then try_strptime(_ts_v, ['%Y%m%d', '%Y%m%d%H%M%S'])
      when regexp_matches(_ts_v, '\d[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([+-]\d{2}(:?\d{2})?|Z|UTC)$')
        then try_cast(_ts_v as timestamptz) at time zone 'UTC'
      else coalesce(
        try_cast(_ts_v as timestamp),
        try_strptime(_ts_v, ['%Y/%m/%d', '%Y/%m/%d %H:%M:%S', '%Y/%m/%d %H:%M',
                             '%d/%m/%Y', '%d/%m/%Y %H:%M:%S', '%d/%m/%Y %H:%M',
                             '%d.%m.%Y', '%d.%m.%Y %H:%M:%S', '%d-%m-%Y',
                             '%m/%d/%Y', '%m/%d/%Y %H:%M:%S', '%m/%d/%Y %H:%M']))
    end
   from (select {{ as_text(col) }} as _ts_v) as _ts)
{%- endmacro %}

{% macro parse_date(col) %}
  {{ return(adapter.dispatch('parse_date')(col)) }}
{% endmacro %}

{% macro default__parse_date(col) -%}
  cast({{ parse_timestamp(col) }} as date)
{%- endmacro %}

{#- The type the warehouse gives `relation`.`column`, lower-cased ('' when unknown). -#}
{% macro raw_column_type(relation, column) -%}
  {%- if execute -%}
    {%- for col in adapter.get_columns_in_relation(relation) -%}
      {%- if col.name | lower == column | lower -%}
        {{ return(col.dtype | lower) }}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return('') }}
{%- endmacro %}

{#- `relation`.`column` as a timestamp. EL tools often land event times already typed
    TIMESTAMP; such a column is taken as it is (it is what parse_timestamp would return for
    it), since casting 20M timestamps to text and parsing them back was most of an event
    model's build time. Any other type goes through parse_timestamp. -#}
{% macro timestamp_from_raw(relation, column) -%}
  {%- if raw_column_type(relation, column) in ('timestamp', 'timestamp without time zone', 'datetime') -%}
    {{ column }}
  {%- else -%}
    {{ parse_timestamp(column) }}
  {%- endif -%}
{%- endmacro %}

{#- `relation`.`column` as a date: a DATE column as it is, a TIMESTAMP one cast, text parsed. -#}
{% macro date_from_raw(relation, column) -%}
  {%- set dtype = raw_column_type(relation, column) -%}
  {%- if dtype == 'date' -%}
    {{ column }}
  {%- elif dtype in ('timestamp', 'timestamp without time zone', 'datetime') -%}
    cast({{ column }} as date)
  {%- else -%}
    {{ parse_date(column) }}
  {%- endif -%}
{%- endmacro %}
