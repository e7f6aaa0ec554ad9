"""`outflow syncs | plan | run | status | sandbox`: the sync commands.

Exit codes scripts can trust:
  0  done (a run that succeeded, a dry run, a listing with every sync valid)
  1  failed: a run that failed, or a sync definition that is invalid
  2  bad usage (unknown sync, bad argument)
  3  refused by a guardrail (nothing was sent; rerun with --force if intended)
  4  partial: the run finished but some records failed or were rejected
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from orchestration import settings

EXIT_BY_STATUS = {"succeeded": 0, "dry_run": 0, "failed": 1, "refused": 3, "partial": 4}


class UsageError(Exception):
    """Reported as one line and exit code 2."""


def _console():
    """A rich console; wide when output is not a terminal, so piped tables are not cut."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)


def _warehouse(args: argparse.Namespace) -> Path:
    return Path(args.warehouse).expanduser().resolve() if getattr(args, "warehouse", None) else settings.warehouse_path()


def _add_warehouse(p: argparse.ArgumentParser) -> None:
    p.add_argument("--warehouse", help="DuckDB file (default: $OUTFLOW_WAREHOUSE or warehouse/outflow.duckdb)")


def add_sync_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("syncs", help="list the declared syncs and any invalid definitions")
    p.add_argument("--json", action="store_true", help="print the syncs and errors as JSON")
    _add_warehouse(p)
    p.set_defaults(run=run_syncs)

    p = sub.add_parser("plan", help="what a run would send: counts per operation and a sample (nothing sent)")
    p.add_argument("sync")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--full-resync", action="store_true", help="plan a full resync")
    _add_warehouse(p)
    p.set_defaults(run=run_plan)

    p = sub.add_parser("run", help="run one sync")
    p.add_argument("sync")
    p.add_argument("--dry-run", action="store_true", help="plan only; nothing is sent")
    p.add_argument("--full-resync", action="store_true", help="re-send everything in the model and rebuild state")
    p.add_argument("--force", action="store_true", help="run even when a guardrail refuses")
    p.add_argument("--json", action="store_true", help="print the run report as JSON")
    _add_warehouse(p)
    p.set_defaults(run=run_run)

    p = sub.add_parser("status", help="recent runs, counts, and why records failed")
    p.add_argument("sync", nargs="?")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=10, help="runs per sync (default 10)")
    _add_warehouse(p)
    p.set_defaults(run=run_status)

    p = sub.add_parser("sandbox", help="local emulators of the destinations, on 127.0.0.1")
    p.add_argument("action", choices=["serve"])
    p.add_argument("--only", help="comma-separated sandboxes to start (default: all)")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    p.set_defaults(run=run_sandbox)


def _spec(name: str, warehouse: Path):
    from orchestration.syncs import find_sync

    try:
        return find_sync(name, warehouse)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    except LookupError as exc:
        raise UsageError(str(exc)) from None


def run_syncs(args: argparse.Namespace) -> int:
    from rich.table import Table

    from orchestration.syncs import declared_syncs

    try:
        specs, errors = declared_syncs(warehouse=_warehouse(args))
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps({"syncs": [s.model_dump(mode="json") for s in specs],
                          "errors": [{"sync": e.sync, "key": e.key, "message": e.message} for e in errors]},
                         indent=2))
        return 1 if errors else 0
    console = _console()
    table = Table(title=f"{len(specs)} syncs")
    for col in ("sync", "model", "destination", "object", "mode", "channel", "trigger"):
        table.add_column(col)
    for s in specs:
        trigger = ", ".join(filter(None, [s.trigger.cron and f"cron {s.trigger.cron}",
                                          s.trigger.on_upstream_change and "on upstream change"]))
        channel = s.channel.value + (" (consent override)" if s.consent_override else "")
        table.add_row(s.name, s.model, s.destination, s.object, s.mode.value, channel, trigger or "manual")
    console.print(table)
    for error in errors:
        console.print(f"[red]invalid[/red] {error}", soft_wrap=True)
    return 1 if errors else 0


def _report_table(report) -> object:
    from rich.table import Table

    table = Table(title=f"{report.sync}: {report.status} ({report.duration_seconds:.1f}s)")
    for col in ("operation", "planned", "succeeded", "failed", "rejected"):
        table.add_column(col, justify="right" if col != "operation" else "left")
    for op in sorted(report.planned):
        table.add_row(op, *(f"{getattr(report, k).get(op, 0):,}" for k in ("planned", "succeeded", "failed", "rejected")))
    return table


def _print_report(report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_dict(), default=str, indent=2))
        return
    console = _console()
    console.print(_report_table(report))
    actions = ", ".join(f"{a} {n:,}" for a, n in sorted(report.actions.items()) if n) or "nothing to do"
    held = f"; newly held out {report.holdout_assigned:,}" if report.holdout_assigned else ""
    console.print(f"model rows {report.model_rows:,}; in destination before {report.in_destination:,}; {actions}{held}")
    if report.consent_override:
        console.print(f"[yellow]consent override ({report.channel}): {report.consent_override}[/yellow]", soft_wrap=True)
    if report.deletions:
        done = ", ".join(f"{s} {n:,}" for s, n in sorted(report.deletions.items()))
        console.print(f"deletion requests: {done} (outflow privacy report)")
    if report.sample and (report.dry_run or report.status == "refused"):
        for op, keys in sorted(report.sample.items()):
            console.print(f"sample {op}: {', '.join(keys)}", soft_wrap=True)
    if report.error:
        console.print(f"[yellow]{report.error}[/yellow]", soft_wrap=True)


