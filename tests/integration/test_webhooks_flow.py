"""Consent webhooks, received to removed: the drain into raw.consent_events (idempotent),
the Dagster sensor and job, and end to end: a signed unsubscribe over real HTTP, the
drain, a real dbt run, and the next sync runs remove the person from every email
audience (sandboxes on ephemeral ports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from destinations.sandbox.klaviyo import KlaviyoSandbox
from destinations.sandbox.mailchimp import MailchimpSandbox
from destinations.sandbox.webhook_receiver import WebhookReceiver as DestinationReceiver
from orchestration.webhook_assets import WebhooksResource, consent_events, consent_webhook_sensor
from orchestration.webhooks.config import load_config, spool_dir
from orchestration.webhooks.drain import drain
from orchestration.webhooks.events import ConsentEvent
from orchestration.webhooks.receiver import WebhookReceiver, build_tools
from orchestration.webhooks.spool import Spool
from tests.conftest import SESSION_START_DATE, VENV_BIN, dbt, query, run_cmd
from tests.webhook_senders import (
    ENV, config_yaml, klaviyo_body, klaviyo_post, mailchimp_form, mailchimp_post, sendgrid_events, sendgrid_post,
)

pytestmark = pytest.mark.slow

AS_OF = datetime.fromisoformat(SESSION_START_DATE)
AS_OF_UNIX = int((AS_OF - datetime(1970, 1, 1)).total_seconds())
# The demo syncs that reach people by email (dbt_project/models/syncs/_syncs.yml).
EMAIL_SYNCS = ("mailchimp_newsletter", "klaviyo_vip_list", "high_intent_audience", "lead_scores_file")


@pytest.fixture
def inbound(tmp_path):
    """A receiver on an ephemeral port with its own config and spool."""
    path = tmp_path / "webhooks.yml"
    path.write_text(config_yaml("spool"))
    config, where = load_config(path)
    with WebhookReceiver(build_tools(config, where, ENV), Spool(spool_dir(config, where))) as receiver:
        yield receiver, path


def consent_rows(warehouse: Path, like: str) -> int:
    return query(warehouse, f"select count(*) from raw.consent_events where source like '{like}'")[0][0]


def test_drain_appends_once_per_event_to_generator_tables(warehouse_copy, inbound):
    receiver, _ = inbound
    before = query(warehouse_copy, "select count(*) from raw.consent_events")[0][0]
    events = sendgrid_events("someone@example.com", sg_event_id="sg-a", at=AS_OF_UNIX)
    assert sendgrid_post(receiver.url, events).status_code == 200
    assert sendgrid_post(receiver.url, events).status_code == 200  # replayed inside the window
    assert klaviyo_post(receiver.url, klaviyo_body("other@example.com", "event:klaviyo.marked_email_as_spam",
                                                   external_id="kl-a")).status_code == 200
    assert mailchimp_post(receiver.url, mailchimp_form("third@example.com", "cleaned", reason="hard")).status_code == 200

    first = drain(receiver.spool, warehouse_copy)
    assert (first.events, first.inserted, first.duplicates) == (4, 3, 1)
    # the same event again, after it was loaded: nothing changes
    assert sendgrid_post(receiver.url, events).status_code == 200
    second = drain(receiver.spool, warehouse_copy)
    assert (second.events, second.inserted, second.duplicates) == (1, 0, 1)
    assert drain(receiver.spool, warehouse_copy).batches == 0

    assert query(warehouse_copy, "select count(*) from raw.consent_events")[0][0] == before + 3
    row = query(warehouse_copy, "select email, phone, channel, status, occurred_at from raw.consent_events "
                                "where source = 'sendgrid_unsubscribe'")
    assert row == [("someone@example.com", None, "email", "revoked", AS_OF)]
    assert consent_rows(warehouse_copy, "klaviyo_spam_report") == 1
    assert consent_rows(warehouse_copy, "mailchimp_cleaned_bounce") == 1
    ledger = query(warehouse_copy, 'select tool, kind from "outflow".outflow.webhook_events order by tool')
    assert ledger == [("klaviyo", "spam_report"), ("mailchimp", "bounce"), ("sendgrid", "unsubscribe")]
    assert "someone@example.com" not in json.dumps(
        query(warehouse_copy, 'select * from "outflow".outflow.webhook_events'), default=str)
    assert not list(receiver.spool.folder.glob("*.jsonl"))  # raw emails gone from disk once loaded


def test_drain_creates_what_an_empty_warehouse_lacks_and_retries_a_failed_batch(tmp_path):
    spool = Spool(tmp_path / "spool")
    spool.append([ConsentEvent("e1", "sendgrid", "bounce", "sendgrid_bounce", "x@example.com", AS_OF)])
    (tmp_path / "spool" / "incoming.jsonl").open("a").write('{"torn": ')  # a crash mid-append
    warehouse = tmp_path / "empty.duckdb"
    holder = subprocess.Popen(  # another process holds DuckDB's writer lock: the drain fails
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); "
                               "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(duckdb.Error):
            drain(spool, warehouse)
    finally:
        holder.kill()
        holder.wait()
    assert spool.pending().files == 1  # the claimed batch waits for the next drain
    result = drain(spool, warehouse)
    assert (result.inserted, result.unreadable_lines) == (1, 1)
    assert query(warehouse, "select email, source from raw.consent_events") == [("x@example.com", "sendgrid_bounce")]


def test_the_sensor_asks_for_a_drain_only_when_events_wait(tmp_path, inbound, monkeypatch):
    receiver, config_path = inbound
    resources = {"webhooks": WebhooksResource(config_path=str(config_path))}
    empty = consent_webhook_sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(empty, dg.SkipReason)

    assert sendgrid_post(receiver.url, sendgrid_events("s@example.com", sg_event_id="x1")).status_code == 200
    request = consent_webhook_sensor(dg.build_sensor_context(resources=resources))
    assert isinstance(request, dg.RunRequest)
    again = consent_webhook_sensor(dg.build_sensor_context(resources=resources))
    assert again.run_key == request.run_key  # unchanged spool: no second run
    assert sendgrid_post(receiver.url, sendgrid_events("t@example.com", sg_event_id="x2")).status_code == 200
    assert consent_webhook_sensor(dg.build_sensor_context(resources=resources)).run_key != request.run_key

    # what the run materialises first: the drain asset, in Dagster
    warehouse = tmp_path / "w.duckdb"
    monkeypatch.setenv("OUTFLOW_WAREHOUSE", str(warehouse))
    result = dg.materialize([consent_events], resources=resources, instance=dg.DagsterInstance.ephemeral())
    assert result.success
    meta = result.asset_materializations_for_node("raw__consent_events")[0].metadata
    assert meta["inserted"].value == 2
    assert isinstance(consent_webhook_sensor(dg.build_sensor_context(resources=resources)), dg.SkipReason)


def test_the_drain_job_rebuilds_what_reads_consent():
    from orchestration.definitions import defs

    job = defs.resolve_job_def("drain_consent_webhooks")
    keys = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"raw/consent_events", "stg_consent__events", "consent", "profiles"} <= keys
    assert not any(k.startswith("syncs/") for k in keys)  # syncs follow their own triggers
    assert "raw/consent_events" in {
        k.to_user_string() for k in defs.resolve_asset_graph().get(dg.AssetKey("stg_consent__events")).parent_keys}
    assert defs.resolve_sensor_def("consent_webhook_sensor").job_name == "drain_consent_webhooks"


# ---- end to end

@pytest.fixture
def email_audiences(tmp_path):
    """The email tools' sandboxes on ephemeral ports and a destinations.yml pointing at them."""
    creds = {"OUTFLOW_WEBHOOK_SECRET": "e2e-webhook-secret", "OUTFLOW_MAILCHIMP_API_KEY": "e2e0key-us19",
             "OUTFLOW_KLAVIYO_API_KEY": "pk_e2e_key"}
    crm = DestinationReceiver(creds["OUTFLOW_WEBHOOK_SECRET"])
    mailchimp = MailchimpSandbox(api_key=creds["OUTFLOW_MAILCHIMP_API_KEY"], lists={"list0001": ["seg1"]})
    klaviyo = KlaviyoSandbox(creds["OUTFLOW_KLAVIYO_API_KEY"], lists=("Y6nRLr",))
    for sandbox in (crm, mailchimp, klaviyo):
        sandbox.start()
    config = tmp_path / "destinations.yml"
    config.write_text(
        f"outbox:\n  type: file\n  folder: {tmp_path / 'outbox'}\n"
        f"webhook_sandbox:\n  type: webhook\n  url: {crm.url}\n  secret_env: OUTFLOW_WEBHOOK_SECRET\n"
        f"mailchimp_sandbox:\n  type: mailchimp\n  api_key_env: OUTFLOW_MAILCHIMP_API_KEY\n"
        f"  base_url: {mailchimp.api_url}\n  list_id: list0001\n"
        f"klaviyo_sandbox:\n  type: klaviyo\n  api_key_env: OUTFLOW_KLAVIYO_API_KEY\n  base_url: {klaviyo.url}\n"
        f"  poll_interval: 0.01\n"
    )
    env = {"OUTFLOW_DESTINATIONS": str(config), **creds}
    try:
        yield env, crm, mailchimp, klaviyo, tmp_path / "outbox"
    finally:
        for sandbox in (crm, mailchimp, klaviyo):
            sandbox.stop()


