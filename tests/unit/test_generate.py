"""`outflow generate`: contract, determinism, dirtiness, ground truth, funnel, day steps, bad arguments."""

from __future__ import annotations

import shutil
from collections import defaultdict

import duckdb
import phonenumbers
import pycountry
import pytest

from orchestration.cli import main
from orchestration.generate.writer import RAW_TABLES

SEED, START = "11", "2026-01-01"
PROFILES = 1500

CONTRACT = {
    "crm_contacts": ["contact_id", "source_system", "email", "phone", "first_name", "last_name", "street_address", "city",
                     "postal_code", "country", "date_of_birth", "company", "job_title", "industry", "employee_count",
                     "lead_source", "lifecycle_stage", "created_at", "updated_at"],
    "web_events": ["event_id", "contact_id", "anonymous_id", "email", "event_type", "page_url", "occurred_at"],
    "email_events": ["event_id", "email", "campaign_id", "event_type", "occurred_at"],
    "orders": ["order_id", "contact_id", "email", "amount", "currency", "status", "ordered_at"],
    "consent_events": ["email", "phone", "channel", "status", "source", "occurred_at"],
    "deletion_requests": ["email", "requested_at"],
    "conversions": ["contact_id", "email", "converted_at", "value"],
}
EMAIL_RE = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"


def _generate(path, *args: str) -> None:
    assert main(["generate", "--warehouse", str(path), *args]) == 0


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    paths = {name: root / f"{name}.duckdb" for name in ("a", "b", "other_seed", "small")}
    for name in ("a", "b"):
        _generate(paths[name], "--profiles", str(PROFILES), "--seed", SEED, "--start-date", START)
    _generate(paths["other_seed"], "--profiles", str(PROFILES), "--seed", "12", "--start-date", START)
    _generate(paths["small"], "--profiles", "500", "--seed", SEED, "--start-date", START)
    return paths


@pytest.fixture(scope="module")
def con(worlds):
    c = duckdb.connect(str(worlds["a"]), read_only=True)
    yield c
    c.close()


def _rows(path, table):
    with duckdb.connect(str(path), read_only=True) as c:
        return c.execute(f"SELECT * FROM raw.{table}").fetchall()


def _one(con, sql):
    return con.execute(sql).fetchone()[0]


def test_raw_tables_have_exactly_the_contract_columns(con):
    assert set(CONTRACT) == set(RAW_TABLES)
    for table, columns in CONTRACT.items():
        got = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall()]
        assert got == columns, table
        assert _one(con, f"SELECT count(*) FROM raw.{table}") > 0, table


def test_same_seed_and_start_date_give_identical_tables(worlds):
    for table in CONTRACT:
        assert _rows(worlds["a"], table) == _rows(worlds["b"], table), table
    assert _rows(worlds["a"], "crm_contacts") != _rows(worlds["other_seed"], "crm_contacts")


def test_sizes_scale_with_profiles(worlds):
    for table in ("crm_contacts", "web_events", "email_events", "orders"):
        big, small = len(_rows(worlds["a"], table)), len(_rows(worlds["small"], table))
        assert 2.3 < big / small < 3.9, (table, big, small)


def test_ids_are_unique_and_prefixed(con):
    assert _one(con, "SELECT count(*) - count(DISTINCT contact_id) FROM raw.crm_contacts") == 0
    prefixes = dict(con.execute(
        "SELECT source_system, min(split_part(contact_id, '-', 1)) FROM raw.crm_contacts GROUP BY 1").fetchall())
    assert prefixes == {"crm": "crm", "web_form": "web", "shop": "shop"}
    for table, key in (("web_events", "event_id"), ("email_events", "event_id"), ("orders", "order_id")):
        assert _one(con, f"SELECT count(*) - count(DISTINCT {key}) FROM raw.{table}") == 0


