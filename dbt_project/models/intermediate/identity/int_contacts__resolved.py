"""Every raw contact -> one profile: email and phone first, then Splink.

The matching logic lives in orchestration.identity (tested on its own); this model
feeds it stg_crm__contacts and writes its answer back to the warehouse.
"""

from orchestration.identity import MatchSettings, resolve_contacts


def model(dbt, session):
    dbt.config(materialized="table")
    configured = dbt.config.meta_get("identity") or {}  # the vars outflow_identity_* (_identity.yml)
    settings = MatchSettings(
        match_threshold=float(configured.get("match_threshold") or 0.8),
        min_records_for_probabilistic=int(configured.get("min_records_for_probabilistic") or 200),
        max_contacts_per_key=int(configured.get("max_contacts_per_key") or 10),
        seed=int(configured.get("seed") or 42),
        max_pairs_per_record=float(configured.get("max_pairs_per_record") or 3),
    )
    contacts = dbt.ref("stg_crm__contacts").to_arrow_table()
    return resolve_contacts(contacts, settings)
