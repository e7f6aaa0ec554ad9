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
