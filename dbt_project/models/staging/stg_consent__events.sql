-- Incremental (macros/incremental_events.sql): a run reads only the raw rows at or after the
-- newest loaded change time minus the lookback window. Consent rows have no id to replace
-- themselves by: the pre-hook deletes the stored rows of that window, and they are read again.
-- (A view parsed every row's email and phone for every reader: 1.2 s a day at 1M profiles.)
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='append_new_columns',
          pre_hook="{{ delete_reread_window() }}") }}

with

source as (
    select * from {{ source('consent', 'consent_events') }}
    where {{ new_raw_events(source('consent', 'consent_events'), 'occurred_at', literal=true) }}
),

final as (
    select
        {{ normalize_email('email') }} as email,
        -- no country on consent rows: national numbers are read in the default region
        {{ phone_e164('phone') }} as phone_e164,
        lower({{ clean_text('channel') }}) as channel,
        lower({{ clean_text('status') }}) as status,
        lower({{ clean_text('source') }}) as source,
        {{ timestamp_from_raw(source('consent', 'consent_events'), 'occurred_at') }} as occurred_at
    from source
)

select * from final