def test_events_refer_to_web_or_shop_contacts(con):
    bad = _one(con, """
        SELECT count(*) FROM (
          SELECT contact_id FROM raw.web_events UNION ALL SELECT contact_id FROM raw.orders
          UNION ALL SELECT contact_id FROM raw.conversions) e
        LEFT JOIN raw.crm_contacts c USING (contact_id)
        WHERE e.contact_id IS NOT NULL AND (c.contact_id IS NULL OR c.source_system = 'crm')""")
    assert bad == 0


def test_dirty_features_are_present(con):
    share = lambda cond: _one(con, f"SELECT avg(CASE WHEN {cond} THEN 1 ELSE 0 END) FROM raw.crm_contacts WHERE email <> ''")  # noqa: E731
    assert share("trim(email) <> lower(trim(email))") > 0.10  # mixed case
    assert share("email <> trim(email)") > 0.03  # stray spaces
    assert 0.005 < share(f"NOT regexp_full_match(lower(trim(email)), '{EMAIL_RE}')") < 0.05  # invalid
    assert _one(con, "SELECT count(*) FROM raw.crm_contacts WHERE email = ''") > 0
    phones = [r[0] for r in con.execute("SELECT phone FROM raw.crm_contacts WHERE phone IS NOT NULL").fetchall()]
    styles = {
        "plus_grouped": lambda p: p.startswith("+") and " " in p,
        "plus_digits": lambda p: p.startswith("+") and p[1:].isdigit(),
        "us_parentheses": lambda p: p.startswith("("),
        "double_zero": lambda p: p.startswith("00"),
        "national_trunk_0": lambda p: p.startswith("0") and not p.startswith("00"),
    }
    for name, test in styles.items():
        assert sum(map(test, phones)) > 10, name
    assert _one(con, "SELECT count(DISTINCT country) FROM raw.crm_contacts") >= 12  # GB, GBR, United Kingdom, gb ...
    assert _one(con, "SELECT count(*) FROM raw.crm_contacts WHERE street_address ILIKE '%str.%'") > 0
    assert _one(con, "SELECT count(*) FROM raw.crm_contacts WHERE date_of_birth IS NULL") > 0
    assert _one(con, "SELECT count(DISTINCT lifecycle_stage) FROM raw.crm_contacts") > 6  # 'lead', 'Lead', 'LEAD'


def test_people_span_one_to_three_systems(con):
    counts = dict(con.execute("""
        SELECT n, count(*) FROM (SELECT person_id, count(DISTINCT source_system) n
                                 FROM generator_truth.contact_people GROUP BY 1) GROUP BY 1""").fetchall())
    total = sum(counts.values())
    assert set(counts) == {1, 2, 3}
    assert counts[2] / total > 0.25 and counts[3] / total > 0.1


def _norm_phone(phone, country):
    try:
        region = pycountry.countries.lookup(country).alpha_2 if country else "US"
    except LookupError:
        region = "US"
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _keys(con):
    rows = con.execute("""
        SELECT t.person_id, c.email, c.phone, c.country FROM raw.crm_contacts c
        JOIN generator_truth.contact_people t USING (source_system, contact_id)""").fetchall()
    emails, phones = defaultdict(set), defaultdict(set)
    person_emails, person_phones = defaultdict(list), defaultdict(list)
    for person, email, phone, country in rows:
        if email and email.strip():
            emails[email.strip().lower()].add(person)
            person_emails[person].append(email.strip().lower())
        if phone:
            e164 = _norm_phone(phone, country)
            if e164:
                phones[e164].add(person)
                person_phones[person].append(e164)
    return emails, phones, person_emails, person_phones


def test_truth_covers_every_contact_and_keys_never_cross_people(con):
    assert _one(con, """
        SELECT count(*) FROM raw.crm_contacts c
        LEFT JOIN generator_truth.contact_people t USING (source_system, contact_id) WHERE t.person_id IS NULL""") == 0
    assert _one(con, "SELECT count(*) FROM generator_truth.contact_people") == _one(con, "SELECT count(*) FROM raw.crm_contacts")
    emails, phones, _, _ = _keys(con)
    assert len(emails) > PROFILES * 0.8 and len(phones) > PROFILES * 0.5
    assert [e for e, people in emails.items() if len(people) > 1] == []
    assert [p for p, people in phones.items() if len(people) > 1] == []


