"""Incremental contacts staging and profile attributes give exactly what a full rebuild gives.

stg_crm__contacts normalises only contacts whose latest raw row is new or changed;
int_profiles__attributes recomputes only profiles whose contacts changed. The session world
moves on a day and is edited the ways real CRMs change (a contact edited, contacts removed,
two profiles merged by a shared email, an older version of a contact re-landed, a row
landed twice); an
incremental build and a --full-refresh build of the same raw data must hold the same rows.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from tests.conftest import SESSION_START_DATE, VENV_BIN, dbt, query, run_cmd
from tests.integration.test_incremental_models import differences

pytestmark = pytest.mark.slow

DAY_1 = "2026-01-02"
MODELS = ["stg_crm__contacts", "int_contacts__resolved", "int_profiles__attributes"]


def split_key(contact_key: str) -> tuple[str, str]:
    system, contact_id = contact_key.split(":", 1)
    return system, contact_id


def edit_contacts(warehouse) -> dict:
    """Edit raw contacts of the built world; return what was done, by contact_key / profile_id."""
    with duckdb.connect(str(warehouse)) as con:
        resolved = con.execute("select contact_key, profile_id, cluster_size from main.int_contacts__resolved "
                               "order by contact_key").fetchall()
        multi = [r for r in resolved if r[2] > 1]
        single = [r for r in resolved if r[2] == 1 and r[0].startswith("crm:")]
        changed, removed_member, removed_single, relanded = multi[0], multi[7], single[0], multi[11]
        merged_from, merged_into = single[1], single[2]
        assert len({changed[1], removed_member[1], relanded[1], merged_from[1], merged_into[1]}) == 5

        def run(sql: str, key: str, *params) -> None:
            con.execute(sql, [*params, *split_key(key)])

        where = " where source_system = ? and contact_id = ?"
        run("update raw.crm_contacts set city = 'Changedville', updated_at = timestamp '2026-01-01 10:00:00'"
            + where, changed[0])
        run("delete from raw.crm_contacts" + where, removed_member[0])
        run("delete from raw.crm_contacts" + where, removed_single[0])
        run("insert into raw.crm_contacts select * replace ('Oldtown' as city, updated_at - interval 30 day as "
            "updated_at) from raw.crm_contacts" + where, relanded[0])
        run("insert into raw.crm_contacts select * from raw.crm_contacts" + where, multi[15][0])  # landed twice
        email = con.execute("select email from raw.crm_contacts" + where, list(split_key(merged_into[0]))
                            ).fetchall()[0][0]
        assert email
        run("update raw.crm_contacts set email = ?, updated_at = timestamp '2026-01-01 11:00:00'" + where,
            merged_from[0], email)
    return {"changed": changed[0], "removed": [removed_member[0], removed_single[0]],
            "removed_profile": removed_single[1], "relanded": relanded[0],
            "merged": (merged_from[0], merged_into[0]), "merged_profiles": {merged_from[1], merged_into[1]}}


def test_incremental_profiles_equal_full_refresh(warehouse_copy, tmp_path):
    run_cmd([str(VENV_BIN / "outflow"), "generate", "--day", "1"], warehouse_copy)
    edits = edit_contacts(warehouse_copy)
    full = tmp_path / "full" / "outflow.duckdb"  # same file name: the catalog is named after it
    full.parent.mkdir()
    shutil.copy(warehouse_copy, full)
    args = ["run", "--select", "+int_profiles__attributes", "--vars", f"{{outflow_as_of: '{DAY_1}'}}"]
    dbt(args, warehouse_copy, tmp_path / "target_incremental")
    dbt([*args, "--full-refresh"], full, tmp_path / "target_full")

    for table in MODELS:
        total, only_incremental, only_full = differences(warehouse_copy, full, table)
        assert total > 0, table
        assert (only_incremental, only_full) == (0, 0), (
            f"{table}: {only_incremental} row(s) only in the incremental build, {only_full} only in the full one")

    contacts = dict(query(warehouse_copy, "select contact_key, city from main.stg_crm__contacts"))
    assert contacts[edits["changed"]] == "Changedville"
    assert contacts[edits["relanded"]] != "Oldtown"  # the older version does not win
    assert not set(edits["removed"]) & set(contacts)
    profiles = dict(query(warehouse_copy, "select profile_id, contact_count from main.int_profiles__attributes"))
    assert edits["removed_profile"] not in profiles
    merged = query(warehouse_copy, "select distinct profile_id from main.int_contacts__resolved where contact_key in "
                   f"('{edits['merged'][0]}', '{edits['merged'][1]}')")
    assert len(merged) == 1
    assert profiles[merged[0][0]] == 2
    assert len(edits["merged_profiles"] & set(profiles)) == 1  # the other profile is gone


def test_unchanged_rows_are_kept_and_changed_ones_recomputed(warehouse_copy, tmp_path):
    """The incremental path really skips unchanged contacts and profiles (a stored value is
    kept as it is), recomputes a contact and its profile once its raw row changes, and a
    table of the layout before row_hash is normalised again in full."""
    kept, touched = query(warehouse_copy, "select r.contact_key from main.int_contacts__resolved r "
                          "where r.cluster_size = 1 and r.contact_key like 'crm:%' order by 1 limit 2")
    kept, touched = kept[0], touched[0]
    with duckdb.connect(str(warehouse_copy)) as con:
        for key in (kept, touched):
            con.execute("update main.stg_crm__contacts set city = 'Stored' where contact_key = ?", [key])
            con.execute("update main.int_profiles__attributes set city = 'Stored' where profile_id = "
                        "(select profile_id from main.int_contacts__resolved where contact_key = ?)", [key])
    select = ["run", "--select", "stg_crm__contacts", "int_profiles__attributes",
              "--vars", f"{{outflow_as_of: '{SESSION_START_DATE}'}}"]
    sql = ("select c.city, a.city from main.stg_crm__contacts c join main.int_contacts__resolved r using "
           "(contact_key) join main.int_profiles__attributes a using (profile_id) where c.contact_key = '{}'")

    dbt(select, warehouse_copy, tmp_path / "target")
    assert query(warehouse_copy, sql.format(kept)) == [("Stored", "Stored")]
    assert query(warehouse_copy, sql.format(touched)) == [("Stored", "Stored")]

    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("update raw.crm_contacts set updated_at = updated_at + interval 1 second "
                    "where source_system = ? and contact_id = ?", list(split_key(touched)))
    dbt(select, warehouse_copy, tmp_path / "target")
    assert query(warehouse_copy, sql.format(kept)) == [("Stored", "Stored")]
    recomputed = query(warehouse_copy, sql.format(touched))[0]
    assert "Stored" not in recomputed and recomputed[0] == recomputed[1]

    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("alter table main.stg_crm__contacts drop column row_hash")
    dbt(select, warehouse_copy, tmp_path / "target")
    assert query(warehouse_copy, sql.format(kept))[0][0] != "Stored"
    assert query(warehouse_copy, "select count(*) from main.stg_crm__contacts where row_hash is null") == [(0,)]
