"""`dbt build` of the whole project on a warehouse that holds only raw.crm_contacts, with typed
(not VARCHAR) columns: the on-run-start hook creates the missing raw tables, staging casts every
type, and every mart builds (mostly empty) with its tests passing."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from tests.conftest import dbt

pytestmark = pytest.mark.slow


def test_build_with_only_crm_contacts(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw")
    con.execute("""
        create table raw.crm_contacts (
            contact_id varchar, source_system varchar, email varchar, phone bigint, first_name varchar,
            last_name varchar, street_address varchar, city varchar, postal_code integer, country varchar,
            date_of_birth date, company varchar, job_title varchar, industry varchar, employee_count double,
            lead_source varchar, lifecycle_stage varchar, created_at timestamp, updated_at timestamptz)
    """)
    con.execute("""
        insert into raw.crm_contacts values
        ('crm-0000001', 'crm', ' Ann@Example.com', 14155550134, 'ann', 'lee', '1 Main St', 'Springfield',
         12345, 'USA', date '1980-05-01', 'Acme', 'CTO', 'Software', 250.0, 'Webinar', 'MQL',
         timestamp '2024-01-01 10:00:00', timestamptz '2024-02-01 10:00:00+00'),
        ('crm-0000002', 'crm', null, null, 'bob', 'ng', null, null, null, null, null, null, null, null,
         null, null, null, null, null),
        ('crm-0000002', 'crm', 'bob@example.org', 4930123456, 'bob', 'ng', null, null, null, 'DE', null, null,
         null, null, null, null, 'lead', null, timestamptz '2024-03-01 00:00:00+00')
    """)
    con.close()

    # unit tests included: their SQL fixtures must not depend on the raw column types
    dbt(["build"], warehouse, tmp_path / "target")

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'").fetchall()}
        assert tables == {"crm_contacts", "web_events", "email_events", "orders", "consent_events",
                          "deletion_requests", "conversions"}
        rows = con.execute("""
            select contact_key, email, email_is_valid, phone_e164, first_name_canonical, postal_code,
                   country_code, date_of_birth, employee_count, lifecycle_stage, updated_at
            from main.stg_crm__contacts order by contact_key""").fetchall()
        for view in ["stg_web__events", "stg_esp__email_events", "stg_shop__orders", "stg_consent__events",
                     "stg_consent__deletion_requests", "stg_crm__conversions"]:
            assert con.execute(f"select count(*) from main.{view}").fetchall()[0][0] == 0, view
        marts = {t: con.execute(f"select count(*) from main.{t}").fetchall()[0][0]
                 for t in ("identity_map", "profiles", "consent", "lead_scores", "segment_memberships")}
    finally:
        con.close()

    assert rows[0] == ("crm:crm-0000001", "ann@example.com", True, "+14155550134", "ann", "12345", "US",
                       dt.date(1980, 5, 1), 250, "mql", dt.datetime(2024, 2, 1, 10, 0))
    # the later version of crm-0000002 wins; a German national number read in DE
    assert rows[1][0] == "crm:crm-0000002" and rows[1][1] == "bob@example.org"
    assert rows[1][3] == "+4930123456" and rows[1][4] == "robert" and rows[1][6] == "DE"
    assert len(rows) == 2
    # two people, three channels each; no events, so no segment has anyone
    assert marts == {"identity_map": 2, "profiles": 2, "consent": 6, "lead_scores": 2,
                     "segment_memberships": 0}


@pytest.mark.parametrize("time_type", ["timestamp", "varchar"])
def test_event_times_typed_or_text_stage_alike(tmp_path, time_type):
    """Staging takes a TIMESTAMP event time as it is and parses text: both give the same
    rows (fractional seconds kept, blanks null); a DATE birth date likewise."""
    warehouse = tmp_path / "w.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema raw")
    con.execute(f"create table raw.web_events (event_id varchar, contact_id varchar, anonymous_id varchar, "
                f"email varchar, event_type varchar, page_url varchar, occurred_at {time_type})")
    con.execute(f"create table raw.orders (order_id varchar, contact_id varchar, email varchar, amount double, "
                f"currency varchar, status varchar, ordered_at {time_type})")
    con.execute(f"create table raw.crm_contacts (contact_id varchar, source_system varchar, email varchar, "
                f"phone varchar, first_name varchar, last_name varchar, street_address varchar, city varchar, "
                f"postal_code varchar, country varchar, date_of_birth {'date' if time_type == 'timestamp' else 'varchar'}, "
                f"company varchar, job_title varchar, industry varchar, employee_count integer, lead_source varchar, "
                f"lifecycle_stage varchar, created_at {time_type}, updated_at {time_type})")
    times = ["2026-01-01 10:00:00", "2026-01-02 23:59:59.123456", None]
    for i, t in enumerate(times):
        value = "null" if t is None else f"cast('{t}' as {time_type})"
        con.execute(f"insert into raw.web_events values ('e{i}', 'c1', null, 'a@example.com', 'page_view', "
                    f"'https://x.example/pricing', {value})")
        con.execute(f"insert into raw.orders values ('o{i}', 'c1', 'a@example.com', 10, 'USD', 'completed', {value})")
    con.execute("insert into raw.crm_contacts (contact_id, source_system, email, date_of_birth, created_at, updated_at) "
                f"values ('c1', 'crm', 'a@example.com', cast('1980-05-01' as {'date' if time_type == 'timestamp' else 'varchar'}), "
                f"cast('{times[0]}' as {time_type}), cast('{times[1]}' as {time_type}))")
    con.close()
    dbt(["build", "-q", "-s", "+stg_web__events", "+stg_shop__orders", "+stg_crm__contacts", "--exclude-resource-type", "test"], warehouse, tmp_path / "target")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        web = con.execute("select event_id, occurred_at from main.stg_web__events order by event_id").fetchall()
        orders = con.execute("select order_id, ordered_at from main.stg_shop__orders order by order_id").fetchall()
        contact = con.execute("select date_of_birth, created_at, updated_at from main.stg_crm__contacts").fetchall()
    expected = [dt.datetime(2026, 1, 1, 10), dt.datetime(2026, 1, 2, 23, 59, 59, 123456), None]
    assert [t for _, t in web] == expected
    assert [t for _, t in orders] == expected
    assert contact == [(dt.date(1980, 5, 1), expected[0], expected[1])]
