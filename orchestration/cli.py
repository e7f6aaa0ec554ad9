"""The `outflow` command. One function registers each subcommand; one runs it."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from orchestration import settings
from orchestration.cli_privacy import add_privacy_commands
from orchestration.cli_score import add_score_file
from orchestration.cli_sync import UsageError, add_sync_commands
from orchestration.cli_webhooks import add_webhook_commands


class ArgumentError(Exception):
    """A bad command-line value; the message names the argument."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        self.exit(2, f"error: {message}\n")


def _positive_int(name: str, value: str | None, *, minimum: int = 1) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or number < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ArgumentError(f"{name} must be {kind}, got {value}")
    return number


def _start_date(value: str | None) -> date:
    if value is None:
        return datetime.now(timezone.utc).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ArgumentError(f"--start-date must be a date as YYYY-MM-DD, got {value}") from None


def add_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="write a realistic sample world into the raw.* tables (or move it on by one --day)",
        description=(
            "Without --day: replace every raw.* table with a fresh world of --profiles people and ~180 days of "
            "history before --start-date (default: today's UTC date; stored in generator_truth.runs). "
            "With --day D: append day D (days apply once, in order, starting at 1). Same --seed and "
            "--start-date give identical tables."
        ),
    )
    # Values are parsed by hand so every bad value gets one line naming the argument.
    p.add_argument("--profiles", help="number of people to generate (default 10000)")
    p.add_argument("--seed", help="random seed (default 42)")
    p.add_argument("--start-date", help="YYYY-MM-DD; history ends the day before (default: today, UTC)")
    p.add_argument("--day", help="apply day D (>= 1) to the existing world instead of generating one")
    p.add_argument("--warehouse", help="DuckDB file (default: $OUTFLOW_WAREHOUSE or warehouse/outflow.duckdb)")
    p.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from orchestration.generate import DayError, apply_day, generate_world

    day = _positive_int("--day", args.day)
    path = Path(args.warehouse).expanduser().resolve() if args.warehouse else settings.warehouse_path()
    console = Console()
    if day is not None:
        for flag, value in (("--profiles", args.profiles), ("--seed", args.seed), ("--start-date", args.start_date)):
            if value is not None:
                raise ArgumentError(f"{flag} cannot be combined with --day (a day step reuses the world's settings)")
        try:
            rows, seconds, run = apply_day(path, day)
        except DayError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        title = f"day {day} applied (seed {run['seed']}, start {run['start_date']})"
    else:
        profiles = _positive_int("--profiles", args.profiles) or 10_000
        seed = _positive_int("--seed", args.seed, minimum=0)
        seed = 42 if seed is None else seed
        start = _start_date(args.start_date)
        rows, seconds = generate_world(path, profiles, seed, start)
        title = f"generated {profiles:,} profiles (seed {seed}, start {start})"
    table = Table(title=f"{title} in {seconds:.1f}s")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in sorted(rows.items()):
        table.add_row(f"raw.{name}", f"{count:,}")
    console.print(table)
    console.print(f"warehouse: {path}", soft_wrap=True)
    return 0


def add_summary(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("summary", help="rows per mart, segment sizes, score distribution (no PII)")
    p.add_argument("--warehouse", help="DuckDB file (default: $OUTFLOW_WAREHOUSE or warehouse/outflow.duckdb)")
    p.set_defaults(run=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    from orchestration.summary import print_summary

    path = Path(args.warehouse).expanduser().resolve() if args.warehouse else settings.warehouse_path()
    if not path.exists():
        raise ArgumentError(f"--warehouse {path} does not exist: run `make demo` or `outflow generate` and `dbt build` first")
    print_summary(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="outflow", description="Warehouse-native reverse ETL for marketing.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_generate(sub)
    add_summary(sub)
    add_sync_commands(sub)
    add_privacy_commands(sub)
    add_score_file(sub)
    add_webhook_commands(sub)
    return parser


def configure_logging(level: str | None) -> None:
    """OUTFLOW_LOG_LEVEL=DEBUG (or INFO, WARNING...) sends Python logging to stderr.
    Every outflow logger writes without secrets or raw PII (docs/security.md)."""
    if not level:
        return
    if not isinstance(logging.getLevelName(level.upper()), int):
        raise ArgumentError(f"OUTFLOW_LOG_LEVEL={level!r}: use DEBUG, INFO, WARNING or ERROR")
    logging.basicConfig(level=level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(os.environ.get("OUTFLOW_LOG_LEVEL"))
        code = args.run(args)
    except (ArgumentError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
