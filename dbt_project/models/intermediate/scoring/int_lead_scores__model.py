"""Train and judge the predictive lead score: one row, the model card plus the pickled model.

The method lives in orchestration.scoring (shared with `outflow score-file`); this
model feeds it int_lead_scores__snapshots and writes its answer back.
"""

import polars as pl

from orchestration.scoring.warehouse import LeadModelSettings, train_lead_model


def model(dbt, session):
    dbt.config(materialized="table")
    settings = LeadModelSettings(
        seed=int(dbt.config.get("seed") or 42),
        cv_folds=int(dbt.config.get("cv_folds") or 3),
        min_converted=int(dbt.config.get("min_converted") or 10),
        label_window_days=int(dbt.config.get("label_window_days") or 30),
    )
    snapshots = pl.from_arrow(dbt.ref("int_lead_scores__snapshots").to_arrow_table())
    return train_lead_model(snapshots, settings)
