"""phone_e164 and the email macros, built by real dbt on a real DuckDB file, against the
reference libraries (phonenumbers for phones, a small hand-checked list for emails)."""

from __future__ import annotations

import hashlib

import duckdb
import phonenumbers
import pytest

from tests.conftest import dbt
from tests.integration.phone_samples import GARBAGE, expected_e164, phone_samples, truncated_samples

pytestmark = pytest.mark.slow

EMAILS = [
    # raw, normalised, valid
    ("  John.Doe@Example.COM ", "john.doe@example.com", True),
    ("mailto:Ann@Shop.co.uk", "ann@shop.co.uk", True),
    ('"bob+news@mail.example.org"', "bob+news@mail.example.org", True),
    ("<eve@example.io>", "eve@example.io", True),
    ("o'brien@example.ie", "o'brien@example.ie", True),
    ("bad@", "bad@", False),
    ("@example.com", "@example.com", False),
    ("no-at-sign.example.com", "no-at-sign.example.com", False),
    ("two@@example.com", "two@@example.com", False),
    ("a@b@example.com", "a@b@example.com", False),
    ("john..doe@example.com", "john..doe@example.com", False),
    (".john@example.com", ".john@example.com", False),
    ("john doe@example.com", "john doe@example.com", False),
    ("john@example", "john@example", False),
    ("john@example..com", "john@example..com", False),
    ("john@-example.com", "john@-example.com", False),
    ("john@example.c0m", "john@example.c0m", False),
    ("   ", None, False),
    ("", None, False),
]


CONTACT_COLUMNS = ["contact_id", "source_system", "email", "phone", "first_name", "last_name", "street_address",
                   "city", "postal_code", "country", "date_of_birth", "company", "job_title", "industry",
                   "employee_count", "lead_source", "lifecycle_stage", "created_at", "updated_at"]


def _load_contacts(warehouse, phones: list[tuple[str, str | None]], emails: list[str]) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("create schema raw")
        con.execute(f"create table raw.crm_contacts ({', '.join(c + ' varchar' for c in CONTACT_COLUMNS)})")
        rows = [(f"crm-{i:07d}", "crm", None, text, region) for i, (text, region) in enumerate(phones)]
        rows += [(f"crm-e{i:06d}", "crm", e, None, None) for i, e in enumerate(emails)]
        con.executemany("insert into raw.crm_contacts (contact_id, source_system, email, phone, country) "
                        "values (?, ?, ?, ?, ?)", rows)
    finally:
        con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stg_phone")
    warehouse = tmp / "w.duckdb"
    phones = phone_samples() + truncated_samples() + [(g, "US") for g in GARBAGE]
    _load_contacts(warehouse, phones, [raw for raw, _, _ in EMAILS])
    dbt(["seed"], warehouse, tmp / "target")
    dbt(["run", "-s", "stg_crm__contacts"], warehouse, tmp / "target")
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        result = dict(con.execute("select contact_id, phone_e164 from main.stg_crm__contacts").fetchall())
        validity = dict(con.execute("select contact_id, phone_is_valid from main.stg_crm__contacts").fetchall())
        emails = {row[0]: row[1:] for row in con.execute(
            "select contact_id, email, email_is_valid, email_domain from main.stg_crm__contacts").fetchall()}
    finally:
        con.close()
    return phones, result, emails, validity


def _redact(text: str) -> str:
    return "phone#" + hashlib.sha256(text.encode()).hexdigest()[:10]


def test_phone_e164_agrees_with_phonenumbers_on_possible_numbers(built):
    phones, result, _, _ = built
    agree = total = 0
    disagreements = []
    for i, (text, region) in enumerate(phones[: len(phones) - len(GARBAGE)]):
        expected = expected_e164(text, region or "US")
        if expected is None:
            continue
        total += 1
        got = result[f"crm-{i:07d}"]
        if got == expected:
            agree += 1
        else:
            disagreements.append((_redact(text), region))
    share = agree / total
    print(f"phone_e164 agreement with phonenumbers: {agree}/{total} = {share:.2%}")
    assert total > 500
    assert share >= 0.99, f"agreement {share:.2%} below 99%; first disagreements: {disagreements[:10]}"


def test_phone_e164_is_null_for_garbage(built):
    phones, result, _, _ = built
    offset = len(phones) - len(GARBAGE)
    not_null = [g for j, g in enumerate(GARBAGE) if result[f"crm-{offset + j:07d}"] is not None]
    assert not_null == [], f"garbage phones got an E.164 value: {len(not_null)} of {len(GARBAGE)}"


def test_phone_e164_null_when_phonenumbers_says_impossible(built):
    phones, result, _, _ = built
    wrong = [i for i, (text, region) in enumerate(phones[: len(phones) - len(GARBAGE)])
             if expected_e164(text, region or "US") is None and result[f"crm-{i:07d}"] is not None]
    assert len(wrong) <= 0.01 * len(phones), f"{len(wrong)} impossible numbers got an E.164 value"


def test_emails_normalised_and_validated(built):
    _, _, emails, _ = built
    for i, (raw, normalised, valid) in enumerate(EMAILS):
        email, is_valid, domain = emails[f"crm-e{i:06d}"]
        assert email == normalised, f"email case {i}: normalised to the wrong value"
        assert is_valid is valid, f"email case {i}: email_is_valid should be {valid}"
        assert domain == (normalised.split("@")[1] if valid else None), f"email case {i}: wrong domain"


def test_phone_is_valid_agrees_with_phonenumbers_is_valid_number(built):
    """Valid numbers, and the same numbers cut short (possible but mostly not valid)."""
    phones, result, _, validity = built
    agree = total = invalid_seen = 0
    for i, (text, region) in enumerate(phones[: len(phones) - len(GARBAGE)]):
        e164 = result[f"crm-{i:07d}"]
        if e164 is None:
            continue
        expected = phonenumbers.is_valid_number(phonenumbers.parse(e164))
        invalid_seen += not expected
        total += 1
        agree += validity[f"crm-{i:07d}"] == expected
    share = agree / total
    print(f"phone_is_valid agreement with phonenumbers.is_valid_number: {agree}/{total} = {share:.2%} "
          f"({invalid_seen} possible-but-invalid numbers)")
    assert invalid_seen > 20
    assert share >= 0.99
