-- Incremental (macros/incremental_events.sql): a run reads only the raw rows at or after the
-- newest loaded event time minus the lookback window; re-read rows replace themselves.
{{ config(materialized='incremental', incremental_strategy='delete_insert_by_event_time',
          unique_key='event_id', event_time='occurred_at',
          on_schema_change='append_new_columns') }}

with

source as (
    select * from {{ source('web', 'web_events') }}
    where {{ new_raw_events(source('web', 'web_events'), 'occurred_at') }}
),

final as (
    select
        {{ as_text('event_id') }} as event_id,
        {{ as_text('contact_id') }} as contact_id,
        {{ as_text('anonymous_id') }} as anonymous_id,
        {{ normalize_email('email') }} as email,
        lower({{ clean_text('event_type') }}) as event_type,
        {{ as_text('page_url') }} as page_url,
        {{ url_path('page_url') }} as page_path,
        {{ timestamp_from_raw(source('web', 'web_events'), 'occurred_at') }} as occurred_at
    from source
)

select
    event_id,
    contact_id,
    anonymous_id,
    email,
    event_type,
    page_url,
    page_path,
    case
        when lower(page_path) like '/pricing%' then 'pricing'
        when lower(page_path) like '/demo%' then 'demo'
        when lower(page_path) like '/product/%' then 'product'
        when lower(page_path) like '/cart%' then 'cart'
        when lower(page_path) like '/checkout%' then 'checkout'
        when lower(page_path) like '/blog/%' then 'blog'
        when page_path = '/' then 'home'
        when page_path is null then 'unknown'
        else 'other'
    end as page_category,
    occurred_at,
    {{ event_load_stamp() }} as loaded_at
from final
