"""The Splink model identity resolution links contacts with: one row, kept between builds.

Refitted when none is stored, on --full-refresh, when the fit settings or the coded
model changed, when it is `outflow_identity_refit_days` old, or when the contacts
doubled or halved (orchestration/identity/model_fit.py); otherwise the stored row is
kept as it is and this model writes nothing.
"""

from orchestration.identity.dbt_settings import match_settings
from orchestration.identity.model_fit import MODEL_SCHEMA, fit_match_model, model_row, refit_reason
from orchestration.settings import as_of_from_meta


def model(dbt, session):
    dbt.config(materialized="incremental", incremental_strategy="delete+insert", unique_key="model_name")
    configured = dbt.config.meta_get("identity") or {}
    settings, now = match_settings(configured), as_of_from_meta(configured)
    contacts = dbt.ref("stg_crm__contacts")
    if dbt.is_incremental:
        stored = session.sql(f"select * from {dbt.this}").to_arrow_table().to_pylist()
        n_contacts = contacts.aggregate("count(*)").fetchall()[0][0]
        if stored and refit_reason(stored[0], settings, now, n_contacts) is None:
            return MODEL_SCHEMA.empty_table()
    return model_row(fit_match_model(contacts.to_arrow_table(), settings), settings, now)
