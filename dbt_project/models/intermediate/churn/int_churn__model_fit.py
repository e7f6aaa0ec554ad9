"""The churn model's parameters: BG/NBD and Gamma-Gamma fitted on every customer of
int_profiles__rfm. One row; `status` says whether the fit could be made (the logic and
its tests: orchestration/churn.py). Settings: the vars outflow_churn_*, through meta.

Kept between builds: refitted when none is stored, on --full-refresh, when a fit setting
changed, when it is `outflow_churn_refit_days` old, when it has no parameters, or when
the customers doubled or halved (orchestration.churn.refit_reason); otherwise the stored
row is kept as it is."""

from orchestration.churn import FIT_NAME, ChurnSettings, fit_row, refit_reason
from orchestration.settings import as_of_from_meta


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert", unique_key="model_name",
               on_schema_change="append_new_columns")
    configured = dbt.config.meta_get("churn") or {}
    settings = ChurnSettings(
        min_customers=int(configured.get("min_customers", 100)),
        min_repeat_customers=int(configured.get("min_repeat_customers", 20)),
        penalizer=float(configured.get("penalizer", 0.0)),
        horizon_days=int(configured.get("horizon_days", 90)),
        refit_days=int(configured.get("refit_days", 7)),
    )
    now = as_of_from_meta(configured)
    rfm = dbt.ref("int_profiles__rfm")
    if dbt.is_incremental:
        stored = session.sql(f"select * from {dbt.this}").df()
        # a table from before fits were kept has no model_name yet (added on this run's insert)
        kept = stored[stored["model_name"] == FIT_NAME] if "model_name" in stored else stored.head(0)
        customers = rfm.aggregate("count(*)").fetchall()[0][0]
        if len(kept) and refit_reason(kept.iloc[0].to_dict(), settings, now, customers) is None:
            return kept.head(0)
    return fit_row(rfm.df(), settings, now)
