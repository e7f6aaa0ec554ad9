"""Hostile sync definitions: every dangerous `where`/`fields` fragment is refused with a
clear message before any SQL runs, and random input never crashes the parser."""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestration.sync import apply
from orchestration.sync.plan import render_plan
from orchestration.sync.spec import (
    DIALECT,
    MAX_FRAGMENT_CHARS,
    FragmentError,
    SyncSpec,
    SyncSpecError,
    load_syncs,
    parse_fragment,
)
from tests.unit.test_sync_spec import COLUMNS, exposure, manifest

COLS = COLUMNS["profiles"]

HOSTILE = [
    # statement separators
    "first_name; DROP TABLE profiles",
    "1; SELECT * FROM outflow.sync_state",
    "first_name;",
    "';' ; DELETE FROM profiles",
    # comments hiding SQL
    "first_name -- ; DROP TABLE profiles",
    "first_name /* ; DROP TABLE profiles */",
    "score /**/ + 1",
    "first_name --\n",
    # subqueries and queries
    "(SELECT email FROM profiles LIMIT 1)",
    "first_name IN (SELECT email FROM outflow.sync_state)",
    "EXISTS (SELECT 1)",
    "(WITH x AS (SELECT 1) SELECT * FROM x)",
    "first_name UNION SELECT email FROM profiles",
    # DDL / DML / commands
    "DROP TABLE profiles",
    "CREATE TABLE x AS SELECT 1",
    "INSERT INTO profiles VALUES (1)",
    "UPDATE profiles SET email = NULL",
    "DELETE FROM profiles",
    "ALTER TABLE profiles DROP COLUMN email",
    "TRUNCATE profiles",
    "PRAGMA database_list",
    "SET memory_limit = '1GB'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CALL pragma_version()",
    "EXPORT DATABASE '/tmp/x'",
    # file and network access
    "COPY profiles TO '/tmp/leak.csv'",
    "ATTACH '/tmp/other.duckdb' AS other",
    "DETACH other",
    "read_csv('/etc/passwd')",
    "read_csv_auto('/etc/passwd')",
    "read_parquet('s3://bucket/x.parquet')",
    "read_json('/tmp/x.json')",
    "read_text('/etc/passwd')",
    "read_blob('/etc/passwd')",
    "glob('/etc/*')",
    "length(read_text('/etc/passwd'))",
    "coalesce(first_name, (SELECT content FROM read_text('/etc/passwd')))",
    "'/etc/passwd'::VARCHAR || read_csv('x')",
    # settings, environment, introspection
    "getenv('OUTFLOW_WEBHOOK_SECRET')",
    "current_setting('home_directory')",
    "version()",
    "pragma_version()",
    "query('SELECT 1')",
    "query_table('profiles')",
    "duckdb_settings()",
    "current_schema()",
    "sql_auto_complete('DROP')",
    # casts that carry SQL in a type name
    'CAST(first_name AS "x; DROP TABLE profiles")',
    "first_name::profiles",
    # placeholders, qualified or star columns, aggregates, windows, aliases
    "first_name = $1",
    "first_name = ?",
    "profiles.email",
    "main.profiles.email",
    "*",
    "count(*)",
    "max(score) OVER ()",
    "first_name AS email",
    # unknown functions and columns
    "md5(email)",
    "my_udf(first_name)",
    "password",
    # very long strings and deep nesting
    "first_name = '" + "x" * 100_000 + "'",
    "score" + " + score" * 50_000,
    "(" * 300 + "score" + ")" * 300,
    "lower(" * 60 + "first_name" + ")" * 60,
    # unicode tricks and control characters
    "first_name\u202e = 'x'",  # right-to-left override
    "first\u200bname",  # zero-width space
    "first_name = 'a\u0000'; DROP TABLE profiles",  # NUL byte
    "first_name\x00",
    "\ufefffirst_name",  # byte order mark
    "first_n\u0430me",  # Cyrillic a: a lookalike, unknown column
    "ｆｉｒｓｔ_ｎａｍｅ",  # full-width letters
    "first_name = '\udc00'",  # lone surrogate
    # broken SQL
    "'unterminated",
    "first_name = ",
    ")",
    "e'\\x00'",
]


@pytest.mark.parametrize("fragment", HOSTILE, ids=[f"{i:02d}" for i in range(len(HOSTILE))])
def test_hostile_fragment_is_refused_with_a_message(fragment):
    with pytest.raises(FragmentError) as refused:
        parse_fragment(fragment, COLS)
    message = str(refused.value)
    assert message and len(message) < 1_000  # a 100 kB fragment does not make a 100 kB message


@pytest.mark.parametrize("fragment", HOSTILE[:40], ids=[f"{i:02d}" for i in range(40)])
def test_hostile_fragment_in_a_sync_definition_is_named_and_never_reaches_the_warehouse(fragment, tmp_path,
                                                                                        monkeypatch):
    connects = []
    real_connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: connects.append(a) or real_connect(*a, **k))
    for where in ({"where": fragment}, {"fields": {"firstname": fragment}}):
        specs, errors = load_syncs(manifest(exposure("hostile", **where)), COLUMNS.get)
        assert specs == []
        key = "where" if "where" in where else "fields.firstname"
        assert [e.key for e in errors] == [key] and all(e.message for e in errors)
    # Nor can a spec be built around the validation (run_sync takes specs only).
    with pytest.raises(ValidationError):
        SyncSpec(name="s", model="profiles", model_table="profiles", destination="d", object="o",
                 mode="upsert", primary_key="profile_id", fields={"f": "first_name"}, where=fragment)
    assert connects == []  # refused before anything connected to DuckDB


