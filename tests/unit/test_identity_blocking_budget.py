"""The pair budget of the blocking rules (splink_model.budgeted_blocking_keys): rules that
would compare too many pairs are split into narrower ones; small data keeps every rule."""

from __future__ import annotations

import duckdb
import pytest

from orchestration.identity import splink_model
from orchestration.identity.splink_model import BLOCKING_KEYS, budgeted_blocking_keys, pairs_per_rule


@pytest.fixture()
def crowded_birthdays():
    """2,000 people over 10 birth dates (200 per date: 199,000 pairs on `dob` alone), with
    names spread wide enough that no other rule is crowded."""
    con = duckdb.connect()
    con.execute("""
        create table nodes as
        select i::varchar as unique_id,
               'f' || (i % 997)::varchar || chr((97 + i % 26)::integer) as first_name,
               'f' || (i % 997)::varchar || chr((97 + i % 26)::integer) as first_name_canonical,
               chr((97 + (i // 26) % 26)::integer) || 'l' || (i % 1009)::varchar as last_name,
               '1980-01-' || lpad((1 + i % 10)::varchar, 2, '0') as dob,
               null::varchar as street, 'city' || (i % 500)::varchar as city, null::varchar as postal_code
        from range(2000) t(i)""")
    yield con
    con.close()


def test_pairs_per_rule_counts_pairs_and_skips_null_keys(crowded_birthdays):
    assert pairs_per_rule(crowded_birthdays, ("dob",)) == 10 * (200 * 199 // 2)
    assert pairs_per_rule(crowded_birthdays, ("street", "city")) == 0  # street is NULL everywhere


def test_a_rule_over_budget_is_split_into_narrower_rules_within_it(crowded_birthdays):
    rules = budgeted_blocking_keys(crowded_birthdays, 2000, max_pairs_per_record=3.0)
    by_rule: dict[tuple, list[dict]] = {}
    for r in rules:
        by_rule.setdefault(r["keys"], []).append(r)
        assert r["pairs"] <= 3.0 * 2000
        assert r["pairs"] == pairs_per_rule(crowded_birthdays, r["used"])
    dob = by_rule[("dob",)]
    assert len(dob) >= 2 and all(r["used"][0] == "dob" and len(r["used"]) > 1 for r in dob)
    # the birth year adds nothing to a full date of birth, and is never used as its refinement
    assert all("substr(dob, 1, 4)" not in r["used"] for r in dob)
    # rules within budget are kept as written
    assert by_rule[("first_name", "last_name")] == [
        {"keys": ("first_name", "last_name"), "used": ("first_name", "last_name"),
         "pairs": pairs_per_rule(crowded_birthdays, ("first_name", "last_name"))}]


def test_a_generous_budget_keeps_every_rule_as_written(crowded_birthdays):
    rules = budgeted_blocking_keys(crowded_birthdays, 2000, max_pairs_per_record=1000.0)
    assert [r["used"] for r in rules] == list(BLOCKING_KEYS)


def test_split_rules_still_find_a_pair_sharing_date_and_initial(crowded_birthdays):
    """Two records agreeing on the date of birth and the surname's initial but nothing
    else are still compared after the split."""
    con = crowded_birthdays
    con.execute("insert into nodes values ('x1', 'zed', 'zed', 'qa', '1980-01-03', null, 'nowhere', null), "
                "('x2', 'ned', 'ned', 'qb', '1980-01-03', null, 'elsewhere', null)")
    rules = budgeted_blocking_keys(con, 2002, max_pairs_per_record=5.0)
    assert ("dob", "substr(last_name, 1, 1)") in [r["used"] for r in rules]
    sqls = [rule if isinstance(rule, str) else rule.get_blocking_rule("duckdb").blocking_rule_sql
            for rule in splink_model.blocking_rules([r["used"] for r in rules])]
    found = [sql for sql in sqls if con.execute(
        f"select count(*) from nodes l join nodes r on {sql} where l.unique_id = 'x1' and r.unique_id = 'x2'"
    ).fetchall()[0][0]]
    assert found, "no blocking rule pairs x1 with x2"