def test_some_people_share_no_email_or_phone_across_records(con):
    _, _, person_emails, person_phones = _keys(con)
    multi = con.execute("""
        SELECT person_id FROM generator_truth.contact_people GROUP BY 1 HAVING count(*) > 1""").fetchall()
    def shares_key(person):
        return len(person_emails[person]) != len(set(person_emails[person])) or \
            len(person_phones[person]) != len(set(person_phones[person]))
    unlinked = [p for (p,) in multi if not shares_key(p)]
    assert len(unlinked) / len(multi) > 0.1
    # ... and those records still carry name, date of birth and address for probabilistic matching.
    ids = ",".join(str(p) for p in unlinked)
    assert _one(con, f"""
        SELECT count(*) FROM raw.crm_contacts c JOIN generator_truth.contact_people t USING (source_system, contact_id)
        JOIN generator_truth.people p USING (person_id)
        WHERE t.person_id IN ({ids}) AND p.link = 'fuzzy'
          AND (c.date_of_birth IS NULL OR c.street_address IS NULL OR c.last_name IS NULL)""") == 0


def test_nicknames_resolve_to_the_real_first_name(con):
    from nicknames import NickNamer

    namer = NickNamer()
    rows = con.execute("""
        SELECT lower(trim(c.first_name)), lower(p.first_name) FROM raw.crm_contacts c
        JOIN generator_truth.contact_people t USING (source_system, contact_id) JOIN generator_truth.people p USING (person_id)
        WHERE p.nickname <> '' AND lower(trim(c.first_name)) = lower(p.nickname)""").fetchall()
    assert len(rows) > 10
    assert all(namer.canonicals_of(nick) == {canon} for nick, canon in rows)


def test_people_have_distinct_addresses(con):
    assert _one(con, """
        SELECT count(*) FROM (SELECT country, city, street_address FROM generator_truth.people
                              GROUP BY ALL HAVING count(*) > 1)""") == 0


def test_web_funnel_and_email_rates_are_believable(con):
    w = dict(con.execute("SELECT event_type, count(*) FROM raw.web_events GROUP BY 1").fetchall())
    intent = _one(con, "SELECT count(*) FROM raw.web_events WHERE event_type = 'page_view' "
                       "AND (page_url LIKE '%/pricing%' OR page_url LIKE '%/demo%')")
    assert w["page_view"] > 4 * intent > 4 * 2 * w["form_submit"] / 2
    assert intent > 2 * w["form_submit"]
    assert w["form_submit"] > w["add_to_cart"] > w["checkout_start"] > 0
    assert w["signup"] > 0
    e = dict(con.execute("SELECT event_type, count(*) FROM raw.email_events GROUP BY 1").fetchall())
    unique_opens = _one(con, "SELECT count(DISTINCT (email, campaign_id)) FROM raw.email_events WHERE event_type = 'open'")
    assert 0.95 < e["delivered"] / e["sent"] < 0.99
    assert 0.2 < unique_opens / e["delivered"] < 0.4
    assert 0.02 < e["click"] / e["delivered"] < 0.05
    assert e["bounce"] > 0 and e["unsubscribe"] > 0
    assert _one(con, "SELECT count(*) FROM raw.web_events WHERE contact_id IS NULL AND anonymous_id IS NULL AND email IS NOT NULL") > 0
    assert _one(con, "SELECT count(*) FROM raw.web_events WHERE contact_id IS NULL AND email IS NULL") > 0


def test_consent_orders_and_deletions_look_real(con):
    combos = set(con.execute("SELECT channel, status FROM raw.consent_events GROUP BY ALL").fetchall())
    assert {("email", "granted"), ("email", "revoked"), ("sms", "granted"), ("ads", "granted")} <= combos
    assert set(r[0] for r in con.execute("SELECT DISTINCT status FROM raw.orders").fetchall()) == {
        "completed", "refunded", "cancelled", "pending"}
    assert {"USD", "EUR", "GBP"} <= set(r[0] for r in con.execute("SELECT DISTINCT currency FROM raw.orders").fetchall())
    assert 0 < _one(con, "SELECT count(*) FROM raw.deletion_requests") < PROFILES * 0.02


