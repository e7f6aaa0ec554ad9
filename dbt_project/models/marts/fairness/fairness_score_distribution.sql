-- Distribution of every score (int_fairness__scores) within each demographic group
-- (int_fairness__groups): count, mean, quantiles, and the group's mean against the mean
-- of everyone scored. Groups under var outflow_fairness_min_group_size (30) are marked.
{%- set min_size = var('outflow_fairness_min_group_size', 30) %}

with scored as (

    select scores.score_name, scores.score_value, groups.dimension, groups.group_value
    from {{ ref('int_fairness__scores') }} as scores
    inner join {{ ref('int_fairness__groups') }} as groups
        on scores.profile_id = groups.profile_id

),

overall as (

    select score_name, dimension, avg(score_value) as overall_mean
    from scored
    group by score_name, dimension

),

by_group as (

    select
        score_name,
        dimension,
        group_value,
        count(*) as scored_profiles,
        avg(score_value) as mean_score,
        quantile_cont(score_value, 0.1) as p10,
        quantile_cont(score_value, 0.25) as p25,
        quantile_cont(score_value, 0.5) as median,
        quantile_cont(score_value, 0.75) as p75,
        quantile_cont(score_value, 0.9) as p90
    from scored
    group by score_name, dimension, group_value

)

select
    by_group.*,
    overall.overall_mean,
    case when overall.overall_mean <> 0 then by_group.mean_score / overall.overall_mean end as mean_ratio,
    by_group.scored_profiles < {{ min_size }} as is_small_group
from by_group
inner join overall
    on by_group.score_name = overall.score_name
    and by_group.dimension = overall.dimension
