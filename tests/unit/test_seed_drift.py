"""The committed seeds are exactly what scripts/build_seeds.py derives from the pinned libraries."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import duckdb
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS = REPO_ROOT / "dbt_project" / "seeds"


def _build_seeds_module():
    spec = importlib.util.spec_from_file_location("build_seeds", REPO_ROOT / "scripts" / "build_seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return _build_seeds_module().build_all()


def test_committed_seeds_match_generator(generated):
    for name, text in generated.items():
        committed = (SEEDS / name).read_text(encoding="utf-8")
        assert committed == text, f"dbt_project/seeds/{name} drifted; run .venv/bin/python scripts/build_seeds.py"


def _rows(name: str) -> list[dict[str, str]]:
    with open(SEEDS / name, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_phone_regex_columns_compile_in_duckdb():
    """The SQL applies phonenumbers' patterns with DuckDB's RE2: every one must compile there."""
    con = duckdb.connect()
    for row in _rows("phone_regions.csv"):
        for column in ("international_prefix", "national_prefix_for_parsing", "national_number_pattern"):
            pattern = row[column]
            if pattern:
                con.execute("select regexp_matches('1', ?)", [f"^(?:{pattern})"])


def test_nickname_rule_examples():
    mapping = {r["nickname"]: r["canonical_name"] for r in _rows("nicknames.csv")}
    assert mapping["bob"] == "robert"
    assert mapping["bill"] == "william"
    assert mapping["liz"] == "elizabeth"
    assert "john" not in mapping and "robert" not in mapping  # canonicals stay as they are
    assert all(k == k.lower() and v == v.lower() for k, v in mapping.items())


def test_country_aliases_resolve():
    mapping = {r["country_key"]: r["country_code"] for r in _rows("country_codes.csv")}
    module = _build_seeds_module()
    for text, code in [("USA", "US"), ("United States of America", "US"), ("UK", "GB"), ("England", "GB"),
                       ("Deutschland", "DE"), ("DEU", "DE"), ("Côte d'Ivoire", "CI"), ("fr", "FR")]:
        assert mapping[module.country_key(text)] == code, text


def test_each_calling_code_has_one_main_region():
    main = [r["calling_code"] for r in _rows("phone_regions.csv") if r["is_main_region"] == "true"]
    assert len(main) == len(set(main))
