"""Identifier normalisation and hashing: the one place for it (ad platforms hash
normalised emails and phones with SHA-256)."""

from __future__ import annotations

import hashlib

import phonenumbers


def normalise_email(value: str | None) -> str | None:
    """Trim and lower-case; None for blank. No provider-specific rewriting (dots in
    gmail addresses are kept): platforms that want it do it themselves."""
    if value is None:
        return None
    out = str(value).strip().lower()
    return out or None


def normalise_phone(value: str | None, region: str | None = "US") -> str | None:
    """E.164 ('+15551234567') or None when the value is not a valid number.
    `region` is the ISO country used for numbers written without a country code."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        parsed = phonenumbers.parse(text, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def sha256_hex(value: str | None) -> str | None:
    """Lower-case hex SHA-256 of the UTF-8 string as given: normalise first."""
    if value is None:
        return None
    return hashlib.sha256(str(value).encode("utf-8")).hexdigest()


def hash_email(value: str | None) -> str | None:
    return sha256_hex(normalise_email(value))


def hash_phone(value: str | None, region: str | None = "US") -> str | None:
    return sha256_hex(normalise_phone(value, region))
