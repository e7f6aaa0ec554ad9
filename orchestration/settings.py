"""Where things are. One place resolves the warehouse path for every command."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT
DBT_PROFILES_DIR = REPO_ROOT / "dbt_project"
DEFAULT_WAREHOUSE = REPO_ROOT / "warehouse" / "outflow.duckdb"


def warehouse_path() -> Path:
    """The DuckDB file every command uses: $OUTFLOW_WAREHOUSE, else warehouse/outflow.duckdb."""
    configured = os.environ.get("OUTFLOW_WAREHOUSE")
    return Path(configured).expanduser().resolve() if configured else DEFAULT_WAREHOUSE
