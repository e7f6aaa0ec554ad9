"""Holdout in the plan: the held-out keys are exactly md5(salt|key) below the share, stable
across runs, close to the share, never added while the sync has not sent them, and the
SQL means the same in every dialect it renders for."""

from __future__ import annotations

import random

import duckdb
import pytest
import sqlglot

from orchestration.sync import state as st
from orchestration.sync.plan import HASH_PREFIX, holdout_assignments_query, in_holdout, render_plan
from orchestration.sync.spec import Mode, SyncSpec, load_sync
from tests.unit.test_sync_plan import load_world, random_world, reference

# Syncs declare a consent channel once the consent work (issue 5) lands; before, the key is unknown.
CHANNEL = {"channel": "crm"} if "channel" in SyncSpec.model_fields else {}


def allow_everyone(con) -> None:
    """The contact rule, where the plan reads one (issue 5): everyone contactable."""
    if CHANNEL:
        from tests.contact_rule import allow_everyone as allow

        allow(con)


def make_spec(mode: str = "membership", share: float = 0.3, salt: str | None = None, **kw) -> SyncSpec:
    return SyncSpec(name="s1", model="people", model_table="people", destination="d", object="o", mode=mode,
                    primary_key="profile_id", match_on={"email": "email"},
                    fields={"first": "lower(first_name)"},  # as random_world hashes them
                    where="score >= 0", holdout={"share": share, **({"salt": salt} if salt else {})}, **CHANNEL, **kw)


def holdout_reference(spec, visible, state, recorded, full_resync):
    """The plain diff, minus every held-out (bucket or recorded) model key this sync has
    not sent (no state, or removed)."""
    mine = {r[1]: r for r in state if r[0] == spec.name}
    out = set()
    for key, action, op in reference(spec, visible, state, full_resync):
        never_sent = key not in mine or mine[key][3] == "removed"
        if key in visible and never_sent and (in_holdout(spec, key) or key in recorded):
            continue
        out.add((key, action, op))
    return out


@pytest.mark.parametrize("mode", [m.value for m in Mode])
@pytest.mark.parametrize("full_resync", [False, True])
def test_plan_with_holdout_equals_reference(tmp_path, mode, full_resync):
    spec = make_spec(mode)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    rng = random.Random(f"holdout-{mode}-{full_resync}")
    skipped = 0
    for _ in range(25):
        model, visible, state = random_world(rng, spec)
        load_world(con, model, state)
        recorded = {f"k{i}" for i in range(60) if rng.random() < 0.1}
        con.execute("DELETE FROM outflow.sync_holdout")
        for k in recorded:
            con.execute("INSERT INTO outflow.sync_holdout VALUES ('s1', ?, now(), 'r')", [k])
        got = set(con.execute(f"SELECT _key, _action, _operation FROM ({render_plan(spec, full_resync=full_resync)})").fetchall())
        want = holdout_reference(spec, visible, state, recorded, full_resync)
        assert got == want
        skipped += len(reference(spec, visible, state, full_resync) - want)
        # what a run records: held out by the bucket, unknown to state and to the holdout table
        mine = {r[1] for r in state if r[0] == "s1"}
        new = {k for (k,) in con.execute(holdout_assignments_query(spec).sql("duckdb")).fetchall()}
        assert new == {k for k in visible if in_holdout(spec, k) and k not in mine and k not in recorded}
    assert skipped > 0  # the holdout took something out of these plans


def test_assignment_is_stable_close_to_the_share_and_salted(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    st.ensure_tables(con)
    n = 200_000
    con.execute(f"CREATE TABLE main.people AS SELECT 'p_' || lpad(cast(i AS VARCHAR), 8, '0') AS profile_id, "
                f"'e' || i AS email, 'x' AS first_name, 1 AS score FROM range({n}) t(i)")
    allow_everyone(con)
    held = {}
    for salt in (None, None, "spring-campaign"):
        spec = make_spec(share=0.1, salt=salt)
        keys = {k for (k,) in con.execute(holdout_assignments_query(spec).sql("duckdb")).fetchall()}
        held.setdefault(salt, []).append(keys)
    first, again = held[None]
    assert first == again  # same keys, same holdout, every run
    assert abs(len(first) / n - 0.1) < 0.003  # binomial sd at n=200k is 0.0007
    # the SQL bucket is the documented Python one, key by key
    sample = [f"p_{i:08d}" for i in range(0, n, 97)]
    spec = make_spec(share=0.1)
    assert {k for k in sample if in_holdout(spec, k)} == first & set(sample)
    # another salt draws another, independent holdout: overlap ~ share^2
    other = held["spring-campaign"][0]
    assert abs(len(first & other) / n - 0.01) < 0.002


def test_holdout_is_validated_with_messages():
    exposure = {"name": "aud", "depends_on": {"nodes": ["model.outflow.people"]},
                "config": {"meta": {"outflow": {"destination": "d", "object": "o", "mode": "membership",
                                                "primary_key": "profile_id", "holdout": {}, **CHANNEL}}}}
    manifest = {"nodes": {"model.outflow.people": {"name": "people"}}}
    cols = lambda _: ["profile_id", "email"]  # noqa: E731
    bad = {
        "missing share": ({}, "holdout.share", "required"),
        "zero": ({"share": 0}, "holdout.share", "greater than 0"),
        "most of the audience": ({"share": 0.6}, "holdout.share", "less than or equal to 0.5"),
        "unknown key": ({"share": 0.1, "seed": 3}, "holdout.seed", "not a known key"),
        "empty salt": ({"share": 0.1, "salt": ""}, "holdout.salt", "at least 1"),
    }
    for label, (block, key, text) in bad.items():
        exposure["config"]["meta"]["outflow"]["holdout"] = block
        errors = load_sync(exposure, manifest, cols)
        assert isinstance(errors, list), label
        assert any(e.key == key and text in e.message for e in errors), (label, [str(e) for e in errors])
    exposure["config"]["meta"]["outflow"]["holdout"] = {"share": 0.1}
    ok = load_sync(exposure, manifest, cols)
    assert isinstance(ok, SyncSpec) and ok.holdout_salt == "aud"


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery"])
def test_holdout_plan_renders_for_each_dialect_and_keeps_its_meaning(tmp_path, dialect):
    spec = make_spec("membership", share=0.4)
    sql = render_plan(spec, dialect)
    sqlglot.parse_one(sql, read=dialect)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    model, visible, state = random_world(random.Random(dialect), spec)
    load_world(con, model, state)
    # other dialects hash with the portable v1 (md5): against a state of v1 hashes (h2 ones
    # cleared) it plans what DuckDB's plan does
    con.execute(f"UPDATE outflow.sync_state SET fields_hash = NULL WHERE fields_hash LIKE '{HASH_PREFIX}%'")
    back = sqlglot.transpile(sql, read=dialect, write="duckdb")[0]
    want = set(con.execute(f"SELECT _key, _action, _operation FROM ({render_plan(spec)})").fetchall())
    assert set(con.execute(f"SELECT _key, _action, _operation FROM ({back})").fetchall()) == want
