"""Churn risk and expected value per customer from the fitted parameters
(int_churn__model_fit) and each customer's RFM (int_profiles__rfm). Logic and tests:
orchestration/churn.py."""

from orchestration.churn import ChurnSettings, score


def model(dbt, session):
    dbt.config(materialized="table")
    rfm = dbt.ref("int_profiles__rfm").df()
    fitted = dbt.ref("int_churn__model_fit").df()
    horizon = int(dbt.config.get("horizon_days") or 90)
    return score(rfm, fitted, ChurnSettings(horizon_days=horizon))