def test_marketing_segments_are_not_empty(con):
    start = f"TIMESTAMP '{START}'"
    lapsed = _one(con, f"""
        SELECT count(*) FROM (SELECT contact_id FROM raw.orders WHERE contact_id IS NOT NULL GROUP BY 1
                              HAVING max(ordered_at) < {start} - INTERVAL 90 DAY)""")
    new_subscribers = _one(con, f"""
        SELECT count(*) FROM raw.consent_events WHERE channel = 'email' AND status = 'granted'
          AND occurred_at >= {start} - INTERVAL 14 DAY""")
    abandoners = _one(con, f"""
        SELECT count(DISTINCT w.contact_id) FROM raw.web_events w
        WHERE w.event_type = 'add_to_cart' AND w.occurred_at >= {start} - INTERVAL 7 DAY AND w.contact_id LIKE 'shop-%'
          AND NOT EXISTS (SELECT 1 FROM raw.orders o WHERE o.contact_id = w.contact_id AND o.ordered_at > w.occurred_at)""")
    vips = _one(con, "SELECT count(*) FROM (SELECT contact_id FROM raw.orders GROUP BY 1 HAVING sum(amount) > 1000)")
    assert min(lapsed, new_subscribers, abandoners, vips) > 5, (lapsed, new_subscribers, abandoners, vips)


def test_conversions_follow_the_planted_propensity(con):
    converted, rest = con.execute("""
        SELECT avg(propensity) FILTER (WHERE c.person_id IS NOT NULL), avg(propensity) FILTER (WHERE c.person_id IS NULL)
        FROM generator_truth.people p LEFT JOIN (SELECT DISTINCT person_id FROM generator_truth.conversions) c USING (person_id)
    """).fetchone()
    assert converted > 1.5 * rest
    # Behaviour shows it too: people who looked at pricing or demo convert more often.
    hot, cold = con.execute("""
        WITH hot AS (SELECT DISTINCT contact_id FROM raw.web_events
                     WHERE page_url LIKE '%/pricing%' OR page_url LIKE '%/demo%' OR event_type = 'form_submit'),
        conv AS (SELECT DISTINCT contact_id FROM raw.conversions)
        SELECT avg(CASE WHEN conv.contact_id IS NOT NULL THEN 1 ELSE 0 END) FILTER (WHERE hot.contact_id IS NOT NULL),
               avg(CASE WHEN conv.contact_id IS NOT NULL THEN 1 ELSE 0 END) FILTER (WHERE hot.contact_id IS NULL)
        FROM raw.crm_contacts c LEFT JOIN hot USING (contact_id) LEFT JOIN conv USING (contact_id)
        WHERE c.source_system <> 'crm'""").fetchone()
    assert hot > cold


def test_truth_records_the_run(con):
    seed, profiles, start, last_day = con.execute(
        "SELECT seed, profiles, CAST(start_date AS VARCHAR), last_day FROM generator_truth.runs").fetchone()
    assert (seed, profiles, start, last_day) == (int(SEED), PROFILES, START, 0)


@pytest.fixture(scope="module")
def days(worlds, tmp_path_factory):
    """World 'a' copied twice, days 1..4 applied to both."""
    root = tmp_path_factory.mktemp("days")
    copies = [root / "d1.duckdb", root / "d2.duckdb"]
    for copy in copies:
        shutil.copy(worlds["a"], copy)
        for day in range(1, 5):
            assert main(["generate", "--warehouse", str(copy), "--day", str(day)]) == 0
    return copies


