-- Leads sales should call now: lead grade A or B and a pricing or demo page view in
-- the last 14 days. No email consent needed: sales works them in the CRM.
with scores as (

    select profile_id, score, grade from {{ ref('lead_scores') }}

),

engagement as (

    select profile_id, last_pricing_or_demo_view_at
    from {{ ref('int_profiles__engagement') }}

)

select
    scores.profile_id,
    'grade ' || scores.grade || ' (score ' || cast(scores.score as {{ dbt.type_string() }})
        || '), pricing/demo visit ' || cast({{ dbt.datediff('engagement.last_pricing_or_demo_view_at',
            outflow_as_of(), 'day') }} as {{ dbt.type_string() }}) || ' days ago' as reason
from scores
inner join engagement
    on scores.profile_id = engagement.profile_id
where scores.grade in ('A', 'B')
    and engagement.last_pricing_or_demo_view_at > {{ dbt.dateadd('day', -14, outflow_as_of()) }}
