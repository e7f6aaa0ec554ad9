-- Incremental (macros/incremental_events.sql): a run reads only the raw rows at or after the
-- newest loaded event time minus the lookback window; re-read rows replace themselves.
{{ config(materialized='incremental', incremental_strategy='delete_insert_by_event_time',
          unique_key='order_id', event_time='ordered_at',
          on_schema_change='append_new_columns') }}

with

source as (
    select * from {{ source('shop', 'orders') }}
    where {{ new_raw_events(source('shop', 'orders'), 'ordered_at', time_column='ordered_at') }}
),

final as (
    select
        {{ as_text('order_id') }} as order_id,
        {{ as_text('contact_id') }} as contact_id,
        {{ normalize_email('email') }} as email,
        {{ parse_amount('amount') }} as amount,
        upper({{ clean_text('currency') }}) as currency,
        lower({{ clean_text('status') }}) as status,
        {{ timestamp_from_raw(source('shop', 'orders'), 'ordered_at') }} as ordered_at
    from source
)

select *, {{ event_load_stamp() }} as loaded_at
from final