def audiences_of(person: tuple[str, str], crm, mailchimp, klaviyo, outbox: Path) -> set[str]:
    """Which email audiences hold the person, read from each destination itself."""
    profile_id, email = person
    held = set()
    if email in {e.lower() for e in mailchimp.segment_emails("list0001", "seg1")}:
        held.add("mailchimp_newsletter")
    if email in {(e or "").lower() for e in klaviyo.member_emails("Y6nRLr")}:
        held.add("klaviyo_vip_list")
    if profile_id in crm.state.members.get("high_intent_leads", set()):
        held.add("high_intent_audience")
    lines = [json.loads(line) for f in sorted((outbox / "lead_scores_file").glob("*.jsonl"), key=lambda p: p.name)
             for line in f.read_text().splitlines()]
    mine = [line["operation"] for line in lines if line["key"] == profile_id]
    if mine and mine[-1] != "delete":
        held.add("lead_scores_file")
    return held


def test_a_signed_unsubscribe_removes_the_person_from_every_email_audience(
        warehouse_copy, inbound, email_audiences, tmp_path):
    receiver, _ = inbound
    env, crm, mailchimp, klaviyo, outbox = email_audiences

    def outflow(*args: str):
        return run_cmd([str(VENV_BIN / "outflow"), *args], warehouse_copy, **env)

    # The person in the most email audiences; a control person stays in the newsletter.
    person, control = query(warehouse_copy, """
        select profile_id, email from profiles
        where consent_email = 'granted' and email is not null and not is_deletion_requested
          and email in (select email from profiles group by email having count(*) = 1)
        order by (lead_grade in ('A', 'B'))::int + (r_score + f_score + m_score >= 13)::int desc, profile_id
        limit 2""")
    for sync in EMAIL_SYNCS:
        outflow("run", sync)
    before = audiences_of(person, crm, mailchimp, klaviyo, outbox)
    assert {"mailchimp_newsletter", "lead_scores_file"} <= before and len(before) >= 3, before
    assert "mailchimp_newsletter" in audiences_of(control, crm, mailchimp, klaviyo, outbox)

    # SendGrid posts the signed unsubscribe (as the tool would: mixed case, twice)
    events = sendgrid_events(person[1].upper(), "unsubscribe", sg_event_id="e2e-unsub", at=AS_OF_UNIX)
    assert sendgrid_post(receiver.url, events).status_code == 200
    assert sendgrid_post(receiver.url, events).status_code == 200

    drained = drain(receiver.spool, warehouse_copy)
    assert (drained.inserted, drained.duplicates) == (1, 1)
    dbt(["run", "--select", "stg_consent__events+", "--vars", f"{{outflow_as_of: '{SESSION_START_DATE}'}}"],
        warehouse_copy, tmp_path / "target")
    consent = query(warehouse_copy, f"select status, reason from consent where profile_id = '{person[0]}' "
                                    "and channel = 'email'")
    assert consent == [("revoked", "unsubscribed")]

    for sync in EMAIL_SYNCS:
        outflow("run", sync)
    assert audiences_of(person, crm, mailchimp, klaviyo, outbox) == set()
    assert "mailchimp_newsletter" in audiences_of(control, crm, mailchimp, klaviyo, outbox)
    removed = query(warehouse_copy, f"""
        select sync, status from "outflow".outflow.sync_changelog
        where record_key = '{person[0]}' and operation in ('remove_member', 'delete') order by sync""")
    assert {sync for sync, _ in removed} == before and {status for _, status in removed} == {"ok"}, removed


