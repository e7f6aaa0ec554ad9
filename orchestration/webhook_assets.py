"""Consent webhooks in Dagster: the drain as the `raw/consent_events` asset, a job that
drains and then rebuilds what reads consent, and the sensor that starts it when the
receiver (`outflow webhooks serve`) has spooled events. A thin layer over
orchestration.webhooks. (No `from __future__ import annotations`: Dagster reads the
annotations at definition time.)
"""

import time

import dagster as dg

from orchestration.dbt_assets import DUCKDB_POOL, outflow_dbt_assets
from orchestration.settings import warehouse_path
from orchestration.webhooks.config import load_config, spool_dir
from orchestration.webhooks.drain import drain
from orchestration.webhooks.spool import Spool

# A spool that does not empty (a failed drain) is asked for again after this long.
RETRY_AFTER_S = 300


class WebhooksResource(dg.ConfigurableResource):
    """Where the receiver spools events (webhooks.yml, or $OUTFLOW_WEBHOOKS)."""

    config_path: str | None = None

    def spool(self) -> Spool:
        config, where = load_config(self.config_path)
        return Spool(spool_dir(config, where))


@dg.asset(
    key=dg.AssetKey(["raw", "consent_events"]),
    group_name="raw",
    kinds={"duckdb"},
    pool=DUCKDB_POOL,
    description=(
        "raw.consent_events. Loaded by EL tools or `outflow generate`; this asset appends the "
        "unsubscribes, bounces and spam reports the webhook receiver spooled, idempotently "
        "(ledger: outflow.webhook_events)."
    ),
)
def consent_events(context: dg.AssetExecutionContext, webhooks: WebhooksResource) -> dg.MaterializeResult:
    result = drain(webhooks.spool(), warehouse_path())
    context.log.info(
        f"drained {result.batches} batch(es): {result.inserted} new consent event(s), "
        f"{result.duplicates} already loaded, {result.unreadable_lines} unreadable line(s)"
    )
    return dg.MaterializeResult(metadata=result.as_metadata())


drain_consent_webhooks = dg.define_asset_job(
    "drain_consent_webhooks",
    selection=(
        dg.AssetSelection.assets(consent_events)
        | (dg.AssetSelection.assets(consent_events).downstream() & dg.AssetSelection.assets(outflow_dbt_assets))
    ),
    description="Load spooled webhook events into raw.consent_events, then rebuild the dbt models that read them.",
)


@dg.sensor(
    job=drain_consent_webhooks,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts drain_consent_webhooks when the webhook receiver has spooled events.",
)
def consent_webhook_sensor(context: dg.SensorEvaluationContext, webhooks: WebhooksResource):
    pending = webhooks.spool().pending()
    if not pending.bytes:
        return dg.SkipReason("no spooled webhook events")
    # New content gets a new key at once; unchanged content (a drain that failed) is
    # asked for again once per RETRY_AFTER_S.
    return dg.RunRequest(
        run_key=f"{pending.fingerprint}:{int(time.time() // RETRY_AFTER_S)}",
        tags={"outflow/spooled_files": str(pending.files), "outflow/spooled_bytes": str(pending.bytes)},
    )
