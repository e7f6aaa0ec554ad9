"""Sync state in the warehouse (schema `outflow`) and the per-batch commit.

Tables (DuckDB types; timestamps are UTC without zone):

outflow.sync_state      one row per (sync, record_key): where that record stands in the tool.
    status: synced | failed | rejected | removed | pending
      pending = a mirror/membership write of a record not known to be in the tool was
      sent and no answer is recorded yet (written before the send, replaced by the
      answer in the batch's commit). Left behind by a killed run, it makes the next plan
      re-send the record, or remove it if it left the model: nothing this sync may have
      created is orphaned. A retryable answer keeps it pending (an earlier write may
      have landed); it never counts as synced.
    fields_hash: hash of the mapped fields last sent (synced: last acknowledged; failed/
      rejected: last attempted; NULL after a remove or a rejected remove). 'h2:<hash()>';
      older rows may hold a v1 md5 hex or 'v1:<md5>' (plan.HASH_PREFIX, docs/sync_engine.md)
    first_synced_at: first acknowledged write of the record's current life in the tool;
      set => this sync put it there, so a mirror/membership sync may take it away.
      Cleared when a remove is acknowledged.
outflow.sync_runs       one row per run; counts per operation as JSON text (VARCHAR, so no
    extension is needed) plus totals and per-action counts as plain columns for SQL.
outflow.sync_changelog  one row per record operation sent: keys, hashes, ids, status and
    error reason. Never field values (no PII).
outflow.sync_holdout    one row per (sync, record_key) kept out of the tool by the sync's
    holdout: assigned_at = the run that first held it out (when it would have been added).
    Never deleted: once held out, always held out, so lift (campaign_lift) compares clean
    groups even if the share or salt changes later.
    error reason, including the operations that carry out deletion requests (action
    'deletion'). key_hash = sha256 of the record key, so an audit can find a person's rows
    without the key. Never field values (no PII).
outflow.deleted_profiles  every profile with a deletion request the engine has seen: the
    plan of every sync leaves them out for good (even if a model still has them, even on a
    full resync).
outflow.deletion_log    one row per (deletion request, sync): how the person was deleted or
    removed in that sync's destination (delete_person | remove | none), done / pending /
    failed with the reason, and when (`outflow privacy report`).

A record advances to synced only on an OK result, inside the transaction that commits
its batch.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import datetime, timezone

import duckdb
import pyarrow as pa

from destinations.http import redact as http_redact

SCHEMA = "outflow"

DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_state (
        sync VARCHAR NOT NULL,
        record_key VARCHAR NOT NULL,
        fields_hash VARCHAR,
        destination_id VARCHAR,
        status VARCHAR NOT NULL CHECK (status IN ('synced', 'failed', 'rejected', 'removed', 'pending')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error VARCHAR,
        first_synced_at TIMESTAMP,
        last_synced_at TIMESTAMP,
        last_attempt_at TIMESTAMP,
        last_operation VARCHAR,
        run_id VARCHAR,
        idempotency_key VARCHAR,
        PRIMARY KEY (sync, record_key)
    )""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_runs (
        run_id VARCHAR PRIMARY KEY,
        sync VARCHAR NOT NULL,
        destination VARCHAR,
        mode VARCHAR,
        started_at TIMESTAMP NOT NULL,
        finished_at TIMESTAMP,
        status VARCHAR NOT NULL CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'refused', 'dry_run')),
        dry_run BOOLEAN NOT NULL DEFAULT false,
        full_resync BOOLEAN NOT NULL DEFAULT false,
        forced BOOLEAN NOT NULL DEFAULT false,
        model_rows BIGINT,
        in_destination BIGINT,
        adds BIGINT, changes BIGINT, retries BIGINT, removes BIGINT, resyncs BIGINT,
        planned_total BIGINT, succeeded_total BIGINT, failed_total BIGINT, rejected_total BIGINT,
        planned VARCHAR, succeeded VARCHAR, failed VARCHAR, rejected VARCHAR,
        duration_seconds DOUBLE,
        records_per_second DOUBLE,
        error VARCHAR
    )""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_changelog (
        run_id VARCHAR NOT NULL,
        sync VARCHAR NOT NULL,
        record_key VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        operation VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        fields_hash VARCHAR,
        destination_id VARCHAR,
        idempotency_key VARCHAR,
        error VARCHAR,
        "at" TIMESTAMP NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.sync_holdout (
        sync VARCHAR NOT NULL,
        record_key VARCHAR NOT NULL,
        assigned_at TIMESTAMP NOT NULL,
        run_id VARCHAR NOT NULL,
        PRIMARY KEY (sync, record_key)
    )""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.deleted_profiles (
        profile_id VARCHAR PRIMARY KEY,
        request_id VARCHAR NOT NULL,
        recorded_at TIMESTAMP NOT NULL
    )""",
    f"""CREATE TABLE IF NOT EXISTS {SCHEMA}.deletion_log (
        request_id VARCHAR NOT NULL,
        sync VARCHAR NOT NULL,
        destination VARCHAR NOT NULL,
        profile_id VARCHAR,
        requested_at TIMESTAMP,
        method VARCHAR NOT NULL CHECK (method IN ('delete_person', 'remove', 'none')),
        status VARCHAR NOT NULL CHECK (status IN ('done', 'pending', 'failed')),
        reason VARCHAR,
        attempts INTEGER NOT NULL DEFAULT 0,
        first_attempt_at TIMESTAMP,
        done_at TIMESTAMP,
        run_id VARCHAR,
        PRIMARY KEY (request_id, sync)
    )""",
]
# Columns added after the first release: warehouses created earlier get them on the next run.
MIGRATIONS = [
    ("sync_changelog", "key_hash", "VARCHAR"),
    ("sync_runs", "channel", "VARCHAR"),
    ("sync_runs", "consent_override", "VARCHAR"),
    ("sync_runs", "deletions", "VARCHAR"),
]

