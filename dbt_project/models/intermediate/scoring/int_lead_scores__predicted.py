"""predicted_conversion and predicted_rank for every profile as of now, from the model that
int_lead_scores__model holds (null for everyone when it has none)."""

from orchestration.scoring.warehouse import score_profiles


def model(dbt, session):
    dbt.config(materialized="table")
    card = dbt.ref("int_lead_scores__model").to_arrow_table()
    return score_profiles(card, dbt.ref("int_lead_scores__score_snapshot").to_arrow_table())
