"""The plan SQL: equal to a reference diff written in Python on randomized states, and
rendered for postgres, snowflake and bigquery without changing its meaning."""

from __future__ import annotations

import random
from datetime import datetime

import duckdb
import pyarrow as pa
import pytest
import sqlglot

from orchestration.sync import state as st
from orchestration.sync.plan import (
    HASH_PREFIX,
    LEGACY_MARK,
    legacy_python_hash,
    model_summary_query,
    python_hash,
    render_plan,
)
from orchestration.sync.spec import Mode, SyncSpec
from tests.contact_rule import allow_everyone

STATUSES = ["synced", "failed", "rejected", "removed", "pending"]


def make_spec(mode: str, max_attempts: int = 3, where: str | None = "score >= 0") -> SyncSpec:
    return SyncSpec(name="s1", model="people", model_table="people", destination="d", object="o", mode=mode,
                    primary_key="profile_id", match_on={"email": "email"}, fields={"first": "lower(first_name)"},
                    where=where, max_attempts=max_attempts, channel="crm")


def random_world(rng: random.Random, spec: SyncSpec):
    """Model rows and state rows covering every branch: unseen, same/changed hash, each
    status, attempts around the limit, acknowledged or not, keys gone from the model,
    and state rows of another sync that must be ignored."""
    model = []
    for i in range(rng.randint(0, 60)):
        model.append((f"k{i}", rng.choice([None, f"e{i}@x.com", "dup@x.com"]),
                      rng.choice([None, "Ann", "BOB", "ann"]), rng.choice([-1, 1, 5])))
    visible = {k: [e, None if f is None else f.lower()] for k, e, f, s in model if s >= 0}
    state = []
    for i in range(rng.randint(0, 80)):
        key = f"k{i}"
        status = rng.choice(STATUSES)
        values = visible.get(key, [f"gone{i}", None])
        # h2 and v1 (md5, written before h2) hashes of the current data, stale ones of
        # either format, a v1 hash set aside by the upgrade (LEGACY_MARK: never the same)
        legacy = legacy_python_hash(spec, values)
        h = rng.choice([python_hash(spec, values), legacy, "0" * 32, HASH_PREFIX + "1", LEGACY_MARK + legacy,
                        None]) if status != "removed" else None
        first = rng.choice([None, datetime(2026, 1, 1)])
        state.append(("s1", key, h, status, rng.randint(0, 5), first))
        if rng.random() < 0.2:
            state.append(("other", key, None, "synced", 0, datetime(2026, 1, 1)))
    return model, visible, state


def same_data(spec: SyncSpec, stored: str | None, values: list) -> bool:
    """A stored hash of the same data: its h2 hash, or its v1 (md5) hash."""
    return stored in (python_hash(spec, values), legacy_python_hash(spec, values))


def same_v1(spec: SyncSpec, stored: str | None, values: list) -> bool:
    """The portable plan's rule: the v1 hash is the hash."""
    return stored == legacy_python_hash(spec, values)


def reference(spec: SyncSpec, visible: dict, state: list, full_resync: bool,
              same=same_data) -> set[tuple[str, str, str]]:
    """(key, action, operation) the plan must produce, from the semantics in plain Python."""
    mine = {r[1]: r for r in state if r[0] == spec.name}
    out = set()
    send, remove = spec.mode.send_operation.value, spec.mode.remove_operation
    for key in set(visible) | set(mine):
        s = mine.get(key)
        changed = key in visible and s is not None and not same(spec, s[2], visible[key])
        action = None
        if key in visible:
            if s is None or s[3] == "removed":
                action = "add"
            elif full_resync:
                action = "resync"
            elif s[3] == "synced" and changed and spec.mode is not Mode.INSERT:
                action = "change"
            elif s[3] == "failed" and (s[4] < spec.max_attempts or changed):
                action = "retry"
            elif s[3] == "rejected" and changed:
                action = "change"
            elif s[3] == "pending" and (s[4] < spec.max_attempts or changed):
                action = "retry"
        elif spec.mode.removes and ((s[3] == "pending" and s[4] < spec.max_attempts) or s[5] is not None and (
            s[3] == "synced" or (s[3] == "failed" and s[4] < spec.max_attempts)
            or (s[3] == "rejected" and s[2] is not None)
        )):
            action = "remove"
        if action:
            out.add((key, action, remove.value if action == "remove" else send))
    return out


def load_world(con, model, state):
    st.ensure_tables(con)
    con.execute("CREATE OR REPLACE TABLE main.people (profile_id VARCHAR, email VARCHAR, first_name VARCHAR, score INTEGER)")
    model_arrow = pa.table(list(zip(*model)) if model else [[]] * 4, schema=pa.schema(
        [("profile_id", pa.string()), ("email", pa.string()), ("first_name", pa.string()), ("score", pa.int32())]))
    con.execute("INSERT INTO main.people SELECT * FROM model_arrow")
    allow_everyone(con)
    con.execute("DELETE FROM outflow.sync_state")
    state_arrow = pa.table(list(zip(*state)) if state else [[]] * 6, schema=pa.schema(
        [("sync", pa.string()), ("record_key", pa.string()), ("fields_hash", pa.string()), ("status", pa.string()),
         ("attempts", pa.int32()), ("first_synced_at", pa.timestamp("us"))]))
    con.execute("INSERT INTO outflow.sync_state (sync, record_key, fields_hash, status, attempts, first_synced_at) "
                "SELECT * FROM state_arrow")


