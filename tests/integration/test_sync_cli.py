"""The sync commands as a script sees them: output, JSON and exit codes."""

from __future__ import annotations

import json

import duckdb
import pytest

from destinations.sandbox.webhook_receiver import WebhookReceiver
from tests.conftest import VENV_BIN, run_cmd

pytestmark = pytest.mark.slow

SECRET = "cli-test-secret"


@pytest.fixture
def cli(warehouse_copy, tmp_path):
    receiver = WebhookReceiver(SECRET)
    url = receiver.start()
    config = tmp_path / "destinations.yml"
    config.write_text(
        f"outbox:\n  type: file\n  folder: {tmp_path / 'outbox'}\n"
        f"webhook_sandbox:\n  type: webhook\n  url: {url}\n  secret_env: OUTFLOW_WEBHOOK_SECRET\n"
    )
    env = {"OUTFLOW_DESTINATIONS": str(config), "OUTFLOW_WEBHOOK_SECRET": SECRET}

    def outflow(*args: str, expect: int = 0):
        proc = run_cmd([str(VENV_BIN / "outflow"), *args], warehouse_copy, check=False, **env)
        assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        return proc

    yield outflow, warehouse_copy, receiver
    receiver.stop()


def test_syncs_lists_every_declared_sync(cli):
    outflow, _, _ = cli
    out = outflow("syncs").stdout
    for name in ("crm_contacts", "high_intent_audience", "lead_scores_file"):
        assert name in out


def test_plan_json_then_run_then_status(cli):
    outflow, warehouse, receiver = cli
    plan = json.loads(outflow("plan", "high_intent_audience", "--json").stdout)
    assert plan["status"] == "dry_run" and plan["planned"]["add_member"] > 0
    assert receiver.requests_seen == 0

    run = json.loads(outflow("run", "high_intent_audience", "--json").stdout)
    assert run["status"] == "succeeded"
    assert run["succeeded"]["add_member"] == plan["planned"]["add_member"]
    assert len(receiver.state.members["high_intent_leads"]) == plan["planned"]["add_member"]

    status = json.loads(outflow("status", "high_intent_audience", "--json").stdout)
    assert [r["status"] for r in status["runs"]] == ["succeeded", "dry_run"]
    assert status["failures"] == []


def test_unknown_sync_is_a_one_line_usage_error(cli):
    outflow, _, _ = cli
    proc = outflow("run", "nope", expect=2)
    assert proc.stderr.strip().count("\n") == 0
    assert "no sync named 'nope'" in proc.stderr and "crm_contacts" in proc.stderr


def test_refused_run_exits_3_and_partial_run_exits_4(cli):
    outflow, warehouse, _ = cli
    outflow("run", "lead_scores_file")
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update contactable_profiles set is_contactable = false where channel = 'email'")
    proc = outflow("run", "lead_scores_file", expect=3)
    assert "remov" in proc.stdout  # the refusal says how many removals, of how many

    with duckdb.connect(str(warehouse)) as con:  # an email the CRM refuses: rejected, run partial
        con.execute("update profiles set email = 'not-an-email' where profile_id = "
                    "(select min(profile_id) from profiles where not is_deletion_requested)")
    run = json.loads(outflow("run", "crm_contacts", "--json", expect=4).stdout)
    assert run["status"] == "partial" and run["rejected"]["upsert"] == 1
    status = json.loads(outflow("status", "crm_contacts", "--json").stdout)
    assert status["failures"][0]["status"] == "rejected" and "invalid_email" in status["failures"][0]["reason"]
    assert "not-an-email" not in json.dumps(status)
