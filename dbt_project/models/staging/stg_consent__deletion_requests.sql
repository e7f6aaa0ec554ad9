with

source as (
    select * from {{ source('consent', 'deletion_requests') }}
),

final as (
    select
        {{ normalize_email('email') }} as email,
        {{ parse_timestamp('requested_at') }} as requested_at
    from source
)

select * from final
