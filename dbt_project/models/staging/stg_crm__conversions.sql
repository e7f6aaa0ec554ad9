with

source as (
    select * from {{ source('crm', 'conversions') }}
),

final as (
    select
        {{ as_text('contact_id') }} as contact_id,
        {{ normalize_email('email') }} as email,
        {{ parse_timestamp('converted_at') }} as converted_at,
        {{ parse_amount('value') }} as value
    from source
)

select * from final
