"""Where things are. One place resolves the warehouse path for every command."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT
DBT_PROFILES_DIR = REPO_ROOT / "dbt_project"
DEFAULT_WAREHOUSE = REPO_ROOT / "warehouse" / "outflow.duckdb"


def warehouse_path() -> Path:
    """The DuckDB file every command uses: $OUTFLOW_WAREHOUSE, else warehouse/outflow.duckdb."""
    configured = os.environ.get("OUTFLOW_WAREHOUSE")
    return Path(configured).expanduser().resolve() if configured else DEFAULT_WAREHOUSE


def as_of_from_meta(configured: dict | None) -> datetime:
    """A dbt Python model's outflow_as_of, from its meta `as_of` (the var; naive UTC, like
    the outflow_as_of() macro), else the environment variable OUTFLOW_AS_OF; now when
    neither is set. The environment is read here, when the model runs (dbt-duckdb runs
    Python models in dbt's own process), not in the yml: dbt re-parses a yml whose
    env_var changed, with every test in it."""
    blank = ("", "None", "null")
    raw = (configured or {}).get("as_of")
    text = "" if raw is None else str(raw).strip()
    if text in blank:
        text = os.environ.get("OUTFLOW_AS_OF", "").strip()
    if text in blank:
        return datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        return datetime.fromisoformat(text.replace("T", " "))
    except ValueError:
        raise ValueError(f"var outflow_as_of (or env OUTFLOW_AS_OF) must be an ISO date or timestamp such as '2025-06-30', got {text!r}")
