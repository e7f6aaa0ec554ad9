-- Did the audience move anything? Per sync with a holdout: conversion of the members it
-- synced against the members its holdout kept out (orchestration/sync, outflow.sync_holdout),
-- each from the moment it was synced or held out, with the difference in proportions,
-- its Newcombe (hybrid Wilson score) and Wald 95% intervals, and the relative lift.
-- Arms:
--   synced   first acknowledged send of the record by the sync (outflow.sync_changelog,
--            an upsert, update, insert or add_member), at or after the sync's first holdout assignment
--            (members synced before the holdout existed have no comparable control)
--   holdout  outflow.sync_holdout.assigned_at
-- A member converts when a conversion (int_conversions__attributed) follows its start by at
-- most var outflow_lift_window_days (30) days and is not after outflow_as_of().
-- The sync's primary key must be the profile_id (every sync of profiles is).
{%- set z = 1.959963984540054 %}
{%- set window_days = var('outflow_lift_window_days', 30) %}
{%- set holdout = outflow_engine_relation('sync_holdout') %}
{%- set changelog = outflow_engine_relation('sync_changelog') %}

with

{% if holdout is not none and changelog is not none -%}
held_out as (

    select sync, record_key as profile_id, assigned_at as started_at, 'holdout' as arm
    from {{ holdout }}

),

holdout_start as (

    select sync, min(started_at) as first_assigned_at
    from held_out
    group by sync

),

synced as (

    select changelog.sync, changelog.record_key as profile_id, min(changelog."at") as started_at, 'synced' as arm
    from {{ changelog }} as changelog
    inner join holdout_start
        on changelog.sync = holdout_start.sync
    where changelog.status = 'ok'
        and changelog.operation in ('upsert', 'update', 'insert', 'add_member')
        and changelog."at" >= holdout_start.first_assigned_at
    group by changelog.sync, changelog.record_key

),

members as (

    select * from synced
    union all
    select * from held_out

),
{%- else -%}
members as (

    -- no sync has run in this warehouse yet
    select
        cast(null as {{ dbt.type_string() }}) as sync,
        cast(null as {{ dbt.type_string() }}) as profile_id,
        cast(null as {{ dbt.type_timestamp() }}) as started_at,
        cast(null as {{ dbt.type_string() }}) as arm
    where 1 = 0

),
{%- endif %}

conversions as (

    select profile_id, converted_at
    from {{ ref('int_conversions__attributed') }}
    where profile_id is not null
        and converted_at <= {{ outflow_as_of() }}

),

outcomes as (

    select
        members.sync,
        members.arm,
        members.profile_id,
        max(case when conversions.converted_at > members.started_at
                  and conversions.converted_at <= {{ dbt.dateadd('day', window_days, 'members.started_at') }}
                 then 1 else 0 end) as converted
    from members
    left join conversions
        on members.profile_id = conversions.profile_id
    group by members.sync, members.arm, members.profile_id

),

arms as (

    select
        sync,
        sum(case when arm = 'synced' then 1 else 0 end) as synced_members,
        sum(case when arm = 'synced' then converted else 0 end) as synced_conversions,
        sum(case when arm = 'holdout' then 1 else 0 end) as holdout_members,
        sum(case when arm = 'holdout' then converted else 0 end) as holdout_conversions
    from outcomes
    group by sync

),

rates as (

    select
        *,
        case when synced_members > 0 then synced_conversions * 1.0 / synced_members end as synced_rate,
        case when holdout_members > 0 then holdout_conversions * 1.0 / holdout_members end as holdout_rate,
        case when synced_members > 0 and holdout_members > 0 then {{ wilson_bound('synced_conversions', 'synced_members', z, -1) }} end as synced_low,
        case when synced_members > 0 and holdout_members > 0 then {{ wilson_bound('synced_conversions', 'synced_members', z, 1) }} end as synced_high,
        case when synced_members > 0 and holdout_members > 0 then {{ wilson_bound('holdout_conversions', 'holdout_members', z, -1) }} end as holdout_low,
        case when synced_members > 0 and holdout_members > 0 then {{ wilson_bound('holdout_conversions', 'holdout_members', z, 1) }} end as holdout_high
    from arms

),

lift as (

    select
        *,
        synced_rate - holdout_rate as lift,
        synced_rate - holdout_rate
            - sqrt(power(synced_rate - synced_low, 2) + power(holdout_high - holdout_rate, 2)) as lift_ci_low,
        synced_rate - holdout_rate
            + sqrt(power(synced_high - synced_rate, 2) + power(holdout_rate - holdout_low, 2)) as lift_ci_high,
        {{ z }} * sqrt(synced_rate * (1 - synced_rate) / synced_members
                       + holdout_rate * (1 - holdout_rate) / holdout_members) as wald_half_width
    from rates

)

select
    sync,
    synced_members,
    synced_conversions,
    synced_rate,
    holdout_members,
    holdout_conversions,
    holdout_rate,
    lift,
    lift_ci_low,
    lift_ci_high,
    lift - wald_half_width as lift_wald_ci_low,
    lift + wald_half_width as lift_wald_ci_high,
    case when holdout_rate > 0 then lift / holdout_rate end as relative_lift,
    coalesce(lift_ci_low > 0 or lift_ci_high < 0, false) as is_significant,
    {{ window_days }} as window_days,
    {{ outflow_as_of() }} as measured_at
from lift
