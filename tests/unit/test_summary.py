"""outflow summary: counts per mart, segment, grade and consent state; never PII."""

from __future__ import annotations

import duckdb
import pytest
from rich.console import Console

from orchestration.summary import print_summary


@pytest.fixture
def small_warehouse(tmp_path):
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("""
            create table profiles as
            select 'p' || i as profile_id, 'person' || i || '@example.com' as email, '+4915112345' || i as phone_e164
            from range(10) t(i)""")
        con.execute("""
            create table lead_scores as
            select 'p' || i as profile_id, i * 10 as score, case when i >= 6 then 'A' else 'F' end as grade
            from range(10) t(i)""")
        con.execute("""
            create table consent as
            select 'p' || i as profile_id, 'email' as channel,
                   case when i < 3 then 'granted' else 'not_granted' end as status,
                   case when i < 3 then 'opted_in' else 'never_granted' end as reason
            from range(10) t(i)""")
        con.execute("""
            create table segment_memberships as
            select 'vip_customers' as segment, 'p' || i as profile_id, 4 as priority, 'crm-team' as owner,
                   true as is_primary
            from range(4) t(i)""")
    return path


def _render(path) -> str:
    console = Console(record=True, width=160)
    print_summary(path, console=console)
    return console.export_text()


def test_summary_counts_without_pii(small_warehouse):
    text = _render(small_warehouse)
    assert "identity_map" in text and "not built" in text  # a missing mart is named, not fatal
    assert "vip_customers" in text and "crm-team" in text
    assert "never_granted" in text
    assert "@" not in text and "+49" not in text


def test_summary_of_a_missing_warehouse_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="outflow generate"):
        print_summary(tmp_path / "nope.duckdb")