STATE_ARROW = pa.schema([
    ("sync", pa.string()), ("record_key", pa.string()), ("fields_hash", pa.string()),
    ("destination_id", pa.string()), ("status", pa.string()), ("attempts", pa.int32()),
    ("last_error", pa.string()), ("first_synced_at", pa.timestamp("us")), ("last_synced_at", pa.timestamp("us")),
    ("last_attempt_at", pa.timestamp("us")), ("last_operation", pa.string()), ("run_id", pa.string()),
    ("idempotency_key", pa.string()),
])
CHANGELOG_ARROW = pa.schema([
    ("run_id", pa.string()), ("sync", pa.string()), ("record_key", pa.string()), ("action", pa.string()),
    ("operation", pa.string()), ("status", pa.string()), ("fields_hash", pa.string()),
    ("destination_id", pa.string()), ("idempotency_key", pa.string()), ("error", pa.string()),
    ("at", pa.timestamp("us")), ("key_hash", pa.string()),
])

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")


def key_hash(key: str) -> str:
    """The changelog's handle on a record key: an audit finds a person's rows by hashing
    their key, and the log never needs to hold the key itself."""
    return hashlib.sha256(str(key).encode()).hexdigest()


def redact(text: str | None, limit: int = 500) -> str | None:
    """Destinations promise errors without PII; this is the belt to their braces: the
    broad patterns here, then the HTTP client's redactor (Unicode and percent-encoded
    emails, credentials, query strings)."""
    if text is None:
        return None
    return http_redact(_PHONE.sub("<phone>", _EMAIL.sub("<email>", str(text))))[:limit]


