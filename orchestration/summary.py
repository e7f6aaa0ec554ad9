"""`outflow summary`: what the marts hold, in counts only (no emails, phones or names)."""

from __future__ import annotations

from pathlib import Path

import duckdb
from rich.console import Console
from rich.table import Table

MARTS = ("profiles", "identity_map", "consent", "lead_scores", "segment_definitions", "segment_memberships")


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "select table_name from information_schema.tables where table_schema = 'main'"
    ).fetchall()
    return {name for (name,) in rows}


def _table(title: str, columns: list[str], rows: list[tuple]) -> Table:
    table = Table(title=title, title_justify="left")
    for i, column in enumerate(columns):
        numeric = all(isinstance(row[i], (int, float)) for row in rows if row[i] is not None)
        table.add_column(column, justify="right" if numeric and rows else "left")
    for row in rows:
        table.add_row(*("" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    return table


def summary_tables(con: duckdb.DuckDBPyConnection) -> list[Table]:
    """The summary as rich tables; marts not built yet are listed as missing."""
    present = _existing_tables(con)
    out = [
        _table(
            "Rows per mart",
            ["mart", "rows"],
            [
                (name, con.execute(f'select count(*) from "{name}"').fetchone()[0] if name in present else "not built")
                for name in MARTS
            ],
        )
    ]
    if "segment_memberships" in present:
        out.append(
            _table(
                "Segments",
                ["segment", "members", "primary for", "priority", "owner"],
                # every declared segment, so an empty one shows as 0 rather than vanishing
                con.execute(
                    """
                    with members as (
                        select segment, count(*) as n, count(case when is_primary then 1 end) as primary_n
                        from segment_memberships group by segment
                    )
                    select d.segment, coalesce(m.n, 0), coalesce(m.primary_n, 0), d.priority, d.owner
                    from segment_definitions d left join members m on d.segment = m.segment
                    order by d.priority, d.segment
                    """
                    if "segment_definitions" in present
                    else """
                    select segment, count(*), count(case when is_primary then 1 end), min(priority), min(owner)
                    from segment_memberships group by segment order by min(priority), segment
                    """
                ).fetchall(),
            )
        )
    if "lead_scores" in present:
        out.append(
            _table(
                "Lead grades",
                ["grade", "profiles", "min score", "max score"],
                con.execute(
                    "select grade, count(*), min(score), max(score) from lead_scores group by grade order by grade"
                ).fetchall(),
            )
        )
        quantiles = con.execute(
            """
            select quantile_cont(score, [0.1, 0.25, 0.5, 0.75, 0.9, 0.99]), avg(score)
            from lead_scores
            """
        ).fetchone()
        if quantiles[0] is not None:
            labels = ["p10", "p25", "p50", "p75", "p90", "p99"]
            out.append(
                _table(
                    "Lead score quantiles",
                    ["quantile", "score"],
                    [(label, round(value, 1)) for label, value in zip(labels, quantiles[0])]
                    + [("mean", round(quantiles[1], 1))],
                )
            )
    if "consent" in present:
        out.append(
            _table(
                "Consent",
                ["channel", "status", "reason", "profiles"],
                con.execute(
                    "select channel, status, reason, count(*) from consent group by all order by all"
                ).fetchall(),
            )
        )
    return out


def print_summary(warehouse_path: str | Path, console: Console | None = None) -> None:
    """Print rows per mart, segment sizes, score distribution and consent counts."""
    path = Path(warehouse_path)
    console = console or Console()
    if not path.exists():
        raise FileNotFoundError(
            f"warehouse {path} does not exist: run `outflow generate` and `dbt build` first "
            "(or set OUTFLOW_WAREHOUSE to your warehouse file)"
        )
    with duckdb.connect(str(path), read_only=True) as con:
        console.print(f"[bold]outflow summary[/bold] of {path}")
        for table in summary_tables(con):
            console.print(table)
