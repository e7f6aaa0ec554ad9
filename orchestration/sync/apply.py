"""Run one sync: plan in the warehouse, guardrails, send in batches, commit per batch.

The plan is materialised as a temp table in the warehouse (so counts for the
guardrails are known before anything is sent), then streamed back as Arrow record
batches with the fields to send (`plan.send_query`). Batches of one operation go to the
destination, up to `capabilities.max_concurrency` at a time on worker threads; every
state write goes through one DuckDB connection on the calling thread, one transaction
per batch sent: its pending marks with the answers collected before it (`flush`).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import gc
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from destinations.base import (
    Batch,
    Destination,
    DestinationError,
    Operation,
    Record,
    RecordResult,
    ResultStatus,
    check_results,
)
from orchestration.sync import state as st
from orchestration.sync.deletions import carry_out_deletions, pending_requests, record_deleted_profiles, require_rule_tables
from orchestration.sync.plan import (
    ACTION,
    HASH,
    IDEMPOTENCY,
    KEY,
    KEY_HASH,
    OPERATION,
    field_column,
    holdout_assignments_query,
    maybe_duplicate_keys,
    model_hashes_query,
    model_hashes_summary,
    plan_query,
    send_query,
)
from orchestration.sync.spec import SyncSpec

log = logging.getLogger(__name__)
PLAN_TABLE = "outflow_plan"
SEND_TABLE = "outflow_send"
HASHES_TABLE = "outflow_model_hashes"
MEMORY_LIMIT = os.environ.get("OUTFLOW_SYNC_MEMORY_LIMIT", "256MB")
# The cap while sending (after the plan): see run_sync. 160MB ran out of memory in a 1M
# bench's day-2 contacts upsert (183,067 records, 200 per call) until the run checkpointed
# as it sends (CHECKPOINT_HELD_BYTES): what a run's commits change stays in memory until then.
APPLY_MEMORY_LIMIT = os.environ.get("OUTFLOW_SYNC_APPLY_MEMORY_LIMIT", "160MB")
CHECKPOINT_THRESHOLD = "1GB"
SEND_CHUNK_ROWS = 10_000  # rows of the send table read per query (send_chunks)
# The run's own checkpoints (see flush in _apply): once what its commits hold in memory
# reaches CHECKPOINT_HELD_BYTES (looked at every CHECKPOINT_CHECK_ROWS state rows written),
# and at the latest every CHECKPOINT_EVERY_ROWS. A checkpoint costs about 0.5 s in a 5 GB
# warehouse with a 1M-row state (it writes the key index), so not more often than needed.
CHECKPOINT_HELD_BYTES = int(float(os.environ.get("OUTFLOW_SYNC_CHECKPOINT_HELD_MB", "40")) * 2**20)
CHECKPOINT_CHECK_ROWS = 10_000
CHECKPOINT_EVERY_ROWS = int(os.environ.get("OUTFLOW_SYNC_CHECKPOINT_ROWS", "500000"))
REMOVE_OPS = {Operation.DELETE, Operation.REMOVE_MEMBER}
# While a run sends, the cyclic GC runs only on young objects, every this many records sent
# (see young_gc_only).
YOUNG_GC_EVERY = 250_000
# action -> its count column in sync_runs
ACTIONS = {"add": "adds", "change": "changes", "retry": "retries", "remove": "removes", "resync": "resyncs"}


@dataclass
class RunReport:
    sync: str
    run_id: str
    status: str  # succeeded | partial | failed | refused | dry_run
    dry_run: bool = False
    full_resync: bool = False
    forced: bool = False
    model_rows: int = 0
    in_destination: int = 0  # records this sync had in the tool before the run
    holdout_assigned: int = 0  # model records newly held out (spec.holdout), recorded unless dry run/refused
    actions: dict[str, int] = field(default_factory=dict)  # add/change/retry/remove/resync -> count
    planned: dict[str, int] = field(default_factory=dict)  # operation -> count
    succeeded: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    sample: dict[str, list[str]] = field(default_factory=dict)  # operation -> a few record keys
    duration_seconds: float = 0.0
    records_per_second: float = 0.0
    error: str | None = None  # refusal numbers, or why the run failed
    channel: str | None = None
    consent_override: str | None = None  # the override's reason, when the sync lifts its consent rule
    deletions: dict[str, int] = field(default_factory=dict)  # deletion requests: done/pending/failed (dry run: open)

    @property
    def planned_total(self) -> int:
        return sum(self.planned.values())

    @property
    def sent(self) -> int:
        return sum(self.succeeded.values()) + sum(self.failed.values()) + sum(self.rejected.values())

    def to_dict(self) -> dict:
        return {**asdict(self), "planned_total": self.planned_total, "sent": self.sent}


def model_columns_from_warehouse(warehouse_path: str | Path, schema: str = "main") -> Callable[[str], list[str] | None]:
    """A `model_columns` callable for `load_syncs`: the built relations' columns, read
    once (read-only) from the warehouse."""
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        found: dict[str, list[str]] = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ? "
            "AND table_catalog = current_database() ORDER BY table_name, ordinal_position", [schema]
        ).fetchall():
            found.setdefault(table, []).append(column)
    return found.get


def idempotency_key(sync: str, key: str, operation: Operation, *parts: str | None) -> str:
    """A record's idempotency key; a run takes it from the warehouse (plan.send_query, the
    same bytes), this is its definition in Python."""
    raw = "\x1f".join([sync, key, operation.value, *(p or "" for p in parts)])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _new_state(spec: SyncSpec, row: dict, op: Operation, result: RecordResult, now) -> tuple:
    """The record's state after this answer: the NEW_STATE columns (the rest of a state row
    is the same for every record of the batch)."""
    removing = op in REMOVE_OPS
    new_hash = row["_state_hash"] if removing else row[HASH]
    if result.status is ResultStatus.OK:
        if removing:
            return "removed", None, None, 0, None, None, now
        return ("synced", new_hash, result.destination_id or row["_destination_id"], 0, None,
                row["_first_synced_at"] or now, now)
    prev_status = row["_state_status"]
    if result.status is ResultStatus.RETRYABLE:
        same = prev_status in ("failed", "pending") and row["_state_hash"] == new_hash
        # Unacknowledged: the tool may hold this or an earlier write (a dropped answer, a job
        # that failed part-way), so a record this sync may have created stays pending
        # (removable if it leaves the model), not merely failed.
        maybe_created = prev_status == "pending" or (
            spec.mode.removes and not removing and row["_first_synced_at"] is None and not row.get("_unsent"))
        return ("pending" if maybe_created else "failed", new_hash, row["_destination_id"],
                (row["_state_attempts"] or 0) + 1 if same else 1,
                st.redact(result.error) or "retryable error", row["_first_synced_at"], None)
    return ("rejected", None if removing else new_hash, row["_destination_id"], 0,
            st.redact(result.error) or "rejected", row["_first_synced_at"], None)


NEW_STATE = ("status", "fields_hash", "destination_id", "attempts", "last_error", "first_synced_at", "last_synced_at")


def _answered(spec: SyncSpec, op: Operation, rows: list[dict], results: list[RecordResult], run_id: str,
              now) -> tuple:
    """The batch's answers as Arrow tables: the records' new state rows and their changelog
    rows (built column by column: per-record dicts were most of a commit's cost)."""
    by_key = {r.key: r for r in results}
    answers = [by_key[row[KEY]] for row in rows]
    new = dict(zip(NEW_STATE, map(list, zip(*(_new_state(spec, row, op, res, now)
                                                for row, res in zip(rows, answers))))))
    keys, idem = [r[KEY] for r in rows], [r[IDEMPOTENCY] for r in rows]
    n = len(rows)
    state = st.arrow_columns(st.STATE_ARROW, n, {
        **new, "sync": spec.name, "record_key": keys, "last_attempt_at": now, "last_operation": op.value,
        "run_id": run_id, "idempotency_key": idem})
    changelog = st.arrow_columns(st.CHANGELOG_ARROW, n, {
        "run_id": run_id, "sync": spec.name, "record_key": keys, "action": [r[ACTION] for r in rows],
        "operation": op.value, "status": [res.status.value for res in answers],
        "fields_hash": [r["_state_hash"] for r in rows] if op in REMOVE_OPS else new["fields_hash"],
        "destination_id": [res.destination_id or r["_destination_id"] for r, res in zip(rows, answers)],
        "idempotency_key": idem, "error": [st.redact(res.error) for res in answers], "at": now,
        "key_hash": [r[KEY_HASH] for r in rows]})
    return state, changelog, answers


def _intent(spec: SyncSpec, op: Operation, rows: list[dict], run_id: str) -> list:
    """The writes that, before sending, mark records the tool may not hold yet as `pending`
    (never synced): if the run dies before their answer is committed, the next plan still
    knows this sync may have created them, and removes them if they left the model."""
    now = st.utcnow()

    def marks(rows: list[dict]) -> pa.Table:
        return st.arrow_columns(st.STATE_ARROW, len(rows), {
            "sync": spec.name, "record_key": [r[KEY] for r in rows], "fields_hash": [r[HASH] for r in rows],
            "destination_id": [r["_destination_id"] for r in rows], "status": "pending",
            "attempts": [r["_state_attempts"] or 0 for r in rows], "last_error": "sent; no answer recorded yet",
            "first_synced_at": None, "last_synced_at": None, "last_attempt_at": now,
            "last_operation": op.value, "run_id": run_id, "idempotency_key": [r[IDEMPOTENCY] for r in rows]})

    rows = [r for r in rows if r["_first_synced_at"] is None and r["_state_status"] != "pending"]
    # Keys the plan found no state row for are inserted (nothing to replace: only this run
    # writes this sync's state, and once per key), sparing the upsert's conflict check.
    unseen = [r for r in rows if r["_state_status"] is None]
    known = [r for r in rows if r["_state_status"] is not None]
    return [("sync_state", marks(part), st.STATE_ARROW, replace)
            for part, replace in ((unseen, False), (known, True)) if part]


def run_sync(
    spec: SyncSpec,
    destination: Destination,
    warehouse_path: str | Path,
    *,
    dry_run: bool = False,
    full_resync: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    sample_size: int = 10,
) -> RunReport:
    started = time.monotonic()
    run_id = uuid.uuid4().hex
    report = RunReport(sync=spec.name, run_id=run_id, status="running", dry_run=dry_run,
                       full_resync=full_resync, forced=force, channel=spec.channel.value,
                       consent_override=spec.consent_override.reason if spec.consent_override else None)
    if report.consent_override:
        log.warning("sync %s: consent override for channel %s: %s", spec.name, spec.channel.value,
                    report.consent_override)
    con = duckdb.connect(str(warehouse_path))
    # The plan's temp tables and the state's blocks live in DuckDB's buffer pool: a cap
    # makes it spill to disk instead of letting RSS follow the model size. 256MB: the
    # same plan times as 512MB at 1M and 10M rows, peak RSS 433/576 MB instead of
    # 599/728 MB (scale_bench.py memory; docs/performance.md).
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    # Every batch commit replaces rows all over sync_state; at DuckDB's default 16 MB WAL
    # threshold a checkpoint (rewriting the touched row groups of the whole table) followed
    # every few batches, so a batch cost grew with the state: 39 s per 10,000-row batch
    # at 10M state rows (docs/performance.md). Commits stay durable in the WAL; the file
    # is checkpointed once, when the run closes its connection.
    con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
    # The plan is sent unordered (samples are sorted where taken): without the order
    # DuckDB writes the plan's temp tables in parallel with less memory (-40% time).
    con.execute("SET preserve_insertion_order = false")
    writer = None
    try:
        st.ensure_tables(con)
        st.mark_interrupted_runs(con, spec.name)
        try:
            require_rule_tables(con)
            if dry_run:  # a dry run sends nothing: it only counts the requests a run would carry out
                record_deleted_profiles(con)
                if n := len(pending_requests(con, spec.name)):
                    report.deletions = {"open": n}
            else:  # before the plan: deletions are never held back by a guardrail
                report.deletions = carry_out_deletions(con, spec, destination, run_id)
            _plan(con, spec, report, full_resync, sample_size, translate=not dry_run)
        except duckdb.Error as e:  # e.g. the model is not built, or a column went away
            report.status, report.error = "failed", st.redact(f"planning failed: {e}")
            report.duration_seconds = time.monotonic() - started
            st.insert_run(con, {
                "run_id": run_id, "sync": spec.name, "destination": spec.destination, "mode": spec.mode.value,
                "started_at": st.utcnow(), "finished_at": st.utcnow(), "status": "failed", "dry_run": dry_run,
                "full_resync": full_resync, "forced": force, "duration_seconds": report.duration_seconds,
                "error": report.error, **_consent_columns(report),
            })
            raise
        refusal = _guardrails(spec, report, force)
        report.error = refusal
        run_row = {
            "run_id": run_id, "sync": spec.name, "destination": spec.destination, "mode": spec.mode.value,
            "started_at": st.utcnow(), "status": "running", "dry_run": dry_run, "full_resync": full_resync,
            "forced": force, "model_rows": report.model_rows, "in_destination": report.in_destination,
            **{col: report.actions.get(a, 0) for a, col in ACTIONS.items()},
            "planned_total": report.planned_total, "planned": report.planned, "error": refusal,
            **_consent_columns(report),
        }
        if dry_run or refusal:
            report.status = "dry_run" if dry_run else "refused"
            report.duration_seconds = time.monotonic() - started
            run_row.update(status=report.status, finished_at=st.utcnow(), duration_seconds=report.duration_seconds,
                           succeeded_total=0, failed_total=0, rejected_total=0)
            st.insert_run(con, run_row)
            return report
        st.insert_run(con, run_row)
        if spec.holdout is not None:
            # before anything is sent, so a crash mid-run cannot leave a held-out key unrecorded
            st.record_holdout(con, spec.name, _holdout_sql(con, spec), run_id)
        # Sending needs less: the send rows are materialised (no join's hash tables stay
        # pinned), what the commits change is checkpointed as it reaches CHECKPOINT_HELD_BYTES,
        # and the state blocks the upserts touch are a cache DuckDB fills up to the cap
        # as the state grows. scale_bench.py memory, peak RSS at 1M / 10M rows: 414 /
        # 546 MB with this cap at 256MB, 413 / 457 MB at 160MB (docs/performance.md).
        con.execute(f"SET memory_limit = '{APPLY_MEMORY_LIMIT}'")
        writer = con.cursor()  # the one connection that writes state; `con` streams the plan
        try:
            _apply(con, writer, spec, destination, report, progress)
        except BaseException as e:
            report.status = "failed"
            report.error = report.error or st.redact(f"{type(e).__name__}: {e}")
            _finish(writer, report, started)
            raise
        if report.status == "running":
            bad = sum(report.failed.values()) + sum(report.rejected.values())
            report.status = "partial" if bad else "succeeded"
        _finish(writer, report, started)
        return report
    finally:
        # Close both, so a caller holding this traceback does not keep the file open.
        if writer is not None:
            writer.close()
        con.close()


def _consent_columns(report: RunReport) -> dict:
    return {"channel": report.channel, "consent_override": report.consent_override,
            "deletions": report.deletions or None}


def _finish(con, report: RunReport, started: float) -> None:
    report.duration_seconds = time.monotonic() - started
    report.records_per_second = report.sent / report.duration_seconds if report.duration_seconds else 0.0
    st.update_run(con, report.run_id, {
        "status": report.status, "finished_at": st.utcnow(), "duration_seconds": report.duration_seconds,
        "records_per_second": report.records_per_second, "error": report.error, **_progress(report),
    })


def _progress(report: RunReport) -> dict:
    return {
        "succeeded": report.succeeded, "failed": report.failed, "rejected": report.rejected,
        "succeeded_total": sum(report.succeeded.values()), "failed_total": sum(report.failed.values()),
        "rejected_total": sum(report.rejected.values()),
    }


def _plan(con, spec: SyncSpec, report: RunReport, full_resync: bool, sample_size: int,
          translate: bool = False) -> None:
    """translate: rewrite the sync's v1 (md5) state hashes to h2 after planning (not in a
    dry run): st.translate_legacy_hashes."""
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    # One pass over the sync's state before the plan: the records in the tool, and whether
    # any v1 hash is left (then the model's v1 hash is computed as well, to compare it).
    report.in_destination, legacy = st.state_summary(con, spec.name)
    # The model is read and hashed once, into a narrow table (key, hash) that the counts
    # and the plan both read; the fields are fetched for the rows a run sends (send_query).
    report.model_rows = con.execute(
        f"CREATE OR REPLACE TEMP TABLE {HASHES_TABLE} AS "
        f"{model_hashes_query(spec, catalog=catalog, legacy=bool(legacy)).sql('duckdb')}").fetchall()[0][0]
    if con.execute(maybe_duplicate_keys(HASHES_TABLE).sql("duckdb")).fetchall()[0][0]:
        report.model_rows, distinct = con.execute(model_hashes_summary(HASHES_TABLE).sql("duckdb")).fetchone()
        if distinct != report.model_rows:
            report.error = (f"{report.model_rows - distinct} duplicate primary key value(s) in {spec.model}."
                            f"{spec.primary_key}: a sync needs one row per key")
    plan = plan_query(spec, full_resync=full_resync, catalog=catalog, hashes_table=HASHES_TABLE, legacy=bool(legacy))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {PLAN_TABLE} AS {plan.sql('duckdb')}")
    if legacy and translate and not report.error:  # duplicate keys: which row's hash is the record's is unknown
        st.translate_legacy_hashes(con, spec.name, HASHES_TABLE)
    con.execute(f"DROP TABLE {HASHES_TABLE}")
    for action, op, n in con.execute(
        f'SELECT "{ACTION}", "{OPERATION}", count(*) FROM {PLAN_TABLE} GROUP BY ALL'
    ).fetchall():
        report.actions[action] = report.actions.get(action, 0) + n
        report.planned[op] = report.planned.get(op, 0) + n
    for op in report.planned:
        report.sample[op] = [k for (k,) in con.execute(
            f'SELECT "{KEY}" FROM {PLAN_TABLE} WHERE "{OPERATION}" = ? ORDER BY "{KEY}" LIMIT ?', [op, sample_size]
        ).fetchall()]
    if spec.holdout is not None:
        report.holdout_assigned = con.execute(f"SELECT count(*) FROM ({_holdout_sql(con, spec)})").fetchone()[0]


def _holdout_sql(con, spec: SyncSpec) -> str:
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    return holdout_assignments_query(spec, catalog=catalog).sql("duckdb")


def _guardrails(spec: SyncSpec, report: RunReport, force: bool) -> str | None:
    """The numbers behind a refusal, or None. Duplicate keys are refused even when forced:
    which row wins would be arbitrary."""
    if report.error:
        return report.error
    if force:
        return None
    if report.model_rows == 0 and not spec.guardrails.allow_empty_model:
        return (f"model {spec.model} has 0 rows for this sync (where: {spec.where or 'none'}); "
                f"{report.in_destination} record(s) in the destination would be left as they are or removed. "
                "Run with --force, or set guardrails.allow_empty_model: true")
    removes = report.actions.get("remove", 0)
    limit = spec.guardrails.max_remove_share * report.in_destination
    if removes and removes > limit:
        share = removes / report.in_destination if report.in_destination else 1.0
        return (f"would remove {removes} of {report.in_destination} record(s) in the destination "
                f"({share:.1%}), above guardrails.max_remove_share {spec.guardrails.max_remove_share:.0%}; "
                "run with --force if this is intended")
    return None


@contextlib.contextmanager
def young_gc_only():
    """Pause Python's automatic cyclic GC while a run sends; the run calls `collect()`
    (young generations only) every YOUNG_GC_EVERY records.

    A run allocates a few container objects per record (row dicts, fields, records,
    answers), and batches in flight keep them alive long enough to reach the oldest
    generation, so the automatic GC ran full collections, each walking every object of
    the process (modules, caches), dozens of times per million records: a third of a
    Meta run's CPU (docs/performance.md). Refcounting still frees everything at once;
    the young collections free any cycles a batch made, and survivors (objects alive
    across the run) are left to the automatic GC once it resumes. The switch is per
    process: of runs overlapping in threads, the one that found GC on turns it back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield lambda: gc.collect(1)
    finally:
        if was_enabled:
            gc.enable()


def send_chunks(con, total: int, size: int):
    """The send table's rows as Arrow batches of `size`, read SEND_CHUNK_ROWS at a time, each
    chunk by a query of its own (a range of the temp table's rowids, which a CTAS numbers
    0..n-1).

    Not one streamed query: a streamed query keeps its transaction open until it is read
    to the end, and the run checkpoints while it sends (see flush in _apply), which needs
    no other transaction open (tried: the checkpoint ended the streaming transaction and
    the run failed). Each chunk's query ends its transaction when it is read."""
    if total and con.execute(f"SELECT max(rowid) + 1 FROM {SEND_TABLE}").fetchall()[0][0] != total:
        raise RuntimeError(f"{SEND_TABLE}: rowids are not 0..{total - 1}; nothing sent")  # never part of a plan
    step = max(size, SEND_CHUNK_ROWS // size * size)
    for lo in range(0, total, step):
        yield from con.sql(f"SELECT * FROM {SEND_TABLE} WHERE rowid >= {lo} AND rowid < {lo + step}"
                           ).to_arrow_table().to_batches(size)


def _apply(con, writer, spec: SyncSpec, destination: Destination, report: RunReport,
           progress: Callable[[int, int], None] | None) -> None:
    caps = destination.capabilities
    size = max(1, min(spec.batch_size or caps.max_batch_size, caps.max_batch_size))
    workers = max(1, caps.max_concurrency)
    names = list(spec.sent_fields())
    total = report.planned_total
    for op in spec.mode.send_operation, spec.mode.remove_operation:
        if op is not None and op not in caps.operations:
            raise DestinationError(f"{spec.name}: destination {destination.name!r} does not support {op.value}",
                                   retryable=False)
    # Unordered on purpose: a sort would hold the whole plan; one buffer per operation
    # (at most two per mode) batches it instead.
    catalog = con.execute("SELECT current_database()").fetchall()[0][0]
    # Materialised first: a send query streamed while every batch commits kept its join's
    # hash tables pinned beside the writes; under the memory cap each commit then evicted
    # and re-read them (1M upserts at 200 per call took minutes per 100k records).
    rows_to_send = con.execute(f"CREATE OR REPLACE TEMP TABLE {SEND_TABLE} AS "
                               f"{send_query(spec, PLAN_TABLE, report.run_id, catalog=catalog).sql('duckdb')}"
                               ).fetchall()[0][0]
    reader = send_chunks(con, rows_to_send, size)
    buffers: dict[Operation, list[dict]] = {}
    inflight: dict[cf.Future, tuple[Batch, list[dict]]] = {}
    sent = 0
    unflushed = 0  # state rows written since the last checkpoint
    abort: BaseException | None = None
    answered: list[tuple[pa.Table, pa.Table]] = []  # collected, not yet written (see flush)

    def collect(done) -> None:
        nonlocal abort
        for fut in done:
            batch, rows = inflight.pop(fut)
            try:
                results = fut.result()
            except DestinationError as e:
                if not e.retryable:
                    abort = abort or e
                    continue
                results = [RecordResult(r.key, ResultStatus.RETRYABLE, error=str(e)) for r in batch.records]
            except BaseException as e:  # a broken destination: stop, keep what was acknowledged
                abort = abort or e
                continue
            state_rows, log_rows, answers = _answered(spec, batch.operation, rows, results, report.run_id,
                                                      st.utcnow())
            for res in answers:
                bucket = {ResultStatus.OK: report.succeeded, ResultStatus.RETRYABLE: report.failed,
                          ResultStatus.REJECTED: report.rejected}[res.status]
                bucket[batch.operation.value] = bucket.get(batch.operation.value, 0) + 1
            answered.append((state_rows, log_rows))

    def flush(intent: list | None = None) -> None:
        """One transaction: the answers collected since the last flush (their state,
        changelog and the run's totals) and the pending marks of the batch about to be
        sent. Answers wait for it only while the next batch is prepared (nothing is sent
        in between): if the run dies there, those records are still pending and the next
        run sends them again, which the tool takes as a repeat."""
        nonlocal sent, unflushed
        writes = list(intent or [])
        for state_rows, log_rows in answered:
            writes += [("sync_state", state_rows, st.STATE_ARROW, True),
                       ("sync_changelog", log_rows, st.CHANGELOG_ARROW, False)]
        if not writes:
            return
        done = sum(len(state_rows) for state_rows, _ in answered)
        st.write_rows(writer, writes, then=(lambda: st.update_run(writer, report.run_id, _progress(report)))
                      if answered else None)
        answered.clear()
        # Until a checkpoint, what each commit changed in sync_state stays in memory and
        # cannot be evicted: the replaced rows' delete markers and undo versions, the new
        # rows, the key index's new entries (~0.7 KB per upserted record). Without it the
        # run's memory grew with the records it sent (the 1M bench's day-2 upsert of
        # 183,067 records ran out of memory under a 160 MB cap) rather than staying flat.
        # DuckDB's own trigger (checkpoint_threshold, a WAL size) is kept high: at its
        # default it checkpointed every few batches. The run checkpoints once the memory
        # its commits hold reaches CHECKPOINT_HELD_BYTES: an upsert's replaced rows hold
        # far more than an audience's new ones, so a row count alone either checkpoints an
        # audience run for nothing or lets an upsert run out of memory.
        unflushed += sum(len(rows) for name, rows, _, _ in writes if name == "sync_state")
        if unflushed >= CHECKPOINT_EVERY_ROWS or (
                unflushed >= CHECKPOINT_CHECK_ROWS and st.held_by_commits(writer) >= CHECKPOINT_HELD_BYTES):
            writer.execute("CHECKPOINT")
            unflushed = 0
        if sent // YOUNG_GC_EVERY != (sent + done) // YOUNG_GC_EVERY:
            young_gc()
        sent += done
        if progress and done:
            progress(sent, total)

    def send(batch: Batch) -> list[RecordResult]:
        return check_results(batch, destination.write(batch))

    prepare = getattr(destination, "prepare", None)
    columns = [(n, field_column(i)) for i, n in enumerate(names)]

    def fields(row: dict) -> dict:
        """The record's mapped fields, built once (prepare and the send share them)."""
        if "_fields" not in row:
            row["_fields"] = {n: row[c] for n, c in columns}
        return row["_fields"]

    def prepared(op: Operation, rows: list[dict]) -> list[dict]:
        """Ids the tool will know new records by, asked before they are sent and kept with
        the pending marks, so a removal can find a record whose add was never acknowledged.
        Records the tool cannot prepare get that answer now and are not sent."""
        new = [r for r in rows if not r["_destination_id"]]
        if not new or prepare is None:
            return rows
        batch = Batch(sync=spec.name, target=spec.object, operation=op, records=tuple(
            Record(key=r[KEY], fields=fields(r)) for r in new))
        try:
            answers = {res.key: res for res in check_results(batch, prepare(batch))}
        except DestinationError as e:
            if not e.retryable:
                raise
            answers = {r[KEY]: RecordResult(r[KEY], ResultStatus.RETRYABLE, error=str(e)) for r in new}
        refused = [r for r in new if answers[r[KEY]].status is not ResultStatus.OK]
        for r in refused:
            r["_unsent"] = True  # the tool was not asked to add it: not pending
        if refused:
            done: cf.Future = cf.Future()
            done.set_result([answers[r[KEY]] for r in refused])
            inflight[done] = (Batch(spec.name, spec.object, op, tuple(Record(r[KEY], {}) for r in refused)), refused)
        for r in new:
            r["_destination_id"] = answers[r[KEY]].destination_id or r["_destination_id"]
        gone = {r[KEY] for r in refused}
        return [r for r in rows if r[KEY] not in gone]

    # Pace batch starts at the tool's documented rate (a batch is at least one request);
    # the HTTP client's own limiter still governs retries and split batches.
    interval = 1.0 / caps.max_requests_per_second if caps.max_requests_per_second else 0.0
    next_start = time.monotonic()

    def submit(pool, op: Operation, rows: list[dict]) -> None:
        nonlocal next_start
        while len(inflight) >= workers:
            collect(cf.wait(inflight, return_when=cf.FIRST_COMPLETED).done)
        if abort:
            flush()
            return
        if interval:
            wait = next_start - time.monotonic()
            if wait > 0:
                flush()  # answers are not held through the pause
                time.sleep(wait)
            next_start = max(next_start, time.monotonic() - interval) + interval
        if spec.mode.removes and op not in REMOVE_OPS:
            rows = prepared(op, rows)
            flush(_intent(spec, op, rows, report.run_id))
            if not rows:
                return
        else:
            flush()
        records = [Record(key=r[KEY], fields={} if op in REMOVE_OPS else fields(r),
                          destination_id=r["_destination_id"], idempotency_key=r[IDEMPOTENCY]) for r in rows]
        batch = Batch(sync=spec.name, target=spec.object, operation=op, records=tuple(records))
        inflight[pool.submit(send, batch)] = (batch, rows)

    with young_gc_only() as young_gc, \
            cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"outflow-{spec.name}") as pool:
        try:
            for rb in reader:
                if abort:
                    break
                for row in rb.to_pylist():
                    op = Operation(row[OPERATION])
                    buf = buffers.setdefault(op, [])
                    buf.append(row)
                    if len(buf) >= size:
                        submit(pool, op, buffers.pop(op))
                    if abort:
                        break
            if not abort:
                for op, buf in list(buffers.items()):
                    submit(pool, op, buf)
        finally:
            while inflight:
                collect(cf.wait(inflight, return_when=cf.FIRST_COMPLETED).done)
            flush()
    if abort:
        raise abort
