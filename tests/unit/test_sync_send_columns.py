"""What the warehouse computes for a run to send (plan.send_keys_query) is byte for byte what
the engine's Python definitions give: the idempotency keys tools deduplicate on and the
changelog's key hash are stored, so a drift would re-send or lose audit trails. Also the
state table's replace-by-key write, which has no primary key to lean on."""

from __future__ import annotations

import itertools
from datetime import datetime

import duckdb
import pyarrow as pa
import pytest

from destinations.base import Operation
from orchestration.sync import state as st
from orchestration.sync.apply import idempotency_key
from orchestration.sync.plan import HASH, IDEMPOTENCY, KEY, KEY_HASH, OPERATION, send_keys_query
from orchestration.sync.spec import SyncSpec

KEYS = ["p1", "", "ünï\u00e7ødé 😀", "a\x1fb", "quote'd", "x" * 300]
HASHES = [None, "", "0" * 32]
STATUSES = [None, "synced", "rejected", "failed", "pending"]
STORED = [None, "", "stored-key-0001"]
OPERATIONS = [Operation.INSERT, Operation.UPSERT, Operation.ADD_MEMBER, Operation.REMOVE_MEMBER, Operation.DELETE]


def expected(sync: str, row: dict, run_id: str) -> str:
    """The engine's rule, in Python: an insert keeps the key state holds (a new one per
    version after a rejection); any other operation gets one per hash and run."""
    op = Operation(row[OPERATION])
    if op is Operation.INSERT:
        if row["_state_status"] == "rejected":
            return idempotency_key(sync, row[KEY], op, "after-rejection", row[HASH])
        return row["_idempotency_key"] or idempotency_key(sync, row[KEY], op)
    return idempotency_key(sync, row[KEY], op, row[HASH] or row["_state_hash"], run_id)


@pytest.mark.parametrize("sync", ["s1", "it's \x1f ünicode"])
def test_send_keys_query_keys_equal_the_python_definitions(sync):
    spec = SyncSpec(name=sync, model="people", model_table="people", destination="d", object="o", mode="upsert",
                    primary_key="profile_id", match_on={"email": "email"}, fields={"first": "first_name"},
                    channel="crm")
    rows = [{OPERATION: op.value, KEY: key, HASH: h, "_state_hash": sh, "_state_status": status,
             "_idempotency_key": stored}
            for op, key, h, sh, status, stored in itertools.product(OPERATIONS, KEYS, HASHES, HASHES, STATUSES, STORED)]
    con = duckdb.connect()
    con.register("plan_rows", pa.Table.from_pylist(rows))
    con.execute("CREATE TEMP TABLE outflow_plan AS SELECT * FROM plan_rows")
    run_id = "0123456789abcdef0123456789abcdef"
    got = con.sql(send_keys_query(spec, "outflow_plan", run_id).sql("duckdb")).to_arrow_table().to_pylist()
    assert len(got) == len(rows) > 1000
    for row in got:
        assert row[IDEMPOTENCY] == expected(sync, row, run_id), row
        assert row[KEY_HASH] == st.key_hash(row[KEY]), row


def state_rows(keys: list[str], status: str) -> pa.Table:
    return st.arrow_columns(st.STATE_ARROW, len(keys), {
        "sync": "s1", "record_key": keys, "status": status, "attempts": 0, "last_attempt_at": datetime(2026, 1, 1)})


def test_state_writes_replace_by_key_and_refuse_duplicate_keys(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    st.ensure_tables(con)
    st.write_rows(con, [("sync_state", state_rows(["a", "b"], "pending"), st.STATE_ARROW, False)])
    st.write_rows(con, [("sync_state", state_rows(["b", "c"], "synced"), st.STATE_ARROW, True)])
    assert con.execute("SELECT record_key, status FROM outflow.sync_state ORDER BY 1").fetchall() == [
        ("a", "pending"), ("b", "synced"), ("c", "synced")]
    with pytest.raises(ValueError, match="1 duplicate key"):
        st.write_rows(con, [("sync_state", state_rows(["a", "a"], "failed"), st.STATE_ARROW, True)])
    # the refused write left nothing behind
    assert con.execute("SELECT count(*), count(*) FILTER (status = 'failed') FROM outflow.sync_state").fetchall() == [
        (3, 0)]


def test_a_state_table_without_the_primary_key_gets_it_back_rows_kept(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    old = st.DDL[1].replace("idempotency_key VARCHAR,\n        PRIMARY KEY (sync, record_key)\n", "idempotency_key VARCHAR\n")
    assert "PRIMARY KEY" not in old
    con.execute("CREATE SCHEMA outflow")
    con.execute(old)
    con.execute("INSERT INTO outflow.sync_state (sync, record_key, fields_hash, status, attempts, first_synced_at) "
                "VALUES ('s1', 'a', 'h1', 'synced', 0, '2026-01-01'), ('s1', 'b', NULL, 'pending', 2, NULL)")
    st.ensure_tables(con)
    assert con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'sync_state' "
                       "AND constraint_type = 'PRIMARY KEY'").fetchall() == [(1,)]
    assert con.execute("SELECT sync, record_key, fields_hash, status, attempts, first_synced_at "
                       "FROM outflow.sync_state ORDER BY 2").fetchall() == [
        ("s1", "a", "h1", "synced", 0, datetime(2026, 1, 1)), ("s1", "b", None, "pending", 2, None)]
    st.ensure_tables(con)  # once only
    assert con.execute("SELECT count(*) FROM outflow.sync_state").fetchall() == [(2,)]


def test_arrow_columns_repeat_single_values():
    """One value for every row (written by repeat, not n Python objects) and absent
    columns (NULL) come out as the same table as lists would give."""
    now = datetime(2026, 1, 2, 3, 4, 5, 678901)
    table = st.arrow_columns(st.STATE_ARROW, 3, {"sync": "s", "record_key": ["a", "b", "c"], "attempts": 2,
                                                 "last_attempt_at": now, "status": "pending"})
    assert table.schema == st.STATE_ARROW
    rows = table.to_pylist()
    assert [r["record_key"] for r in rows] == ["a", "b", "c"]
    assert all(r["sync"] == "s" and r["attempts"] == 2 and r["last_attempt_at"] == now and r["status"] == "pending"
               and r["fields_hash"] is None and r["first_synced_at"] is None for r in rows)
    assert st.arrow_columns(st.STATE_ARROW, 0, {"sync": "s", "record_key": []}).num_rows == 0
