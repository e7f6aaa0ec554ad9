-- Customers (at least one completed order) whose last completed order is 90 or more
-- days old: the win-back audience.
select
    profile_id,
    'last order ' || cast(recency_days as {{ dbt.type_string() }}) || ' days ago, '
        || cast(frequency as {{ dbt.type_string() }}) || ' orders' as reason
from {{ ref('int_profiles__purchases') }}
where is_customer
    and recency_days >= 90
