"""The dbt project as Dagster assets: raw sources -> staging -> intermediate -> marts.

The manifest is prepared by `make parse` (and by the test session), never here:
importing this module must not run dbt. (No `from __future__ import annotations`:
Dagster reads the `context` annotation at definition time.)
"""


import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.settings import DBT_PROFILES_DIR, DBT_PROJECT_DIR

# Every step that writes the DuckDB file goes through this pool (limit 1 in
# dagster.yaml / the instance), so two runs never fight for its single writer lock.
DUCKDB_POOL = "duckdb"

def dbt_executable() -> str:
    """The venv's dbt, so runs work without an activated venv (and never a stray dbtf)."""
    return str(Path(sys.executable).with_name("dbt"))


dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROFILES_DIR,
    target_path=Path(os.environ.get("DBT_TARGET_PATH", "target")),
)

# Under `dagster dev` only, re-parse on load so model edits show up on reload. This is
# DbtProject.prepare_if_dev() with the venv's dbt: that one calls whatever `dbt` is on
# PATH, and there is none when the venv is not activated.
if os.environ.get("DAGSTER_IS_DEV_CLI"):
    DbtCliResource(
        project_dir=dbt_project, profiles_dir=str(DBT_PROFILES_DIR), dbt_executable=dbt_executable()
    ).cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()

if not dbt_project.manifest_path.exists():
    raise FileNotFoundError(
        f"dbt manifest not found at {dbt_project.manifest_path}: run `make parse` "
        "(or `dbt parse`) before loading the Dagster definitions"
    )


class OutflowDbtTranslator(DagsterDbtTranslator):
    """Raw tables under the `raw` prefix; models grouped by their layer folder."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey(["raw", dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return "raw"
        fqn = dbt_resource_props.get("fqn", [])
        # fqn = [project, layer, ...subfolders, name]; seeds are reference data.
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        return fqn[1] if len(fqn) > 2 else "default"


def raw_source_specs() -> list[dg.AssetSpec]:
    """The raw tables dbt reads, as asset specs in group `raw` (loaded by EL tools or
    `outflow generate`, not by Dagster)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return [
        dg.AssetSpec(
            key=dg.AssetKey(["raw", source["name"]]),
            group_name="raw",
            description=source.get("description") or None,
            kinds={"duckdb"},
        )
        for source in manifest["sources"].values()
    ]


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=OutflowDbtTranslator(),
    pool=DUCKDB_POOL,
)
def outflow_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(DBT_PROFILES_DIR),
        dbt_executable=dbt_executable(),
    )