@pytest.mark.parametrize("mode", [m.value for m in Mode])
@pytest.mark.parametrize("full_resync", [False, True])
def test_duckdb_plan_equals_reference_diff(tmp_path, mode, full_resync):
    spec = make_spec(mode)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    rng = random.Random(f"{mode}-{full_resync}")
    for _ in range(25):
        model, visible, state = random_world(rng, spec)
        load_world(con, model, state)
        got = set(con.execute(f"SELECT _key, _action, _operation FROM ({render_plan(spec, full_resync=full_resync)})").fetchall())
        assert got == reference(spec, visible, state, full_resync)
        # the hash is computed in the warehouse, and equals the documented form
        rows = con.execute(f"SELECT _key, _hash, _state_hash FROM ({render_plan(spec, full_resync=True)}) "
                           "WHERE _hash IS NOT NULL").fetchall()
        assert {k: h for k, h, _ in rows} == {k: python_hash(spec, v) for k, v in visible.items()}
        # the state's hash as the run reads it (_state_hash): a v1 hash of the same data
        # as the h2 hash, every other one as stored
        stored = {r[1]: r[2] for r in state if r[0] == spec.name}
        for k, h, state_hash in rows:
            if k in stored:
                assert state_hash == (h if stored[k] == legacy_python_hash(spec, visible[k]) else stored[k])


def test_hash_covers_mapped_fields_only_and_is_null_safe(tmp_path):
    spec = make_spec("upsert", where=None)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_world(con, [("a", "x", None, 1), ("b", None, "x", 1), ("c", "x", None, 2), ("d", "", None, 1)], [])
    h = dict(con.execute(f"SELECT _key, _hash FROM ({render_plan(spec)})").fetchall())
    assert h["a"] != h["b"]  # NULL,'x' vs 'x',NULL
    assert h["a"] == h["c"]  # score is not mapped: no change
    assert h["a"] != h["d"]  # empty string is not NULL


def test_summary_counts_duplicate_keys(tmp_path):
    spec = make_spec("upsert")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_world(con, [("a", None, None, 1), ("a", None, None, 1), ("b", None, None, 1), (None, None, None, 1)], [])
    assert con.execute(model_summary_query(spec).sql("duckdb")).fetchone() == (3, 2)


@pytest.mark.parametrize("dialect", ["postgres", "snowflake", "bigquery"])
@pytest.mark.parametrize("mode", ["upsert", "mirror", "insert"])
def test_plan_renders_for_each_dialect_and_keeps_its_meaning(tmp_path, dialect, mode):
    spec = make_spec(mode)
    sql = render_plan(spec, dialect)
    tree = sqlglot.parse_one(sql, read=dialect)  # parses back in its own dialect
    assert tree.find(sqlglot.exp.With) is not None
    assert {"add", "change", "retry"} <= {lit.this for lit in tree.find_all(sqlglot.exp.Literal)}
    if dialect == "bigquery":
        flat = "".join(sql.split())
        assert "TO_HEX(MD5(" in flat and "`outflow`.`sync_state`" in flat
    # Same meaning: brought back to DuckDB, it gives the plan of the portable (v1) hash
    # on random worlds, and DuckDB's own plan where the state holds v1 hashes only.
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    rng = random.Random(dialect + mode)
    back = sqlglot.transpile(sql, read=dialect, write="duckdb")[0]
    for _ in range(5):
        model, visible, state = random_world(rng, spec)
        load_world(con, model, state)
        got = set(con.execute(f"SELECT _key, _action, _operation FROM ({back})").fetchall())
        assert got == reference(spec, visible, state, False, same=same_v1)
        con.execute(f"UPDATE outflow.sync_state SET fields_hash = NULL WHERE fields_hash LIKE '{HASH_PREFIX}%'")
        want = set(con.execute(f"SELECT _key, _action, _operation FROM ({render_plan(spec)})").fetchall())
        assert set(con.execute(f"SELECT _key, _action, _operation FROM ({back})").fetchall()) == want


def test_user_sql_is_embedded_as_a_tree_not_pasted():
    spec = make_spec("upsert", where="first_name = 'O''Brien'")
    sql = render_plan(spec, "postgres")
    assert "first_name = 'O''Brien'" in sql
    # A key with quotes cannot break out of its literal.
    spec2 = SyncSpec(**{**spec.model_dump(), "name": "x'; drop table t; --"})
    assert "'x''; drop table t; --'" in render_plan(spec2, "postgres")


def test_the_stored_hash_of_a_fixed_row_does_not_move(tmp_path):
    """State compares against hashes written by earlier runs: a DuckDB upgrade that changed
    hash() would make every record look changed (sent once more). This pins them, so such
    an upgrade is noticed here first (docs/sync_engine.md, "Hash")."""
    spec = make_spec("upsert", where=None)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_world(con, [("a", "ann@x.com", "Ann", 1), ("b", None, "ANN", 1)], [])
    h = dict(con.execute(f"SELECT _key, _hash FROM ({render_plan(spec)})").fetchall())
    assert h == {"a": "h2:17748961080166521469", "b": "h2:841521811452335297"}
    assert legacy_python_hash(spec, ["ann@x.com", "ann"]) == "33f059d4da5fcaf704ec8490dced471c"
