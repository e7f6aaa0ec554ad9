"""DuckDB side: the raw contract tables, the ground-truth schema, and appends in a fixed order."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

RAW = "raw"
CATALOG = "outflow_generator_target"
TRUTH = "generator_truth"
RAW_TABLES: dict[str, dict[str, str]] = {
    "crm_contacts": {
        "contact_id": "VARCHAR", "source_system": "VARCHAR", "email": "VARCHAR", "phone": "VARCHAR",
        "first_name": "VARCHAR", "last_name": "VARCHAR", "street_address": "VARCHAR", "city": "VARCHAR",
        "postal_code": "VARCHAR", "country": "VARCHAR", "date_of_birth": "DATE", "company": "VARCHAR",
        "job_title": "VARCHAR", "industry": "VARCHAR", "employee_count": "INTEGER", "lead_source": "VARCHAR",
        "lifecycle_stage": "VARCHAR", "created_at": "TIMESTAMP", "updated_at": "TIMESTAMP",
    },
    "web_events": {
        "event_id": "VARCHAR", "contact_id": "VARCHAR", "anonymous_id": "VARCHAR", "email": "VARCHAR",
        "event_type": "VARCHAR", "page_url": "VARCHAR", "occurred_at": "TIMESTAMP",
    },
    "email_events": {
        "event_id": "VARCHAR", "email": "VARCHAR", "campaign_id": "VARCHAR", "event_type": "VARCHAR",
        "occurred_at": "TIMESTAMP",
    },
    "orders": {
        "order_id": "VARCHAR", "contact_id": "VARCHAR", "email": "VARCHAR", "amount": "DOUBLE",
        "currency": "VARCHAR", "status": "VARCHAR", "ordered_at": "TIMESTAMP",
    },
    "consent_events": {
        "email": "VARCHAR", "phone": "VARCHAR", "channel": "VARCHAR", "status": "VARCHAR", "source": "VARCHAR",
        "occurred_at": "TIMESTAMP",
    },
    "deletion_requests": {"email": "VARCHAR", "requested_at": "TIMESTAMP"},
    "conversions": {"contact_id": "VARCHAR", "email": "VARCHAR", "converted_at": "TIMESTAMP", "value": "DOUBLE"},
}


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


class Warehouse:
    """One short-lived connection; appends keep the caller's row order (so reruns are identical)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Attached under a fixed name: DuckDB names the catalog after the file, and a
        # warehouse called raw.duckdb (or generator_truth.duckdb) made `raw.x` ambiguous.
        self.con = duckdb.connect()
        self.run(f"ATTACH '{_sql_string(str(path))}' AS {CATALOG}")
        self.run(f"USE {CATALOG}")
        self.run("SET preserve_insertion_order = true")

    def run(self, sql: str, params: list | None = None) -> list:
        """Execute and drain the result (DuckDB 2 refuses new work while a result is pending)."""
        return self.con.execute(sql, params or []).fetchall()

    def run_with(self, frame: pl.DataFrame, sql: str) -> None:
        """Run `sql` with `frame` visible as the relation `_frame`."""
        self.con.register("_frame", frame.to_arrow())
        try:
            self.run(sql)
        finally:
            self.con.unregister("_frame")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def reset_raw(self) -> None:
        self.run(f"CREATE SCHEMA IF NOT EXISTS {RAW}")
        for table, cols in RAW_TABLES.items():
            body = ", ".join(f"{c} {t}" for c, t in cols.items())
            self.run(f"CREATE OR REPLACE TABLE {RAW}.{table} ({body})")

    def append(self, table: str, frame: pl.DataFrame) -> int:
        cols = RAW_TABLES[table]
        select = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in cols.items())
        self.run_with(frame.select(list(cols)), f"INSERT INTO {RAW}.{table} SELECT {select} FROM _frame")
        return len(frame)

    def replace_truth(self, table: str, frame: pl.DataFrame) -> None:
        self.run(f"CREATE SCHEMA IF NOT EXISTS {TRUTH}")
        self.run_with(frame, f"CREATE OR REPLACE TABLE {TRUTH}.{table} AS SELECT * FROM _frame")

    def append_truth(self, table: str, frame: pl.DataFrame) -> None:
        self.run_with(frame, f"INSERT INTO {TRUTH}.{table} SELECT * FROM _frame")

    def read(self, sql: str) -> pl.DataFrame:
        return self.con.sql(sql).pl()

    def has_table(self, schema: str, table: str) -> bool:
        return bool(
            self.run("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?", [schema, table])[0][0]
        )


def with_ids(frame: pl.DataFrame, column: str, prefix: str, day: int, offset: int) -> pl.DataFrame:
    """Sequential ids like 'we-000-000000123'; day in the id keeps later days clear of earlier ones."""
    seq = (pl.int_range(pl.len()) + offset).cast(pl.String).str.zfill(9)
    return frame.with_columns(pl.concat_str([pl.lit(f"{prefix}-{day:03d}-"), seq]).alias(column))
