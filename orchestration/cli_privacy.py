"""`outflow privacy report`: every deletion request, and per sync (destination) whether it
was carried out, when, or why not yet. Read from the warehouse (the deletion_requests
mart and outflow.deletion_log); never prints an email, only the request's hash id."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from orchestration import settings


class PrivacyUsageError(Exception):
    pass


def add_privacy_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("privacy", help="privacy: deletion requests and where each was carried out")
    p.add_argument("action", choices=["report"])
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--warehouse", help="DuckDB file (default: $OUTFLOW_WAREHOUSE or warehouse/outflow.duckdb)")
    p.set_defaults(run=run_privacy)


def _declared_sync_destinations(warehouse: Path) -> dict[str, str]:
    """sync -> destination of every valid declared sync; {} without a manifest."""
    from orchestration.syncs import declared_syncs

    try:
        specs, _ = declared_syncs(warehouse=warehouse)
    except FileNotFoundError:
        return {}
    return {s.name: s.destination for s in specs}


def deletion_report(warehouse: Path) -> list[dict]:
    """One entry per request, each with one row per sync: done / pending / failed."""
    import duckdb

    from orchestration.sync.deletions import REQUESTS_TABLE
    from orchestration.sync.plan import RULE_SCHEMA

    syncs = _declared_sync_destinations(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        catalog = con.execute("SELECT current_database()").fetchall()[0][0]
        tables = {(s, t) for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()}
        if (RULE_SCHEMA, REQUESTS_TABLE) not in tables:
            raise PrivacyUsageError(f"{RULE_SCHEMA}.{REQUESTS_TABLE} is not built: run `dbt build` first")
        requests = con.execute(
            f'SELECT request_id, profile_id, requested_at FROM "{catalog}".{RULE_SCHEMA}.{REQUESTS_TABLE} '
            "ORDER BY requested_at, request_id").fetchall()
        logged: dict[str, list[tuple]] = {}
        if ("outflow", "deletion_log") in tables:
            for row in con.execute(
                f'SELECT request_id, sync, destination, method, status, reason, attempts, done_at '
                f'FROM "{catalog}".outflow.deletion_log ORDER BY sync').fetchall():
                logged.setdefault(row[0], []).append(row[1:])
    report = []
    for request_id, profile_id, requested_at in requests:
        rows = {sync: {"sync": sync, "destination": dest, "method": method, "status": status, "reason": reason,
                       "attempts": attempts, "done_at": done_at}
                for sync, dest, method, status, reason, attempts, done_at in logged.get(request_id, [])}
        for sync, dest in syncs.items():
            rows.setdefault(sync, {"sync": sync, "destination": dest, "method": None, "status": "pending",
                                   "reason": "the sync has not run since the request", "attempts": 0,
                                   "done_at": None})
        statuses = {r["status"] for r in rows.values()}
        overall = "failed" if "failed" in statuses else ("pending" if "pending" in statuses else "done")
        report.append({"request_id": request_id, "profile_id": profile_id, "requested_at": requested_at,
                       "status": overall, "destinations": sorted(rows.values(), key=lambda r: (r["destination"], r["sync"]))})
    return report


def run_privacy(args: argparse.Namespace) -> int:
    from orchestration.cli_sync import UsageError, _console

    warehouse = Path(args.warehouse).expanduser().resolve() if args.warehouse else settings.warehouse_path()
    if not warehouse.exists():
        raise UsageError(f"warehouse {warehouse} does not exist: run `make demo` or `dbt build` first")
    try:
        report = deletion_report(warehouse)
    except PrivacyUsageError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"requests": report}, default=str, indent=2))
        return 0
    from rich.table import Table

    console = _console()
    table = Table(title=f"{len(report)} deletion request(s)")
    for col in ("request", "profile", "requested", "destination", "sync", "method", "status", "done", "reason"):
        table.add_column(col)
    for req in report:
        for i, row in enumerate(req["destinations"]):
            first = i == 0
            table.add_row(req["request_id"][:12] if first else "", (req["profile_id"] or "(no profile)") if first else "",
                          f"{req['requested_at']:%Y-%m-%d %H:%M}" if first and req["requested_at"] else "",
                          row["destination"], row["sync"], row["method"] or "", row["status"],
                          f"{row['done_at']:%Y-%m-%d %H:%M:%S}" if row["done_at"] else "", (row["reason"] or "")[:80])
    console.print(table)
    counts = {s: sum(r["status"] == s for r in report) for s in ("done", "pending", "failed")}
    console.print(f"done {counts['done']}, pending {counts['pending']}, failed {counts['failed']}")
    return 0
