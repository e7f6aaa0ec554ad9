"""Normalisation and hashing: known answers."""

from __future__ import annotations

import hashlib

import pytest

from destinations.identifiers import hash_email, hash_phone, normalise_email, normalise_phone, sha256_hex

# Known answers computed independently (coreutils: printf '%s' VALUE | sha256sum).
KNOWN = {
    "test@example.com": "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b",
    "+16502530000": "3ad9f10d73829a714b1383221691d4dbf08484f3ceeae884f53053a1c7bb0a92",
    "": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}


def test_sha256_known_answers():
    assert sha256_hex("test@example.com") == KNOWN["test@example.com"]
    assert sha256_hex("") == KNOWN[""]
    assert sha256_hex("+16502530000") == KNOWN["+16502530000"]
    assert sha256_hex(None) is None
    assert sha256_hex("café") == hashlib.sha256("café".encode()).hexdigest()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(" Test@Example.COM ", "test@example.com"), ("a.b+c@gmail.com", "a.b+c@gmail.com"),
     ("   ", None), (None, None), ("\tUSER@x.org\n", "user@x.org")],
)
def test_normalise_email(raw, expected):
    assert normalise_email(raw) == expected


def test_hash_email_normalises_first():
    assert hash_email("  TEST@example.com ") == KNOWN["test@example.com"]
    assert hash_email(None) is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(650) 253-0000", "US", "+16502530000"),
        ("+1 650 253 0000", "GB", "+16502530000"),  # explicit country code wins
        ("020 7946 0018", "GB", "+442079460018"),
        ("0044 20 7946 0018", "GB", "+442079460018"),
        ("030 123456", "de", "+4930123456"),
        ("12345", "US", None),
        ("not a phone", "US", None),
        ("", "US", None),
        (None, "US", None),
    ],
)
def test_normalise_phone(raw, region, expected):
    assert normalise_phone(raw, region) == expected


def test_hash_phone():
    assert hash_phone("(650) 253-0000") == hashlib.sha256(b"+16502530000").hexdigest()
    assert hash_phone("garbage") is None
