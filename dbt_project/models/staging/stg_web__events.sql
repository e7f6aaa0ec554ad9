with

source as (
    select * from {{ source('web', 'web_events') }}
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
        {{ parse_timestamp('occurred_at') }} as occurred_at
    from source
)

select * from final
