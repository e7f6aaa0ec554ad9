-- Email and web engagement per profile over 7/30/90-day windows ending at
-- outflow_as_of(). One row for every profile (zeros when it has no activity).
-- Events after the as-of moment are ignored so a pinned as-of reproduces the past.
{%- set windows = [7, 30, 90] %}
{#- as_of as a literal in every condition, not a joined column: the window bounds are then
    constants, not computed again for each event -#}
{%- set as_of = outflow_as_of() %}

with profiles as (

    select distinct profile_id from {{ ref('int_contacts__resolved') }}

),

email_events as (

    select events.profile_id, events.event_type, events.is_hard_bounce, events.occurred_at
    from {{ ref('int_email_events__attributed') }} as events
    where events.profile_id is not null and events.occurred_at <= {{ as_of }}
        -- the only types counted below (sends and deliveries are most of the rows)
        and {{ is_counted_email_event('events.event_type') }}

),

web_events as (

    select events.profile_id, events.event_type, events.page_category, events.occurred_at
    from {{ ref('int_web_events__attributed') }} as events
    where events.profile_id is not null and events.occurred_at <= {{ as_of }}

),

email_features as (

    select
        profile_id,
        {%- for days in windows %}
        count(case when event_type = 'open'
            and occurred_at > {{ dbt.dateadd('day', -days, as_of) }} then 1 end) as email_opens_{{ days }}d,
        count(case when event_type = 'click'
            and occurred_at > {{ dbt.dateadd('day', -days, as_of) }} then 1 end) as email_clicks_{{ days }}d,
        {%- endfor %}
        max(case when event_type = 'open' then occurred_at end) as last_email_open_at,
        max(case when event_type = 'click' then occurred_at end) as last_email_click_at,
        count(case when event_type = 'bounce' then 1 end) as email_bounces,
        count(case when event_type = 'bounce' and is_hard_bounce then 1 end) as email_hard_bounces,
        count(case when event_type = 'unsubscribe' then 1 end) as email_unsubscribes,
        count(case when event_type = 'spam_report' then 1 end) as email_spam_reports
    from email_events
    group by profile_id

),

web_features as (

    select
        profile_id,
        {%- for days in windows %}
        {%- set in_window = "occurred_at > " ~ dbt.dateadd('day', -days, as_of) %}
        count(case when event_type = 'page_view' and {{ in_window }} then 1 end) as page_views_{{ days }}d,
        count(case when event_type = 'page_view' and page_category = 'pricing' and {{ in_window }}
            then 1 end) as pricing_page_views_{{ days }}d,
        count(case when event_type = 'page_view' and page_category = 'demo' and {{ in_window }}
            then 1 end) as demo_page_views_{{ days }}d,
        count(case when event_type = 'form_submit' and {{ in_window }} then 1 end) as form_fills_{{ days }}d,
        {%- endfor %}
        max(occurred_at) as last_web_event_at,
        max(case when event_type = 'page_view' and page_category in ('pricing', 'demo')
            then occurred_at end) as last_pricing_or_demo_view_at,
        max(case when event_type in ('add_to_cart', 'checkout_start') then occurred_at end) as last_cart_event_at,
        min(case when event_type = 'signup' then occurred_at end) as first_signup_at
    from web_events
    group by profile_id

),

-- Days with a page view: one row per profile and day first, then a day is in a window when
-- its last view is (one grouping instead of a distinct count per window: 3x less work).
visit_days as (

    select
        profile_id,
        {%- for days in windows %}
        count(case when last_view_at > {{ dbt.dateadd('day', -days, as_of) }} then 1 end)
            as visit_days_{{ days }}d{{ "," if not loop.last }}
        {%- endfor %}
    from (
        -- read from the model, not web_events: a second reader would make DuckDB store that CTE
        select events.profile_id, cast(events.occurred_at as date) as visit_date,
            max(events.occurred_at) as last_view_at
        from {{ ref('int_web_events__attributed') }} as events
        where events.profile_id is not null and events.occurred_at <= {{ as_of }}
            and events.event_type = 'page_view'
            -- older views count in no window
            and events.occurred_at > {{ dbt.dateadd('day', -(windows | max), as_of) }}
        group by events.profile_id, cast(events.occurred_at as date)
    ) as view_days
    group by profile_id

)

select
    profiles.profile_id,
    {%- for days in windows %}
    {%- set window = '_' ~ days ~ 'd' %}
    {{- counts_or_zero('email_features', ['email_opens', 'email_clicks'], window) }}
    {{- counts_or_zero('web_features', ['page_views'], window) }}
    {{- counts_or_zero('visit_days', ['visit_days'], window) }}
    {{- counts_or_zero('web_features', ['pricing_page_views', 'demo_page_views', 'form_fills'], window) }}
    {%- endfor %}
    {{- counts_or_zero('email_features', ['email_bounces', 'email_hard_bounces', 'email_unsubscribes',
                                          'email_spam_reports']) }}
    email_features.last_email_open_at,
    email_features.last_email_click_at,
    web_features.last_web_event_at,
    web_features.last_pricing_or_demo_view_at,
    web_features.last_cart_event_at,
    web_features.first_signup_at
from profiles
left join email_features on profiles.profile_id = email_features.profile_id
left join web_features on profiles.profile_id = web_features.profile_id
left join visit_days on profiles.profile_id = visit_days.profile_id
