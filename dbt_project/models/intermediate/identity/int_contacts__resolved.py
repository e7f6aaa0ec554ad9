"""Every raw contact -> one profile: email and phone first, then Splink.

The matching logic lives in orchestration.identity (tested on its own); this model
feeds it stg_crm__contacts and writes its answer back to the warehouse.
"""

from orchestration.identity import MatchSettings, resolve_contacts


def model(dbt, session):
    dbt.config(materialized="table")
    settings = MatchSettings(
        match_threshold=float(dbt.config.get("match_threshold") or 0.8),
        min_records_for_probabilistic=int(dbt.config.get("min_records_for_probabilistic") or 200),
        max_contacts_per_key=int(dbt.config.get("max_contacts_per_key") or 10),
        seed=int(dbt.config.get("seed") or 42),
    )
    contacts = dbt.ref("stg_crm__contacts").to_arrow_table()
    return resolve_contacts(contacts, settings)
