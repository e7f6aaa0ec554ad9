"""The syncs this project declares: read from the dbt manifest, validated against the
warehouse. Shared by the CLI and the Dagster definitions; no Dagster import here."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from orchestration.settings import REPO_ROOT, warehouse_path
from orchestration.sync.apply import model_columns_from_warehouse
from orchestration.sync.spec import SyncSpec, SyncSpecError, load_syncs

log = logging.getLogger(__name__)


def manifest_path() -> Path:
    return REPO_ROOT / os.environ.get("DBT_TARGET_PATH", "target") / "manifest.json"


def read_manifest(path: Path | None = None) -> dict[str, Any]:
    path = path or manifest_path()
    if not path.exists():
        raise FileNotFoundError(f"dbt manifest not found at {path}: run `make parse` (or `dbt parse`) first")
    return json.loads(path.read_text())


def column_lookup(manifest: dict[str, Any], warehouse: Path | None = None) -> Callable[[str], list[str] | None]:
    """Model name -> its columns: the built table's columns when the warehouse can be
    read, else the columns its yml documents."""
    built: Callable[[str], list[str] | None] = lambda model: None  # noqa: E731
    warehouse = warehouse or warehouse_path()
    if warehouse.exists():
        try:
            built = model_columns_from_warehouse(warehouse)
        except duckdb.Error as exc:  # locked by a writer, or not a DuckDB file
            log.warning("syncs: could not read columns from the warehouse (%s); using documented columns",
                        type(exc).__name__)
    documented = {
        node["name"]: list(node.get("columns") or {})
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") in ("model", "seed", "snapshot")
    }

    def columns(model: str) -> list[str] | None:
        return built(model) or documented.get(model) or None

    return columns


def declared_syncs(
    manifest: dict[str, Any] | None = None, warehouse: Path | None = None
) -> tuple[list[SyncSpec], list[SyncSpecError]]:
    """Every declared sync, validated; a broken one yields errors and the others load."""
    manifest = manifest if manifest is not None else read_manifest()
    return load_syncs(manifest, column_lookup(manifest, warehouse))


def find_sync(name: str, warehouse: Path | None = None) -> SyncSpec:
    specs, errors = declared_syncs(warehouse=warehouse)
    for spec in specs:
        if spec.name == name:
            return spec
    own = [str(e) for e in errors if e.sync == name]
    if own:
        raise LookupError("sync definition is invalid:\n  " + "\n  ".join(own))
    known = ", ".join(sorted(s.name for s in specs)) or "none"
    raise LookupError(f"no sync named {name!r} (declared: {known})")
