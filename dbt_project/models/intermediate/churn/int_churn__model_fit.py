"""The churn model's parameters: BG/NBD and Gamma-Gamma fitted on every customer of
int_profiles__rfm. One row; `status` says whether the fit could be made (the logic and
its tests: orchestration/churn.py). Settings: the vars outflow_churn_*, through meta."""

from orchestration.churn import ChurnSettings, fit


def model(dbt, session):
    dbt.config(materialized="table")
    configured = dbt.config.meta_get("churn") or {}
    settings = ChurnSettings(
        min_customers=int(configured.get("min_customers", 100)),
        min_repeat_customers=int(configured.get("min_repeat_customers", 20)),
        penalizer=float(configured.get("penalizer", 0.0)),
        horizon_days=int(configured.get("horizon_days", 90)),
    )
    return fit(dbt.ref("int_profiles__rfm").df(), settings)
