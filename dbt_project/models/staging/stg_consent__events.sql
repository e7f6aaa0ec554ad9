with

source as (
    select * from {{ source('consent', 'consent_events') }}
),

final as (
    select
        {{ normalize_email('email') }} as email,
        -- no country on consent rows: national numbers are read in the default region
        {{ phone_e164('phone') }} as phone_e164,
        lower({{ clean_text('channel') }}) as channel,
        lower({{ clean_text('status') }}) as status,
        lower({{ clean_text('source') }}) as source,
        {{ parse_timestamp('occurred_at') }} as occurred_at
    from source
)

select * from final
