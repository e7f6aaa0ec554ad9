"""fit_or_keep: a stored row of the current fit is kept without reading the training
snapshots; inputs that do not belong to the current fit are refused, naming the model."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from orchestration.scoring.errors import ScoringInputError
from orchestration.scoring.refit import fit_or_keep
from orchestration.scoring.warehouse import CARD_SCHEMA

SETTINGS = {"seed": "42", "cv_folds": "3", "min_converted": "10", "label_window_days": "30",
            "max_training_rows": "100000"}


def schedule(*fits: tuple[str, datetime]) -> pa.Table:
    return pa.table({"fit_id": [f for f, _ in fits], "fitted_as_of": [a for _, a in fits],
                     "settings_key": ["seed=42"] * len(fits)})


def snapshots(fit_id: str, fitted_as_of: datetime, rows: int = 3) -> pa.Table:
    return pa.table({
        "snapshot_kind": ["train"] * rows, "cutoff_at": [datetime(2025, 11, 2)] * rows,
        "profile_id": [f"p{i}" for i in range(rows)], "converted": [False] * rows,
        "last_event_at": [None] * rows, "fit_id": [fit_id] * rows, "fitted_as_of": [fitted_as_of] * rows,
    })


def never_read() -> pa.Table:
    raise AssertionError("the training snapshots were read although the fit is kept")


def test_a_kept_fit_adds_nothing_and_reads_no_training_rows():
    out = fit_or_keep(kept_rows=1, schedule=schedule(("a", datetime(2026, 1, 1))), training=never_read,
                      configured=SETTINGS)
    assert out.num_rows == 0 and out.schema == CARD_SCHEMA


def test_a_new_fit_is_named_on_its_card():
    as_of = datetime(2026, 1, 8)
    out = fit_or_keep(kept_rows=0, schedule=schedule(("b", as_of)), training=lambda: snapshots("b", as_of),
                      configured=SETTINGS).to_pylist()
    # No conversions in these rows: a card without a model, but of fit b as of its day.
    assert len(out) == 1 and out[0]["status"] == "no_conversions"
    assert out[0]["fit_id"] == "b" and out[0]["fitted_as_of"] == as_of


def test_training_rows_of_another_fit_are_refused():
    with pytest.raises(ScoringInputError, match="int_lead_scores__training_snapshots holds snapshots of fit old"):
        fit_or_keep(kept_rows=0, schedule=schedule(("new", datetime(2026, 1, 8))),
                    training=lambda: snapshots("old", datetime(2026, 1, 1)), configured=SETTINGS)


@pytest.mark.parametrize("fits", [(), (("a", datetime(2026, 1, 1)), ("b", datetime(2026, 1, 8)))])
def test_the_schedule_must_hold_one_fit(fits):
    with pytest.raises(ScoringInputError, match="int_lead_scores__refit_schedule must hold one row"):
        fit_or_keep(kept_rows=0, schedule=schedule(*fits), training=never_read, configured=SETTINGS)
