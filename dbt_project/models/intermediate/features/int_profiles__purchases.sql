-- Purchase features per profile: RFM over completed orders up to outflow_as_of().
-- recency_days = whole days since the last completed order; frequency = completed
-- orders; monetary = their total in USD. r/f/m_score are 1-5 quintiles among
-- customers (ties share a score; 5 = most recent / most frequent / highest value).
with as_of as (

    select {{ outflow_as_of() }} as as_of_at

),

profiles as (

    select distinct profile_id from {{ ref('int_contacts__resolved') }}

),

orders as (

    select orders.*, as_of.as_of_at
    from {{ ref('int_orders__attributed') }} as orders
    cross join as_of
    where orders.profile_id is not null and orders.ordered_at <= as_of.as_of_at

),

per_profile as (

    select
        profile_id,
        max(as_of_at) as as_of_at,
        count(case when status = 'completed' then 1 end) as frequency,
        coalesce(sum(case when status = 'completed' then amount_usd end), 0) as monetary,
        min(case when status = 'completed' then ordered_at end) as first_order_at,
        max(case when status = 'completed' then ordered_at end) as last_order_at,
        count(case when status = 'refunded' then 1 end) as refunded_orders,
        count(case when status = 'cancelled' then 1 end) as cancelled_orders,
        count(case when status = 'pending' then 1 end) as pending_orders
    from orders
    group by profile_id

),

customers as (

    select
        *,
        {{ dbt.datediff('last_order_at', 'as_of_at', 'day') }} as recency_days
    from per_profile
    where frequency > 0

),

scored as (

    select
        *,
        cast(ceil(5 * cume_dist() over (order by recency_days desc)) as integer) as r_score,
        cast(ceil(5 * cume_dist() over (order by frequency)) as integer) as f_score,
        cast(ceil(5 * cume_dist() over (order by monetary)) as integer) as m_score
    from customers

)

select
    profiles.profile_id,
    coalesce(per_profile.frequency, 0) > 0 as is_customer,
    coalesce(per_profile.frequency, 0) as frequency,
    coalesce(per_profile.monetary, 0) as monetary,
    case when per_profile.frequency > 0 then per_profile.monetary / per_profile.frequency end
        as average_order_value,
    per_profile.first_order_at,
    per_profile.last_order_at,
    scored.recency_days,
    scored.r_score,
    scored.f_score,
    scored.m_score,
    coalesce(per_profile.refunded_orders, 0) as refunded_orders,
    coalesce(per_profile.cancelled_orders, 0) as cancelled_orders,
    coalesce(per_profile.pending_orders, 0) as pending_orders
from profiles
left join per_profile on profiles.profile_id = per_profile.profile_id
left join scored on profiles.profile_id = scored.profile_id
