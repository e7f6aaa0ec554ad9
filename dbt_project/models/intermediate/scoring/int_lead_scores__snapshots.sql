-- What was known about each profile at a series of cutoffs, and whether it converted in
-- the label window after each one. The predictive lead score learns from these rows.
--   train: cutoffs as_of - 2 * window - k * step for k = 0..train_snapshots - 1, so every
--          training label window ends by the held-out cutoff
--   test:  as_of - window, held out for the model card (the latest complete label window)
--   score: as_of itself (no label yet): the rows lead_scores gets a probability for
-- Every feature is computed from events with occurred_at < cutoff_at, and an anonymous
-- web event counts only once its browser was identified before the cutoff;
-- last_event_at (the latest moment any feature used) proves it (test on the yml).
{%- set window = var('outflow_lead_model_label_window_days') | int %}
{%- set train_snapshots = var('outflow_lead_model_train_snapshots') | int %}
{%- set step = var('outflow_lead_model_snapshot_step_days') | int %}
{%- if window < 1 or train_snapshots < 1 or step < 1 %}
  {{ exceptions.raise_compiler_error("vars outflow_lead_model_label_window_days, outflow_lead_model_train_snapshots "
      ~ "and outflow_lead_model_snapshot_step_days must be >= 1") }}
{%- endif %}

with cutoffs as (

    select 'score' as snapshot_kind, {{ outflow_as_of() }} as cutoff_at
    union all
    select 'test', {{ dbt.dateadd('day', -window, outflow_as_of()) }}
    {%- for k in range(train_snapshots) %}
    union all
    select 'train', {{ dbt.dateadd('day', -2 * window - k * step, outflow_as_of()) }}
    {%- endfor %}

),

attributes as (

    select * from {{ ref('int_profiles__attributes') }}

),

population as (

    -- A profile is a lead at a cutoff once its first contact exists (unknown: always).
    select cutoffs.snapshot_kind, cutoffs.cutoff_at, attributes.*
    from cutoffs
    inner join attributes
        on attributes.first_seen_at is null or attributes.first_seen_at < cutoffs.cutoff_at

),

web_attributed as (

    select * from {{ ref('int_web_events__attributed') }}

),

browsers as (

    -- When a browser was first tied to a person; its anonymous events are known from then.
    select anonymous_id, min(occurred_at) as identified_at
    from web_attributed
    where anonymous_id is not null and attribution_rule in ('contact_id', 'email')
    group by anonymous_id

),

web as (

    select
        web_attributed.profile_id,
        web_attributed.event_type,
        web_attributed.page_category,
        web_attributed.occurred_at,
        case
            when web_attributed.attribution_rule = 'anonymous_id'
                then greatest(web_attributed.occurred_at, browsers.identified_at)
            else web_attributed.occurred_at
        end as known_at
    from web_attributed
    left join browsers on web_attributed.anonymous_id = browsers.anonymous_id
    where web_attributed.profile_id is not null

),

web_features as (

    select
        cutoffs.cutoff_at,
        web.profile_id,
        {%- for days in [30, 90] %}
        {%- set recent = "web.occurred_at >= " ~ dbt.dateadd('day', -days, 'cutoffs.cutoff_at') %}
        count(case when web.event_type = 'page_view' and {{ recent }} then 1 end) as page_views_{{ days }}d,
        count(distinct case when web.event_type = 'page_view' and {{ recent }}
            then cast(web.occurred_at as date) end) as visit_days_{{ days }}d,
        count(case when web.page_category = 'pricing' and web.event_type = 'page_view' and {{ recent }}
            then 1 end) as pricing_views_{{ days }}d,
        count(case when web.page_category = 'demo' and web.event_type = 'page_view' and {{ recent }}
            then 1 end) as demo_views_{{ days }}d,
        count(case when web.event_type = 'form_submit' and {{ recent }} then 1 end) as form_fills_{{ days }}d,
        count(case when web.event_type in ('add_to_cart', 'checkout_start') and {{ recent }}
            then 1 end) as cart_events_{{ days }}d,
        {%- endfor %}
        max(web.occurred_at) as last_web_event_at,
        max(web.known_at) as web_known_until
    from web
    inner join cutoffs on web.occurred_at < cutoffs.cutoff_at and web.known_at < cutoffs.cutoff_at
    group by cutoffs.cutoff_at, web.profile_id

),

