"""Sync assets in Dagster: declared in dbt yml, materialised against real destinations
(the file outbox and the webhook sandbox over loopback HTTP), judged by asset checks."""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest

from destinations.registry import load_destinations, secret_env_vars
from destinations.sandbox.webhook_receiver import WebhookReceiver
from orchestration.sync_assets import destination_resource_key

pytestmark = pytest.mark.slow

SECRET = "test-secret-not-real"


@pytest.fixture
def sync_env(warehouse_copy, tmp_path, monkeypatch):
    """A private warehouse, outbox and destinations file; a running webhook sandbox."""
    receiver = WebhookReceiver(SECRET)
    url = receiver.start()
    config = tmp_path / "destinations.yml"
    config.write_text(
        f"outbox:\n  type: file\n  folder: {tmp_path / 'outbox'}\n  format: jsonl\n"
        f"webhook_sandbox:\n  type: webhook\n  url: {url}\n  secret_env: OUTFLOW_WEBHOOK_SECRET\n"
    )
    monkeypatch.setenv("OUTFLOW_WAREHOUSE", str(warehouse_copy))
    monkeypatch.setenv("OUTFLOW_DESTINATIONS", str(config))
    monkeypatch.setenv("OUTFLOW_WEBHOOK_SECRET", SECRET)
    monkeypatch.delenv("OUTFLOW_WEBHOOK_URL", raising=False)
    yield warehouse_copy, receiver, tmp_path / "outbox"
    receiver.stop()


@pytest.fixture(scope="module")
def defs():
    from orchestration.definitions import defs

    return defs


def _materialize(defs, name: str, **config):
    key = dg.AssetKey(["syncs", name])
    asset = defs.resolve_assets_def(key)  # bound to the definitions' resources
    run_config = {"ops": {asset.op.name: {"config": config}}} if config else None
    return dg.materialize([asset], run_config=run_config, instance=dg.DagsterInstance.ephemeral(),
                          raise_on_error=False)


def _meta(result, name: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events()
               if e.asset_key == dg.AssetKey(["syncs", name])]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_every_declared_sync_is_an_asset_downstream_of_its_model(defs):
    graph = defs.resolve_asset_graph()
    for name in ("crm_contacts", "high_intent_audience", "lead_scores_file"):
        node = graph.get(dg.AssetKey(["syncs", name]))
        assert node.parent_keys == {dg.AssetKey(["profiles"])}
        assert node.group_name == "syncs"
        assert node.automation_condition is not None  # runs after its model changes
    assert defs.resolve_schedule_def("sync_crm_contacts_schedule").cron_schedule == "0 * * * *"
    kinds = graph.get(dg.AssetKey(["syncs", "lead_scores_file"])).kinds
    assert "file" in kinds


def test_webhook_sync_materialises_with_counts_and_passing_checks(defs, sync_env):
    warehouse, receiver, _ = sync_env
    result = _materialize(defs, "crm_contacts")
    assert result.success
    meta = _meta(result, "crm_contacts")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = con.execute(
            "select count(*) from profiles where email is not null and not is_deletion_requested").fetchall()[0][0]
    assert meta["planned_upsert"] == meta["succeeded_upsert"] == expected > 0
    assert meta["status"] == "succeeded" and meta["records_per_second"] > 0
    # the world's deletion requests were carried out first (this sync never sent those people)
    assert meta["channel"] == "crm" and meta["deletion_requests_done"] > 0 and "consent_override" not in meta
    assert _checks(result) == {"guardrail": True, "failed_record_share": True}
    assert len(receiver.state.records["contacts"]) == expected

    again = _materialize(defs, "crm_contacts")  # nothing changed: nothing sent
    assert _meta(again, "crm_contacts").get("planned_upsert", 0) == 0


def test_dry_run_config_sends_nothing(defs, sync_env):
    _, receiver, _ = sync_env
    result = _materialize(defs, "high_intent_audience", dry_run=True)
    assert result.success
    meta = _meta(result, "high_intent_audience")
    assert meta["status"] == "dry_run" and meta["planned_add_member"] > 0
    assert receiver.requests_seen == 0


def test_mass_removal_is_refused_as_a_failed_guardrail_check(defs, sync_env):
    warehouse, _, outbox = sync_env
    first = _materialize(defs, "lead_scores_file")
    assert first.success and _checks(first)["guardrail"]
    lines = sum(1 for f in outbox.rglob("*.jsonl") for _ in f.open())
    assert lines == _meta(first, "lead_scores_file")["succeeded_upsert"]
    with duckdb.connect(str(warehouse)) as con:  # most of the audience withdraws email consent (the contact rule)
        con.execute("update contactable_profiles set is_contactable = false, reason = 'unsubscribed' "
                    "where channel = 'email' and hash(profile_id) % 10 < 8")

    refused = _materialize(defs, "lead_scores_file")
    checks = {e.check_name: e for e in refused.get_asset_check_evaluations()}
    assert not checks["guardrail"].passed
    numbers = {k: v.value for k, v in checks["guardrail"].metadata.items()}
    assert numbers["removes"] > 0.3 * numbers["in_destination"]
    assert _meta(refused, "lead_scores_file")["status"] == "refused"
    assert sum(1 for f in outbox.rglob("*.jsonl") for _ in f.open()) == lines  # nothing sent

    forced = _materialize(defs, "lead_scores_file", force=True)
    assert _meta(forced, "lead_scores_file")["succeeded_delete"] == numbers["removes"]


def test_missing_secret_fails_the_run_naming_the_variable(defs, sync_env, monkeypatch):
    # The secret is a dg.EnvVar of the destination's resource: Dagster refuses the run's
    # config before any step starts, naming the variable.
    monkeypatch.delenv("OUTFLOW_WEBHOOK_SECRET")
    with pytest.raises(dg.DagsterInvalidConfigError, match="OUTFLOW_WEBHOOK_SECRET"):
        _materialize(defs, "crm_contacts")
    assert sync_env[1].requests_seen == 0


def test_secrets_reach_the_sync_asset_only_through_dagster_env_vars(defs):
    for name, config in load_destinations().items():
        resource = defs.resources[destination_resource_key(name)]
        assert set(resource.secrets) == set(secret_env_vars(config))
        # The definitions hold EnvVar references (resolved when a run starts), not values.
        assert all(isinstance(v, dg.EnvVar) and v == k for k, v in resource.secrets.items())


def test_a_sync_runs_after_its_model_is_rebuilt_and_shares_the_duckdb_pool(defs):
    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey(["syncs", "crm_contacts"])
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=dg.AssetSelection.assets(key))
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="profiles"))
    after = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor,
                                              asset_selection=dg.AssetSelection.assets(key))
    assert after.get_num_requested(key) == 1
    quiet = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=after.cursor,
                                              asset_selection=dg.AssetSelection.assets(key))
    assert quiet.get_num_requested(key) == 0  # nothing new upstream: no second request

    from orchestration.dbt_assets import outflow_dbt_assets

    assert defs.resolve_assets_def(key).op.pool == "duckdb"
    assert outflow_dbt_assets.op.pool == "duckdb"
