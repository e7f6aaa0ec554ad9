"""Identity across builds: the Splink model is kept between refits, and the links of
a day's new, changed and removed contacts equal a full pass with that model."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from orchestration.identity.links import find_links
from orchestration.identity.model_fit import fit_match_model
from orchestration.identity.resolve import INPUT_COLUMNS, MatchSettings
from tests.conftest import SESSION_START_DATE, dbt, query, run_cmd, VENV_BIN

pytestmark = pytest.mark.slow

IDENTITY_MODELS = ["stg_crm__contacts", "int_identity__match_model", "int_identity__links", "int_contacts__resolved"]


def _links(table: pa.Table) -> dict[str, tuple[str, list[str]]]:
    return {k: (h, sorted(v)) for k, h, v in zip(table["contact_key"].to_pylist(), table["features_hash"].to_pylist(),
                                                  table["linked_contact_keys"].to_pylist())}


def _apply(stored: dict, written: pa.Table) -> dict:
    """What the incremental model leaves: delete+insert on contact_key, tombstones deleted."""
    out = dict(stored)
    for row in written.to_pylist():
        out.pop(row["contact_key"], None)
        if not row["is_removed"]:
            out[row["contact_key"]] = (row["features_hash"], sorted(row["linked_contact_keys"]))
    return out


def test_links_of_changed_contacts_equal_a_full_pass(built_warehouse):
    with duckdb.connect(str(built_warehouse), read_only=True) as con:
        day1 = con.sql(f"select {', '.join(INPUT_COLUMNS)} from stg_crm__contacts order by contact_key").to_arrow_table()
    settings = MatchSettings()
    fitted = fit_match_model(day1, settings)
    assert fitted.status == "fitted"
    full1 = find_links(day1, fitted.splink_model, settings)
    linked = [k for k, (_, v) in _links(full1).items() if v]
    assert len(linked) > 100
    # Day 2: a linked contact is removed, another's names change (its links break), a
    # copy of a linked contact arrives under a new key (it links), one moves house.
    removed, renamed, copied, moved = linked[0], linked[10], linked[20], linked[30]
    con = duckdb.connect()
    con.register("day1", day1)
    day2 = con.sql(f"""
        select * replace (
            case when contact_key = '{renamed}' then 'Zebedee' else first_name end as first_name,
            case when contact_key = '{renamed}' then 'zebedee' else first_name_canonical end as first_name_canonical,
            case when contact_key = '{renamed}' then 'quixote' else last_name_normalized end as last_name_normalized,
            case when contact_key = '{moved}' then '1 New Road' else street_address end as street_address)
        from day1 where contact_key <> '{removed}'
        union all
        select * replace ('new:x1' as contact_key, 'x1' as contact_id, 'new' as source_system)
        from day1 where contact_key = '{copied}'
    """).to_arrow_table()

    written = find_links(day2, fitted.splink_model, settings, previous=full1)
    full2 = _links(find_links(day2, fitted.splink_model, settings))
    assert _apply(_links(full1), written) == full2
    by_key = {r["contact_key"]: r for r in written.to_pylist()}
    assert by_key[removed]["is_removed"] and by_key[removed]["linked_contact_keys"] == []
    assert copied in full2["new:x1"][1] and "new:x1" in full2[copied][1]
    assert {renamed, moved, "new:x1"} <= set(by_key)  # re-scored
    # Only the touched contacts and their partners are written, not the table.
    assert len(written) < 0.01 * len(full2)
    # Nothing changed: nothing written. Another threshold: every row again, the removed as tombstones.
    assert find_links(day1, fitted.splink_model, settings, previous=full1).num_rows == 0
    stricter = find_links(day2, fitted.splink_model, settings.model_copy(update={"match_threshold": 0.99}),
                          previous=full1)
    assert stricter.num_rows == day2.num_rows + 1 and by_key[removed]["contact_key"] in stricter["contact_key"].to_pylist()


def _model(warehouse: Path) -> tuple:
    return query(warehouse, "select model_id, fitted_as_of::date::varchar, status from int_identity__match_model")[0]


def _stored_links(warehouse: Path) -> set:
    return set(query(warehouse, "select contact_key, features_hash, list_sort(linked_contact_keys)::varchar "
                                "from int_identity__links"))


def test_dbt_keeps_the_fit_between_refits_and_links_incrementally(warehouse_copy, tmp_path):
    target = tmp_path / "target"
    fitted_id, fitted_day, status = _model(warehouse_copy)
    assert (fitted_day, status) == (SESSION_START_DATE, "fitted")
    # A linked contact disappears from raw, and a new day of contacts arrives.
    gone = query(warehouse_copy, "select contact_key from int_identity__links where len(linked_contact_keys) > 0 "
                                 "order by contact_key limit 1")[0][0]
    system, contact_id = gone.split(":", 1)
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("delete from raw.crm_contacts where lower(source_system) = ? and contact_id::varchar = ?",
                    [system, contact_id])
    run_cmd([str(VENV_BIN / "outflow"), "generate", "--day", "1"], warehouse_copy)

    day2 = ["--vars", "{outflow_as_of: '2026-01-02'}"]
    dbt(["run", "-s", *IDENTITY_MODELS, *day2], warehouse_copy, target)
    assert _model(warehouse_copy) == (fitted_id, SESSION_START_DATE, "fitted")  # kept: not due
    incremental = _stored_links(warehouse_copy)
    assert gone not in {row[0] for row in incremental}
    assert not any(gone in row[2] for row in incremental)
    assert query(warehouse_copy, "select count(*) from int_identity__links")[0][0] == \
        query(warehouse_copy, "select count(*) from stg_crm__contacts")[0][0]
    resolved = set(query(warehouse_copy, "select * from int_contacts__resolved"))

    # The same links and profiles from scratch with the same model.
    dbt(["run", "-s", "int_identity__links", "int_contacts__resolved", "--full-refresh", *day2], warehouse_copy, target)
    assert _stored_links(warehouse_copy) == incremental
    assert set(query(warehouse_copy, "select * from int_contacts__resolved")) == resolved

    # Refit: when due, when a fit setting changes, on --full-refresh.
    dbt(["run", "-s", "int_identity__match_model", "--vars", "{outflow_as_of: '2026-01-08'}"], warehouse_copy, target)
    assert _model(warehouse_copy)[1] == "2026-01-08"
    dbt(["run", "-s", "int_identity__match_model", "--vars",
         "{outflow_as_of: '2026-01-09', outflow_identity_seed: 43}"], warehouse_copy, target)
    assert _model(warehouse_copy)[1] == "2026-01-09"
    dbt(["run", "-s", "int_identity__match_model", "--full-refresh", "--vars", "{outflow_as_of: '2026-01-10'}"],
        warehouse_copy, target)
    assert _model(warehouse_copy)[1] == "2026-01-10"
