"""The Dagster code location: loads, has the right graph, and materialises dbt."""

from __future__ import annotations

import os
import subprocess

import dagster as dg
import pytest

from tests.conftest import REPO_ROOT, VENV_BIN, query

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def defs():
    from orchestration.definitions import defs

    return defs


def test_definitions_load(defs):
    dg.Definitions.validate_loadable(defs)


def test_dagster_cli_validates_the_workspace(tmp_path):
    proc = subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, capture_output=True, text=True,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_code_location_loads_as_dagster_dev_loads_it_without_an_activated_venv(tmp_path):
    """`dagster dev` re-parses the dbt project on load; it must find the venv's dbt even
    when the venv's bin is not on PATH (as under `make dev`)."""
    env = {"HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path), "DAGSTER_IS_DEV_CLI": "1",
           "PATH": "/usr/bin:/bin", "DBT_TARGET_PATH": str(tmp_path / "target")}
    proc = subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tmp_path / "target" / "manifest.json").exists()


def test_asset_graph_groups_layers(defs):
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["raw/crm_contacts"] == "raw"
    assert groups["stg_crm__contacts"] == "staging"
    assert groups["int_contacts__resolved"] == "intermediate"
    for mart in ("identity_map", "profiles", "consent", "lead_scores", "segment_memberships"):
        assert groups[mart] == "marts", mart
    # staging reads the raw sources
    deps = {k.to_user_string() for k in graph.get(dg.AssetKey("stg_crm__contacts")).parent_keys}
    assert "raw/crm_contacts" in deps


def test_dbt_tests_are_asset_checks(defs):
    checks = {key.asset_key.to_user_string() for key in defs.resolve_asset_graph().asset_check_keys}
    assert {"identity_map", "profiles", "consent"} <= checks


def test_daily_schedule_targets_the_dbt_build(defs):
    schedule = defs.resolve_schedule_def("daily_dbt_build")
    assert schedule.cron_schedule == "0 5 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    result = schedule.evaluate_tick(dg.build_schedule_context())
    assert result.run_requests and len(result.run_requests) == 1


def test_materialising_dbt_assets_builds_the_marts(defs, warehouse_copy, monkeypatch, tmp_path):
    monkeypatch.setenv("OUTFLOW_WAREHOUSE", str(warehouse_copy))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    from orchestration.dbt_assets import dbt_resource, outflow_dbt_assets

    result = dg.materialize(
        [outflow_dbt_assets],
        resources={"dbt": dbt_resource()},
        instance=dg.DagsterInstance.ephemeral(),
        selection="*identity_map",
    )
    assert result.success
    materialised = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"stg_crm__contacts", "int_contacts__resolved", "identity_map"} <= materialised
    evaluations = result.get_asset_check_evaluations()
    assert evaluations and all(e.passed for e in evaluations)
    assert query(warehouse_copy, "select count(*) from identity_map")[0][0] > 0
