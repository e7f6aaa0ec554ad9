with

source as (
    select * from {{ source('shop', 'orders') }}
),

final as (
    select
        {{ as_text('order_id') }} as order_id,
        {{ as_text('contact_id') }} as contact_id,
        {{ normalize_email('email') }} as email,
        {{ parse_amount('amount') }} as amount,
        upper({{ clean_text('currency') }}) as currency,
        lower({{ clean_text('status') }}) as status,
        {{ parse_timestamp('ordered_at') }} as ordered_at
    from source
)

select * from final
