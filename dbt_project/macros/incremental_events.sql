{#- Incremental event models (docs/performance.md, "Incremental event models").

    Events are immutable once landed: an incremental run reads only the raw rows whose
    event time is at or after the newest event time already loaded minus a lookback
    window (var outflow_event_lookback_days, default 3 days), plus rows with no event
    time at all. Rows re-read inside the window replace themselves (delete+insert on the
    model's unique_key), so events that arrive up to that many days late are picked up
    and nothing is counted twice. An event landing later than the window is missed
    until `dbt build --full-refresh`. -#}

{#- Days of already-loaded event time an incremental run reads again. -#}
{% macro event_lookback_days() -%}
  {%- set days = var('outflow_event_lookback_days', 3) -%}
  {%- if days is not number or days < 0 -%}
    {{ exceptions.raise_compiler_error("var outflow_event_lookback_days must be a number of days >= 0, got: " ~ days) }}
  {%- endif -%}
  {{ return(days) }}
{%- endmacro %}


{#- The event-time expression of a raw column: the column itself when the warehouse
    already types it TIMESTAMP (so the watermark filter is a plain, fast comparison),
    else parse_timestamp over whatever text is there. -#}
{% macro raw_event_time(relation, column) -%}
  {%- set typed = false -%}
  {%- if execute -%}
    {%- for col in adapter.get_columns_in_relation(relation) -%}
      {%- if col.name | lower == column | lower and col.dtype | lower in ('timestamp', 'timestamp without time zone', 'datetime') -%}
        {%- set typed = true -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {%- if typed -%}{{ column }}{%- else -%}{{ parse_timestamp(column) }}{%- endif -%}
{%- endmacro %}


{#- The oldest event time an incremental run reads again: newest loaded minus the lookback. -#}
{% macro event_watermark(time_column='occurred_at') -%}
  (select coalesce(max({{ time_column }}), cast('1900-01-01' as timestamp)) - interval '{{ event_lookback_days() }} days'
   from {{ this }})
{%- endmacro %}


{#- WHERE condition selecting the raw rows an incremental run reads (true on a full build).
    `relation`.`column` is the raw event time; `time_column` the model's parsed one. -#}
{% macro new_raw_events(relation, column, time_column='occurred_at') -%}
  {%- if is_incremental() -%}
    {%- set t = raw_event_time(relation, column) -%}
    ({{ t }} >= {{ event_watermark(time_column) }} or {{ t }} is null)
  {%- else -%}
    true
  {%- endif -%}
{%- endmacro %}
