"""Deletion requests, carried out by every sync in its destination before its plan runs.

For each request of the `deletion_requests` mart not yet done for this sync:
  - its profile goes into outflow.deleted_profiles, which every plan leaves out for good;
  - a destination that can erase a person (Operation.DELETE_PERSON: HubSpot GDPR delete,
    Mailchimp permanent delete, Klaviyo data-privacy deletion job, Salesforce delete) is
    asked to, by email, whether or not this sync ever sent the person;
  - any other destination (Meta, Google Ads, webhook, file) gets this sync's own record
    taken away (its remove operation, else DELETE) when sync state says the tool holds
    it; a person the sync never sent needs nothing (method 'none').
Each outcome lands in one transaction: outflow.deletion_log (done / pending / failed with
the reason), outflow.sync_changelog (action 'deletion') and the record's sync state
(removed). Anything not done is tried again on the next run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from sqlglot import exp

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
from orchestration.sync.plan import RULE_SCHEMA, RULE_TABLE
from orchestration.sync.spec import SyncSpec

REQUESTS_TABLE = "deletion_requests"  # the dbt mart, next to the contact rule
DELETION_ACTION = "deletion"

LOG_ARROW = pa.schema([
    ("request_id", pa.string()), ("sync", pa.string()), ("destination", pa.string()), ("profile_id", pa.string()),
    ("requested_at", pa.timestamp("us")), ("method", pa.string()), ("status", pa.string()), ("reason", pa.string()),
    ("attempts", pa.int32()), ("first_attempt_at", pa.timestamp("us")), ("done_at", pa.timestamp("us")),
    ("run_id", pa.string()),
])


class RuleTablesMissing(duckdb.Error):
    """The contact rule or the deletion requests are not built: no sync may run without them."""


@dataclass
class _Request:
    request_id: str
    email: str | None
    profile_id: str | None
    requested_at: object
    attempts: int
    first_attempt_at: object


def require_rule_tables(con: duckdb.DuckDBPyConnection) -> None:
    found = {t for (t,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
        "AND table_schema = ? AND table_name IN (?, ?)", [RULE_SCHEMA, RULE_TABLE, REQUESTS_TABLE]).fetchall()}
    missing = [t for t in (RULE_TABLE, REQUESTS_TABLE) if t not in found]
    if missing:
        raise RuleTablesMissing(
            f"{', '.join(f'{RULE_SCHEMA}.{t}' for t in missing)} not built: every sync reads the contact rule and "
            f"the deletion requests; run `dbt build -s {' '.join(missing)}`")


def _relation(con, name: str) -> str:
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    return f'"{catalog}".{RULE_SCHEMA}.{name}'


def record_deleted_profiles(con: duckdb.DuckDBPyConnection) -> int:
    """Every deletion-requested profile joins outflow.deleted_profiles (kept for good)."""
    return len(con.execute(
        f"INSERT OR IGNORE INTO {st.table(con, 'deleted_profiles')} (profile_id, request_id, recorded_at) "
        f"SELECT profile_id, min(request_id), ? FROM {_relation(con, REQUESTS_TABLE)} "
        "WHERE profile_id IS NOT NULL GROUP BY profile_id RETURNING profile_id", [st.utcnow()]).fetchall())


def pending_requests(con: duckdb.DuckDBPyConnection, sync: str) -> list[_Request]:
    return [_Request(*r) for r in con.execute(
        f"SELECT r.request_id, r.email, r.profile_id, r.requested_at, coalesce(l.attempts, 0), l.first_attempt_at "
        f"FROM {_relation(con, REQUESTS_TABLE)} AS r LEFT JOIN {st.table(con, 'deletion_log')} AS l "
        "ON l.request_id = r.request_id AND l.sync = ? WHERE l.status IS NULL OR l.status <> 'done' "
        "ORDER BY r.requested_at, r.request_id", [sync]).fetchall()]


def _record_keys(con, spec: SyncSpec, profile_ids: list[str]) -> dict[str, list[str]]:
    """profile_id -> this sync's record keys. Keyed by the profile itself, or through the
    model's profile_key column when the primary key is something else."""
    if spec.primary_key == spec.profile_key:
        return {p: [p] for p in profile_ids}
    catalog = con.execute("SELECT current_database()").fetchone()[0]
    varchar = exp.DataType.build("VARCHAR")
    pk = exp.cast(exp.column(spec.primary_key, quoted=True), varchar)
    prof = exp.cast(exp.column(spec.profile_key, quoted=True), varchar)
    query = (exp.select(prof, pk).distinct()
             .from_(exp.table_(spec.model_table, db=spec.model_schema, catalog=catalog, quoted=True))
             .where(exp.In(this=prof.copy(), expressions=[exp.Literal.string(p) for p in profile_ids])))
    out: dict[str, list[str]] = {p: [] for p in profile_ids}
    for profile, key in con.execute(query.sql("duckdb")).fetchall():
        if key is not None:
            out[profile].append(key)
    return out


def _in_tool(con, sync: str, keys: Iterable[str]) -> dict[str, dict]:
    """State rows of keys the tool may hold (acknowledged, or sent with no answer)."""
    keys = list(keys)
    if not keys:
        return {}
    cur = con.execute(
        f"SELECT record_key, destination_id, status FROM {st.table(con, 'sync_state')} WHERE sync = ? "
        "AND record_key IN (SELECT unnest(?)) AND status <> 'removed' "
        "AND (first_synced_at IS NOT NULL OR status = 'pending')", [sync, keys])
    return {k: {"destination_id": d, "status": s} for k, d, s in cur.fetchall()}


