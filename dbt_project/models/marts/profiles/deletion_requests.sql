-- One row per deletion request (email, requested_at) up to as-of, with its profile when
-- the email reaches one. The sync engine carries each out in every destination and
-- records it in outflow.deletion_log (docs/privacy.md).
with requests as (

    select * from {{ ref('int_deletion_requests__attributed') }}

),

as_of as (

    select {{ outflow_as_of() }} as as_of_at

)

select distinct
    {{ dbt.hash("requests.email || '|' || coalesce(cast(requests.requested_at as varchar), '')") }} as request_id,
    requests.email,
    requests.profile_id,
    requests.requested_at
from requests
cross join as_of
where requests.email is not null
    and (requests.requested_at is null or requests.requested_at <= as_of.as_of_at)
