"""The Splink model used for probabilistic matching.

Blocking rules decide which pairs are compared at all; comparisons decide how much
each agreement or disagreement counts. The rules below were chosen on the FEBRL
benchmark (typos, swapped names, missing fields) and on generated data; see
docs/identity.md for the measured precision and recall.
"""

from __future__ import annotations

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


def blocking_rules() -> list:
    """Pairs worth comparing: share a name, a date of birth, or an address fragment."""
    return [
        block_on("first_name", "last_name"),
        block_on("first_name_canonical", "last_name"),
        block_on("dob"),
        block_on("postal_code", "first_name"),
        block_on("postal_code", "last_name"),
        block_on("postal_code", "street"),
        block_on("street", "city"),
        block_on("postal_code", "substr(street, 1, 4)"),
        block_on("first_name", "city", "substr(last_name, 1, 1)"),
        block_on("last_name", "city"),
        block_on("last_name", "substr(dob, 1, 4)"),
        block_on("first_name", "substr(dob, 1, 4)"),
        block_on("substr(first_name, 1, 2)", "substr(last_name, 1, 2)", "substr(dob, 1, 4)"),
        # Forename and surname entered the wrong way round.
        "l.first_name = r.last_name and l.last_name = r.first_name",
    ]


def settings() -> SettingsCreator:
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        blocking_rules_to_generate_predictions=blocking_rules(),
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
