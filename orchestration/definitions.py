"""The one Dagster Definitions of outflow."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import build_schedule_from_dbt_selection

from orchestration.dbt_assets import dbt_resource, outflow_dbt_assets, raw_source_specs

daily_dbt_build = build_schedule_from_dbt_selection(
    [outflow_dbt_assets],
    job_name="daily_dbt_build",
    schedule_name="daily_dbt_build",
    cron_schedule="0 5 * * *",
    dbt_select="fqn:*",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[*raw_source_specs(), outflow_dbt_assets],
    schedules=[daily_dbt_build],
    resources={"dbt": dbt_resource()},
)
