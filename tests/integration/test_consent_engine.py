"""The engine's side of consent on a synthetic model (real DuckDB, scripted destination):
the contact rule joined on the profile key, the override, non-profile-keyed models,
deletion outcomes that fail or wait, and a clear refusal without the rule tables."""

from __future__ import annotations

import json

import duckdb
import pytest

from destinations.base import Operation
from orchestration.sync.apply import run_sync
from orchestration.sync.spec import SyncSpec
from tests.conftest import VENV_BIN, run_cmd
from tests.integration.sync_fakes import FakeDestination

PEOPLE = [(f"p{i}", f"person{i}@example.com") for i in range(6)]
# p0-p2 may be emailed; p3 never granted; p4 unsubscribed; p5 asked to be deleted
RULE = [("p0", True, "opted_in", False), ("p1", True, "opted_in", False), ("p2", True, "opted_in", False),
        ("p3", False, "never_granted", False), ("p4", False, "unsubscribed", False),
        ("p5", False, "deletion_requested", True)]


@pytest.fixture
def wh(tmp_path):
    w = tmp_path / "outflow.duckdb"
    with duckdb.connect(str(w)) as con:
        con.execute("CREATE TABLE main.people (profile_id VARCHAR, email VARCHAR)")
        con.executemany("INSERT INTO main.people VALUES (?, ?)", PEOPLE)
        con.execute("CREATE TABLE main.orders (order_id VARCHAR, buyer VARCHAR, total INTEGER)")
        con.executemany("INSERT INTO main.orders VALUES (?, ?, ?)",
                        [(f"o{i}", p, i) for i, (p, _) in enumerate(PEOPLE)])
        con.execute("CREATE TABLE main.contactable_profiles (profile_id VARCHAR, channel VARCHAR, "
                    "is_contactable BOOLEAN, reason VARCHAR, is_deletion_requested BOOLEAN)")
        con.executemany("INSERT INTO main.contactable_profiles VALUES (?, 'email', ?, ?, ?)", RULE)
        con.execute("CREATE TABLE main.deletion_requests (request_id VARCHAR, email VARCHAR, profile_id VARCHAR, "
                    "requested_at TIMESTAMP)")
    return w


def spec(**kw) -> SyncSpec:
    base = dict(name="newsletter", model="people", model_table="people", destination="fake", object="list",
                mode="membership", channel="email", primary_key="profile_id", match_on={"email": "email"},
                guardrails={"max_remove_share": 1.0})
    return SyncSpec(**{**base, **kw})


def sql(wh, statement: str, params=None):
    with duckdb.connect(str(wh)) as con:
        return con.execute(statement, params or []).fetchall()


def test_only_contactable_profiles_are_sent_and_a_revoke_removes(wh):
    dest = FakeDestination()
    report = run_sync(spec(), dest, wh)
    assert set(dest.members) == {"p0", "p1", "p2"} and report.model_rows == 3
    sql(wh, "UPDATE main.contactable_profiles SET is_contactable = false, reason = 'unsubscribed' "
            "WHERE profile_id = 'p1'")
    again = run_sync(spec(), dest, wh)
    assert again.actions == {"remove": 1} and set(dest.members) == {"p0", "p2"}
    # audit: every operation is in the changelog with run, operation, result and the key's hash
    assert sql(wh, "SELECT operation, status, count(*), count(DISTINCT run_id) FROM outflow.outflow.sync_changelog "
                   "GROUP BY ALL ORDER BY ALL") == [("add_member", "ok", 3, 1), ("remove_member", "ok", 1, 1)]
    assert sql(wh, "SELECT count(*) FROM outflow.outflow.sync_changelog "
                   "WHERE key_hash IS DISTINCT FROM sha256(record_key)") == [(0,)]
    # a channel the rule has no row for lets nobody through
    assert run_sync(spec(name="texts", channel="sms", guardrails={"allow_empty_model": True}),
                    FakeDestination(), wh).model_rows == 0


def test_override_lifts_consent_but_never_a_deletion_request_and_is_recorded(wh):
    dest = FakeDestination()
    reason = "service notices under contract, not marketing"
    report = run_sync(spec(consent_override={"reason": reason}), dest, wh)
    assert set(dest.members) == {"p0", "p1", "p2", "p3", "p4"}  # p5 asked to be deleted
    assert report.consent_override == reason and report.channel == "email"
    assert sql(wh, "SELECT channel, consent_override FROM outflow.outflow.sync_runs") == [("email", reason)]


def test_a_model_keyed_otherwise_is_filtered_through_its_profile_key(wh):
    dest = FakeDestination()
    s = spec(name="orders", model="orders", model_table="orders", primary_key="order_id", profile_key="buyer",
             mode="mirror", match_on={}, fields={"total": "total"})
    run_sync(s, dest, wh)
    assert set(dest.records) == {"o0", "o1", "o2"}


