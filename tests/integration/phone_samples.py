"""Phone strings in many formats with phonenumbers' own E.164 reading, for agreement tests."""

from __future__ import annotations

import random

import phonenumbers
from phonenumbers import PhoneNumberFormat as Fmt
from phonenumbers import PhoneNumberType as T

REGIONS = ["US", "CA", "GB", "DE", "FR", "AU", "IN", "BR", "ES", "IT", "NL", "MX", "JP", "IE", "CH"]
TYPES = [T.FIXED_LINE, T.MOBILE, T.TOLL_FREE]


def _valid_numbers(region: str, rng: random.Random, per_type: int) -> list[phonenumbers.PhoneNumber]:
    """Valid numbers near the library's example numbers (last digits randomised)."""
    found = []
    for numtype in TYPES:
        example = phonenumbers.example_number_for_type(region, numtype)
        if example is None:
            continue
        nsn = phonenumbers.national_significant_number(example)
        tries = 0
        got = 0
        while got < per_type and tries < 200:
            tries += 1
            keep = max(len(nsn) - 4, 1)
            candidate = nsn[:keep] + "".join(rng.choice("0123456789") for _ in range(len(nsn) - keep))
            try:
                num = phonenumbers.parse("+" + str(example.country_code) + candidate, None)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(num):
                found.append(num)
                got += 1
    return found


def expected_e164(text: str, region: str | None) -> str | None:
    """phonenumbers' answer: E.164 when parseable and possible, else None."""
    try:
        num = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(num):
        return None
    # local-only lengths (7-digit US) count as possible for phonenumbers but have no E.164 form
    result = phonenumbers.is_possible_number_with_reason(num)
    if result != phonenumbers.ValidationResult.IS_POSSIBLE:
        return None
    return phonenumbers.format_number(num, Fmt.E164)


def truncated_samples(seed: int = 11, per_type: int = 2) -> list[tuple[str, str | None]]:
    """Valid numbers with their last 1-3 digits cut off, in E.164: what a form field that
    was too short leaves behind. Many are still possible lengths, few are valid."""
    rng = random.Random(seed)
    rows = []
    for region in REGIONS:
        for num in _valid_numbers(region, rng, per_type):
            e164 = phonenumbers.format_number(num, Fmt.E164)
            rows.append((e164[: -rng.randint(1, 3)], region))
    return rows


def phone_samples(seed: int = 7, per_type: int = 4) -> list[tuple[str, str | None]]:
    """(phone text, region) pairs; region None means 'use the default region (US)'."""
    rng = random.Random(seed)
    rows: list[tuple[str, str | None]] = []
    for region in REGIONS:
        caller = rng.choice([r for r in REGIONS if r != region])
        for num in _valid_numbers(region, rng, per_type):
            e164 = phonenumbers.format_number(num, Fmt.E164)
            intl = phonenumbers.format_number(num, Fmt.INTERNATIONAL)
            national = phonenumbers.format_number(num, Fmt.NATIONAL)
            rows += [
                (e164, None),
                (intl, region),
                (intl.replace(" ", "-"), None),
                ("00" + e164[1:], "GB"),
                # dialled from abroad with the caller's own IDD prefix (011 in the US, 0011 in AU ...)
                (phonenumbers.format_out_of_country_calling_number(num, caller), caller),
                (national, region),
                (national.replace(" ", "."), region),
                (national.replace(" ", "").replace("-", ""), region),
                (f"({intl})" if rng.random() < 0.2 else intl + " ext. 12", region),
            ]
    rows += [
        ("+1 (415) 555-0134", None),
        ("415-555-0134", None),
        ("1-415-555-0134", "US"),
        ("011 44 20 7946 0958", "US"),
        ("+44 (0)20 7946 0958", None),
        ("44 20 7946 0958", "GB"),
        ("020 7946 0958", "GB"),
        ("0151 234 5678", "GB"),
        ("030 123456", "DE"),
        ("+49 30 1234567", "DE"),
        ("0011 61 2 9876 5432", "AU"),
    ]
    return rows


GARBAGE = ["n/a", "none", "", "   ", "12", "555", "+", "000000", "call me", "+999 123 456", "abc-def-ghij",
           "+1 (415) 555-01345678999", "1234567890123456789", "0", "++44", "+44 12"]
