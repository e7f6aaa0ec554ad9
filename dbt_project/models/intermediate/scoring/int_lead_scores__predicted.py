"""predicted_conversion and predicted_rank for every profile as of now, from the model that
int_lead_scores__model trained (null for everyone when it has none)."""

import polars as pl

from orchestration.scoring.warehouse import score_profiles


def model(dbt, session):
    dbt.config(materialized="table")
    card = dbt.ref("int_lead_scores__model").to_arrow_table()
    snapshots = pl.from_arrow(dbt.ref("int_lead_scores__snapshots").to_arrow_table())
    return score_profiles(card, snapshots)
