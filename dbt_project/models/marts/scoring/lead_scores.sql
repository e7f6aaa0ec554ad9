-- Explainable points score per profile: score = clamp(fit + behaviour + penalty, 0, 100).
-- Every component is its own column so a salesperson can read why a lead is hot.
-- Behaviour components are sums of decayed event points (int_lead_scores__events),
-- capped per component; penalties are negative and floored at their cap.
-- Beside it: predicted_conversion and predicted_rank from the learned model
-- (int_lead_scores__predicted; null when it could not be trained, see lead_score_model_card).
{%- set cfg = lead_scoring_config() %}
{%- set behaviours = ['pricing_page', 'demo_page', 'form_fill', 'web_visit', 'email_click',
                      'email_open', 'order'] %}
{%- set penalties = {'bounce': 'bounce_penalty', 'unsubscribe': 'unsubscribe_penalty',
                     'spam_report': 'spam_penalty'} %}

with fit as (

    select * from {{ ref('int_lead_scores__fit') }}

),

events as (

    select
        profile_id,
        {%- for c in behaviours + (penalties.keys() | list) %}
        sum(case when component = '{{ c }}' then points else 0 end) as raw_{{ c }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ ref('int_lead_scores__events') }}
    group by profile_id

),

predicted as (

    select profile_id, predicted_conversion, predicted_rank
    from {{ ref('int_lead_scores__predicted') }}

),

components as (

    select
        fit.profile_id,
        fit.seniority,
        fit.seniority_points,
        fit.company_size_points,
        fit.industry_points,
        {%- for c in behaviours %}
        round(least(coalesce(events.raw_{{ c }}, 0), {{ cfg[c]['cap'] }}), 1) as {{ c }}_points,
        {%- endfor %}
        {%- for c, column in penalties.items() %}
        round(greatest(coalesce(events.raw_{{ c }}, 0), {{ cfg[c]['cap'] }}), 1) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from fit
    left join events
        on fit.profile_id = events.profile_id

),

summed as (

    select
        *,
        seniority_points + company_size_points + industry_points as fit_points,
        {%- for c in behaviours %}{{ c }}_points{{ ' + ' if not loop.last }}{% endfor %} as behaviour_points,
        {% for column in penalties.values() %}{{ column }}{{ ' + ' if not loop.last }}{% endfor %} as penalty_points
    from components

),

scored as (

    select
        *,
        cast(round(greatest(0, least(100, fit_points + behaviour_points + penalty_points))) as integer) as score
    from summed

)

select
    scored.profile_id,
    score,
    {{ lead_grade('score') }} as grade,
    predicted.predicted_conversion,
    predicted.predicted_rank,
    fit_points,
    behaviour_points,
    penalty_points,
    seniority,
    seniority_points,
    company_size_points,
    industry_points,
    {%- for c in behaviours %}
    {{ c }}_points,
    {%- endfor %}
    {%- for column in penalties.values() %}
    {{ column }},
    {%- endfor %}
    {{ outflow_as_of() }} as as_of_at
from scored
left join predicted
    on scored.profile_id = predicted.profile_id
