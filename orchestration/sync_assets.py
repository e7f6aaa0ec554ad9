"""One Dagster asset per declared sync: a thin layer over orchestration.sync.

The asset depends on the dbt model the sync reads, runs in the DuckDB pool, reports
the run in its materialisation metadata and judges it with two asset checks:
`guardrail` (the run was not refused) and `failed_record_share`.
"""

import logging
import os
import re
from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from destinations.registry import (
    RegistryError,
    build_destination,
    destinations_path,
    load_destinations,
    secret_env_vars,
)
from orchestration.dbt_assets import DUCKDB_POOL, dbt_project, outflow_dbt_assets
from orchestration.settings import warehouse_path
from orchestration.sync.apply import RunReport, run_sync
from orchestration.sync.spec import SyncSpec
from orchestration.syncs import declared_syncs, read_manifest

log = logging.getLogger(__name__)

# Share of the records sent that may fail or be rejected before the check warns.
MAX_FAILED_SHARE = 0.05


class SyncRunConfig(dg.Config):
    """Run config of a sync asset (the launchpad shows these)."""

    dry_run: bool = False  # plan only: counts and a sample, nothing sent
    full_resync: bool = False  # re-send everything in the model and rebuild state
    force: bool = False  # run even when a guardrail refuses (empty model, mass removal)


class DestinationResource(dg.ConfigurableResource):
    """One configured destination (an entry of destinations.yml), built when a run starts.

    `secrets` maps each secret's environment variable name to its value, given as
    `dg.EnvVar(name)`: Dagster resolves it when the run starts (a missing variable fails the
    run naming it) and never stores or shows the value (run config keeps `{"env": name}`).
    Non-secret overrides (`url_env`, `base_url_env`) are read from the environment as the
    CLI does; secrets are read only through `secrets`.
    """

    name: str
    secrets: dict[str, str] = {}
    config_path: str | None = None

    def build(self):
        where = Path(self.config_path) if self.config_path else destinations_path()
        configs = load_destinations(where)
        secret_vars = set(secret_env_vars(configs[self.name])) if self.name in configs else set()
        env = {k: v for k, v in os.environ.items() if k not in secret_vars}
        env.update({k: v for k, v in self.secrets.items() if k in secret_vars})
        return build_destination(self.name, where, env=env)

    def __repr__(self) -> str:  # the values never show, only which variables hold them
        return f"DestinationResource(name={self.name!r}, secrets from env {sorted(self.secrets)})"

    __str__ = __repr__


def destination_resource_key(destination: str) -> str:
    """The resource key of a destination (a Python identifier)."""
    return "destination_" + re.sub(r"\W", "_", destination)


def destination_resources(destinations: list[str]) -> dict[str, DestinationResource]:
    """One resource per destination; each secret comes from `dg.EnvVar` of the variable
    destinations.yml names. A destination not configured still gets a resource, so the
    code location loads and the run fails naming the missing entry."""
    try:
        configs = load_destinations()
    except RegistryError:
        configs = {}
    resources = {}
    for name in sorted(set(destinations) | set(configs)):
        secret_vars = secret_env_vars(configs[name]) if name in configs else []
        resources[destination_resource_key(name)] = DestinationResource(
            name=name, secrets={var: dg.EnvVar(var) for var in secret_vars})
    return resources


def _destination_kinds() -> dict[str, str]:
    """Configured destination name -> its type, read once for all sync assets."""
    try:
        return {name: config.type for name, config in load_destinations().items()}
    except RegistryError as exc:  # the run will name the problem; the asset graph still loads
        log.error("outflow: %s", exc)
        return {}


def _metadata(report: RunReport) -> dict:
    meta: dict = {
        "status": report.status,
        "model_rows": report.model_rows,
        "in_destination_before": report.in_destination,
        "holdout_assigned": report.holdout_assigned,
        "duration_seconds": round(report.duration_seconds, 3),
        "records_per_second": round(report.records_per_second, 1),
        "run_id": report.run_id,
    }
    for kind in ("planned", "succeeded", "failed", "rejected"):
        for op, n in getattr(report, kind).items():
            meta[f"{kind}_{op}"] = n
    for action, n in report.actions.items():
        meta[f"action_{action}"] = n
    meta["channel"] = report.channel
    if report.consent_override:  # logged on every run it applies to (docs/privacy.md)
        meta["consent_override"] = report.consent_override
    for outcome, n in report.deletions.items():
        meta[f"deletion_requests_{outcome}"] = n
    if report.error:
        meta["error"] = report.error
    return meta


