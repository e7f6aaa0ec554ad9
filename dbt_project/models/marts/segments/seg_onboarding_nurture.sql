-- New email subscribers: email consent granted (and still granted) within the last
-- 14 days. They get the onboarding sequence.
select
    profile_id,
    'opted in to email ' || cast({{ dbt.datediff('updated_at', outflow_as_of(), 'day') }}
        as {{ dbt.type_string() }}) || ' days ago' as reason
from {{ ref('consent') }}
where channel = 'email'
    and status = 'granted'
    and updated_at > {{ dbt.dateadd('day', -14, outflow_as_of()) }}
