"""The identity models' settings, from the vars their yml passes through meta."""

from __future__ import annotations

from datetime import datetime, timezone

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


def as_of(configured: dict | None) -> datetime:
    """The build's outflow_as_of (naive UTC, like the outflow_as_of() macro); now when unset."""
    raw = (configured or {}).get("as_of")
    text = "" if raw is None else str(raw).strip()
    if text in ("", "None", "null"):
        return datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        return datetime.fromisoformat(text.replace("T", " "))
    except ValueError:
        raise ValueError(f"var outflow_as_of (or env OUTFLOW_AS_OF) must be an ISO date or timestamp such as '2025-06-30', got {text!r}")
