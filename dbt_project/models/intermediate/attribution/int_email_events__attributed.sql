-- Every ESP event with the profile of its (normalised) email address.
with events as (

    select * from {{ ref('stg_esp__email_events') }}

),

emails as (

    select key_value as email, profile_id
    from {{ ref('int_identity__lookup_keys') }}
    where key_type = 'email'

)

select
    events.event_id,
    emails.profile_id,
    case when emails.profile_id is not null then 'email' end as attribution_rule,
    events.campaign_id,
    events.event_type,
    events.occurred_at
from events
left join emails
    on events.email = emails.email
