"""Train and judge the predictive lead score: one row, the model card plus the pickled model.

The method lives in orchestration.scoring (shared with `outflow score-file`); this
model feeds it int_lead_scores__snapshots and writes its answer back.
"""

import polars as pl

from orchestration.scoring.warehouse import LeadModelSettings, train_lead_model


def model(dbt, session):
    dbt.config(materialized="table")
    # The vars outflow_lead_model_*, passed through the model's meta (see _int_scoring.yml).
    configured = dbt.config.meta_get("lead_model") or {}
    settings = LeadModelSettings(**{key: int(value) for key, value in configured.items()})
    snapshots = pl.from_arrow(dbt.ref("int_lead_scores__snapshots").to_arrow_table())
    return train_lead_model(snapshots, settings)
