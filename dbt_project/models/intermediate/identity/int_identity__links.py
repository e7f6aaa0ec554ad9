"""Probabilistic links between contacts: one row per contact, its links both ways round.

Incremental: only contacts that are new or whose matching features changed are scored
again (against the others and among themselves) with int_identity__match_model; the
rows written are the contacts whose links changed, and tombstones for contacts that
are gone (deleted by the post-hook). A different model or threshold rewrites every row.
The result equals a full pass with the same model (orchestration/identity/links.py).
"""

from orchestration.identity.dbt_settings import match_settings
from orchestration.identity.links import find_links


def model(dbt, session):
    # The post-hook that deletes tombstones is in _identity.yml (no Jinja in Python models).
    dbt.config(materialized="incremental", incremental_strategy="delete+insert", unique_key="contact_key")
    settings = match_settings(dbt.config.meta_get("identity"))
    fitted = dbt.ref("int_identity__match_model").to_arrow_table().to_pylist()
    splink_model = fitted[0]["splink_model"] if fitted else None
    previous = session.sql(f"select * from {dbt.this}").to_arrow_table() if dbt.is_incremental else None
    return find_links(dbt.ref("stg_crm__contacts").to_arrow_table(), splink_model, settings, previous)
