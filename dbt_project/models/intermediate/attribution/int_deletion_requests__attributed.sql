-- Every deletion request with the profile of its email address.
with requests as (

    select * from {{ ref('stg_consent__deletion_requests') }}

),

emails as (

    select key_value as email, profile_id
    from {{ ref('int_identity__lookup_keys') }}
    where key_type = 'email'

)

select
    emails.profile_id,
    case when emails.profile_id is not null then 'email' end as attribution_rule,
    requests.requested_at
from requests
left join emails
    on requests.email = emails.email
