"""The engine's plan (apply._plan: the model hashed into a temp table, the contact rule
applied to the hashed rows, then joined to state) decides exactly what render_plan's
single query decides (the rule applied to the model's rows), on randomized worlds with a
contact rule that refuses some profiles, deleted profiles, NULL and duplicate keys, a
profile key other than the primary key, v1 state hashes and a holdout; and
state.state_summary counts as its definition says."""

from __future__ import annotations

import random
from datetime import datetime

import duckdb
import pytest

from orchestration.sync import state as st
from orchestration.sync.apply import HASHES_TABLE, _plan
from orchestration.sync.plan import (
    HASH_PREFIX,
    LEGACY_MARK,
    legacy_python_hash,
    maybe_duplicate_keys,
    model_hashes_query,
    model_summary_query,
    plan_query,
    python_hash,
    render_plan,
)
from orchestration.sync.spec import SyncSpec
from tests.unit.test_sync_plan import STATUSES

CHANNELS = ["email", "sms", "ads", "crm"]


def make_spec(mode: str, *, profile_key: str = "profile_id", override: bool = False,
              holdout: bool = False, channel: str = "crm") -> SyncSpec:
    return SyncSpec(name="s1", model="people", model_table="people", destination="d", object="o", mode=mode,
                    primary_key="person_key", profile_key=profile_key, match_on={"email": "email"},
                    fields={"first": "lower(first_name)"}, where="score >= 0", channel=channel,
                    **({"consent_override": {"reason": "test of the deletion-only rule"}} if override else {}),
                    **({"holdout": {"share": 0.3}} if holdout else {}))


def load(con, rng: random.Random, spec: SyncSpec) -> None:
    """A model (person_key, profile_id, owner_id, email, first_name, score), a contact rule
    table that leaves some profiles out and refuses others, deleted profiles and a state
    over the model's keys and others, every status, hashes of both formats."""
    st.ensure_tables(con)
    model = []
    for i in range(rng.randint(0, 50)):
        key = rng.choice([f"k{i}", f"k{i}", f"k{i}", None, f"k{max(i - 1, 0)}"])  # NULL and duplicate keys
        model.append((key, rng.choice([f"p{i}", f"p{i % 7}", None]), rng.choice([f"o{i % 5}", None]),
                      rng.choice([None, f"e{i}@x.com"]), rng.choice([None, "Ann", "bob"]), rng.choice([-1, 1, 5])))
    con.execute("CREATE OR REPLACE TABLE main.people (person_key VARCHAR, profile_id VARCHAR, owner_id VARCHAR, "
                "email VARCHAR, first_name VARCHAR, score INTEGER)")
    if model:
        con.executemany("INSERT INTO main.people VALUES (?, ?, ?, ?, ?, ?)", model)
    profiles = [f"p{i}" for i in range(50)] + [f"o{i}" for i in range(5)]
    rule = [(p, c, rng.random() < 0.7, "r", rng.random() < 0.15)
            for p in profiles for c in CHANNELS if rng.random() < 0.9]
    con.execute("CREATE OR REPLACE TABLE main.contactable_profiles (profile_id VARCHAR, channel VARCHAR, "
                "is_contactable BOOLEAN, reason VARCHAR, is_deletion_requested BOOLEAN)")
    con.executemany("INSERT INTO main.contactable_profiles VALUES (?, ?, ?, ?, ?)", rule)
    con.execute("DELETE FROM outflow.deleted_profiles")
    deleted = [(p, "req", datetime(2026, 1, 1)) for p in profiles if rng.random() < 0.1]
    if deleted:
        con.executemany("INSERT INTO outflow.deleted_profiles VALUES (?, ?, ?)", deleted)
    con.execute("DELETE FROM outflow.sync_state")
    values = {k: [e, None if f is None else f.lower()] for k, _, _, e, f, _ in model if k is not None}
    state = []
    for i in range(rng.randint(0, 60)):
        key = f"k{i}"
        status = rng.choice(STATUSES)
        v = values.get(key, [None, None])
        h = rng.choice([python_hash(spec, v), legacy_python_hash(spec, v), HASH_PREFIX + "1",
                        LEGACY_MARK + "x", None]) if status != "removed" else None
        state.append(("s1", key, h, status, rng.randint(0, 5), rng.choice([None, datetime(2026, 1, 1)])))
    if state:
        con.executemany("INSERT INTO outflow.sync_state (sync, record_key, fields_hash, status, attempts, "
                        "first_synced_at) VALUES (?, ?, ?, ?, ?, ?)", state)


def rows(con, sql: str) -> list[tuple]:
    return sorted(con.execute(f'SELECT "_key", "_action", "_operation", "_hash", "_state_status" FROM ({sql})')
                  .fetchall(), key=repr)


SPECS = {
    "upsert": dict(mode="upsert"),
    "mirror": dict(mode="mirror"),
    "membership, override": dict(mode="membership", channel="ads", override=True),
    "membership, profile key owner_id": dict(mode="membership", channel="email", profile_key="owner_id"),
    "mirror, holdout": dict(mode="mirror", holdout=True),
}


