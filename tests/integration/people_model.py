"""The small model table the sync engine tests sync from: people with an email, a first
name, a score and a consent flag, written to a real DuckDB file, with a contact rule
that lets everyone through (the rule itself is tested in test_consent_*.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from tests.contact_rule import allow_everyone

SCHEMA = pa.schema([("profile_id", pa.string()), ("email", pa.string()), ("first_name", pa.string()),
                    ("score", pa.int64()), ("consent", pa.string())])


def rows(n: int, start: int = 0, score: int = 1) -> list[dict]:
    return [{"profile_id": f"p{i:05d}", "email": f"person{i}@example.com", "first_name": f"Name{i}",
             "score": score, "consent": "granted"} for i in range(start, start + n)]


def set_model(warehouse: Path, model_rows: list[dict]) -> None:
    model_arrow = pa.Table.from_pylist(model_rows, schema=SCHEMA)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE OR REPLACE TABLE main.people AS SELECT * FROM model_arrow")
        allow_everyone(con)  # the contact rule every plan reads: everyone, on every channel


def people_warehouse(tmp_path: Path, n: int) -> Path:
    """A warehouse file holding `rows(n)` as the model (the sync tests' `wh` fixture)."""
    w = tmp_path / "outflow.duckdb"
    set_model(w, rows(n))
    return w
