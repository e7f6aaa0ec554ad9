-- Every ESP event with the profile of its (normalised) email address.
-- is_hard_bounce: the raw contract has no hard/soft flag, so a bounce counts as hard
-- when nothing reached the same address afterwards (no later delivered, open or
-- click); a soft bounce is followed by a delivery.
--
-- Incremental (macros/incremental_events.sql): every event is attributed again (a new
-- contact or a merge can move old events to another profile) and the bounces of every
-- address with re-read events are judged again (a new delivery makes an old bounce
-- soft); only rows that are new or changed are written (delete+insert on event_id), so
-- the table equals a full rebuild without rewriting it.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='event_id') }}
{%- set attribution_keys = [('email', 'email')] %}
{%- set event_columns = ['event_id', 'email', 'campaign_id', 'event_type', 'occurred_at'] %}
{%- set priors = [('prior_profile_id', 'profile_id', dbt.type_string()),
                  ('prior_is_hard_bounce', 'is_hard_bounce', 'boolean')] %}

with

{{ incremental_event_rows(ref('stg_esp__email_events'), event_columns, 'event_id', priors) }},

{%- if is_incremental() %}

-- Only these addresses can have a bounce whose verdict changed.
rejudged_emails as (

    select distinct email from restated where email is not null

),
{%- endif %}

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

),

last_reached as (

    select email, max(occurred_at) as last_reached_at
    from events
    where event_type in ('delivered', 'open', 'click') and email is not null
    {%- if is_incremental() %}
        and email in (select email from rejudged_emails)
    {%- endif %}
    group by email

),

attributed as (

    select
        events.event_id,
        {{ attributed_profile(attribution_keys) }},
        events.email,
        events.campaign_id,
        events.event_type,
        case
            when events.event_type <> 'bounce' then null
            {%- if is_incremental() %}
            when not events.is_restated and events.email not in (select email from rejudged_emails)
                then events.prior_is_hard_bounce
            {%- endif %}
            when last_reached.last_reached_at is null then true
            else last_reached.last_reached_at < events.occurred_at
        end as is_hard_bounce,
        events.occurred_at,
        events.is_restated,
        events.prior_profile_id,
        events.prior_is_hard_bounce
    from events
    {{ attribution_joins('events', attribution_keys) }}
    left join last_reached
        on events.email = last_reached.email

)

select
    event_id,
    profile_id,
    attribution_rule,
    email,
    campaign_id,
    event_type,
    is_hard_bounce,
    occurred_at
from attributed
{{ only_new_or_changed_rows(priors) }}
