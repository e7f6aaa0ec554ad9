"""Incremental attribution re-attributes only what can have moved, and still equals a rebuild.

The session world (day 0, built) moves on a day; on top of it, one contact takes another
contact's email (a merge: the old events of one of the two profiles move to the other, and
the contact's previous email stops being a key), and ten new contacts share a third
contact's email (more than outflow_identity_max_contacts_per_key: the address links nobody,
so it becomes ambiguous and its events lose their profile). The incremental run
(int_identity__lookup_keys and the attributed models re-attributing only the keys changed
since their last run) must hold exactly the rows that rebuilding the same models with
--full-refresh on the same upstream tables gives.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from tests.conftest import VENV_BIN, dbt, query, run_cmd
from tests.integration.test_incremental_models import differences

pytestmark = pytest.mark.slow

DAY_1 = "2026-01-02"
ATTRIBUTED = ["int_web_events__attributed", "int_email_events__attributed", "int_orders__attributed"]


def pick_contacts(warehouse) -> tuple[tuple, tuple, tuple]:
    """Three single-contact profiles with an email and email events before the lookback window:
    the two with web events by contact_id to merge, and one whose address becomes shared."""
    rows = query(warehouse, """
        with singles as (
            select r.source_system, r.contact_id, c.email, r.profile_id
            from main.int_contacts__resolved r join main.stg_crm__contacts c using (contact_key)
            where r.cluster_size = 1 and c.email is not null
        ),
        old_email as (select distinct email from main.int_email_events__attributed
                      where occurred_at < timestamp '2025-12-01' and profile_id is not null),
        old_web as (select distinct contact_id from main.int_web_events__attributed
                    where occurred_at < timestamp '2025-12-01' and attribution_rule = 'contact_id')
        select source_system, contact_id, email, profile_id from singles
        where email in (select email from old_email) and contact_id in (select contact_id from old_web)
        order by contact_id limit 3""")
    assert len(rows) == 3, rows
    return rows[0], rows[1], rows[2]


def profiles_of(warehouse, table: str, column: str, value: str) -> set:
    return {r[0] for r in query(warehouse, f"select distinct profile_id from main.{table} where {column} = '{value}'")}


def test_incremental_attribution_equals_full_refresh_after_merge_and_ambiguity(warehouse_copy, tmp_path):
    mover, keeper, shared = pick_contacts(warehouse_copy)
    mover_old_email = mover[2]
    run_cmd([str(VENV_BIN / "outflow"), "generate", "--day", "1"], warehouse_copy)
    with duckdb.connect(str(warehouse_copy)) as con:
        # a newer version of `mover` with `keeper`'s email: the two contacts are one person now
        con.execute("""insert into raw.crm_contacts select * replace (? as email, '2026-01-01 23:00:00' as updated_at)
                       from raw.crm_contacts where source_system = ? and contact_id = ?""",
                    [keeper[2], mover[0], mover[1]])
        # ten strangers on `shared`'s address: too many contacts for the key to link anyone
        for i in range(10):
            con.execute(f"""insert into raw.crm_contacts select * replace (
                               'attr-shared-{i}' as contact_id, 'Zq{chr(97 + i)}xw' as first_name,
                               'Vo{chr(97 + i)}lk' as last_name, null as phone, null as street_address,
                               null as postal_code, null as date_of_birth)
                           from raw.crm_contacts where source_system = ? and contact_id = ?""",
                        [shared[0], shared[1]])

    args = ["run", "--select", *(f"+{m}" for m in ATTRIBUTED), "--vars", f"{{outflow_as_of: '{DAY_1}'}}"]
    dbt(args, warehouse_copy, tmp_path / "target_incremental")

    # the merge moved the old events of one of the two profiles
    merged = profiles_of(warehouse_copy, "int_web_events__attributed", "contact_id", mover[1])
    assert merged == profiles_of(warehouse_copy, "int_web_events__attributed", "contact_id", keeper[1])
    assert len(merged) == 1 and merged <= {mover[3], keeper[3]}
    moved_from = ({mover[3], keeper[3]} - merged).pop()
    assert query(warehouse_copy, "select count(*) from main.int_web_events__attributed "
                                 f"where profile_id = '{moved_from}'") == [(0,)]
    assert profiles_of(warehouse_copy, "int_email_events__attributed", "email", keeper[2]) == merged
    # mover's previous address and the shared one no longer identify anybody
    for email in (mover_old_email, shared[2]):
        assert query(warehouse_copy, "select profile_id from main.int_identity__lookup_keys "
                                     f"where key_type = 'email' and key_value = '{email}'") == [(None,)]
        assert profiles_of(warehouse_copy, "int_email_events__attributed", "email", email) == {None}

    # the same models rebuilt from scratch on the same upstream tables
    full = tmp_path / "full" / "outflow.duckdb"
    full.parent.mkdir()
    shutil.copy(warehouse_copy, full)
    dbt(["run", "--full-refresh", "--select", "int_identity__lookup_keys", *ATTRIBUTED,
         "--vars", f"{{outflow_as_of: '{DAY_1}'}}"], full, tmp_path / "target_full")
    for table in ATTRIBUTED:
        total, only_incremental, only_full = differences(warehouse_copy, full, table)
        assert total > 0, table
        assert (only_incremental, only_full) == (0, 0), (
            f"{table}: {only_incremental} row(s) only in the incremental build, {only_full} only in the full one")
    keys = "select key_type, key_value, profile_id, contact_count from main.int_identity__lookup_keys"
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute(f"attach '{full}' as other (read_only)")
        only_incremental, only_full = (con.execute(f"select count(*) from ({a} except all {b})").fetchall()[0][0]
                                       for a, b in ((f"{keys} where profile_id is not null",
                                                     keys.replace("main.", "other.main.")),
                                                    (keys.replace("main.", "other.main."),
                                                     f"{keys} where profile_id is not null")))
    assert (only_incremental, only_full) == (0, 0)
    # each model remembers the newest key change it has seen
    seen = query(warehouse_copy, "select keys_seen_through from main.int_web_events__attributed__keys_seen")
    assert seen == query(warehouse_copy, "select max(changed_at) from main.int_identity__lookup_keys")


def test_no_record_of_seen_keys_reattributes_everything(warehouse_copy, tmp_path):
    """A model without its __keys_seen table (built before it existed, or dropped) attributes
    every loaded row again, so a key change is never missed."""
    mover, keeper, _ = pick_contacts(warehouse_copy)
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("drop table main.int_web_events__attributed__keys_seen")
        con.execute("""insert into raw.crm_contacts select * replace (? as email, '2026-01-01 23:00:00' as updated_at)
                       from raw.crm_contacts where source_system = ? and contact_id = ?""",
                    [keeper[2], mover[0], mover[1]])
    dbt(["run", "--select", "+int_web_events__attributed", "--vars", f"{{outflow_as_of: '{DAY_1}'}}"],
        warehouse_copy, tmp_path / "target")
    merged = profiles_of(warehouse_copy, "int_web_events__attributed", "contact_id", mover[1])
    assert len(merged) == 1
    assert merged == profiles_of(warehouse_copy, "int_web_events__attributed", "contact_id", keeper[1])
    assert query(warehouse_copy, "select count(*) from main.int_web_events__attributed__keys_seen") == [(1,)]
