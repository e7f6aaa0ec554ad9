"""Run the project's dbt against a throwaway DuckDB warehouse (tests only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"


def run_dbt(args: list[str], warehouse: Path, target: Path) -> subprocess.CompletedProcess:
    """`dbt <args>` with the warehouse and target path isolated; raises with dbt's output on failure."""
    env = dict(os.environ, OUTFLOW_WAREHOUSE=str(warehouse), DBT_TARGET_PATH=str(target),
               DBT_LOG_PATH=str(target / "logs"), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    proc = subprocess.run([str(DBT), *args, "--profiles-dir", "dbt_project"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"dbt {' '.join(args)} failed (exit {proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}")
    return proc
