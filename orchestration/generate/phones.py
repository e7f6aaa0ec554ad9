"""Unique, valid mobile numbers per country, and the many ways people write them.

Validating a million numbers one by one with phonenumbers is slow, so we validate
prefixes instead: a prefix of national length minus four digits is kept only when
sample completions (0000, 9999 and random) are all valid mobile numbers. Each person
then gets a distinct slot (prefix, 4-digit suffix) drawn without replacement.
"""

from __future__ import annotations

import numpy as np
import phonenumbers as pn
import polars as pl

CALLING_CODE = {"US": "1", "GB": "44", "DE": "49", "FR": "33"}
NATIONAL_LENGTH = {"US": 10, "GB": 10, "DE": 11, "FR": 9}
SUFFIX_SPACE = 10_000


def _candidate_prefix(country: str, rng: np.random.Generator) -> str:
    if country == "US":
        area = f"{rng.integers(2, 10)}{rng.integers(0, 10)}{rng.integers(0, 10)}"
        exchange = f"{rng.integers(2, 10)}{rng.integers(0, 10)}{rng.integers(0, 10)}"
        return area + exchange
    if country == "GB":
        return "7" + "".join(str(d) for d in rng.integers(0, 10, 5))
    if country == "DE":
        # 15x numbers have one fixed length (11), so a truncated number is never valid.
        return "15" + str(rng.choice([0, 1, 2, 5, 6, 7, 8, 9])) + "".join(str(d) for d in rng.integers(0, 10, 4))
    return str(rng.choice([6, 7])) + "".join(str(d) for d in rng.integers(0, 10, 4))


def _is_valid(country: str, national: str) -> bool:
    number = pn.parse("+" + CALLING_CODE[country] + national)
    return pn.is_valid_number(number) and pn.number_type(number) in (
        pn.PhoneNumberType.MOBILE,
        pn.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def valid_prefixes(country: str, count: int, rng: np.random.Generator) -> list[str]:
    """`count` distinct prefixes whose every 4-digit completion we sampled is valid."""
    found: dict[str, None] = {}
    while len(found) < count:
        prefix = _candidate_prefix(country, rng)
        if prefix in found:
            continue
        probes = ["0000", "9999", *(f"{x:04d}" for x in rng.integers(0, SUFFIX_SPACE, 3))]
        if all(_is_valid(country, prefix + p) for p in probes):
            found[prefix] = None
    return list(found)


def assign_numbers(countries: np.ndarray, rng: np.random.Generator, taken: np.ndarray | None = None) -> np.ndarray:
    """One distinct valid national number (digits, as str) per entry of `countries`, none of them in `taken`."""
    out = np.empty(len(countries), dtype=object)
    for country in CALLING_CODE:
        idx = np.flatnonzero(countries == country)
        if not len(idx):
            continue
        # Use at most ~20% of the slot space so draws stay spread over prefixes.
        n_prefixes = max(50, int(np.ceil(len(idx) * 5 / SUFFIX_SPACE)))
        prefixes = np.array(valid_prefixes(country, n_prefixes, rng), dtype=object)
        spare = 0 if taken is None else min(len(idx) + 100, n_prefixes * SUFFIX_SPACE - len(idx))
        slots = rng.choice(n_prefixes * SUFFIX_SPACE, size=len(idx) + spare, replace=False)
        suffix = pl.Series(slots % SUFFIX_SPACE).cast(pl.String).str.zfill(4).to_numpy()
        numbers = prefixes[slots // SUFFIX_SPACE] + suffix.astype(object)
        if taken is not None:
            numbers = numbers[~np.isin(numbers.astype(str), taken)]
        out[idx] = numbers[: len(idx)]
    return out


def e164(country: pl.Expr, national: pl.Expr) -> pl.Expr:
    code = country.replace_strict(CALLING_CODE, default=None)
    return pl.concat_str([pl.lit("+"), code, national])


def formatted(country: pl.Expr, national: pl.Expr, style: pl.Expr, has_country: pl.Expr) -> pl.Expr:
    """Write the number in one of several human styles.

    style 0: +CC grouped, 1: national with trunk 0 / US parentheses, 2: 00CC digits,
    3: bare national digits, 4: +CC digits. Records without a country only get
    international styles, so a parser can recover the number with no region hint.
    """
    n = national
    code = country.replace_strict(CALLING_CODE, default=None)
    us_grouped = pl.concat_str([n.str.slice(0, 3), pl.lit("-"), n.str.slice(3, 3), pl.lit("-"), n.str.slice(6)])
    us_paren = pl.concat_str([pl.lit("("), n.str.slice(0, 3), pl.lit(") "), n.str.slice(3, 3), pl.lit(" "), n.str.slice(6)])
    gb_grouped = pl.concat_str([n.str.slice(0, 4), pl.lit(" "), n.str.slice(4)])
    de_grouped = pl.concat_str([n.str.slice(0, 3), pl.lit(" "), n.str.slice(3)])
    fr_grouped = pl.concat_str(
        [n.str.slice(0, 1), pl.lit(" "), n.str.slice(1, 2), pl.lit(" "), n.str.slice(3, 2), pl.lit(" "),
         n.str.slice(5, 2), pl.lit(" "), n.str.slice(7, 2)]
    )
    grouped = (
        pl.when(country == "US").then(us_grouped)
        .when(country == "GB").then(gb_grouped)
        .when(country == "DE").then(de_grouped)
        .otherwise(fr_grouped)
    )
    national_style = pl.when(country == "US").then(us_paren).otherwise(pl.concat_str([pl.lit("0"), grouped]))
    bare = pl.when(country == "US").then(n).otherwise(pl.concat_str([pl.lit("0"), n]))
    plus_grouped = pl.concat_str([pl.lit("+"), code, pl.lit(" "), grouped])
    plus_digits = pl.concat_str([pl.lit("+"), code, n])
    # US uses 011 as its international prefix, so "001..." is only for the others.
    double_zero = pl.when(country == "US").then(plus_digits).otherwise(pl.concat_str([pl.lit("00"), code, n]))
    style = pl.when(has_country).then(style).otherwise(style.replace({1: 0, 2: 4, 3: 0}))
    return (
        pl.when(style == 0).then(plus_grouped)
        .when(style == 1).then(national_style)
        .when(style == 2).then(double_zero)
        .when(style == 3).then(bare)
        .otherwise(plus_digits)
    )
