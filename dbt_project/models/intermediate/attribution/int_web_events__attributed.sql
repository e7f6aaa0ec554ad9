-- Every web event with the profile it belongs to.
-- Order of rules: the event's contact_id, else its email, else its anonymous_id when
-- that browser was identified (by contact_id or email) on another event as exactly
-- one profile. Events that match nothing keep profile_id null.
--
-- Incremental (macros/incremental_events.sql): a run attributes the staging rows inside
-- the lookback window and, of the events already here, those a new contact or a merge can
-- have moved: events carrying a contact_id or email whose profile changed since the last
-- run (int_identity__lookup_keys.changed_at), and every event of a browser with such an
-- event or a re-read one. It writes only the rows that are new or whose profile_id or
-- attribution_rule changed (delete+insert on event_id), so the table equals a full
-- rebuild without rewriting it.
{{ config(materialized='incremental', incremental_strategy='delete_insert_by_event_time',
          unique_key='event_id', event_time='occurred_at',
          post_hook="{{ remember_keys_seen(ref('int_identity__lookup_keys')) }}") }}
{%- set attribution_keys = [('contact_id', 'contact_id'), ('email', 'email')] %}
{%- set event_columns = ['event_id', 'contact_id', 'anonymous_id', 'email', 'event_type', 'page_url', 'page_path',
                         'page_category', 'occurred_at'] %}
{%- set priors = [('prior_profile_id', 'profile_id', dbt.type_string()),
                  ('prior_rule', 'attribution_rule', dbt.type_string())] %}

with

{{ incremental_event_rows(ref('stg_web__events'), event_columns, 'event_id', priors, attribution_keys,
                         browser_column='anonymous_id') }},

looked_up as (

    select
        events.*,
        {{ attributed_profile(attribution_keys, profile_column='looked_up_profile_id', rule_column='looked_up_rule') }}
    from events
    {{ attribution_joins('events', attribution_keys) }}

),

-- rows read only for their browser keep the direct attribution they have
direct as (

    select
        looked_up.*,
        case
            when needs_lookup then looked_up_profile_id
            when prior_rule in ('contact_id', 'email') then prior_profile_id
        end as direct_profile_id,
        case
            when needs_lookup then looked_up_rule
            when prior_rule in ('contact_id', 'email') then prior_rule
        end as direct_rule
    from looked_up

),

browsers as (

    select anonymous_id, min(direct_profile_id) as profile_id
    from direct
    where anonymous_id is not null and direct_profile_id is not null
    group by anonymous_id
    having count(distinct direct_profile_id) = 1

),

attributed as (

    select
        direct.event_id,
        coalesce(direct.direct_profile_id, browsers.profile_id) as profile_id,
        case
            when direct.direct_rule is not null then direct.direct_rule
            when browsers.profile_id is not null then 'anonymous_id'
        end as attribution_rule,
        direct.contact_id,
        direct.anonymous_id,
        direct.email,
        direct.event_type,
        direct.page_url,
        direct.page_path,
        direct.page_category,
        direct.occurred_at,
        direct.is_restated,
        direct.prior_profile_id,
        direct.prior_rule
    from direct
    left join browsers
        on direct.direct_profile_id is null and direct.anonymous_id = browsers.anonymous_id

)

select
    event_id,
    profile_id,
    attribution_rule,
    contact_id,
    anonymous_id,
    email,
    event_type,
    page_url,
    page_path,
    page_category,
    occurred_at
from attributed
{{ only_new_or_changed_rows(priors) }}
