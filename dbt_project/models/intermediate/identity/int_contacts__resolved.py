"""Every raw contact -> one profile: email and phone first, then the Splink links.

The matching logic lives in orchestration.identity (tested on its own); this model
clusters stg_crm__contacts over the deterministic keys and int_identity__links.
"""

from orchestration.identity.dbt_settings import match_settings
from orchestration.identity.resolve import CLUSTER_COLUMNS, cluster_contacts


def model(dbt, session):
    dbt.config(materialized="table")
    settings = match_settings(dbt.config.meta_get("identity"))  # the vars outflow_identity_* (_identity.yml)
    contacts = dbt.ref("stg_crm__contacts").select(", ".join(CLUSTER_COLUMNS)).to_arrow_table()
    links = dbt.ref("int_identity__links").select("contact_key, linked_contact_keys").to_arrow_table()
    return cluster_contacts(contacts, links, settings)
