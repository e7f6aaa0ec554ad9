-- Recency, frequency, monetary value and age per customer in the conventions of the
-- buy-till-you-die models (BG/NBD, Gamma-Gamma; the `lifetimes` package's
-- summary_data_from_transaction_data), so the churn model reads them as they are.
-- The unit is a day: all completed orders of one (UTC) calendar day are one purchase.
--   frequency      = purchase days after the first one (repeat purchases)
--   recency_days   = last purchase day - first purchase day (the age at the last purchase)
--   t_days         = as-of day - first purchase day (the customer's age)
--   monetary_usd   = mean value of the repeat purchase days (0 with no repeat)
-- Orders after outflow_as_of() do not exist yet. One row per customer (>= 1 completed
-- order); int_profiles__purchases keeps the plain order counts and RFM quintiles.
with as_of as (

    select
        {{ outflow_as_of() }} as as_of_at,
        cast({{ outflow_as_of() }} as date) as as_of_date

),

purchase_days as (

    select
        orders.profile_id,
        cast(orders.ordered_at as date) as purchase_date,
        -- null when every order of the day is in a currency without a rate
        sum(orders.amount_usd) as value_usd
    from {{ ref('int_orders__attributed') }} as orders
    cross join as_of
    where orders.profile_id is not null
        and orders.status = 'completed'
        and orders.ordered_at <= as_of.as_of_at
    group by orders.profile_id, cast(orders.ordered_at as date)

),

numbered as (

    select
        *,
        row_number() over (partition by profile_id order by purchase_date) as purchase_number
    from purchase_days

)

select
    numbered.profile_id,
    count(*) - 1 as frequency,
    {{ dbt.datediff('min(numbered.purchase_date)', 'max(numbered.purchase_date)', 'day') }} as recency_days,
    {{ dbt.datediff('min(numbered.purchase_date)', 'max(as_of.as_of_date)', 'day') }} as t_days,
    coalesce(avg(case when numbered.purchase_number > 1 then numbered.value_usd end), 0) as monetary_usd,
    min(numbered.purchase_date) as first_purchase_date,
    max(numbered.purchase_date) as last_purchase_date
from numbered
cross join as_of
group by numbered.profile_id
