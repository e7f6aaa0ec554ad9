-- One row per scored behaviour: the event, its base points and its decayed points.
-- points = base_points * 0.5 ^ (age_days / half_life_days): a pricing page view
-- today is worth its full weight, one a half-life ago half of it. Penalties
-- (bounce, unsubscribe, spam_report) do not decay: they stay until the lookback
-- window drops them. Only events inside (as_of - lookback_days, as_of] count.
-- A view: lead_scores is its only reader, and as a table it rewrote every scored event
-- (16M rows at 1M profiles) on every build, since the decay moves with as_of.
{{ config(materialized='view') }}
{%- set cfg = lead_scoring_config() %}
{%- set penalties = ['bounce', 'unsubscribe', 'spam_report'] %}
{%- set components = ['pricing_page', 'demo_page', 'form_fill', 'web_visit', 'email_click',
                      'email_open', 'order'] + penalties %}

with as_of as (

    select {{ outflow_as_of() }} as as_of_at

),

web as (

    select
        profile_id,
        case
            when event_type = 'page_view' and page_category = 'pricing' then 'pricing_page'
            when event_type = 'page_view' and page_category = 'demo' then 'demo_page'
            when event_type = 'form_submit' then 'form_fill'
            when event_type = 'page_view' then 'web_visit'
        end as component,
        occurred_at
    from {{ ref('int_web_events__attributed') }}
    where profile_id is not null

),

email as (

    select
        profile_id,
        case event_type
            when 'click' then 'email_click'
            when 'open' then 'email_open'
            when 'bounce' then case when is_hard_bounce then 'bounce' end
            when 'unsubscribe' then 'unsubscribe'
            when 'spam_report' then 'spam_report'
        end as component,
        occurred_at
    from {{ ref('int_email_events__attributed') }}
    -- the scored types only, so the scan skips sends and deliveries (most of the rows)
    where profile_id is not null and {{ is_counted_email_event() }}

),

orders as (

    select profile_id, 'order' as component, ordered_at as occurred_at
    from {{ ref('int_orders__attributed') }}
    where profile_id is not null and status = 'completed'

),

behaviours as (

    select * from web
    union all
    select * from email
    union all
    select * from orders

),

aged as (

    select
        behaviours.profile_id,
        behaviours.component,
        behaviours.occurred_at,
        {{ outflow_age_days('behaviours.occurred_at') }} as age_days
    from behaviours
    where behaviours.component is not null

),

weighted as (

    select
        profile_id,
        component,
        occurred_at,
        age_days,
        case component
            {%- for c in components %}
            when '{{ c }}' then {{ cfg[c]['points'] }}
            {%- endfor %}
        end as base_points,
        case
            when component in ('{{ penalties | join("', '") }}') then 1.0
            else {{ lead_score_decay('age_days') }}
        end as decay_factor
    from aged
    where age_days >= 0 and age_days < {{ cfg['lookback_days'] }}

)

select
    profile_id,
    component,
    occurred_at,
    age_days,
    base_points,
    decay_factor,
    base_points * decay_factor as points
from weighted