def test_a_refused_sync_leaves_the_warehouse_untouched(tmp_path, monkeypatch):
    warehouse = tmp_path / "outflow.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE TABLE profiles AS SELECT 'p1' AS profile_id, 'a@example.com' AS email, "
                    "'Ann' AS first_name, 1 AS score, 'granted' AS consent_email, now() AS updated_at")
    before = warehouse.read_bytes()
    executed: list[str] = []

    class Spy:
        def __init__(self, con):
            self._con = con

        def execute(self, sql, *a, **k):
            executed.append(sql)
            return self._con.execute(sql, *a, **k)

        def __getattr__(self, name):
            return getattr(self._con, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._con.close()

    real_connect = duckdb.connect
    monkeypatch.setattr(apply.duckdb, "connect", lambda *a, **k: Spy(real_connect(*a, **k)))
    columns = apply.model_columns_from_warehouse(warehouse)  # read-only catalog query
    executed.clear()
    for fragment in HOSTILE:
        specs, errors = load_syncs(manifest(exposure("hostile", where=fragment)), columns)
        assert not specs and errors
    assert executed == []
    assert warehouse.read_bytes() == before


def test_column_names_of_keys_are_plain_identifiers():
    for bad in ("profile_id; DROP TABLE x", 'profile_id"', "profile id", "x" * 200, ""):
        with pytest.raises(ValidationError, match="plain column name"):
            SyncSpec(name="s", model="m", model_table="m", destination="d", object="o", mode="upsert",
                     primary_key=bad, fields={"f": "first_name"})
        with pytest.raises(ValidationError, match="plain column name"):
            SyncSpec(name="s", model="m", model_table="m", destination="d", object="o", mode="upsert",
                     primary_key="profile_id", match_on={"email": bad})


def test_the_length_limit_is_what_the_message_says():
    ok = "first_name = '" + "x" * (MAX_FRAGMENT_CHARS - 20) + "'"
    parse_fragment(ok, COLS)
    with pytest.raises(FragmentError, match=f"limit of {MAX_FRAGMENT_CHARS:,}"):
        parse_fragment(ok + " " * 30, COLS)


def test_safe_expressions_still_load():
    for fragment in ("lower(trim(first_name))", "coalesce(first_name, 'Unknown')",
                     "score >= 10 and consent_email = 'granted'", "CAST(score AS VARCHAR)",
                     "first_name = 'Zoë ''O''Brien \\ 東京 مرحبا'", "updated_at > current_date - INTERVAL 30 DAY",
                     "case when score > 5 then 'hot' else 'cold' end"):
        parse_fragment(fragment, COLS)


# ---------------------------------------------------------------- property-based

SQL_TOKENS = [
    "first_name", "email", "score", "profile_id", "nope", "profiles", "outflow.sync_state", "'x'", "'a''b'",
    "1", "0.5", "-1", "NULL", "TRUE", "(", ")", ",", ";", "+", "-", "*", "/", "||", "=", "<>", ">=", "AND",
    "OR", "NOT", "IS", "IN", "LIKE", "BETWEEN", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "AS",
    "VARCHAR", "::", "SELECT", "FROM", "WHERE", "DROP", "TABLE", "COPY", "TO", "ATTACH", "INSERT", "INTO",
    "lower(", "coalesce(", "read_csv(", "getenv(", "current_setting(", "glob(", "count(", "OVER", "--",
    "/*", "*/", "$1", "?", "\x00", "\u202e", "e'", "\\", "\"", "'", "[", "]", "{", "}", ":=", "->", "@",
]

sql_soup = st.lists(st.sampled_from(SQL_TOKENS), min_size=1, max_size=25).map(" ".join)
anything = st.one_of(st.text(max_size=300), sql_soup, st.text(alphabet=st.sampled_from("()'\";-*/ ab1"), max_size=80))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fragment=anything)
def test_random_fragments_are_accepted_safely_or_refused_with_a_message(fragment):
    try:
        tree = parse_fragment(fragment, COLS)
    except FragmentError as refused:
        assert str(refused)
        return
    # Accepted: one expression that writes back as one expression (nothing hidden).
    rendered = tree.sql(DIALECT)
    [again] = sqlglot.parse(rendered, read=DIALECT)
    assert again == tree
    assert not isinstance(tree, (sqlglot.exp.Query, sqlglot.exp.Command))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(where=anything, field=anything, key=st.text(max_size=40))
def test_random_sync_definitions_load_or_name_their_problems(where, field, key):
    specs, errors = load_syncs(manifest(exposure("s", where=where, fields={"f": field}, primary_key=key)),
                               COLUMNS.get)
    assert all(isinstance(e, SyncSpecError) and e.message for e in errors)
    for spec in specs:  # whatever loads renders a plan that is a single query
        [plan] = sqlglot.parse(render_plan(spec, DIALECT), read=DIALECT)
        assert isinstance(plan, sqlglot.exp.Query)
