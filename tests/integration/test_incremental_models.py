"""Incremental event models give exactly what a full rebuild gives.

The session world (day 0, built) moves on a day (`outflow generate --day 1`: new people,
new contacts that can merge profiles, a day of events); the copy is built incrementally,
a second copy of the same raw data is built with --full-refresh, and every incremental
model must hold the same rows (as a multiset) in both. A late event, older than the
newest loaded one but inside the lookback window, must be picked up too.
"""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest

from tests.conftest import REPO_ROOT, SESSION_START_DATE, VENV_BIN, dbt, run_cmd

pytestmark = pytest.mark.slow

DAY_1 = "2026-01-02"


def incremental_models(warehouse) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # dbt records materializations in the manifest; the warehouse does not, so list by name
        return [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main' and table_name in "
            "('stg_web__events', 'stg_esp__email_events', 'stg_shop__orders', 'stg_consent__events', "
            "'int_web_events__attributed', 'int_email_events__attributed', 'int_orders__attributed', "
            "'int_consent_events__attributed') order by 1").fetchall()]


def differences(a, b, table: str) -> tuple[int, int, int]:
    """(rows in a, rows only in a, rows only in b), duplicates counted. loaded_at (when the
    row was written) is left out: it differs between any two builds by design."""
    rows = "select columns(lambda c: c <> 'loaded_at') from {}"
    with duckdb.connect(str(a)) as con:
        con.execute(f"attach '{b}' as other (read_only)")
        total = con.execute(f"select count(*) from main.{table}").fetchall()[0][0]
        mine, theirs = rows.format(f"main.{table}"), rows.format(f"other.main.{table}")
        only_a = con.execute(f"select count(*) from ({mine} except all {theirs})").fetchall()[0][0]
        only_b = con.execute(f"select count(*) from ({theirs} except all {mine})").fetchall()[0][0]
    return total, only_a, only_b


def test_incremental_build_equals_full_refresh(warehouse_copy, tmp_path):
    run_cmd([str(VENV_BIN / "outflow"), "generate", "--day", "1"], warehouse_copy)
    with duckdb.connect(str(warehouse_copy)) as con:
        # a late event: older than the newest loaded one, inside the lookback window
        con.execute("""insert into raw.web_events (event_id, contact_id, anonymous_id, email, event_type, page_url,
                       occurred_at) select 'we-late-1', contact_id, anonymous_id, email, 'page_view',
                       'https://example.com/pricing', timestamp '2025-12-30 12:00:00'
                       from raw.web_events where contact_id is not null limit 1""")
        con.execute("""insert into raw.email_events (event_id, email, campaign_id, event_type, occurred_at)
                       select 'ee-late-1', email, campaign_id, 'delivered', timestamp '2025-12-31 08:00:00'
                       from raw.email_events where event_type = 'bounce' and email is not null limit 1""")
        # consent rows have no id: a late one, and one the same as a stored row (both kept, as in raw)
        con.execute("""insert into raw.consent_events (email, phone, channel, status, source, occurred_at)
                       select email, phone, channel, 'revoked', 'preference_center', timestamp '2025-12-31 09:00:00'
                       from raw.consent_events where email is not null limit 1""")
        con.execute("""insert into raw.consent_events select * from raw.consent_events
                       where occurred_at = (select max(occurred_at) from raw.consent_events) limit 1""")
    full = tmp_path / "full" / "outflow.duckdb"
    full.parent.mkdir()
    shutil.copy(warehouse_copy, full)
    # the incremental models and what they read (identity included: new contacts may merge profiles)
    args = ["run", "--select", "+int_web_events__attributed", "+int_email_events__attributed",
            "+int_orders__attributed", "+int_consent_events__attributed", "--vars", f"{{outflow_as_of: '{DAY_1}'}}"]
    dbt(args, warehouse_copy, tmp_path / "target_incremental")
    dbt([*args, "--full-refresh"], full, tmp_path / "target_full")

    models = incremental_models(warehouse_copy)
    assert len(models) == 8, models
    for table in models:
        total, only_incremental, only_full = differences(warehouse_copy, full, table)
        assert total > 0, table
        assert (only_incremental, only_full) == (0, 0), (
            f"{table}: {only_incremental} row(s) only in the incremental build, {only_full} only in the full one")
    with duckdb.connect(str(warehouse_copy), read_only=True) as con:
        late = con.execute("select count(*) from main.int_web_events__attributed where event_id = 'we-late-1'"
                           ).fetchall()[0][0]
        day_1_events = con.execute(f"select count(*) from main.stg_web__events where occurred_at >= "
                                   f"timestamp '{SESSION_START_DATE}'").fetchall()[0][0]
    assert late == 1
    assert day_1_events > 0  # the day's events went through the incremental path


