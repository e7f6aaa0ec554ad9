-- Every ESP event with the profile of its (normalised) email address.
-- is_hard_bounce: the raw contract has no hard/soft flag, so a bounce counts as hard
-- when nothing reached the same address afterwards (no later delivered, open or
-- click); a soft bounce is followed by a delivery.
--
-- Incremental (macros/incremental_events.sql): a run attributes the new (or late, or
-- changed) events inside the lookback window and, of the events already here, those
-- whose email changed profile since the last run (int_identity__lookup_keys.changed_at).
-- Bounces are judged again only where a new event can change the verdict: a new bounce
-- against every event that reached its address at or after it (all inside the window,
-- so the loaded ones are read with it), and a loaded hard bounce turns soft when a new
-- event reached its address at or after it; a soft bounce stays soft (events are
-- immutable). Only rows that are new or changed are written (delete+insert on event_id),
-- so the table equals a full rebuild without rewriting it.
{{ config(materialized='incremental', incremental_strategy='delete_insert_by_event_time',
          unique_key='event_id', event_time='occurred_at',
          post_hook="{{ remember_keys_seen(ref('int_identity__lookup_keys')) }}") }}
{%- set attribution_keys = [('email', 'email')] %}
{%- set event_columns = ['event_id', 'email', 'campaign_id', 'event_type', 'occurred_at'] %}
{%- set priors = [('prior_profile_id', 'profile_id', dbt.type_string()),
                  ('prior_is_hard_bounce', 'is_hard_bounce', 'boolean')] %}
{%- set reaching = "('delivered', 'open', 'click')" %}

with

{{ incremental_event_rows(ref('stg_esp__email_events'), event_columns, 'event_id', priors, attribution_keys,
                          also_loaded=[
    "loaded.is_hard_bounce and loaded.email in (select email from restated where event_type in " ~ reaching ~ ")",
    "loaded.event_type in " ~ reaching ~ " and loaded.occurred_at >= " ~ event_watermark_literal() ~ "
        and loaded.email in (select email from restated where event_type = 'bounce')"]) }},

last_reached as (

    select email, max(occurred_at) as last_reached_at
    from events
    where event_type in {{ reaching }} and email is not null
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
            -- loaded: hard until something reaches the address at or after it
            when not events.is_restated
                then events.prior_is_hard_bounce and not coalesce(last_reached.last_reached_at >= events.occurred_at, false)
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
