-- Every consent event with its profile: by email, else by E.164 phone.
with events as (

    select * from {{ ref('stg_consent__events') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

)

select
    coalesce(by_email.profile_id, by_phone.profile_id) as profile_id,
    case
        when by_email.profile_id is not null then 'email'
        when by_phone.profile_id is not null then 'phone'
    end as attribution_rule,
    events.channel,
    events.status,
    events.source,
    events.occurred_at
from events
left join keys as by_email
    on by_email.key_type = 'email' and by_email.key_value = events.email
left join keys as by_phone
    on by_phone.key_type = 'phone' and by_phone.key_value = events.phone_e164
