-- Top customers by RFM: top-two quintiles for both frequency and monetary value and
-- not lapsed (recency in the upper three quintiles).
select
    profile_id,
    'RFM ' || cast(r_score as {{ dbt.type_string() }}) || cast(f_score as {{ dbt.type_string() }})
        || cast(m_score as {{ dbt.type_string() }}) as reason
from {{ ref('int_profiles__purchases') }}
where is_customer
    and r_score >= 3
    and f_score >= 4
    and m_score >= 4