def table(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """`"<catalog>".outflow.<name>`: DuckDB names the catalog after the file, and the
    warehouse is usually outflow.duckdb, so a bare `outflow.x` is ambiguous there."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    return f'"{catalog}".{SCHEMA}.{name}'


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    for stmt in DDL:
        con.execute(stmt.replace(f" {SCHEMA}", f' "{catalog}".{SCHEMA}', 1))
    for tbl, column, kind in MIGRATIONS:
        con.execute(f'ALTER TABLE "{catalog}".{SCHEMA}.{tbl} ADD COLUMN IF NOT EXISTS {column} {kind}')
    _restore_state_primary_key(con, catalog)


def _restore_state_primary_key(con: duckdb.DuckDBPyConnection, catalog: str) -> None:
    """sync_state briefly had no primary key (a batch's rows were replaced by delete +
    insert); a warehouse written then is rebuilt once with the key, rows kept. The
    delete scanned the whole state for every batch, so tools taking 200 records per call
    slowed quadratically with the state (docs/performance.md); the key's upsert does not."""
    has_key = con.execute(
        "SELECT count(*) FROM duckdb_constraints() WHERE database_name = ? AND schema_name = ? "
        "AND table_name = 'sync_state' AND constraint_type = 'PRIMARY KEY'", [catalog, SCHEMA]).fetchall()[0][0]
    if has_key:
        return
    name = f'"{catalog}".{SCHEMA}.sync_state'
    cols = ", ".join(f'"{c}"' for c in STATE_ARROW.names)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"ALTER TABLE {name} RENAME TO sync_state_without_key")
        con.execute(DDL[1].replace(f" {SCHEMA}", f' "{catalog}".{SCHEMA}', 1))
        con.execute(f'INSERT INTO {name} ({cols}) SELECT {cols} FROM "{catalog}".{SCHEMA}.sync_state_without_key')
        con.execute(f'DROP TABLE "{catalog}".{SCHEMA}.sync_state_without_key')
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def mark_interrupted_runs(con: duckdb.DuckDBPyConnection, sync: str) -> int:
    """A run still 'running' when a new one starts died without finishing (killed):
    say so. DuckDB's single writer lock means it cannot still be running."""
    n = con.execute(
        f"UPDATE {table(con, 'sync_runs')} SET status = 'failed', finished_at = ?, "
        "error = coalesce(error, 'interrupted: the process ended before the run finished') "
        "WHERE sync = ? AND status = 'running' RETURNING run_id",
        [utcnow(), sync],
    ).fetchall()
    return len(n)


def insert_run(con: duckdb.DuckDBPyConnection, row: dict) -> None:
    cols = list(row)
    con.execute(
        f"INSERT INTO {table(con, 'sync_runs')} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        [_json(v) for v in row.values()],
    )


def update_run(con: duckdb.DuckDBPyConnection, run_id: str, values: dict) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    con.execute(f"UPDATE {table(con, 'sync_runs')} SET {sets} WHERE run_id = ?", [*(_json(v) for v in values.values()), run_id])


def _json(v):
    return json.dumps(v, sort_keys=True) if isinstance(v, dict) else v