def test_the_cli_serves_and_drains(tmp_path):
    """`outflow webhooks serve` on a free port, then `outflow webhooks drain --json`."""
    config = tmp_path / "webhooks.yml"
    config.write_text(config_yaml("spool"))
    warehouse = tmp_path / "w.duckdb"
    env = {**os.environ, **ENV, "OUTFLOW_WEBHOOKS": str(config), "OUTFLOW_WAREHOUSE": str(warehouse)}
    serve = subprocess.Popen([str(VENV_BIN / "outflow"), "webhooks", "serve", "--port", "0", "--seconds", "20"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = serve.stdout.readline()
        url = first.split("POST ", 1)[1].split("/webhooks/", 1)[0]
        assert sendgrid_post(url, sendgrid_events("cli@example.com", sg_event_id="cli-1")).status_code == 200
        assert klaviyo_post(url, klaviyo_body("cli@example.com"), secret="wrong").status_code == 403
    finally:
        serve.terminate()  # the process this test started, by its handle
        out, err = serve.communicate(timeout=20)
    counters = json.loads(out.strip().splitlines()[-1])
    assert counters["accepted"] == {"sendgrid": 1} and counters["refused"] == {"klaviyo/bad_signature": 1}
    for secret in (*ENV.values(), "cli@example.com"):
        assert secret not in first + out + err

    drained = run_cmd([str(VENV_BIN / "outflow"), "webhooks", "drain", "--json"], warehouse,
                      OUTFLOW_WEBHOOKS=str(config))
    assert json.loads(drained.stdout)["inserted"] == 1
    missing = run_cmd([str(VENV_BIN / "outflow"), "webhooks", "serve", "--port", "0", "--seconds", "1"],
                      warehouse, check=False, OUTFLOW_WEBHOOKS=str(config))
    assert missing.returncode == 2 and "OUTFLOW_MAILCHIMP_WEBHOOK_SECRET is not set" in missing.stderr