def test_days_add_events_contacts_changes_unsubscribes_and_deletions(worlds, days):
    day_start = f"TIMESTAMP '{START}'"
    with duckdb.connect(str(days[0]), read_only=True) as c:
        q = lambda sql: c.execute(sql).fetchone()[0]  # noqa: E731
        assert q("SELECT last_day FROM generator_truth.runs") == 4
        for table, col in (("crm_contacts", "created_at"), ("web_events", "occurred_at"), ("email_events", "occurred_at"),
                           ("orders", "ordered_at"), ("consent_events", "occurred_at")):
            assert q(f"SELECT count(*) FROM raw.{table} WHERE {col} >= {day_start}") > 0, table
        assert q(f"SELECT count(*) FROM raw.{table} WHERE {col} >= {day_start} + INTERVAL 4 DAY") == 0
        assert q(f"SELECT count(*) FROM raw.crm_contacts WHERE updated_at >= {day_start} AND created_at < {day_start}") > 0
        assert q(f"SELECT count(*) FROM raw.email_events WHERE event_type = 'unsubscribe' AND occurred_at >= {day_start}") > 0
        assert q(f"SELECT count(*) FROM raw.consent_events WHERE status = 'revoked' AND occurred_at >= {day_start}") > 0
        assert q(f"SELECT count(*) FROM raw.deletion_requests WHERE requested_at >= {day_start}") > 0
        assert q("SELECT count(*) - count(DISTINCT contact_id) FROM raw.crm_contacts") == 0
        assert q("SELECT count(*) FROM raw.crm_contacts") == q("SELECT count(*) FROM generator_truth.contact_people")
        emails, phones, _, _ = _keys(c)
        assert [e for e, people in emails.items() if len(people) > 1] == []
        assert [p for p, people in phones.items() if len(people) > 1] == []
    for table in CONTRACT:
        assert _rows(days[0], table) == _rows(days[1], table), table


def test_days_apply_once_and_in_order(days, capsys):
    assert main(["generate", "--warehouse", str(days[0]), "--day", "4"]) == 1
    assert main(["generate", "--warehouse", str(days[0]), "--day", "6"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "day 4 is already applied" in err[0] and "day 5 has not been applied" in err[1]


def test_day_without_a_world_is_refused(tmp_path, capsys):
    assert main(["generate", "--warehouse", str(tmp_path / "none.duckdb"), "--day", "1"]) == 1
    assert "no warehouse" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args, named",
    [
        (["--profiles", "-5"], "--profiles must be a positive integer, got -5"),
        (["--profiles", "lots"], "--profiles"),
        (["--profiles", "0"], "--profiles"),
        (["--seed", "-1"], "--seed"),
        (["--start-date", "2026-02-30"], "--start-date"),
        (["--day", "0"], "--day"),
        (["--day", "1", "--profiles", "10"], "--profiles"),
        (["--bogus"], "--bogus"),
    ],
)
def test_bad_arguments_get_one_line_naming_them(args, named, tmp_path, capsys):
    with pytest.raises(SystemExit) if args == ["--bogus"] else _no_raise():
        code = main(["generate", "--warehouse", str(tmp_path / "w.duckdb"), *args])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert named in err and "Traceback" not in err and len(err.splitlines()) == 1 and err.startswith("error:")
    assert not (tmp_path / "w.duckdb").exists()


def test_cli_exits_2_on_bad_arguments_without_traceback():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "orchestration.cli", "generate", "--profiles", "-5"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip() == "error: --profiles must be a positive integer, got -5"


def test_summary_prints_no_raw_emails_or_phones(tmp_path, capsys):
    _generate(tmp_path / "w.duckdb", "--profiles", "50", "--seed", "3", "--start-date", START)
    out = capsys.readouterr().out
    assert "raw.crm_contacts" in out and "@" not in out


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("name", ["raw", "generator_truth"])
def test_a_warehouse_named_like_a_schema_works(tmp_path, worlds, name):
    """DuckDB names the catalog after the file: `raw.duckdb` once made every `raw.x` ambiguous."""
    path = tmp_path / f"{name}.duckdb"
    _generate(path, "--profiles", "500", "--seed", SEED, "--start-date", START)
    _generate(path, "--day", "1")
    with duckdb.connect(str(path), read_only=True) as c:
        assert c.execute(f'SELECT count(*) FROM "{name}".raw.crm_contacts').fetchone()[0] > 500
