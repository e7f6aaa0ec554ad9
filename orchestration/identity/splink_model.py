"""The Splink model used for probabilistic matching.

Blocking rules decide which pairs are compared at all; comparisons decide how much
each agreement or disagreement counts. The rules below were chosen on the FEBRL
benchmark (typos, swapped names, missing fields) and on generated data; see
docs/identity.md for the measured precision and recall.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

# Columns the model reads from the `nodes` table built in resolve.py.
MODEL_COLUMNS = (
    "unique_id",
    "first_name",
    "first_name_canonical",
    "last_name",
    "dob",
    "street",
    "city",
    "postal_code",
)


# Candidate pairs: records that agree on every key of at least one rule. Keys are SQL over
# the `nodes` columns. Chosen on FEBRL (typos, swapped names, missing fields) and generated data.
BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name"),
    ("first_name_canonical", "last_name"),
    ("dob",),
    ("postal_code", "first_name"),
    ("postal_code", "last_name"),
    ("postal_code", "street"),
    ("street", "city"),
    ("postal_code", "substr(street, 1, 4)"),
    ("first_name", "city", "substr(last_name, 1, 1)"),
    ("last_name", "city"),
    ("last_name", "substr(dob, 1, 4)"),
    ("first_name", "substr(dob, 1, 4)"),
    ("substr(first_name, 1, 2)", "substr(last_name, 1, 2)", "substr(dob, 1, 4)"),
)
# Forename and surname entered the wrong way round (not an equi-join on one set of keys).
SWAPPED_NAMES = "l.first_name = r.last_name and l.last_name = r.first_name"

# Keys a rule over its pair budget is narrowed by, and the columns that already imply each.
REFINEMENTS: tuple[tuple[str, str], ...] = (
    ("substr(first_name, 1, 1)", "first_name"),
    ("substr(last_name, 1, 1)", "last_name"),
    ("substr(dob, 1, 4)", "dob"),
    ("city", "city"),
)
MAX_REFINEMENTS = 2


def blocking_rules(keys: Iterable[tuple[str, ...]] = BLOCKING_KEYS) -> list:
    """Splink rules for the given key tuples, plus the swapped-names rule."""
    return [*(block_on(*k) for k in keys), SWAPPED_NAMES]


def pairs_per_rule(con: duckdb.DuckDBPyConnection, keys: tuple[str, ...], table: str = "nodes") -> int:
    """Pairs a rule makes: records agreeing on every key (a NULL key agrees with nothing)."""
    not_null = " and ".join(f"({k}) is not null" for k in keys)
    return int(con.execute(
        f"select coalesce(sum(n * (n - 1) // 2), 0)::bigint from "
        f"(select count(*) as n from {table} where {not_null} group by {', '.join(keys)})").fetchall()[0][0])


def budgeted_blocking_keys(con: duckdb.DuckDBPyConnection, n_records: int, max_pairs_per_record: float,
                           table: str = "nodes") -> list[dict]:
    """BLOCKING_KEYS, each rule over `max_pairs_per_record * n_records` pairs split into
    narrower rules.

    A rule's pairs grow with the square of its block sizes, its true matches only with the
    records: a date of birth shared by 60 people in a million makes 35M pairs to find a
    handful of matches. A rule over budget is replaced by each of its refinements (plus a
    name initial, the birth year or the city) that fits the budget; a refinement still over
    it is narrowed once more by whichever further refinement keeps the most pairs within
    the budget (or the fewest, if none fits). A pair the original rule found is lost only
    when it disagrees on every refinement. Small data (FEBRL's 5,000 records make at most
    0.4 pairs per record and rule) keeps every rule as written.

    Returns one dict per rule used: keys (the rule as written), used (the keys after
    narrowing) and pairs."""
    budget = max(1.0, max_pairs_per_record * n_records)

    def refinements(keys: tuple[str, ...]) -> list[tuple[str, ...]]:
        return [(*keys, extra) for extra, implied in REFINEMENTS if extra not in keys and implied not in keys]

    out = []
    for keys in BLOCKING_KEYS:
        pairs = pairs_per_rule(con, keys, table)
        if pairs <= budget:
            out.append({"keys": keys, "used": keys, "pairs": pairs})
            continue
        for narrower in refinements(keys):
            n = pairs_per_rule(con, narrower, table)
            for _ in range(MAX_REFINEMENTS - 1):
                if n <= budget:
                    break
                options = [(pairs_per_rule(con, k, table), k) for k in refinements(narrower)]
                if not options:
                    break
                fitting = [o for o in options if o[0] <= budget]
                n, narrower = max(fitting) if fitting else min(options)
            if n <= budget:
                out.append({"keys": keys, "used": narrower, "pairs": n})
    return out


def settings(keys: Iterable[tuple[str, ...]] = BLOCKING_KEYS) -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=blocking_rules(keys),
        comparisons=[
            name_comparison(),
            cl.DateOfBirthComparison("dob", input_is_string=True),
            cl.LevenshteinAtThresholds("postal_code", [1]),
            cl.JaroWinklerAtThresholds("city", [0.9]),
            cl.LevenshteinAtThresholds("street", [1, 3]),
            # Email and phone are not compared here: equal ones are linked before
            # Splink runs, and those links are the labels its m values are learnt from.
        ],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def name_comparison() -> cl.CustomComparison:
    """Forename and surname together, from strongest to weakest agreement.

    Like Splink's ForenameSurnameComparison, with one more level: forenames that
    differ as written but share a canonical name (Bob / Robert, via the nickname
    seed) with the same surname.
    """
    return cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            cll.And(cll.NullLevel("first_name"), cll.NullLevel("last_name")),
            cll.And(cll.ExactMatchLevel("first_name"), cll.ExactMatchLevel("last_name")),
            cll.ColumnsReversedLevel("first_name", "last_name", symmetrical=True),
            cll.And(cll.ExactMatchLevel("first_name_canonical"), cll.ExactMatchLevel("last_name")),
            cll.And(cll.JaroWinklerLevel("first_name", 0.92), cll.JaroWinklerLevel("last_name", 0.92)),
            cll.And(cll.JaroWinklerLevel("first_name", 0.88), cll.JaroWinklerLevel("last_name", 0.88)),
            cll.ExactMatchLevel("last_name"),
            cll.ExactMatchLevel("first_name_canonical"),
            cll.ElseLevel(),
        ],
    )


def deterministic_training_rules() -> list:
    """Rules that are almost surely matches, used to estimate the prior match rate."""
    return [block_on("first_name", "last_name", "dob")]


def em_training_blocks() -> list:
    """Each EM pass fixes some columns and learns the others."""
    return [block_on("first_name", "last_name"), block_on("dob")]
