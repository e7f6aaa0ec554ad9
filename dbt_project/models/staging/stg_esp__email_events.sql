with

source as (
    select * from {{ source('esp', 'email_events') }}
),

final as (
    select
        {{ as_text('event_id') }} as event_id,
        {{ normalize_email('email') }} as email,
        {{ as_text('campaign_id') }} as campaign_id,
        lower({{ clean_text('event_type') }}) as event_type,
        {{ parse_timestamp('occurred_at') }} as occurred_at
    from source
)

select * from final