email_features as (

    select
        cutoffs.cutoff_at,
        email.profile_id,
        {%- for days in [30, 90] %}
        {%- set recent = "email.occurred_at >= " ~ dbt.dateadd('day', -days, 'cutoffs.cutoff_at') %}
        count(case when email.event_type = 'open' and {{ recent }} then 1 end) as email_opens_{{ days }}d,
        count(case when email.event_type = 'click' and {{ recent }} then 1 end) as email_clicks_{{ days }}d,
        {%- endfor %}
        count(case when email.event_type = 'bounce' and email.is_hard_bounce then 1 end) as email_hard_bounces,
        count(case when email.event_type = 'unsubscribe' then 1 end) as email_unsubscribes,
        count(case when email.event_type = 'spam_report' then 1 end) as email_spam_reports,
        max(email.occurred_at) as last_email_event_at
    from {{ ref('int_email_events__attributed') }} as email
    inner join cutoffs on email.occurred_at < cutoffs.cutoff_at
    where email.profile_id is not null
    group by cutoffs.cutoff_at, email.profile_id

),

order_features as (

    select
        cutoffs.cutoff_at,
        orders.profile_id,
        count(case when orders.status = 'completed' then 1 end) as completed_orders,
        coalesce(sum(case when orders.status = 'completed' then orders.amount_usd end), 0) as order_value_usd,
        max(orders.ordered_at) as last_order_at
    from {{ ref('int_orders__attributed') }} as orders
    inner join cutoffs on orders.ordered_at < cutoffs.cutoff_at
    where orders.profile_id is not null
    group by cutoffs.cutoff_at, orders.profile_id

),

conversions as (

    select profile_id, converted_at
    from {{ ref('int_conversions__attributed') }}
    where profile_id is not null and converted_at is not null

),

conversion_features as (

    select cutoffs.cutoff_at, conversions.profile_id, count(*) as conversions_before,
        max(conversions.converted_at) as last_conversion_at
    from conversions
    inner join cutoffs on conversions.converted_at < cutoffs.cutoff_at
    group by cutoffs.cutoff_at, conversions.profile_id

),

labels as (

    -- The outcome: a conversion in [cutoff, cutoff + window). Read only as the label.
    select cutoffs.cutoff_at, conversions.profile_id
    from conversions
    inner join cutoffs
        on conversions.converted_at >= cutoffs.cutoff_at
        and conversions.converted_at < {{ dbt.dateadd('day', window, 'cutoffs.cutoff_at') }}
    where cutoffs.snapshot_kind <> 'score'
    group by cutoffs.cutoff_at, conversions.profile_id

)

select
    population.snapshot_kind,
    population.cutoff_at,
    population.profile_id,
    case
        when population.snapshot_kind = 'score' then null
        else labels.profile_id is not null
    end as converted,
    -- Who they are (slowly changing; lifecycle_stage is left out: the conversion itself moves it).
    population.seniority,
    population.employee_count,
    lower(trim(population.industry)) as industry,
    population.country_code,
    lower(trim(population.lead_source)) as lead_source,
    {{ dbt.datediff('population.first_seen_at', 'population.cutoff_at', 'day') }} as days_known,
    -- What they did before the cutoff.
    {%- for days in [30, 90] %}
    {%- for feature in ['page_views', 'visit_days', 'pricing_views', 'demo_views', 'form_fills', 'cart_events'] %}
    coalesce(web_features.{{ feature }}_{{ days }}d, 0) as {{ feature }}_{{ days }}d,
    {%- endfor %}
    coalesce(email_features.email_opens_{{ days }}d, 0) as email_opens_{{ days }}d,
    coalesce(email_features.email_clicks_{{ days }}d, 0) as email_clicks_{{ days }}d,
    {%- endfor %}
    coalesce(email_features.email_hard_bounces, 0) as email_hard_bounces,
    coalesce(email_features.email_unsubscribes, 0) as email_unsubscribes,
    coalesce(email_features.email_spam_reports, 0) as email_spam_reports,
    {{ dbt.datediff('web_features.last_web_event_at', 'population.cutoff_at', 'day') }} as days_since_last_visit,
    coalesce(order_features.completed_orders, 0) as completed_orders,
    coalesce(order_features.order_value_usd, 0) as order_value_usd,
    {{ dbt.datediff('order_features.last_order_at', 'population.cutoff_at', 'day') }} as days_since_last_order,
    coalesce(conversion_features.conversions_before, 0) as conversions_before,
    -- The latest moment any feature above used: always before cutoff_at.
    greatest(
        web_features.web_known_until, email_features.last_email_event_at,
        order_features.last_order_at, conversion_features.last_conversion_at
    ) as last_event_at
from population
left join web_features
    on population.cutoff_at = web_features.cutoff_at and population.profile_id = web_features.profile_id
left join email_features
    on population.cutoff_at = email_features.cutoff_at and population.profile_id = email_features.profile_id
left join order_features
    on population.cutoff_at = order_features.cutoff_at and population.profile_id = order_features.profile_id
left join conversion_features
    on population.cutoff_at = conversion_features.cutoff_at
    and population.profile_id = conversion_features.profile_id
left join labels
    on population.cutoff_at = labels.cutoff_at and population.profile_id = labels.profile_id
