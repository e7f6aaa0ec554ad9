"""Consent and deletion requests end to end: raw signals -> real dbt run -> the declared
syncs against every tool's sandbox (ephemeral ports) -> the person leaves the tool.

The built world's "now" is 2026-01-01; new signals land just before it."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from destinations.identifiers import normalise_email, sha256_hex
from destinations.meta import hashed_row
from destinations.registry import build_destination
from orchestration.sync.apply import run_sync
from orchestration.sync.state import key_hash
from orchestration.syncs import declared_syncs
from tests.conftest import SESSION_START_DATE, VENV_BIN, dbt, query, run_cmd
from tests.integration.sandboxes import running_sandboxes

pytestmark = pytest.mark.slow

SIGNAL_AT = "2025-12-31 12:00:00"  # before the world's as-of, after every generated grant
AUDIENCE = {"mailchimp": ("list0001", "seg1"), "klaviyo": "Y6nRLr", "meta": "23850000000000001",
            "google_ads": "5550001"}


@pytest.fixture
def world(warehouse_copy, tmp_path, monkeypatch):
    """(warehouse, sandboxes, run(sync, **kw) -> RunReport, rebuild(*selectors))."""
    with running_sandboxes(tmp_path, settings={"klaviyo_sandbox": {"deletion_requests_per_second": 200.0}}) as sb:
        for var, value in sb.env.items():
            monkeypatch.setenv(var, value)
        specs = {s.name: s for s in declared_syncs(warehouse=warehouse_copy)[0]}

        def run(name: str, **kw):
            destination = build_destination(specs[name].destination)
            try:
                return run_sync(specs[name], destination, warehouse_copy, **kw)
            finally:
                destination.close()

        def rebuild(*selectors: str) -> None:
            dbt(["run", "-s", *selectors, "--vars", f"{{outflow_as_of: '{SESSION_START_DATE}'}}"],
                warehouse_copy, tmp_path / "target")

        yield warehouse_copy, sb, specs, run, rebuild


def execute(warehouse: Path, sql: str, params: list | None = None) -> None:
    with duckdb.connect(str(warehouse)) as con:
        con.execute(sql, params or [])


def in_tool(warehouse: Path, sync: str) -> set[str]:
    return {k for (k,) in query(warehouse, f"SELECT record_key FROM outflow.outflow.sync_state WHERE sync = '{sync}' "
                                           "AND status = 'synced'")}


def email_of(warehouse: Path, profile_id: str) -> str:
    return query(warehouse, f"SELECT email FROM main.profiles WHERE profile_id = '{profile_id}'")[0][0]


# ----------------------------------------------------------------- consent, per channel

# sync -> (channel, how the person withdraws)
WITHDRAWALS = {
    "mailchimp_newsletter": ("email", "unsubscribe"),  # an ESP unsubscribe after the grant
    "klaviyo_vip_list": ("email", "bounce"),  # a hard bounce (nothing delivered since)
    "high_intent_audience": ("email", "spam_report"),
    "sms_high_intent": ("sms", "consent_event"),  # a revoke from the preference centre
    "meta_customers_audience": ("ads", "consent_event"),
    "google_ads_high_intent": ("ads", "consent_event"),
}


def test_a_withdrawn_consent_removes_the_person_from_every_audience_of_its_channel(world):
    warehouse, sb, specs, run, rebuild = world
    for name in WITHDRAWALS:
        assert run(name).status == "succeeded", name
    chosen: dict[str, str] = {}  # sync -> profile withdrawn there
    taken: set[str] = set()
    for name in WITHDRAWALS:
        members = sorted(in_tool(warehouse, name) - taken)
        assert members, f"{name} has nobody in the tool to withdraw"
        chosen[name] = members[0]
        taken.add(members[0])
    before = {name: in_tool(warehouse, name) for name in WITHDRAWALS}
    emails = {name: email_of(warehouse, pid) for name, pid in chosen.items()}

    for name, (channel, how) in WITHDRAWALS.items():
        if how == "consent_event":
            execute(warehouse, "INSERT INTO raw.consent_events VALUES (?, NULL, ?, 'revoked', 'preference_center', ?)",
                    [emails[name].upper(), channel, SIGNAL_AT])  # dirty case: staging normalises it
        else:
            execute(warehouse, "INSERT INTO raw.email_events VALUES (?, ?, 'cmp-test', ?, ?)",
                    [f"ee-test-{name}", emails[name], how, SIGNAL_AT])
    rebuild("stg_consent__events+", "stg_esp__email_events+")
    reasons = dict(query(warehouse, "SELECT profile_id || '/' || channel, reason FROM main.contactable_profiles "
                                    f"WHERE profile_id IN ({', '.join(repr(p) for p in taken)})"))
    expected_reason = {"unsubscribe": "unsubscribed", "bounce": "bounced", "spam_report": "spam_report",
                       "consent_event": "manual"}
    for name, (channel, how) in WITHDRAWALS.items():
        assert reasons[f"{chosen[name]}/{channel}"] == expected_reason[how], name

    withdrawn = {channel: {chosen[n] for n, (c, _) in WITHDRAWALS.items() if c == channel} for channel in
                 ("email", "sms", "ads")}
    for name, (channel, _) in WITHDRAWALS.items():
        report = run(name)
        assert report.status == "succeeded", (name, report.error)
        gone = before[name] - in_tool(warehouse, name)
        # everyone withdrawn on this channel who was there left; nobody else did (a withdrawn
        # person's lead score may move too, which can only take more of them out)
        assert withdrawn[channel] & before[name] <= gone <= taken, name
        assert report.actions.get("add", 0) == 0, name

    # ... and the tools no longer hold them
    receiver = sb["webhook"].state
    assert chosen["high_intent_audience"] not in receiver.members["high_intent_leads"]
    assert chosen["sms_high_intent"] not in receiver.members["sms_high_intent"]
    list_id, segment = AUDIENCE["mailchimp"]
    assert emails["mailchimp_newsletter"].lower() not in {e.lower() for e in sb["mailchimp"].segment_emails(list_id, segment)}
    assert emails["klaviyo_vip_list"].lower() not in {e.lower() for e in sb["klaviyo"].member_emails(AUDIENCE["klaviyo"])}
    assert hashed_row({"email": emails["meta_customers_audience"]})["EMAIL"] not in sb["meta"].member_hashes(AUDIENCE["meta"])
    assert sha256_hex(normalise_email(emails["google_ads_high_intent"])) not in sb["google_ads"].hashed_emails(
        AUDIENCE["google_ads"])


def test_consent_is_enforced_by_the_engine_not_the_where(world):
    """The demo syncs carry no consent filter of their own: what they read is exactly the
    contactable profiles of their channel."""
    warehouse, _, specs, run, _ = world
    for name in ("mailchimp_newsletter", "meta_customers_audience", "sms_high_intent"):
        assert "consent" not in (specs[name].where or "")
        run(name)
        channel = specs[name].channel.value
        leaked = query(warehouse, f"""SELECT count(*) FROM outflow.outflow.sync_state s
            JOIN main.contactable_profiles c ON c.profile_id = s.record_key AND c.channel = '{channel}'
            WHERE s.sync = '{name}' AND s.status = 'synced' AND NOT c.is_contactable""")[0][0]
        assert leaked == 0, name
        assert in_tool(warehouse, name), name


# ----------------------------------------------------------------- deletion requests

ALL_SYNCS = ("crm_contacts", "hubspot_contacts", "salesforce_contacts", "high_intent_audience", "lead_scores_file",
             "mailchimp_newsletter", "klaviyo_vip_list", "meta_customers_audience", "google_ads_high_intent",
             "sms_high_intent")


def test_a_deletion_request_erases_the_person_in_every_tool_for_good(world, tmp_path):
    warehouse, sb, specs, run, rebuild = world
    assert set(ALL_SYNCS) == set(specs)
    for name in ALL_SYNCS:
        assert run(name).status == "succeeded", name
    # the person held by the most syncs (the crm ones hold everyone with an email)
    (pid, n_syncs), = query(warehouse, """SELECT record_key, count(*) FROM outflow.outflow.sync_state
        WHERE status = 'synced' GROUP BY record_key ORDER BY count(*) DESC, record_key LIMIT 1""")
    assert n_syncs >= 5
    held_by = {name for name in ALL_SYNCS if pid in in_tool(warehouse, name)}
    email = email_of(warehouse, pid)
    assert sb["hubspot"].contact_by_email(email) and sb["salesforce"].by_external_id(pid)

    execute(warehouse, "INSERT INTO raw.deletion_requests VALUES (?, ?)", [f"  {email.upper()} ", SIGNAL_AT])
    rebuild("stg_consent__deletion_requests+")
    (request_id,) = [r for (r,) in query(warehouse, f"SELECT request_id FROM main.deletion_requests "
                                                    f"WHERE profile_id = '{pid}'")]
    for name in ALL_SYNCS:
        report = run(name)
        assert report.status == "succeeded", (name, report.error)
        assert report.deletions.get("done", 0) >= 1 and not report.deletions.get("failed"), name

    # the tools that erase a person did; the others lost this person from every list
    assert sb["hubspot"].contact_by_email(email) is None
    assert sb["salesforce"].by_external_id(pid) is None
    assert sb["mailchimp"].member(AUDIENCE["mailchimp"][0], email) is None
    assert sb["klaviyo"].profile_by_email(email) is None
    receiver = sb["webhook"].state
    assert pid not in receiver.records.get("contacts", {})
    assert all(pid not in members for members in receiver.members.values())
    assert hashed_row({"email": email})["EMAIL"] not in sb["meta"].member_hashes(AUDIENCE["meta"])
    assert sha256_hex(normalise_email(email)) not in sb["google_ads"].hashed_emails(AUDIENCE["google_ads"])
    if "lead_scores_file" in held_by:
        lines = [json.loads(line) for f in sorted((tmp_path / "outbox").rglob("*.jsonl")) for line in f.open()]
        assert [r["operation"] for r in lines if r["key"] == pid][-1] == "delete"

    # the warehouse says so: per sync, how and when
    log = {sync: (method, status, done_at) for sync, method, status, done_at in query(
        warehouse, f"SELECT sync, method, status, done_at FROM outflow.outflow.deletion_log "
                   f"WHERE request_id = '{request_id}'")}
    assert set(log) == set(ALL_SYNCS) and all(s == "done" and at for _, s, at in log.values())
    for name in ("hubspot_contacts", "salesforce_contacts", "mailchimp_newsletter", "klaviyo_vip_list"):
        assert log[name][0] == "delete_person", name
    for name in set(ALL_SYNCS) - {"hubspot_contacts", "salesforce_contacts", "mailchimp_newsletter",
                                  "klaviyo_vip_list"}:
        assert log[name][0] == ("remove" if name in held_by else "none"), name
    proc = run_cmd([str(VENV_BIN / "outflow"), "privacy", "report", "--json"], warehouse)
    (entry,) = [r for r in json.loads(proc.stdout)["requests"] if r["request_id"] == request_id]
    assert entry["status"] == "done" and {d["sync"] for d in entry["destinations"]} == set(ALL_SYNCS)
    assert email.lower() not in proc.stdout.lower()
    table = run_cmd([str(VENV_BIN / "outflow"), "privacy", "report"], warehouse).stdout
    assert request_id[:12] in table and "delete_person" in table

    # audit: every deletion operation is in the changelog, by key hash, without the email
    ops = query(warehouse, f"SELECT sync, operation, status, key_hash FROM outflow.outflow.sync_changelog "
                           f"WHERE action = 'deletion' AND record_key = '{pid}'")
    assert {s for s, *_ in ops} == {n for n in ALL_SYNCS if log[n][0] != "none"}
    assert all(st == "ok" and kh == key_hash(pid) for _, _, st, kh in ops)
    dump = " ".join(str(v) for row in query(warehouse, "SELECT * FROM outflow.outflow.sync_changelog") for v in row)
    assert email.lower() not in dump.lower()

    # never again: not on a full resync, not even once the request is gone from raw
    assert run("hubspot_contacts", full_resync=True).status == "succeeded"
    assert sb["hubspot"].contact_by_email(email) is None
    execute(warehouse, "DELETE FROM raw.deletion_requests WHERE lower(trim(email)) = ?", [email.lower()])
    rebuild("stg_consent__deletion_requests+")
    assert query(warehouse, f"SELECT is_contactable FROM main.contactable_profiles "
                            f"WHERE profile_id = '{pid}' AND channel = 'crm'") == [(True,)]
    for name in ("crm_contacts", "salesforce_contacts"):
        assert run(name, full_resync=True).status == "succeeded"
    assert pid not in sb["webhook"].state.records.get("contacts", {})
    assert sb["salesforce"].by_external_id(pid) is None
