"""Regenerate the dbt reference seeds from the libraries that own the facts.

    .venv/bin/python scripts/build_seeds.py          # rewrite dbt_project/seeds/*.csv
    .venv/bin/python scripts/build_seeds.py --check  # exit 1 when a committed seed drifted

Seeds written (all derived, nothing hand-typed except the short lists marked below):
- nicknames.csv      nickname -> canonical_name, from the `nicknames` package
- country_codes.csv  country_key -> ISO alpha-2, from `pycountry` plus common aliases
- phone_regions.csv  per-region phone metadata, from `phonenumbers`

The generators are pure functions returning CSV text so tests can compare them with
the committed files (tests/unit/test_seed_drift.py).
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
import unicodedata
from pathlib import Path

SEEDS_DIR = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"

# --- nicknames ---------------------------------------------------------------------

# Where the package's graph is too noisy for the generic rule below (it lists
# "bill" as a nickname of robert as well as william, "fred" of billy ...), the
# conventional English reading wins. Keep this list short and obvious.
NICKNAME_OVERRIDES = {
    "bill": "william",
    "billy": "william",
    "fred": "frederick",
    "freddy": "frederick",
    "liz": "elizabeth",
    "will": "william",
    "bobby": "robert",
}


def _first_name_frequency() -> dict[str, float]:
    """US first-name frequencies (Faker's en_US tables), used only to break ties."""
    from faker.providers.person.en_US import Provider

    freq: dict[str, float] = {}
    for table in (Provider.first_names_male, Provider.first_names_female):
        for name, weight in table.items():
            key = name.lower()
            freq[key] = max(freq.get(key, 0.0), float(weight))
    return freq


def nickname_rows() -> list[tuple[str, str]]:
    """One (nickname, canonical_name) row per name that resolves to a different name.

    Rule (deterministic, documented in the seeds yml):
    1. A name that is only a nickname maps to its canonical; with several canonicals,
       the most frequent US first name wins, then the one with most nicknames, then
       alphabetical.
    2. A name that is both a canonical and a nickname (john, ann) stays as it is,
       unless it and one of its canonicals list each other (bob <-> robert): then the
       one with more nicknames wins (bob -> robert).
    3. NICKNAME_OVERRIDES last.
    """
    from nicknames import NickNamer

    namer = NickNamer()
    nicks = namer.nickname_lookup  # canonical -> nicknames
    canons = namer.canonical_lookup  # nickname -> canonicals
    freq = _first_name_frequency()

    def resolve(name: str) -> str:
        if name in NICKNAME_OVERRIDES:
            return NICKNAME_OVERRIDES[name]
        candidates = canons.get(name, set())
        if not candidates:
            return name
        if name in nicks:
            mutual = [c for c in candidates if c in nicks[name] and name in nicks.get(c, ())]
            if not mutual:
                return name
            return min([name, *mutual], key=lambda c: (-len(nicks.get(c, ())), c))
        return min(candidates, key=lambda c: (-freq.get(c, 0.0), -len(nicks.get(c, ())), c))

    rows = []
    for name in sorted(set(canons) | set(NICKNAME_OVERRIDES)):
        if not re.fullmatch(r"[a-z][a-z' -]*", name):
            continue
        canonical = resolve(name)
        if canonical != name:
            rows.append((name, canonical))
    return rows


# --- countries ---------------------------------------------------------------------

# Common ways people write a country that pycountry does not list.
COUNTRY_ALIASES = {
    "USA": "US",
    "U.S.A.": "US",
    "U.S.": "US",
    "United States of America": "US",
    "America": "US",
    "UK": "GB",
    "U.K.": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "Deutschland": "DE",
    "Allemagne": "DE",
    "Espana": "ES",
    "España": "ES",
    "Italia": "IT",
    "Nederland": "NL",
    "Holland": "NL",
    "The Netherlands": "NL",
    "Schweiz": "CH",
    "Suisse": "CH",
    "Österreich": "AT",
    "Brasil": "BR",
    "México": "MX",
    "Russia": "RU",
    "South Korea": "KR",
    "Korea": "KR",
    "North Korea": "KP",
    "Czech Republic": "CZ",
    "Vietnam": "VN",
    "Iran": "IR",
    "Syria": "SY",
    "Laos": "LA",
    "Bolivia": "BO",
    "Venezuela": "VE",
    "Tanzania": "TZ",
    "Moldova": "MD",
    "Ivory Coast": "CI",
    "Turkey": "TR",
    "UAE": "AE",
    "Hong Kong": "HK",
    "Taiwan": "TW",
    "Macau": "MO",
    # regions phonenumbers knows that ISO 3166-1 does not list
    "Kosovo": "XK",
    "XK": "XK",
    "Ascension Island": "AC",
    "AC": "AC",
    "Tristan da Cunha": "TA",
    "TA": "TA",
    "Vatican": "VA",
}


def country_key(text: str) -> str:
    """The lookup key staging computes too: accents stripped, lower-case, letters a-z only.

    Must agree with the SQL in macros/country_key.sql (strip_accents, lower, [^a-z] removed).
    """
    decomposed = unicodedata.normalize("NFKD", text)
    no_accents = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^a-z]", "", no_accents.lower())