def test_lookback_window_bounds_late_events(warehouse_copy, tmp_path):
    """An event landing later than the lookback window is missed by incremental runs (the
    documented limit) and picked up by --full-refresh; a bad window is refused by name."""
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("""insert into raw.web_events (event_id, contact_id, anonymous_id, email, event_type, page_url,
                       occurred_at) values ('we-too-late', null, 'anon-x', null, 'page_view', 'https://example.com/',
                       timestamp '2025-12-01 00:00:00'), ('we-in-window', null, 'anon-x', null, 'page_view',
                       'https://example.com/', timestamp '2025-12-30 00:00:00')""")
    select = ["--select", "stg_web__events", "--vars", f"{{outflow_as_of: '{SESSION_START_DATE}'}}"]

    def landed() -> set[str]:
        with duckdb.connect(str(warehouse_copy), read_only=True) as con:
            return {r[0] for r in con.execute("select event_id from main.stg_web__events "
                                              "where event_id in ('we-too-late', 'we-in-window')").fetchall()}

    dbt(["run", *select], warehouse_copy, tmp_path / "target")
    assert landed() == {"we-in-window"}
    dbt(["run", "--full-refresh", *select], warehouse_copy, tmp_path / "target")
    assert landed() == {"we-too-late", "we-in-window"}

    bad = dbt(["run", "--select", "stg_web__events", "--vars", "{outflow_event_lookback_days: -1}"],
              warehouse_copy, tmp_path / "target", check=False)
    assert bad.returncode != 0
    assert "outflow_event_lookback_days must be a number of days >= 0" in bad.stdout


def test_events_without_an_event_time_replace_themselves(warehouse_copy, tmp_path):
    """Raw events without an event time are read again by every incremental run; their
    stored rows are replaced, not repeated (the null half of delete_insert_by_event_time,
    whose time bound alone would keep them)."""
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("""insert into raw.web_events (event_id, contact_id, anonymous_id, email, event_type, page_url,
                       occurred_at) values ('we-no-time', null, 'anon-n', null, 'page_view', 'https://example.com/',
                       null)""")
        con.execute("""insert into raw.email_events select 'ee-no-time', email, campaign_id, 'open', null
                       from raw.email_events where email is not null limit 1""")
    models = ["stg_web__events", "stg_esp__email_events", "int_web_events__attributed",
              "int_email_events__attributed"]
    for _ in range(2):
        dbt(["run", "--select", *models, "--vars", f"{{outflow_as_of: '{DAY_1}'}}"], warehouse_copy,
            tmp_path / "target")
        with duckdb.connect(str(warehouse_copy), read_only=True) as con:
            counts = {m: con.execute(f"select count(*) from main.{m} where event_id in ('we-no-time', 'ee-no-time')"
                                     ).fetchall()[0][0] for m in models}
        assert counts == dict.fromkeys(models, 1)


def test_event_strategy_without_an_event_time_is_refused(warehouse_copy, tmp_path):
    """delete_insert_by_event_time bounds its delete by the model's event time: a model
    using it without config event_time fails and says what to add."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "dbt_project.yml", project / "dbt_project.yml")
    shutil.copytree(REPO_ROOT / "dbt_project", project / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    model = project / "dbt_project" / "models" / "staging" / "stg_shop__orders.sql"
    text = model.read_text()
    assert "event_time='ordered_at'," in text
    model.write_text(text.replace("event_time='ordered_at',", ""))
    out = dbt(["run", "--select", "stg_shop__orders"], warehouse_copy, tmp_path / "target", check=False,
              project=project)
    assert out.returncode != 0
    assert "needs config event_time" in out.stdout


def test_duplicate_keys_of_the_latest_load_are_reported(warehouse_copy, tmp_path):
    """Staging keeps every raw row, so an event id landing twice in one load is warned about
    (outflow_unique_in_latest_load, which reads only the latest load); an event re-landed in
    a later load replaces its stored row and is no duplicate."""
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("""insert into raw.web_events (event_id, contact_id, anonymous_id, email, event_type, page_url,
                       occurred_at) values
                       ('we-twice', null, 'anon-d', null, 'page_view', 'https://example.com/a',
                        timestamp '2026-01-01 09:00:00'),
                       ('we-twice', null, 'anon-d', null, 'page_view', 'https://example.com/b',
                        timestamp '2026-01-01 09:00:01')""")
        # an already-loaded event landing again (an EL tool re-sending it)
        con.execute("""insert into raw.email_events select * from raw.email_events
                       where occurred_at = (select max(occurred_at) from raw.email_events) limit 1""")
    target = tmp_path / "target"
    dbt(["build", "--select", "stg_web__events", "stg_esp__email_events", "--vars",
         f"{{outflow_as_of: '{DAY_1}'}}"], warehouse_copy, target)
    results = {r["unique_id"].split(".")[2]: r for r in json.loads((target / "run_results.json").read_text())["results"]}
    web = results["outflow_unique_in_latest_load_stg_web__events_event_id"]
    email = results["outflow_unique_in_latest_load_stg_esp__email_events_event_id"]
    assert (web["status"], web["failures"]) == ("warn", 1)  # we-twice
    assert (email["status"], email["failures"]) == ("warn", 1)  # two raw rows, one load
    with duckdb.connect(str(warehouse_copy), read_only=True) as con:
        loads = con.execute("select count(distinct loaded_at), count(*) filter (where event_id = 'we-twice') "
                            "from main.stg_web__events").fetchall()[0]
        assert loads == (2, 2)  # the session's build and this one; both raw rows kept
    with duckdb.connect(str(warehouse_copy)) as con:  # the re-sent email row is dropped upstream
        con.execute("""delete from raw.email_events where rowid = (select max(rowid) from raw.email_events
                       where event_id = (select event_id from raw.email_events group by 1 having count(*) > 1))""")
    dbt(["build", "--select", "stg_esp__email_events", "--vars", f"{{outflow_as_of: '{DAY_1}'}}"],
        warehouse_copy, target)
    results = {r["unique_id"].split(".")[2]: r for r in json.loads((target / "run_results.json").read_text())["results"]}
    email = results["outflow_unique_in_latest_load_stg_esp__email_events_event_id"]
    assert (email["status"], email["failures"]) == ("pass", 0)
