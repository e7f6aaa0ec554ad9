"""The incremental links' prefilter: which unchanged contacts Splink's predict_between sees."""

from __future__ import annotations

import duckdb

from orchestration.identity.links import _blocked_with_changed, _rule_keys

SAME_NAME_AND_YEAR = '(l."first_name" = r."first_name") AND (SUBSTRING(l.dob, 1, 4) = SUBSTRING(r.dob, 1, 4))'
SWAPPED = "l.first_name = r.last_name and l.last_name = r.first_name"


def model(*rules: str, tf: bool = False) -> dict:
    level = {"sql_condition": "ELSE", "tf_adjustment_column": "first_name" if tf else None}
    return {"blocking_rules_to_generate_predictions": [{"blocking_rule": r, "sql_dialect": "duckdb"} for r in rules],
            "comparisons": [{"comparison_levels": [level]}]}


def test_rule_keys_are_the_two_sides_of_each_equality():
    assert _rule_keys(SAME_NAME_AND_YEAR) == (('"first_name"', 'SUBSTRING("dob", 1, 4)'),
                                              ('"first_name"', 'SUBSTRING("dob", 1, 4)'))
    assert _rule_keys(SWAPPED) == (('"last_name"', '"first_name"'), ('"first_name"', '"last_name"'))
    # not a conjunction of l/r equalities: no keys
    assert _rule_keys("levenshtein(l.first_name, r.first_name) <= 1") is None
    assert _rule_keys("l.first_name = r.first_name or l.city = r.city") is None
    assert _rule_keys("l.first_name = l.last_name") is None
    assert _rule_keys("l.first_name = = r") is None


def candidates(rules_model: dict) -> set[str]:
    con = duckdb.connect()
    con.execute("""create table splink_input as select * from (values
        ('changed', 'ann', 'lee', '1980-02-03'),
        ('same name and year', 'ann', 'kim', '1980-12-31'),
        ('same name other year', 'ann', 'lee', '1981-02-03'),
        ('swapped names', 'lee', 'ann', '1970-01-01'),
        ('null name', null, 'lee', '1980-02-03'),
        ('nobody', 'bob', 'ray', '1990-01-01')) v(unique_id, first_name, last_name, dob)""")
    con.execute("create table changed_input as select * from splink_input where unique_id = 'changed'")
    return {r[0] for r in con.execute(_blocked_with_changed(rules_model)).fetchall()} - {"changed"}


def test_only_contacts_sharing_a_rule_key_with_a_changed_one_pass():
    assert candidates(model(SAME_NAME_AND_YEAR)) == {"same name and year"}
    assert candidates(model(SAME_NAME_AND_YEAR, SWAPPED)) == {"same name and year", "swapped names"}


def test_without_usable_keys_every_contact_passes():
    every = {"same name and year", "same name other year", "swapped names", "null name", "nobody"}
    assert candidates(model(SAME_NAME_AND_YEAR, "levenshtein(l.first_name, r.first_name) <= 1")) == every
    # term frequencies are computed over the input: it must stay whole
    assert candidates(model(SAME_NAME_AND_YEAR, tf=True)) == every
    assert candidates(model()) == every
