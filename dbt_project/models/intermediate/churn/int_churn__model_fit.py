"""The churn model's parameters: BG/NBD and Gamma-Gamma fitted on every customer of
int_profiles__rfm. One row; `status` says whether the fit could be made (the logic and
its tests: orchestration/churn.py)."""

from orchestration.churn import ChurnSettings, fit


def settings_from(dbt) -> ChurnSettings:
    return ChurnSettings(
        min_customers=int(dbt.config.get("min_customers") or 100),
        min_repeat_customers=int(dbt.config.get("min_repeat_customers") or 20),
        penalizer=float(dbt.config.get("penalizer") or 0.0),
        horizon_days=int(dbt.config.get("horizon_days") or 90),
    )


def model(dbt, session):
    dbt.config(materialized="table")
    rfm = dbt.ref("int_profiles__rfm").df()
    return fit(rfm, settings_from(dbt))
