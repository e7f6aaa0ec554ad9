"""Churn risk and expected value per customer from the fitted parameters
(int_churn__model_fit) and each customer's RFM (int_profiles__rfm). Logic and tests:
orchestration/churn.py."""

from orchestration.churn import ChurnSettings, score


def model(dbt, session):
    dbt.config(materialized="table")
    configured = dbt.config.meta_get("churn") or {}
    rfm = dbt.ref("int_profiles__rfm").df()
    fitted = dbt.ref("int_churn__model_fit").df()
    return score(rfm, fitted, ChurnSettings(horizon_days=int(configured.get("horizon_days", 90))))
