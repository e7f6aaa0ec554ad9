-- Every consent event with its profile: by email, else by E.164 phone.
{%- set attribution_keys = [('email', 'email'), ('phone', 'phone_e164')] %}

with events as (

    select * from {{ ref('stg_consent__events') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

)

select
    {{ attributed_profile(attribution_keys) }},
    events.channel,
    events.status,
    events.source,
    events.occurred_at
from events
{{ attribution_joins('events', attribution_keys) }}
