-- Every web event with the profile it belongs to.
-- Order of rules: the event's contact_id, else its email, else its anonymous_id when
-- that browser was identified (by contact_id or email) on another event as exactly
-- one profile. Events that match nothing keep profile_id null.
{%- set attribution_keys = [('contact_id', 'contact_id'), ('email', 'email')] %}

with events as (

    select * from {{ ref('stg_web__events') }}

),

keys as (

    select * from {{ ref('int_identity__lookup_keys') }}

),

direct as (

    select
        events.*,
        {{ attributed_profile(attribution_keys, profile_column='direct_profile_id', rule_column='direct_rule') }}
    from events
    {{ attribution_joins('events', attribution_keys) }}

),

browsers as (

    select anonymous_id, min(direct_profile_id) as profile_id
    from direct
    where anonymous_id is not null and direct_profile_id is not null
    group by anonymous_id
    having count(distinct direct_profile_id) = 1

)

select
    direct.event_id,
    coalesce(direct.direct_profile_id, browsers.profile_id) as profile_id,
    case
        when direct.direct_rule is not null then direct.direct_rule
        when browsers.profile_id is not null then 'anonymous_id'
    end as attribution_rule,
    direct.contact_id,
    direct.anonymous_id,
    direct.event_type,
    direct.page_url,
    direct.page_path,
    case
        when lower(direct.page_path) like '/pricing%' then 'pricing'
        when lower(direct.page_path) like '/demo%' then 'demo'
        when lower(direct.page_path) like '/product/%' then 'product'
        when lower(direct.page_path) like '/cart%' then 'cart'
        when lower(direct.page_path) like '/checkout%' then 'checkout'
        when lower(direct.page_path) like '/blog/%' then 'blog'
        when direct.page_path = '/' then 'home'
        when direct.page_path is null then 'unknown'
        else 'other'
    end as page_category,
    direct.occurred_at
from direct
left join browsers
    on direct.direct_profile_id is null and direct.anonymous_id = browsers.anonymous_id
