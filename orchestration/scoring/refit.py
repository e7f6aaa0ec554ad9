"""Refit the predictive lead score on its cadence, keep it otherwise (int_lead_scores__model).

int_lead_scores__refit_schedule decides when a refit is due and names the fit (fit_id,
fitted_as_of); int_lead_scores__training_snapshots holds the labelled snapshots of that
fit. A stored model row of the current fit is kept as it is; otherwise the model is
fitted on the training snapshots. Keeping the model costs a row count: the training
snapshots are read only for a new fit.
"""

from __future__ import annotations

from typing import Callable

import polars as pl
import pyarrow as pa

from orchestration.scoring.errors import ScoringInputError
from orchestration.scoring.warehouse import CARD_SCHEMA, LeadModelSettings, train_lead_model

# Columns of the training snapshots that name the fit, not what was known about a lead.
FIT_COLUMNS = ("fit_id", "fitted_as_of")


def fit_or_keep(*, kept_rows: int, schedule: pa.Table, training: Callable[[], pa.Table],
                configured: dict) -> pa.Table:
    """Nothing to add when a row of the current fit is kept (the incremental model appends
    nothing); otherwise the model card of a new fit."""
    if kept_rows:
        return CARD_SCHEMA.empty_table()
    if schedule.num_rows != 1:
        raise ScoringInputError(
            f"int_lead_scores__refit_schedule must hold one row (the current fit), it has {schedule.num_rows}: "
            "rebuild it with `dbt build --full-refresh -s int_lead_scores__refit_schedule+`")
    fit = schedule.select(list(FIT_COLUMNS)).to_pylist()[0]
    snapshots = pl.from_arrow(training())
    stale = snapshots.filter(pl.col("fit_id") != fit["fit_id"])
    if stale.height:
        raise ScoringInputError(
            f"int_lead_scores__training_snapshots holds snapshots of fit {stale['fit_id'][0]} (as of "
            f"{stale['fitted_as_of'][0]}), not of the current fit {fit['fit_id']} (as of {fit['fitted_as_of']}): "
            "build it before the model (`dbt build -s +int_lead_scores__model`)")
    settings = LeadModelSettings(**{key: int(value) for key, value in configured.items()})
    return train_lead_model(snapshots.drop(FIT_COLUMNS), settings, **fit)
