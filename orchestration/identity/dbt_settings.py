"""The identity models' settings, from the vars their yml passes through meta."""

from __future__ import annotations

from orchestration.identity.resolve import MatchSettings

# The settings the identity yml passes through meta (vars outflow_identity_*).
META_SETTINGS = ("match_threshold", "min_records_for_probabilistic", "max_contacts_per_key", "seed",
                 "max_pairs_per_record", "refit_days")


def match_settings(configured: dict | None) -> MatchSettings:
    """MatchSettings from the model's meta `identity` (vars outflow_identity_*); blank = the
    field's default. Values arrive as text; MatchSettings types and checks them."""
    configured = configured or {}
    given = {name: configured[name] for name in META_SETTINGS
             if configured.get(name) is not None and str(configured[name]).strip() not in ("", "None")}
    return MatchSettings(**given)
