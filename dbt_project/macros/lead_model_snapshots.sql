{#- Point-in-time snapshots of the predictive lead score (docs/lead_scoring.md), shared by
    int_lead_scores__training_snapshots (train/test cutoffs relative to the fit's as_of,
    rebuilt only when the model is refitted) and int_lead_scores__score_snapshot (as_of,
    built on every run). -#}


{#- The settings that shape the fitted model (vars outflow_lead_model_*), as ints. A change
    to any of them refits the model (int_lead_scores__refit_schedule). -#}
{% macro lead_model_settings() -%}
  {%- set settings = {
    'seed': var('outflow_lead_model_seed', 42),
    'cv_folds': var('outflow_lead_model_cv_folds', 3),
    'min_converted': var('outflow_lead_model_min_converted', 10),
    'label_window_days': var('outflow_lead_model_label_window_days', 30),
    'train_snapshots': var('outflow_lead_model_train_snapshots', 3),
    'snapshot_step_days': var('outflow_lead_model_snapshot_step_days', 30),
    'max_training_rows': var('outflow_lead_model_max_training_rows', 100000),
  } -%}
  {%- set checked = {} -%}
  {%- for name, value in settings.items() -%}
    {%- set text = value | string | trim -%}
    {%- if not modules.re.match('^\d+$', text) or (text | int) < 1 -%}
      {{ exceptions.raise_compiler_error("var outflow_lead_model_" ~ name ~ " must be a whole number >= 1, got: " ~ value) }}
    {%- endif -%}
    {%- do checked.update({name: text | int}) -%}
  {%- endfor -%}
  {{ return(checked) }}
{%- endmacro %}


{#- The settings as one text, the same for the same settings (stored with the fit), and a
    fingerprint of the feature query (lead_model_snapshot_features as compiled): a changed
    feature must refit at once, not when the fit is due, since the kept model would score
    features it was not trained on. -#}
{% macro lead_model_settings_key() -%}
  {%- set settings = lead_model_settings() -%}
  {%- set parts = [] -%}
  {%- for name in settings | sort -%}
    {%- do parts.append(name ~ '=' ~ settings[name]) -%}
  {%- endfor -%}
  {%- set features = lead_model_snapshot_features(
        "select 'train' as snapshot_kind, cast(null as timestamp) as cutoff_at", with_labels=true) -%}
  {%- do parts.append('features=' ~ code_fingerprint(features)) -%}
  {{ return(parts | join(';')) }}
{%- endmacro %}


{#- Days a fit is kept before the model is refitted (var outflow_lead_model_refit_days);
    0 refits on every build. -#}
{% macro lead_model_refit_days() -%}
  {%- set days = var('outflow_lead_model_refit_days', 7) -%}
  {%- set text = days | string | trim -%}
  {%- if not modules.re.match('^\d+$', text) -%}
    {{ exceptions.raise_compiler_error("var outflow_lead_model_refit_days must be a whole number of days >= 0 "
        ~ "(0 refits on every build), got: " ~ days) }}
  {%- endif -%}
  {{ return(text | int) }}
{%- endmacro %}


{#- The cutoffs (snapshot_kind, cutoff_at) of the labelled snapshots relative to the
    fitted_as_of of `schedule` (int_lead_scores__refit_schedule): 'test' = fitted_as_of -
    window (held out), 'train' = fitted_as_of - 2 * window - k * step. -#}
{% macro lead_model_training_cutoffs(schedule) -%}
  {%- set settings = lead_model_settings() -%}
  {%- set window = settings['label_window_days'] -%}
  select 'test' as snapshot_kind, {{ dbt.dateadd('day', -window, 'fitted_as_of') }} as cutoff_at
    from {{ schedule }}
  {%- for k in range(settings['train_snapshots']) %}
  union all
  select 'train', {{ dbt.dateadd('day', -2 * window - k * settings['snapshot_step_days'], 'fitted_as_of') }}
    from {{ schedule }}
  {%- endfor %}
{%- endmacro %}


{#- Pre-hook of int_lead_scores__refit_schedule: delete the stored fit when a refit is due
    (its as_of is outflow_lead_model_refit_days or more before as_of, or after it, or the
    settings changed). The model then writes a fit for as_of. -#}
{% macro lead_model_expire_fit() -%}
  {%- if is_incremental() -%}
    delete from {{ this }}
    where fitted_as_of > {{ outflow_as_of() }}
        or fitted_as_of <= {{ dbt.dateadd('day', -lead_model_refit_days(), outflow_as_of()) }}
        or settings_key <> '{{ lead_model_settings_key() }}'
  {%- endif -%}
{%- endmacro %}


{#- Pre-hook of the models that follow the fit (training snapshots, the model): delete
    stored rows of an earlier fit (all of them in a table written before fits had ids). -#}
{% macro lead_model_drop_stale_rows() -%}
  {%- if is_incremental() -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    delete from {{ this }}
    {%- if 'fit_id' in columns %}
    where fit_id not in (select fit_id from {{ ref('int_lead_scores__refit_schedule') }})
    {%- endif %}
  {%- endif -%}
{%- endmacro %}


{#- True when `this` already holds rows of the current fit, so an incremental run has
    nothing to add (decided before the model's query is built, so a kept fit costs one
    lookup instead of the snapshot query). -#}
{% macro lead_model_rows_are_current() -%}
  {%- if not execute or not is_incremental() -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
  {%- if 'fit_id' not in columns -%}
    {{ return(false) }}
  {%- endif -%}
  {%- set found = run_query(
      "select count(*) from (select 1 from " ~ this ~ " where fit_id in (select fit_id from "
      ~ ref('int_lead_scores__refit_schedule') ~ ") limit 1)") -%}
  {{ return(found.columns[0].values()[0] > 0) }}
{%- endmacro %}


{#- What was known about each profile at each cutoff of `cutoffs` (a query returning
    snapshot_kind, cutoff_at), one row per profile known then. with_labels: add
    `converted` (a conversion in [cutoff, cutoff + window)); otherwise it is null.
    Every feature is computed from events with occurred_at < cutoff_at, and an anonymous
    web event counts only once its browser was identified before the cutoff;
    last_event_at (the latest moment any feature used) proves it (test on the yml). -#}
{% macro lead_model_snapshot_features(cutoffs, with_labels) -%}
{%- set window = lead_model_settings()['label_window_days'] %}
with cutoffs as (

    {{ cutoffs }}

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

browsers as (

    -- When a browser was first tied to a person; its anonymous events are known from then.
    -- (Each CTE here reads the model itself: DuckDB stores a CTE that two others read,
    -- a copy of every web event.)
    select anonymous_id, min(occurred_at) as identified_at
    from {{ ref('int_web_events__attributed') }}
    where anonymous_id is not null and attribution_rule in ('contact_id', 'email')
    group by anonymous_id

),

web as not materialized (

    -- Events tied to the person directly are known when they happen; anonymous ones (a few
    -- percent) once their browser is identified: only those probe the browsers.
    select profile_id, event_type, page_category, occurred_at, occurred_at as known_at
    from {{ ref('int_web_events__attributed') }}
    where profile_id is not null and attribution_rule is distinct from 'anonymous_id'
    union all
    select
        anonymous_events.profile_id,
        anonymous_events.event_type,
        anonymous_events.page_category,
        anonymous_events.occurred_at,
        greatest(anonymous_events.occurred_at, browsers.identified_at) as known_at
    from {{ ref('int_web_events__attributed') }} as anonymous_events
    left join browsers on anonymous_events.anonymous_id = browsers.anonymous_id
    where anonymous_events.profile_id is not null and anonymous_events.attribution_rule = 'anonymous_id'

),

web_features as (

    select
        cutoffs.cutoff_at,
        web.profile_id,
        {%- for days in [30, 90] %}
        {%- set recent = "web.occurred_at >= " ~ dbt.dateadd('day', -days, 'cutoffs.cutoff_at') %}
        count(case when web.event_type = 'page_view' and {{ recent }} then 1 end) as page_views_{{ days }}d,
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

visit_days as (

    -- Days with a page view: one row per day first, then a day is in a window when its last
    -- view is (cheaper than a distinct count per window over every event).
    select
        cutoff_at,
        profile_id,
        count(case when last_view_at >= {{ dbt.dateadd('day', -30, 'cutoff_at') }} then 1 end) as visit_days_30d,
        count(*) as visit_days_90d
    from (
        select cutoffs.cutoff_at, web.profile_id, cast(web.occurred_at as date) as visit_date,
            max(web.occurred_at) as last_view_at
        from web
        inner join cutoffs
            on web.occurred_at < cutoffs.cutoff_at and web.known_at < cutoffs.cutoff_at
            and web.occurred_at >= {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_at') }}
        where web.event_type = 'page_view'
        group by cutoffs.cutoff_at, web.profile_id, cast(web.occurred_at as date)
    ) as view_days
    group by cutoff_at, profile_id

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
    -- only the types counted above: sends and deliveries are most of the rows
    where email.profile_id is not null
        and {{ is_counted_email_event('email.event_type') }}
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

)
{%- if with_labels %},

labels as (

    -- The outcome: a conversion in [cutoff, cutoff + window). Read only as the label.
    select cutoffs.cutoff_at, conversions.profile_id
    from conversions
    inner join cutoffs
        on conversions.converted_at >= cutoffs.cutoff_at
        and conversions.converted_at < {{ dbt.dateadd('day', window, 'cutoffs.cutoff_at') }}
    group by cutoffs.cutoff_at, conversions.profile_id

)
{%- endif %}

select
    population.snapshot_kind,
    population.cutoff_at,
    population.profile_id,
    {%- if with_labels %}
    labels.profile_id is not null as converted,
    {%- else %}
    cast(null as boolean) as converted,
    {%- endif %}
    -- Who they are (slowly changing; lifecycle_stage is left out: the conversion itself moves it).
    population.seniority,
    population.employee_count,
    lower(trim(population.industry)) as industry,
    population.country_code,
    lower(trim(population.lead_source)) as lead_source,
    {{ dbt.datediff('population.first_seen_at', 'population.cutoff_at', 'day') }} as days_known,
    -- What they did before the cutoff.
    {%- for days in [30, 90] %}
    {{- counts_or_zero('web_features', ['page_views'], '_' ~ days ~ 'd') }}
    {{- counts_or_zero('visit_days', ['visit_days'], '_' ~ days ~ 'd') }}
    {{- counts_or_zero('web_features', ['pricing_views', 'demo_views', 'form_fills', 'cart_events'],
                       '_' ~ days ~ 'd') }}
    {{- counts_or_zero('email_features', ['email_opens', 'email_clicks'], '_' ~ days ~ 'd') }}
    {%- endfor %}
    {{- counts_or_zero('email_features', ['email_hard_bounces', 'email_unsubscribes', 'email_spam_reports']) }}
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
left join visit_days
    on population.cutoff_at = visit_days.cutoff_at and population.profile_id = visit_days.profile_id
left join email_features
    on population.cutoff_at = email_features.cutoff_at and population.profile_id = email_features.profile_id
left join order_features
    on population.cutoff_at = order_features.cutoff_at and population.profile_id = order_features.profile_id
left join conversion_features
    on population.cutoff_at = conversion_features.cutoff_at
    and population.profile_id = conversion_features.profile_id
{%- if with_labels %}
left join labels
    on population.cutoff_at = labels.cutoff_at and population.profile_id = labels.profile_id
{%- endif %}
{%- endmacro %}
