-- Added to cart or started checkout in the last 7 days and placed no order (completed
-- or pending) since their latest such event.
with cart_events as (

    select profile_id, max(occurred_at) as last_cart_event_at
    from {{ ref('int_web_events__attributed') }}
    where profile_id is not null
        and event_type in ('add_to_cart', 'checkout_start')
        and occurred_at <= {{ outflow_as_of() }}
        and occurred_at > {{ dbt.dateadd('day', -7, outflow_as_of()) }}
    group by profile_id

),

ordered_since as (

    select distinct cart_events.profile_id
    from cart_events
    inner join {{ ref('int_orders__attributed') }} as orders
        on cart_events.profile_id = orders.profile_id
        and orders.ordered_at >= cart_events.last_cart_event_at
        and orders.ordered_at <= {{ outflow_as_of() }}
        and orders.status in ('completed', 'pending')

)

select
    cart_events.profile_id,
    'cart or checkout ' || cast({{ dbt.datediff('cart_events.last_cart_event_at', outflow_as_of(), 'day') }}
        as {{ dbt.type_string() }}) || ' days ago, no order since' as reason
from cart_events
left join ordered_since
    on cart_events.profile_id = ordered_since.profile_id
where ordered_since.profile_id is null
