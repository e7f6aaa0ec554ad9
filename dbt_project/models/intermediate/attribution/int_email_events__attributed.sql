-- Every ESP event with the profile of its (normalised) email address.
-- is_hard_bounce: the raw contract has no hard/soft flag, so a bounce counts as hard
-- when nothing reached the same address afterwards (no later delivered, open or
-- click); a soft bounce is followed by a delivery.
{%- set attribution_keys = [('email', 'email')] %}

with events as (

    select * from {{ ref('stg_esp__email_events') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

),

last_reached as (

    select email, max(occurred_at) as last_reached_at
    from events
    where event_type in ('delivered', 'open', 'click') and email is not null
    group by email

)

select
    events.event_id,
    {{ attributed_profile(attribution_keys) }},
    events.campaign_id,
    events.event_type,
    case
        when events.event_type <> 'bounce' then null
        when last_reached.last_reached_at is null then true
        else last_reached.last_reached_at < events.occurred_at
    end as is_hard_bounce,
    events.occurred_at
from events
{{ attribution_joins('events', attribution_keys) }}
left join last_reached
    on events.email = last_reached.email
