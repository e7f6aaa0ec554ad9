"""Shared fixtures: one generated world and one dbt build for the whole session.

Every test that needs the marts reads `built_warehouse`; nothing else runs `dbt build`
on the shared file. Tests that change data copy it first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
# Small enough for the 10-minute budget; big enough for Splink to train, for
# every segment to have members, and for rare key collisions to show up.
SESSION_PROFILES = 10_000
SESSION_SEED = 7
SESSION_START_DATE = "2026-01-01"


def run_cmd(
    args: list[str], warehouse: Path, cwd: Path = REPO_ROOT, check: bool = True, **env_extra: str
) -> subprocess.CompletedProcess:
    """Run an outflow or dbt command against `warehouse`; fail the test with its output."""
    env = {**os.environ, "OUTFLOW_WAREHOUSE": str(warehouse), **env_extra}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-8000:]}"
            f"\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def dbt(
    args: list[str], warehouse: Path, target: Path, project: Path = REPO_ROOT, check: bool = True, **env_extra: str
) -> subprocess.CompletedProcess:
    """Run dbt on `project` (the repo, or a copy of it) with its own warehouse and target."""
    return run_cmd(
        [str(VENV_BIN / "dbt"), *args, "--project-dir", str(project),
         "--profiles-dir", str(project / "dbt_project")],
        warehouse,
        cwd=project,
        check=check,
        DBT_TARGET_PATH=str(target),
        DBT_LOG_PATH=str(target / "logs"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        **env_extra,
    )


def generate(warehouse: Path, profiles: int, seed: int, *extra: str) -> None:
    run_cmd(
        [str(VENV_BIN / "outflow"), "generate", "--profiles", str(profiles), "--seed", str(seed),
         "--start-date", SESSION_START_DATE, *extra],
        warehouse,
    )


def pytest_configure(config):
    # dagster-dbt loads target/manifest.json at import: prepare it once, up front.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    subprocess.run(
        [str(VENV_BIN / "dbt"), "parse", "--quiet", "--profiles-dir", str(REPO_ROOT / "dbt_project")],
        cwd=REPO_ROOT,
        check=True,
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"third-party test data not found at {SHARED_DATA} (only CI and dev machines have ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory) -> Path:
    """A generated world (day 0), built by one `dbt build` (tests included).

    "Now" is pinned to the world's start date, so recency windows see its history.
    """
    root = tmp_path_factory.mktemp("built")
    warehouse = root / "outflow.duckdb"
    generate(warehouse, SESSION_PROFILES, SESSION_SEED)
    dbt(["build", "--vars", f"{{outflow_as_of: '{SESSION_START_DATE}'}}"], warehouse, root / "target")
    return warehouse


@pytest.fixture
def warehouse_copy(built_warehouse, tmp_path) -> Path:
    """A private copy of the built warehouse for tests that write to it."""
    copy = tmp_path / "outflow.duckdb"
    shutil.copy(built_warehouse, copy)
    return copy


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()
