"""The one Dagster Definitions of outflow."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import build_schedule_from_dbt_selection

from orchestration.dbt_assets import dbt_resource, outflow_dbt_assets, raw_source_specs
from orchestration.sync_assets import load_sync_definitions
from orchestration.webhook_assets import (
    WebhooksResource, consent_events, consent_webhook_sensor, drain_consent_webhooks,
)

daily_dbt_build = build_schedule_from_dbt_selection(
    [outflow_dbt_assets],
    job_name="daily_dbt_build",
    schedule_name="daily_dbt_build",
    cron_schedule="0 5 * * *",
    dbt_select="fqn:*",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

sync_assets, sync_schedules, destination_resources = load_sync_definitions()

# Syncs declared `on_upstream_change` run after their dbt model is rebuilt; this sensor
# evaluates their automation conditions (the daemon of `dagster dev` runs it).
automation_sensor = dg.AutomationConditionSensorDefinition(
    "outflow_automation",
    target=dg.AssetSelection.groups("syncs"),
    default_status=dg.DefaultSensorStatus.RUNNING,
)

# raw/consent_events is materialised by the webhook drain; the other raw tables are
# loaded outside Dagster.
raw_specs = [spec for spec in raw_source_specs() if spec.key != consent_events.key]

defs = dg.Definitions(
    assets=[*raw_specs, consent_events, outflow_dbt_assets, *sync_assets],
    jobs=[drain_consent_webhooks],
    schedules=[daily_dbt_build, *sync_schedules],
    sensors=[automation_sensor, consent_webhook_sensor],
    resources={"dbt": dbt_resource(), **destination_resources, "webhooks": WebhooksResource()},
)