def _execute(args: argparse.Namespace, *, dry_run: bool) -> int:
    from destinations.registry import RegistryError, build_destination
    from orchestration.sync.apply import run_sync

    warehouse = _warehouse(args)
    if not warehouse.exists():
        raise UsageError(f"warehouse {warehouse} does not exist: run `make demo` or `dbt build` first")
    spec = _spec(args.sync, warehouse)
    if dry_run:
        # A plan sends nothing: it needs no destination, and so no secret.
        report = run_sync(spec, None, warehouse, dry_run=True, full_resync=getattr(args, "full_resync", False))
        _print_report(report, getattr(args, "json", False))
        return EXIT_BY_STATUS.get(report.status, 1)
    try:
        destination = build_destination(spec.destination)
    except RegistryError as exc:
        raise UsageError(str(exc)) from None
    try:
        report = _run_with_progress(
            run_sync, spec, destination, warehouse, dry_run=dry_run,
            full_resync=getattr(args, "full_resync", False), force=getattr(args, "force", False),
            quiet=getattr(args, "json", False),
        )
    finally:
        destination.close()
    _print_report(report, getattr(args, "json", False))
    return EXIT_BY_STATUS.get(report.status, 1)


def _run_with_progress(run_sync, spec, destination, warehouse, *, quiet: bool, **kwargs):
    if quiet or not sys.stderr.isatty():
        return run_sync(spec, destination, warehouse, **kwargs)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(f"sync {spec.name}", total=None)

        def progress(sent: int, total: int) -> None:
            bar.update(task, completed=sent, total=total)

        return run_sync(spec, destination, warehouse, progress=progress, **kwargs)


def run_plan(args: argparse.Namespace) -> int:
    return _execute(args, dry_run=True)


def run_run(args: argparse.Namespace) -> int:
    return _execute(args, dry_run=args.dry_run)


def run_status(args: argparse.Namespace) -> int:
    import duckdb

    warehouse = _warehouse(args)
    if not warehouse.exists():
        raise UsageError(f"warehouse {warehouse} does not exist")
    where, params = ("where sync = ?", [args.sync]) if args.sync else ("", [])
    with duckdb.connect(str(warehouse), read_only=True) as con:
        catalog = con.execute("select current_database()").fetchall()[0][0]
        has_tables = con.execute(
            "select count(*) from information_schema.tables where table_schema = 'outflow' "
            "and table_name in ('sync_runs', 'sync_state')").fetchall()[0][0] == 2
        if not has_tables:
            runs, failures = [], []
        else:
            runs = con.execute(
                f"""select sync, run_id, status, started_at, duration_seconds, planned_total, succeeded_total,
                           failed_total, rejected_total, error
                    from (select *, row_number() over (partition by sync order by started_at desc) as n
                          from "{catalog}".outflow.sync_runs {where})
                    where n <= ? order by sync, started_at desc""", [*params, args.limit]).fetchall()
            failures = con.execute(
                f"""select sync, status, coalesce(last_error, '(no reason given)') as reason, count(*) as records
                    from "{catalog}".outflow.sync_state
                    {where + ' and' if where else 'where'} status in ('failed', 'rejected', 'pending')
                    group by all order by sync, records desc""", params).fetchall()
    if args.sync and not runs:
        raise UsageError(f"no runs recorded for sync {args.sync!r}")
    if args.json:
        cols = ["sync", "run_id", "status", "started_at", "duration_seconds", "planned", "succeeded", "failed",
                "rejected", "error"]
        print(json.dumps({"runs": [dict(zip(cols, r)) for r in runs],
                          "failures": [dict(zip(["sync", "status", "reason", "records"], f)) for f in failures]},
                         default=str, indent=2))
        return 0
    from rich.table import Table

    console = _console()
    table = Table(title="recent runs")
    for col in ("sync", "started", "status", "seconds", "planned", "ok", "failed", "rejected", "note"):
        table.add_column(col)
    for sync, _run_id, status, started, secs, planned, ok, failed, rejected, error in runs:
        table.add_row(sync, f"{started:%Y-%m-%d %H:%M:%S}", status, f"{secs or 0:.1f}", *(f"{n or 0:,}" for n in
                      (planned, ok, failed, rejected)), (error or "")[:80])
    console.print(table)
    if failures:
        reasons = Table(title="records not synced, by reason")
        for col in ("sync", "status", "reason", "records"):
            reasons.add_column(col)
        for sync, status, reason, n in failures:
            reasons.add_row(sync, status, reason[:100], f"{n:,}")
        console.print(reasons)
    return 0


def run_sandbox(args: argparse.Namespace) -> int:
    from destinations.sandbox.serve import SANDBOXES, start_all, stop_all

    names = args.only.split(",") if args.only else None
    unknown = sorted(set(names or []) - set(SANDBOXES))
    if unknown:
        raise UsageError(f"--only: unknown sandbox {unknown[0]!r} (known: {', '.join(SANDBOXES)})")
    try:
        sandboxes = start_all(os.environ, names)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"could not bind a sandbox port ({exc.strerror}): is another sandbox running?") from None
    for name, sandbox in sandboxes.items():
        print(f"{name} sandbox listening on {sandbox.url}", flush=True)
    try:
        serve_until_stopped(args.seconds)
    finally:
        stop_all(sandboxes)
    return 0


def serve_until_stopped(seconds: float | None) -> None:
    """Block until Ctrl-C (or `seconds`, for tests and trials) while servers run on their threads."""
    try:
        deadline = time.monotonic() + seconds if seconds else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