def test_deleted_profiles_stay_out_even_when_the_rule_forgets_them(wh):
    sql(wh, "INSERT INTO main.deletion_requests VALUES ('r1', 'person0@example.com', 'p0', '2025-12-01')")
    dest = FakeDestination()
    run_sync(spec(), dest, wh)
    assert set(dest.members) == {"p1", "p2"}
    sql(wh, "DELETE FROM main.deletion_requests")  # e.g. raw data rebuilt without it
    run_sync(spec(), dest, wh, full_resync=True)
    assert set(dest.members) == {"p1", "p2"}
    assert sql(wh, "SELECT profile_id FROM outflow.outflow.deleted_profiles") == [("p0",)]


def test_a_deletion_that_cannot_be_carried_out_is_failed_with_its_reason_and_retried(wh):
    dest = FakeDestination(operations={Operation.UPSERT})  # neither DELETE_PERSON nor any removal
    s = spec(name="crm", mode="upsert", channel="crm", fields={"e": "email"})
    sql(wh, "INSERT INTO main.contactable_profiles SELECT profile_id, 'crm', NOT is_deletion_requested, reason, "
            "is_deletion_requested FROM main.contactable_profiles")
    run_sync(s, dest, wh)
    assert "p1" in dest.records
    sql(wh, "UPDATE main.contactable_profiles SET is_contactable = false, is_deletion_requested = true "
            "WHERE profile_id = 'p1'")
    sql(wh, "INSERT INTO main.deletion_requests VALUES ('r1', 'person1@example.com', 'p1', '2025-12-01')")
    report = run_sync(s, dest, wh)
    assert report.deletions == {"failed": 1}
    (status, method, reason, attempts), = sql(wh, "SELECT status, method, reason, attempts FROM "
                                                  "outflow.outflow.deletion_log WHERE request_id = 'r1'")
    assert (status, method, attempts) == ("failed", "remove", 1) and "remove the person in the tool by hand" in reason
    assert run_sync(s, dest, wh).deletions == {"failed": 1}  # asked again on every run
    assert sql(wh, "SELECT attempts FROM outflow.outflow.deletion_log")[0][0] == 2


def test_a_retryable_deletion_is_pending_then_done(wh):
    dest = FakeDestination()
    run_sync(spec(), dest, wh)
    sql(wh, "INSERT INTO main.deletion_requests VALUES ('r2', 'person2@example.com', 'p2', '2025-12-01')")
    dry = run_sync(spec(), None, wh, dry_run=True)  # a plan counts open requests, sends nothing
    assert dry.deletions == {"open": 1} and "p2" in dest.members
    dest.fail_times["p2"] = 1
    assert run_sync(spec(), dest, wh).deletions == {"pending": 1}
    assert sql(wh, "SELECT status, reason FROM outflow.outflow.deletion_log") == [("pending", "500 internal error")]
    done = run_sync(spec(), dest, wh)
    assert done.deletions == {"done": 1} and "p2" not in dest.members
    (st, at), = sql(wh, "SELECT status, done_at FROM outflow.outflow.deletion_log")
    assert st == "done" and at is not None
    assert run_sync(spec(), dest, wh).deletions == {}  # done requests are not asked again


def test_without_the_rule_tables_no_sync_runs_and_the_error_says_what_to_build(tmp_path):
    w = tmp_path / "outflow.duckdb"
    with duckdb.connect(str(w)) as con:
        con.execute("CREATE TABLE main.people AS SELECT 'p0' AS profile_id, 'a@example.com' AS email")
    dest = FakeDestination()
    with pytest.raises(duckdb.Error, match="dbt build -s contactable_profiles deletion_requests"):
        run_sync(spec(), dest, w)
    assert dest.writes == 0
    (status, error), = sql(w, "SELECT status, error FROM outflow.outflow.sync_runs")
    assert status == "failed" and "contactable_profiles" in error


def test_privacy_report_names_what_to_build_and_shows_syncs_not_run_yet_as_pending(tmp_path):
    w = tmp_path / "outflow.duckdb"
    duckdb.connect(str(w)).close()
    report = [str(VENV_BIN / "outflow"), "privacy", "report", "--json"]
    refused = run_cmd(report, w, check=False)
    assert refused.returncode == 2 and "main.deletion_requests is not built" in refused.stderr
    sql(w, "CREATE TABLE main.deletion_requests AS SELECT 'r9' AS request_id, 'x@example.com' AS email, "
           "'p9' AS profile_id, TIMESTAMP '2025-12-01' AS requested_at")
    out = run_cmd(report, w)
    (entry,) = json.loads(out.stdout)["requests"]
    assert entry["request_id"] == "r9" and entry["status"] == "pending" and "x@example.com" not in out.stdout
    assert {d["sync"] for d in entry["destinations"]} >= {"crm_contacts", "meta_customers_audience"}
    assert all(d["status"] == "pending" and "has not run" in d["reason"] for d in entry["destinations"])