def to_arrow(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Row dicts as an Arrow table, built column by column (pa.Table.from_pylist walks
    every dict per column and was most of a batch's commit time; docs/performance.md)."""
    return pa.Table.from_pydict({name: [r.get(name) for r in rows] for name in schema.names}, schema=schema)


def arrow_columns(schema: pa.Schema, n: int, columns: dict) -> pa.Table:
    """An Arrow table of `schema` with n rows from columns: a list per column, or one
    value for every row (absent: NULL)."""
    return pa.Table.from_arrays([_column(columns.get(f.name), f.type, n) for f in schema], schema=schema)


def _column(value, kind: pa.DataType, n: int) -> pa.Array:
    if isinstance(value, list):
        return pa.array(value, type=kind)
    if value is None:
        return pa.nulls(n, type=kind)
    return pa.repeat(pa.scalar(value, type=kind), n)  # one value: not n Python objects converted


def write_rows(
    con: duckdb.DuckDBPyConnection,
    writes: list[tuple[str, list[dict] | pa.Table, pa.Schema, bool]],
    then: Callable[[], None] | None = None,
) -> None:
    """One transaction: for each (table, rows, schema, replace) the rows (dicts, or an
    Arrow table of the schema) are inserted (replace: INSERT OR REPLACE on the table's
    primary key), then `then()` runs. Either all of it lands or none."""
    names = []
    con.execute("BEGIN TRANSACTION")
    try:
        for i, (name, rows, schema, replace) in enumerate(writes):
            view = f"_outflow_rows_{i}"
            con.register(view, rows if isinstance(rows, pa.Table) else to_arrow(list(rows), schema))
            names.append(view)
            cols = ", ".join(f'"{c}"' for c in schema.names)
            verb = "INSERT OR REPLACE" if replace else "INSERT"
            if replace and name in KEYS:
                _refuse_duplicate_keys(con, name, view, KEYS[name])
            con.execute(f"{verb} INTO {table(con, name)} ({cols}) SELECT {cols} FROM {view}")
        if then is not None:
            then()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for view in names:
            con.unregister(view)


# Primary keys of the tables write_rows replaces rows of.
KEYS = {"sync_state": ("sync", "record_key")}


def _refuse_duplicate_keys(con: duckdb.DuckDBPyConnection, name: str, view: str, key: tuple[str, ...]) -> None:
    """INSERT OR REPLACE lets the last of two rows with one key win silently; a write
    holding both is a bug upstream, so it is refused (and rolled back) instead."""
    cols = ", ".join(f'"{c}"' for c in key)
    dup = con.execute(f"SELECT count(*) - count(DISTINCT ({cols})) FROM {view}").fetchall()[0][0]
    if dup:
        raise ValueError(f"{name}: {dup} duplicate key(s) ({cols}) in one write")


def _prefix_range(prefix: str) -> tuple[str, str]:
    """The byte range [low, high) of the strings that start with `prefix`."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def state_summary(con: duckdb.DuckDBPyConnection, sync: str) -> tuple[int, int]:
    """(records this sync has in the tool, state hashes still in the v1 format).

    Two counts with their conditions in WHERE, not one scan with two FILTER clauses:
    DuckDB then reads only the columns it must, and the hash column not at all once every
    hash is h2: 4 ms instead of 40 ms over a 1M-row sync (docs/performance.md)."""
    from orchestration.sync.plan import HASH_PREFIX, LEGACY_MARK

    state = table(con, "sync_state")
    # Neither prefix, as byte ranges (h2 < v1): unlike starts_with(), a range is a filter
    # DuckDB pushes into the scan, where the row groups' min/max skip every group holding
    # only h2 hashes without reading it.
    h2, v1 = _prefix_range(HASH_PREFIX), _prefix_range(LEGACY_MARK)
    return tuple(con.execute(
        f"SELECT (SELECT count(*) FROM {state} WHERE sync = ? AND first_synced_at IS NOT NULL "
        f"AND status <> 'removed'), (SELECT count(*) FROM {state} WHERE sync = ? AND (fields_hash < ? "
        "OR (fields_hash >= ? AND (fields_hash < ? OR fields_hash >= ?))))",
        [sync, sync, *h2, *v1]).fetchall()[0])


def translate_legacy_hashes(con: duckdb.DuckDBPyConnection, sync: str, hashes_table: str) -> None:
    """The one-time upgrade of a sync's v1 (md5) state hashes, in one transaction, after a
    plan that read them: a v1 hash equal to its model row's v1 hash (same data) becomes
    that row's h2 hash; any other (its record changed, or is not in the model) is marked
    LEGACY_MARK + the old value, so no later plan computes md5 again. Nothing else changes:
    a translated record compares as it did; a marked one was already "changed" (sent by
    this run) or, back in the model later with the same data, is sent once more (a
    repeat the tool takes as such)."""
    from orchestration.sync.plan import HASH_NUMBER, HASH_PREFIX, KEY, LEGACY_HASH, LEGACY_MARK, h2_text_sql

    state = table(con, "sync_state")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            f'UPDATE {state} SET fields_hash = {h2_text_sql(HASH_NUMBER, "h")} FROM {hashes_table} h '
            f'WHERE {state}.sync = ? '
            f'AND {state}.record_key = h."{KEY}" AND {state}.fields_hash = h."{LEGACY_HASH}"', [sync])
        con.execute(
            f"UPDATE {state} SET fields_hash = ? || fields_hash WHERE sync = ? AND fields_hash IS NOT NULL "
            "AND NOT starts_with(fields_hash, ?) AND NOT starts_with(fields_hash, ?)",
            [LEGACY_MARK, sync, HASH_PREFIX, LEGACY_MARK])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    # Up to every state row changed: until a checkpoint DuckDB holds all of it in memory
    # it cannot evict (~90 MB at 1M rows), which the apply's cap would then have to fit.
    con.execute("CHECKPOINT")


def record_holdout(con: duckdb.DuckDBPyConnection, sync: str, assignments_sql: str, run_id: str) -> int:
    """Insert the keys `assignments_sql` selects (column _key) as held out by this run."""
    rows = con.execute(
        f"INSERT INTO {table(con, 'sync_holdout')} (sync, record_key, assigned_at, run_id) "
        f'SELECT ?, "_key", ?, ? FROM ({assignments_sql}) RETURNING record_key',
        [sync, utcnow(), run_id],
    ).fetchall()
    return len(rows)


def held_by_commits(con) -> int:
    """Bytes DuckDB holds for committed changes not yet checkpointed, which it cannot
    evict: undo versions and delete markers (TRANSACTION), the key index's new entries
    (ALLOCATOR). Not the block cache (BASE_TABLE), which the memory cap evicts."""
    return con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
                       "WHERE tag IN ('TRANSACTION', 'ALLOCATOR')").fetchall()[0][0]
