"""The resolver on small hand-made inputs: rules, guards and ids, no dbt."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from orchestration.identity import MatchSettings, resolve_contacts
from orchestration.identity.resolve import INPUT_COLUMNS

DETERMINISTIC = MatchSettings(probabilistic=False)


def contacts(*rows: dict) -> pa.Table:
    base = {c: None for c in INPUT_COLUMNS}
    full = []
    for i, row in enumerate(rows):
        record = {**base, "source_system": "crm", "contact_id": f"c{i}", "email_is_valid": False, **row}
        record["phone_is_valid"] = row.get("phone_is_valid", record["phone_e164"] is not None)
        record["contact_key"] = f"{record['source_system']}:{record['contact_id']}"
        full.append(record)
    schema = pa.schema(
        [(c, pa.bool_() if c in ("email_is_valid", "phone_is_valid") else pa.date32() if c == "date_of_birth"
          else pa.timestamp("us") if c == "created_at" else pa.string()) for c in INPUT_COLUMNS]
    )
    return pa.Table.from_pylist(full, schema=schema)


def profile_of(result: pa.Table) -> dict[str, str]:
    return dict(zip(result["contact_key"].to_pylist(), result["profile_id"].to_pylist()))


def test_shared_valid_email_or_phone_merges_transitively():
    table = contacts(
        {"email": "ann@example.com", "email_is_valid": True},
        {"email": "ann@example.com", "email_is_valid": True, "phone_e164": "+14155550134"},
        {"phone_e164": "+14155550134", "source_system": "shop"},
        {"email": "bob@example.com", "email_is_valid": True},
    )
    result = resolve_contacts(table, DETERMINISTIC)
    profiles = profile_of(result)
    assert profiles["crm:c0"] == profiles["crm:c1"] == profiles["shop:c2"]
    assert profiles["crm:c3"] != profiles["crm:c0"]
    rules = dict(zip(result["contact_key"].to_pylist(), result["match_rule"].to_pylist()))
    assert rules == {"crm:c0": "email", "crm:c1": "email", "shop:c2": "phone", "crm:c3": "singleton"}


def test_possible_but_invalid_phone_is_not_a_key():
    table = contacts(
        {"phone_e164": "+4915033", "phone_is_valid": False},
        {"phone_e164": "+4915033", "phone_is_valid": False},
    )
    profiles = profile_of(resolve_contacts(table, DETERMINISTIC))
    assert profiles["crm:c0"] != profiles["crm:c1"]


def test_invalid_email_is_not_a_key():
    table = contacts(
        {"email": "n/a", "email_is_valid": False},
        {"email": "n/a", "email_is_valid": False},
    )
    profiles = profile_of(resolve_contacts(table, DETERMINISTIC))
    assert profiles["crm:c0"] != profiles["crm:c1"]


def test_key_shared_by_too_many_contacts_is_ignored():
    table = contacts(*[{"email": "info@acme.com", "email_is_valid": True} for _ in range(4)])
    profiles = profile_of(resolve_contacts(table, MatchSettings(probabilistic=False, max_contacts_per_key=3)))
    assert len(set(profiles.values())) == 4


def test_profile_id_comes_from_the_oldest_contact_and_is_stable():
    old = {"email": "a@x.io", "email_is_valid": True, "created_at": dt.datetime(2020, 1, 1), "contact_id": "zzz"}
    new = {"email": "a@x.io", "email_is_valid": True, "created_at": dt.datetime(2025, 1, 1), "contact_id": "aaa"}
    first = profile_of(resolve_contacts(contacts(old), DETERMINISTIC))
    both = profile_of(resolve_contacts(contacts(old, new), DETERMINISTIC))
    assert both["crm:zzz"] == both["crm:aaa"] == first["crm:zzz"]


def test_every_contact_gets_exactly_one_profile_and_empty_input_is_fine():
    table = contacts(*[{"email": f"p{i}@x.io", "email_is_valid": True} for i in range(50)])
    result = resolve_contacts(table, MatchSettings())  # below min records: deterministic only
    assert result.num_rows == 50 and len(set(result["contact_key"].to_pylist())) == 50
    assert resolve_contacts(contacts(), DETERMINISTIC).num_rows == 0


def test_missing_input_column_is_named():
    with pytest.raises(ValueError, match="phone_e164"):
        resolve_contacts(contacts({"email": "a@x.io"}).drop_columns(["phone_e164"]))
