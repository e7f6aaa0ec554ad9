-- One row per person: surviving attributes (rules in _profiles.yml), engagement and
-- purchase features, consent per channel (from the consent mart, the one place that
-- decides it), the points lead score, and churn risk and value for customers.
with attributes as (

    select * from {{ ref('int_profiles__attributes') }}

),

consent as (

    select
        profile_id,
        max(case when channel = 'email' then status end) as consent_email,
        max(case when channel = 'sms' then status end) as consent_sms,
        max(case when channel = 'ads' then status end) as consent_ads,
        max(case when channel = 'email' then reason end) as consent_email_reason,
        max(case when reason = 'deletion_requested' then updated_at end) as deletion_requested_at
    from {{ ref('consent') }}
    group by profile_id

),

engagement as (

    select * from {{ ref('int_profiles__engagement') }}

),

purchases as (

    select * from {{ ref('int_profiles__purchases') }}

),

rfm as (

    select * from {{ ref('int_profiles__rfm') }}

),

churn as (

    select * from {{ ref('int_profiles__churn') }}

),

scores as (

    select profile_id, score, grade, seniority
    from {{ ref('lead_scores') }}

)

select
    attributes.profile_id,
    attributes.email,
    attributes.email_domain,
    attributes.phone_e164,
    attributes.first_name,
    attributes.last_name,
    attributes.street_address,
    attributes.city,
    attributes.postal_code,
    attributes.country_code,
    attributes.date_of_birth,
    attributes.company,
    attributes.job_title,
    scores.seniority,
    attributes.industry,
    attributes.employee_count,
    attributes.lifecycle_stage,
    attributes.lead_source,
    attributes.source_systems,
    attributes.contact_count,
    attributes.first_seen_at,
    attributes.last_updated_at,
    consent.consent_email,
    consent.consent_sms,
    consent.consent_ads,
    consent.consent_email_reason,
    consent.deletion_requested_at is not null as is_deletion_requested,
    consent.deletion_requested_at,
    scores.score as lead_score,
    scores.grade as lead_grade,
    engagement.email_opens_7d,
    engagement.email_opens_30d,
    engagement.email_opens_90d,
    engagement.email_clicks_7d,
    engagement.email_clicks_30d,
    engagement.email_clicks_90d,
    engagement.visit_days_7d,
    engagement.visit_days_30d,
    engagement.visit_days_90d,
    engagement.page_views_30d,
    engagement.pricing_page_views_30d,
    engagement.demo_page_views_30d,
    engagement.form_fills_30d,
    engagement.form_fills_90d,
    engagement.email_bounces,
    engagement.email_unsubscribes,
    engagement.email_spam_reports,
    engagement.last_email_open_at,
    engagement.last_email_click_at,
    engagement.last_web_event_at,
    purchases.is_customer,
    purchases.frequency as order_count,
    purchases.monetary as lifetime_value_usd,
    purchases.average_order_value as average_order_value_usd,
    purchases.first_order_at,
    purchases.last_order_at,
    purchases.recency_days,
    purchases.r_score,
    purchases.f_score,
    purchases.m_score,
    rfm.frequency as btyd_frequency,
    rfm.recency_days as btyd_recency_days,
    rfm.t_days as btyd_t_days,
    rfm.monetary_usd as btyd_monetary_usd,
    churn.p_alive,
    churn.churn_risk,
    churn.expected_purchases as expected_purchases_horizon,
    churn.expected_value_usd as expected_value_horizon_usd
from attributes
left join consent on attributes.profile_id = consent.profile_id
left join engagement on attributes.profile_id = engagement.profile_id
left join purchases on attributes.profile_id = purchases.profile_id
left join scores on attributes.profile_id = scores.profile_id
left join rfm on attributes.profile_id = rfm.profile_id
left join churn on attributes.profile_id = churn.profile_id
