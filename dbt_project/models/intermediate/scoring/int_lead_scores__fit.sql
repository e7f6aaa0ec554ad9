-- Fit points per profile (who they are): seniority from the job title, company size
-- band from employee_count, and the industry. Weights: lead_scoring_config().
{%- set cfg = lead_scoring_config() %}

with attributes as (

    select profile_id, job_title, employee_count, industry
    from {{ ref('int_profiles__attributes') }}

),

classified as (

    select
        profile_id,
        job_title,
        {{ job_title_seniority('job_title') }} as seniority,
        employee_count,
        industry
    from attributes

),

points as (

    select
        profile_id,
        job_title,
        seniority,
        case seniority
            {%- for level, value in cfg['seniority'].items() %}
            when '{{ level }}' then {{ value }}
            {%- endfor %}
            else 0
        end as seniority_points,
        employee_count,
        case
            {%- for band in cfg['company_size'] | sort(attribute='min_employees', reverse=true) %}
            when employee_count >= {{ band['min_employees'] }} then {{ band['points'] }}
            {%- endfor %}
            else 0
        end as company_size_points,
        industry,
        case lower(trim(industry))
            {%- for name, value in cfg['industries'].items() %}
            when '{{ name | lower }}' then {{ value }}
            {%- endfor %}
            else 0
        end as industry_points
    from classified

)

select
    *,
    seniority_points + company_size_points + industry_points as fit_points
from points
