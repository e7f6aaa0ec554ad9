-- Four-fifths check of every segment: per (segment, dimension, group) the share of the
-- group's profiles the segment selects, against the highest share of any large enough
-- group of the same dimension (the reference group). A group is flagged when
--   * its impact ratio is below var outflow_fairness_impact_ratio (0.8, the four-fifths rule),
--   * it has at least var outflow_fairness_min_group_size (30) profiles (in a smaller
--     group one person moves the rate by several points: shown, never flagged), and
--   * its rate is below the reference group's by more than chance explains: a pooled
--     two-proportion z-test, z <= -var outflow_fairness_z (1.96, 5% two-sided). Segments
--     select a few percent of everyone, and at such rates the ratio alone swings past 0.8
--     on noise; below_four_fifths keeps the bare ratio rule for those who want it.
{%- set threshold = var('outflow_fairness_impact_ratio', 0.8) %}
{%- set min_size = var('outflow_fairness_min_group_size', 30) %}
{%- set z_critical = var('outflow_fairness_z', 1.96) %}

with groups as (

    select * from {{ ref('int_fairness__groups') }}

),

group_sizes as (

    select dimension, group_value, count(*) as group_profiles
    from groups
    group by dimension, group_value

),

segments as (

    select segment from {{ ref('segment_definitions') }}

),

selected as (

    select
        memberships.segment,
        groups.dimension,
        groups.group_value,
        count(*) as selected_profiles
    from {{ ref('segment_memberships') }} as memberships
    inner join groups
        on memberships.profile_id = groups.profile_id
    group by memberships.segment, groups.dimension, groups.group_value

),

rates as (

    select
        segments.segment,
        group_sizes.dimension,
        group_sizes.group_value,
        group_sizes.group_profiles,
        coalesce(selected.selected_profiles, 0) as selected_profiles,
        coalesce(selected.selected_profiles, 0) * 1.0 / group_sizes.group_profiles as selection_rate,
        group_sizes.group_profiles < {{ min_size }} as is_small_group
    from segments
    cross join group_sizes
    left join selected
        on segments.segment = selected.segment
        and group_sizes.dimension = selected.dimension
        and group_sizes.group_value = selected.group_value

),

ranked as (

    select
        *,
        -- the reference group: highest rate among groups that are not small (then largest)
        row_number() over (
            partition by segment, dimension
            order by case when is_small_group then 1 else 0 end, selection_rate desc, group_profiles desc, group_value
        ) as rate_rank
    from rates

),

reference as (

    select
        ranked.*,
        best.group_value as reference_group,
        best.selection_rate as highest_rate,
        best.group_profiles as reference_profiles,
        best.selected_profiles as reference_selected
    from ranked
    inner join ranked as best
        on ranked.segment = best.segment
        and ranked.dimension = best.dimension
        and best.rate_rank = 1
        and not best.is_small_group

),

tested as (

    select
        *,
        case when highest_rate > 0 then selection_rate / highest_rate end as impact_ratio,
        -- pooled two-proportion z of this group against the reference group
        case
            when group_value = reference_group then 0.0
            when (selected_profiles + reference_selected) in (0, group_profiles + reference_profiles) then null
            else (selection_rate - highest_rate) / sqrt(
                ((selected_profiles + reference_selected) * 1.0 / (group_profiles + reference_profiles))
                * (1 - (selected_profiles + reference_selected) * 1.0 / (group_profiles + reference_profiles))
                * (1.0 / group_profiles + 1.0 / reference_profiles))
        end as z_score
    from reference

)

select
    segment,
    dimension,
    group_value,
    group_profiles,
    selected_profiles,
    selection_rate,
    reference_group,
    highest_rate,
    impact_ratio,
    z_score,
    is_small_group,
    coalesce(impact_ratio < {{ threshold }}, false) as below_four_fifths,
    coalesce(not is_small_group and impact_ratio < {{ threshold }} and z_score <= -{{ z_critical }}, false)
        as is_flagged
from tested