@pytest.mark.parametrize("case", list(SPECS))
@pytest.mark.parametrize("legacy", [False, True])
def test_engine_plan_equals_the_single_query_plan(tmp_path, case, legacy):
    spec = make_spec(**SPECS[case])
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    rng = random.Random(f"{case}-{legacy}")
    refused = kept = 0
    for _ in range(30):
        load(con, rng, spec)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {HASHES_TABLE} AS "
                    f"{model_hashes_query(spec, legacy=legacy).sql('duckdb')}")
        engine = plan_query(spec, hashes_table=HASHES_TABLE, legacy=legacy).sql("duckdb")
        single = plan_query(spec, legacy=legacy).sql("duckdb")
        assert rows(con, engine) == rows(con, single)
        # the counts the guardrails read: rows and distinct keys, as over the model's rows
        summary = con.execute(model_summary_query(spec).sql("duckdb")).fetchone()
        assert con.execute(f'SELECT count(*), count(DISTINCT "_key") FROM {HASHES_TABLE}').fetchone() == summary
        assert (con.execute(maybe_duplicate_keys(HASHES_TABLE).sql("duckdb")).fetchone()[0] == 0) == (
            summary[0] == summary[1])
        total = con.execute("SELECT count(*) FROM main.people WHERE score >= 0 AND person_key IS NOT NULL").fetchone()[0]
        refused += total - summary[0]
        kept += summary[0]
    assert refused and kept  # the worlds exercised the rule both ways


def test_rows_the_rule_refuses_are_removed_and_duplicates_refused(tmp_path):
    """The rule's edge cases through the engine's own _plan: a synced record whose profile
    is no longer contactable, or deleted, is removed; a NULL key is never planned;
    duplicate keys among the rows the rule allows refuse the run, those it refuses do not."""
    from orchestration.sync.apply import RunReport

    spec = make_spec("mirror")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    st.ensure_tables(con)
    con.execute("CREATE TABLE main.people (person_key VARCHAR, profile_id VARCHAR, owner_id VARCHAR, "
                "email VARCHAR, first_name VARCHAR, score INTEGER)")
    con.execute("INSERT INTO main.people VALUES ('a', 'pa', NULL, NULL, 'Ann', 1), ('b', 'pb', NULL, NULL, 'Bob', 1), "
                "('c', 'pc', NULL, NULL, 'Cy', 1), (NULL, 'pa', NULL, NULL, 'Nul', 1), "
                "('d', 'pd', NULL, NULL, 'D1', 1), ('d', 'pd', NULL, NULL, 'D2', 1)")
    con.execute("CREATE TABLE main.contactable_profiles (profile_id VARCHAR, channel VARCHAR, "
                "is_contactable BOOLEAN, reason VARCHAR, is_deletion_requested BOOLEAN)")
    con.execute("INSERT INTO main.contactable_profiles VALUES ('pa', 'crm', true, 'r', false), "
                "('pb', 'crm', false, 'r', false), ('pc', 'crm', true, 'r', false), ('pd', 'crm', false, 'r', false)")
    con.execute("INSERT INTO outflow.deleted_profiles VALUES ('pc', 'req', '2026-01-01')")
    for key, name in [("a", "ann"), ("b", "bob"), ("c", "cy")]:
        con.execute("INSERT INTO outflow.sync_state (sync, record_key, fields_hash, status, attempts, first_synced_at) "
                    "VALUES ('s1', ?, ?, 'synced', 0, '2026-01-01')", [key, python_hash(spec, [None, name])])

    def plan() -> RunReport:
        report = RunReport(sync="s1", run_id="r", status="running")
        _plan(con, spec, report, full_resync=False, sample_size=10)
        return report

    report = plan()
    # a: contactable, unchanged; b: no longer contactable; c: deleted; d: refused by the rule (not counted)
    assert report.error is None and report.model_rows == 1
    assert report.actions == {"remove": 2} and report.sample == {"delete": ["b", "c"]}
    con.execute("UPDATE main.contactable_profiles SET is_contactable = true WHERE profile_id = 'pd'")
    report = plan()
    assert report.error == ("1 duplicate primary key value(s) in people.person_key: a sync needs one row per key")


@pytest.mark.parametrize("hashes, legacy", [
    ([], 0),
    ([HASH_PREFIX + "1", HASH_PREFIX, LEGACY_MARK + "ab", None], 0),
    (["0" * 32, "f" * 32, "h2", "h2;", "h3:", "v1", "v1;", "v2:", "", "H2:1", "a" + HASH_PREFIX], 11),
])
def test_state_summary_counts_legacy_hashes_by_prefix(tmp_path, hashes, legacy):
    """Every hash that starts with neither the h2 prefix nor the legacy mark counts as v1,
    whatever its bytes sort next to (the summary tests prefixes as byte ranges)."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    st.ensure_tables(con)
    rows_ = [("s1", f"k{i}", h, "synced", 0, datetime(2026, 1, 1)) for i, h in enumerate(hashes)]
    rows_ += [("s1", "gone", "0" * 32, "removed", 0, datetime(2026, 1, 1)), ("s1", "new", "1" * 32, "failed", 1, None),
              ("other", "k0", "0" * 32, "synced", 0, datetime(2026, 1, 1))]
    con.executemany("INSERT INTO outflow.sync_state (sync, record_key, fields_hash, status, attempts, first_synced_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows_)
    # in the tool: acknowledged and not removed; v1: the two extra rows' md5-like hashes too
    assert st.state_summary(con, "s1") == (len(hashes), legacy + 2)
