-- Incremental (macros/incremental_events.sql): a run reads only the raw rows at or after the
-- newest loaded event time minus the lookback window; re-read rows replace themselves.
{{ config(materialized='incremental', incremental_strategy='delete_insert_by_event_time',
          unique_key='event_id', event_time='occurred_at',
          on_schema_change='append_new_columns') }}

with

source as (
    select * from {{ source('esp', 'email_events') }}
    where {{ new_raw_events(source('esp', 'email_events'), 'occurred_at') }}
),

final as (
    select
        {{ as_text('event_id') }} as event_id,
        {{ normalize_email('email') }} as email,
        {{ as_text('campaign_id') }} as campaign_id,
        lower({{ clean_text('event_type') }}) as event_type,
        {{ timestamp_from_raw(source('esp', 'email_events'), 'occurred_at') }} as occurred_at
    from source
)

select *, {{ event_load_stamp() }} as loaded_at
from final
