"""Ways real records go wrong, as polars expressions (so they run vectorised)."""

from __future__ import annotations

import polars as pl


def typo(text: pl.Expr, kind: pl.Expr, pos: pl.Expr) -> pl.Expr:
    """One keyboard slip at a position: 0 drops a char, 1 doubles it, 2 swaps it with the next.

    `pos` is a fraction in [0, 1); the first letter is kept so initials still block-match.
    """
    length = text.str.len_chars()
    p = (1 + (pos * (length - 2).clip(lower_bound=1)).floor()).cast(pl.Int64)
    head = text.str.slice(0, p)
    ch = text.str.slice(p, 1)
    nxt = text.str.slice(p + 1, 1)
    return (
        pl.when(length < 4).then(text)
        .when(kind == 0).then(pl.concat_str([head, text.str.slice(p + 1)]))
        .when(kind == 1).then(pl.concat_str([head, ch, text.str.slice(p)]))
        .otherwise(pl.concat_str([head, nxt, ch, text.str.slice(p + 2)]))
    )


def recase(text: pl.Expr, pick: pl.Expr) -> pl.Expr:
    """pick < 0.05: lower case, < 0.08: UPPER case, otherwise as is."""
    return (
        pl.when(pick < 0.05).then(text.str.to_lowercase())
        .when(pick < 0.08).then(text.str.to_uppercase())
        .otherwise(text)
    )


def email_variant(email: pl.Expr, case_pick: pl.Expr, space_pick: pl.Expr) -> pl.Expr:
    """Same address, written differently: capitalised, upper case, stray spaces."""
    local = email.str.split_exact("@", 1).struct.field("field_0")
    domain = email.str.split_exact("@", 1).struct.field("field_1")
    titled = pl.concat_str([local.str.to_titlecase(), pl.lit("@"), domain])
    cased = (
        pl.when(case_pick < 0.14).then(titled)
        .when(case_pick < 0.19).then(email.str.to_uppercase())
        .when(case_pick < 0.24).then(pl.concat_str([local, pl.lit("@"), domain.str.to_titlecase()]))
        .otherwise(email)
    )
    return (
        pl.when(space_pick < 0.04).then(pl.concat_str([pl.lit(" "), cased]))
        .when(space_pick < 0.08).then(pl.concat_str([cased, pl.lit("  ")]))
        .when(space_pick < 0.10).then(pl.concat_str([pl.lit("\t"), cased, pl.lit(" ")]))
        .otherwise(cased)
    )


def broken_email(email: pl.Expr, kind: pl.Expr) -> pl.Expr:
    """Syntactically invalid forms; each is one-to-one with its source so no two people collide."""
    return (
        pl.when(kind == 0).then(email.str.replace("@", "@@", literal=True))
        .when(kind == 1).then(email.str.replace("@", " at ", literal=True))
        .when(kind == 2).then(email.str.replace(r"\.([a-z]+)$", ",$1"))
        .otherwise(email.str.replace("@", "(at)", literal=True))
    )