def _remove_operation(spec: SyncSpec, destination: Destination) -> Operation | None:
    ops = destination.capabilities.operations
    for op in (spec.mode.remove_operation, Operation.DELETE):
        if op is not None and op in ops:
            return op
    return None


def _send(spec: SyncSpec, destination: Destination, op: Operation, records: list[Record]) -> list[RecordResult]:
    size = max(1, destination.capabilities.max_batch_size)
    results: list[RecordResult] = []
    for start in range(0, len(records), size):
        batch = Batch(sync=spec.name, target=spec.object, operation=op, records=tuple(records[start : start + size]))
        try:
            results += check_results(batch, destination.write(batch))
        except DestinationError as e:
            status = ResultStatus.RETRYABLE if e.retryable else ResultStatus.REJECTED
            results += [RecordResult(r.key, status, error=str(e)) for r in batch.records]
    return results


def carry_out_deletions(con: duckdb.DuckDBPyConnection, spec: SyncSpec, destination: Destination,
                        run_id: str) -> dict[str, int]:
    """Carry out this sync's share of every open deletion request; counts per outcome."""
    record_deleted_profiles(con)
    requests = pending_requests(con, spec.name)
    if not requests:
        return {}
    profile_ids = sorted({r.profile_id for r in requests if r.profile_id})
    keys_of = _record_keys(con, spec, profile_ids) if profile_ids else {}
    in_tool = _in_tool(con, spec.name, (k for keys in keys_of.values() for k in keys))
    erase = Operation.DELETE_PERSON in destination.capabilities.operations
    remove_op = None if erase else _remove_operation(spec, destination)

    # what to send: request -> [(record, state keys it settles)]
    plan: dict[str, list[tuple[Record, list[str]]]] = {}
    for req in requests:
        keys = keys_of.get(req.profile_id, []) if req.profile_id else []
        if erase:
            key = req.profile_id or f"request:{req.request_id}"
            plan[req.request_id] = [(Record(key=key, fields={"email": req.email}), [k for k in keys if k in in_tool])]
        elif remove_op is not None:
            plan[req.request_id] = [(Record(key=k, fields={}, destination_id=in_tool[k]["destination_id"]), [k])
                                    for k in keys if k in in_tool]
        else:
            plan[req.request_id] = [(Record(key=k, fields={}), [k]) for k in keys if k in in_tool]

    op = Operation.DELETE_PERSON if erase else remove_op
    # one record per key (two requests of one person erase them once)
    records = list({rec.key: rec for entries in plan.values() for rec, _ in entries}.values())
    results: dict[str, RecordResult] = {}
    if records and op is not None:
        results = {r.key: r for r in _send(spec, destination, op, records)}
    elif records:  # the tool holds the person and this destination can take nothing away
        results = {rec.key: RecordResult(rec.key, ResultStatus.REJECTED, error=(
            f"destination {destination.name!r} can neither delete a person nor remove this sync's records: "
            "remove the person in the tool by hand")) for rec in records}

    now = st.utcnow()
    log_rows, change_rows, state_rows = [], [], []
    counts: dict[str, int] = {}
    for req in requests:
        entries = plan[req.request_id]
        answers = [results[rec.key] for rec, _ in entries]
        method = "delete_person" if erase else ("remove" if entries else "none")
        if any(a.status is ResultStatus.REJECTED for a in answers):
            status = "failed"
        elif any(a.status is ResultStatus.RETRYABLE for a in answers):
            status = "pending"
        else:
            status = "done"
        reasons = sorted({st.redact(a.error) for a in answers if a.status is not ResultStatus.OK and a.error})
        reason = "; ".join(reasons) or ("never sent by this sync" if method == "none" else None)
        log_rows.append({
            "request_id": req.request_id, "sync": spec.name, "destination": spec.destination,
            "profile_id": req.profile_id, "requested_at": req.requested_at, "method": method, "status": status,
            "reason": reason, "attempts": req.attempts + 1, "first_attempt_at": req.first_attempt_at or now,
            "done_at": now if status == "done" else None, "run_id": run_id,
        })
        counts[status] = counts.get(status, 0) + 1
        for (rec, settles), answer in zip(entries, answers):
            change_rows.append({
                "run_id": run_id, "sync": spec.name, "record_key": rec.key, "action": DELETION_ACTION,
                "operation": op.value if op else "none", "status": answer.status.value, "fields_hash": None,
                "destination_id": None, "idempotency_key": None, "error": st.redact(answer.error), "at": now,
                "key_hash": st.key_hash(rec.key),
            })
            if answer.status is ResultStatus.OK:
                state_rows += [{
                    "sync": spec.name, "record_key": k, "fields_hash": None, "destination_id": None,
                    "status": "removed", "attempts": 0, "last_error": None, "first_synced_at": None,
                    "last_synced_at": now, "last_attempt_at": now, "last_operation": op.value if op else None,
                    "run_id": run_id, "idempotency_key": None,
                } for k in settles]
    _commit(con, state_rows, change_rows, log_rows)
    return counts


def _commit(con, state_rows: list[dict], change_rows: list[dict], log_rows: list[dict]) -> None:
    st.write_rows(con, [("sync_state", state_rows, st.STATE_ARROW, True),
                        ("sync_changelog", change_rows, st.CHANGELOG_ARROW, False),
                        ("deletion_log", log_rows, LOG_ARROW, True)])