def _checks(spec: SyncSpec, report: RunReport) -> list[dg.AssetCheckResult]:
    refused = report.status == "refused"
    sent = report.sent
    bad = sum(report.failed.values()) + sum(report.rejected.values())
    share = bad / sent if sent else 0.0
    return [
        dg.AssetCheckResult(
            check_name="guardrail",
            passed=not refused,
            severity=dg.AssetCheckSeverity.ERROR,
            description=report.error if refused else "within guardrails",
            metadata={
                "model_rows": report.model_rows,
                "in_destination": report.in_destination,
                "removes": report.actions.get("remove", 0),
                "max_remove_share": spec.guardrails.max_remove_share,
            },
        ),
        dg.AssetCheckResult(
            check_name="failed_record_share",
            passed=share <= MAX_FAILED_SHARE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"sent": sent, "failed_or_rejected": bad, "share": round(share, 4),
                      "max_share": MAX_FAILED_SHARE},
        ),
    ]


def build_sync_asset(spec: SyncSpec, kinds: dict[str, str] | None = None) -> dg.AssetsDefinition:
    upstream = get_asset_key_for_model([outflow_dbt_assets], spec.model)
    automation = dg.AutomationCondition.eager() if spec.trigger.on_upstream_change else None

    @dg.asset(
        name=spec.name,
        key_prefix=["syncs"],
        group_name="syncs",
        deps=[upstream],
        kinds={(kinds if kinds is not None else _destination_kinds()).get(spec.destination, "destination")},
        description=f"{spec.mode.value} {spec.model} -> {spec.destination}/{spec.object}",
        pool=DUCKDB_POOL,
        automation_condition=automation,
        required_resource_keys={destination_resource_key(spec.destination)},
        tags={"outflow/destination": spec.destination, "outflow/mode": spec.mode.value},
        check_specs=[
            dg.AssetCheckSpec("guardrail", asset=dg.AssetKey(["syncs", spec.name]),
                              description="refused when the model is empty or removals exceed the set share"),
            dg.AssetCheckSpec("failed_record_share", asset=dg.AssetKey(["syncs", spec.name]),
                              description=f"at most {MAX_FAILED_SHARE:.0%} of the records sent fail or are rejected"),
        ],
    )
    def _sync(context: dg.AssetExecutionContext, config: SyncRunConfig):
        resource: DestinationResource = getattr(context.resources, destination_resource_key(spec.destination))
        destination = None if config.dry_run else resource.build()
        try:
            report = run_sync(spec, destination, warehouse_path(), dry_run=config.dry_run,
                              full_resync=config.full_resync, force=config.force)
        finally:
            if destination is not None:
                destination.close()
        context.log.info(f"sync {spec.name}: {report.status}, planned {report.planned_total}, sent {report.sent}")
        if report.status == "failed":
            raise dg.Failure(description=f"sync {spec.name} failed: {report.error}", metadata=_metadata(report))
        return dg.MaterializeResult(metadata=_metadata(report), check_results=_checks(spec, report))

    return _sync


def sync_schedules(specs: list[SyncSpec]) -> list[dg.ScheduleDefinition]:
    return [
        dg.ScheduleDefinition(
            name=f"sync_{spec.name}_schedule",
            cron_schedule=spec.trigger.cron,
            target=dg.AssetSelection.assets(dg.AssetKey(["syncs", spec.name])),
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
        for spec in specs
        if spec.trigger.cron
    ]


def load_sync_definitions() -> tuple[list[dg.AssetsDefinition], list[dg.ScheduleDefinition],
                                     dict[str, DestinationResource]]:
    """Assets, schedules and destination resources for every valid declared sync; invalid
    ones are logged and left out, so one broken definition does not take the code location down."""
    specs, errors = declared_syncs(read_manifest(dbt_project.manifest_path))
    for error in errors:
        log.error("outflow: %s", error)
    kinds = _destination_kinds()
    return ([build_sync_asset(s, kinds) for s in specs], sync_schedules(specs),
            destination_resources([s.destination for s in specs]))