def country_rows() -> list[tuple[str, str, str]]:
    """(country_key, country_code, matched_on). Keys claimed by two countries are dropped."""
    import pycountry

    claims: dict[str, dict[str, str]] = {}

    def add(text: str | None, code: str, kind: str) -> None:
        if not text:
            return
        key = country_key(text)
        if key:
            claims.setdefault(key, {}).setdefault(code, kind)

    for c in pycountry.countries:
        add(c.alpha_2, c.alpha_2, "alpha_2")
        add(c.alpha_3, c.alpha_2, "alpha_3")
        add(c.name, c.alpha_2, "name")
        add(getattr(c, "official_name", None), c.alpha_2, "official_name")
        add(getattr(c, "common_name", None), c.alpha_2, "common_name")
    for alias, code in COUNTRY_ALIASES.items():
        add(alias, code, "alias")

    rows = []
    for key in sorted(claims):
        codes = claims[key]
        if len(codes) == 1:
            code, kind = next(iter(codes.items()))
            rows.append((key, code, kind))
    return rows


# --- phone regions -----------------------------------------------------------------


def phone_region_rows() -> list[tuple]:
    """Per-region metadata the SQL phone_e164 macro needs, straight from phonenumbers.

    Non-geographic calling codes (800, 870, ...) appear under region '001' with
    is_main_region true, as phonenumbers treats them.
    """
    import phonenumbers
    from phonenumbers import PhoneMetadata

    entries = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        md = PhoneMetadata.metadata_for_region(region)
        main = phonenumbers.region_code_for_country_code(md.country_code) == region
        entries.append((region, md, main))
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        entries.append(("001", PhoneMetadata.metadata_for_nongeo_region(cc), True))

    rows = []
    for region, md, main in entries:
        lengths = sorted(n for n in md.general_desc.possible_length if n > 0)
        local = sorted(n for n in md.general_desc.possible_length_local_only if n > 0)
        rows.append(
            (
                region,
                str(md.country_code),
                "true" if main else "false",
                md.international_prefix or "",
                md.national_prefix or "",
                md.national_prefix_for_parsing or "",
                md.national_prefix_transform_rule or "",
                str(re.compile(md.national_prefix_for_parsing).groups if md.national_prefix_for_parsing else 0),
                md.general_desc.national_number_pattern or "",
                "|".join(map(str, lengths)),
                "|".join(map(str, local)),
                str(min(lengths)) if lengths else "",
                str(max(lengths)) if lengths else "",
                _valid_number_pattern(md),
            )
        )
    return rows


# Number types whose patterns together make phonenumbers.is_valid_number.
_NUMBER_TYPES = ("fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost", "personal_number",
                 "voip", "pager", "uan", "voicemail")


def _valid_number_pattern(md) -> str:
    """One regex a valid national significant number of this region fully matches."""
    patterns = []
    for kind in _NUMBER_TYPES:
        desc = getattr(md, kind, None)
        pattern = desc.national_number_pattern if desc is not None else None
        if pattern and pattern not in patterns:
            patterns.append(pattern)
    return "|".join(f"(?:{p})" for p in patterns)


PHONE_HEADER = (
    "region",
    "calling_code",
    "is_main_region",
    "international_prefix",
    "national_prefix",
    "national_prefix_for_parsing",
    "national_prefix_transform_rule",
    "national_prefix_groups",
    "national_number_pattern",
    "possible_lengths",
    "local_only_lengths",
    "min_length",
    "max_length",
    "valid_number_pattern",
)


def _csv(header: tuple[str, ...], rows: list[tuple]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def build_all() -> dict[str, str]:
    """File name -> CSV text for every generated seed."""
    return {
        "nicknames.csv": _csv(("nickname", "canonical_name"), nickname_rows()),
        "country_codes.csv": _csv(("country_key", "country_code", "matched_on"), country_rows()),
        "phone_regions.csv": _csv(PHONE_HEADER, phone_region_rows()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when committed seeds differ")
    args = parser.parse_args(argv)

    drifted = []
    for name, text in build_all().items():
        path = SEEDS_DIR / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                drifted.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path} ({text.count(chr(10)) - 1} rows)")
    if drifted:
        print(f"seeds out of date: {', '.join(drifted)}; run scripts/build_seeds.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
