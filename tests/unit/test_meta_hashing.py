"""Meta Custom Audiences: normalisation and SHA-256 known answers, and the /users body shape.

facebook-business is not installed; the shapes are checked against the custom-audience/users
reference (payload {schema: multi-key list, data: rows as wide as the schema, "" for unknown},
session {session_id, batch_seq, last_batch_flag, estimated_num_total}) and the multi-key names
of the SDK's CustomAudienceMixin.Schema.MultiKeySchema.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

import pytest

from destinations.meta import (
    SCHEMA_ORDER,
    hashed_row,
    normalise,
    normalise_country,
    normalise_meta_phone,
    normalise_state,
    normalise_zip,
    row_from_id,
    row_id,
    users_body,
)

MULTI_KEYS = {"EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP",
              "MADID", "COUNTRY"}


def sha(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def test_email_known_answer():
    row = hashed_row({"email": "  Test@Example.COM "})
    assert row == {"EMAIL": "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"}


def test_phone_known_answer_digits_with_country_code():
    assert normalise_meta_phone("+1 (650) 253-0000", "US") == "16502530000"
    assert normalise_meta_phone("(650) 253-0000", "US") == "16502530000"  # region adds the country code
    assert normalise_meta_phone("0044 20 7946 0958", "GB") == "442079460958"  # no leading zeros
    assert normalise_meta_phone("020 7946 0958", "GB") == "442079460958"
    assert normalise_meta_phone("12", "US") is None
    assert hashed_row({"phone": "+1 (650) 253-0000"})["PHONE"] == (
        "67d3cb9e9b1b64b913a5f2508beac167cfa7d3fb943f6a52e6767392d425a536")


@pytest.mark.parametrize(("fields", "expected"), [
    ({"first_name": "  Mary-Jane "}, {"FN": "maryjane"}),
    ({"firstname": "O'Brien", "lastname": "Smith Jr."}, {"FN": "obrien", "LN": "smithjr"}),
    ({"first_name": "Élodie", "last_name": "Müller"}, {"FN": "élodie", "LN": "müller"}),  # UTF-8 letters kept
    ({"city": "Menlo Park"}, {"CT": "menlopark"}),
    ({"state": "CA", "country": "US"}, {"ST": "ca", "COUNTRY": "us"}),
    ({"state": "California"}, {"ST": "ca"}),
    ({"zip": "94043-1351", "country": "us"}, {"ZIP": "94043", "COUNTRY": "us"}),
    ({"postal_code": "SW1A 1AA", "country_code": "GB"}, {"ZIP": "sw1a1aa", "COUNTRY": "gb"}),
    ({"country": "Germany"}, {"COUNTRY": "de"}),
    ({"date_of_birth": date(1990, 1, 5)}, {"DOBY": "1990", "DOBM": "01", "DOBD": "05"}),
    ({"date_of_birth": "1985-12-31"}, {"DOBY": "1985", "DOBM": "12", "DOBD": "31"}),
    ({"gender": "Female"}, {"GEN": "f"}),
    ({"email": "not-an-email", "phone": "", "first_name": "  "}, {}),
])
def test_normalisation_rules(fields, expected):
    assert normalise(fields) == expected


def test_helpers_reject_what_they_cannot_normalise():
    assert normalise_country("Atlantis") is None and normalise_country("XX") is None
    assert normalise_zip("123", "us") is None
    assert normalise_state("", None) is None
    assert normalise_state("Bavaria", "de") == "bavaria"


def test_hashes_are_64_lower_hex_and_known():
    row = hashed_row({"email": "a@b.co", "phone": "+16502530000", "first_name": "John", "last_name": "Smith",
                      "city": "Menlo Park", "state": "CA", "zip": "94043", "country": "US",
                      "date_of_birth": "1990-01-01", "gender": "F"})
    assert set(row) == set(SCHEMA_ORDER) and set(row) <= MULTI_KEYS
    assert all(re.fullmatch(r"[0-9a-f]{64}", v) for v in row.values())
    assert row["FN"] == sha("john") == "96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a"
    assert row["LN"] == sha("smith") and row["CT"] == sha("menlopark") and row["ST"] == sha("ca")
    assert row["ZIP"] == sha("94043") and row["COUNTRY"] == sha("us") and row["DOBM"] == sha("01")


def test_users_body_shape_matches_the_reference():
    rows = [hashed_row({"email": "a@example.com", "zip": "94043"}), hashed_row({"phone": "+16502530000"})]
    session = {"session_id": 123, "batch_seq": 1, "last_batch_flag": True, "estimated_num_total": 2}
    body = users_body(rows, session)
    assert set(body) == {"payload", "session"} and body["session"] == session
    payload = body["payload"]
    assert set(payload) == {"schema", "data"}
    assert payload["schema"] == ["EMAIL", "PHONE", "ZIP"]  # only the keys the rows carry, in a fixed order
    assert all(len(r) == len(payload["schema"]) for r in payload["data"])
    assert payload["data"][1] == ["", sha("16502530000"), ""]  # unknown values are ""
    assert "session" not in users_body(rows, None)


def test_row_id_is_the_json_stored_before():
    """row_id joins the JSON itself; sync_state holds ids made by json.dumps, so the bytes
    must not change (a removal sends the stored id back)."""
    import json

    rows = [hashed_row({"email": "A@x.com", "phone": "+44 20 7946 0958", "first_name": "Zoë", "country": "GB",
                        "date_of_birth": "1990-02-03", "gender": "F"}),
            hashed_row({"email": "b@y.org"}), {}, {"EMAIL": 'not "hex"\\'}, {"ZIP": "é"},
            {"EMAIL": "a\x1fb\x7f"}, {"FN": "x/y"}]
    for row in rows:
        assert row_id(row) == json.dumps(row, sort_keys=True, separators=(",", ":"))
        assert row_from_id(row_id(row)) in (row, None)


def test_cached_hashes_equal_uncached():
    """Names, places and countries are hashed through caches (they repeat across an
    audience); the answers are the plain sha256 of the normalised value, whatever the
    order or type of the values seen before."""
    from destinations.identifiers import sha256_hex
    from destinations.meta import normalise

    people = [{"email": f"p{i}@x.com", "first_name": [" Zoë", "ANN", "ann", 42][i % 4], "last_name": "O'Brien",
               "city": "New York", "country": ["gb", "GBR", "United Kingdom"][i % 3]} for i in range(12)]
    for fields in people * 2:
        assert hashed_row(fields) == {k: sha256_hex(v) for k, v in normalise(fields).items()}
    assert hashed_row({"first_name": "ANN"})["FN"] == sha256_hex("ann")
    assert "FN" not in hashed_row({"first_name": 42})  # digits only: no letters left
