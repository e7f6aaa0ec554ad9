"""The identity models' settings, from the vars their yml passes through meta."""

from __future__ import annotations

from datetime import datetime, timezone

from orchestration.identity.resolve import MatchSettings

DEFAULTS = {"match_threshold": 0.8, "min_records_for_probabilistic": 200, "max_contacts_per_key": 10, "seed": 42,
            "max_pairs_per_record": 3, "refit_days": 7}


def match_settings(configured: dict | None) -> MatchSettings:
    """MatchSettings from the model's meta `identity` (vars outflow_identity_*); blank = default."""
    configured = configured or {}

    def value(name):
        raw = configured.get(name)
        return DEFAULTS[name] if raw is None or str(raw).strip() in ("", "None") else raw

    return MatchSettings(
        match_threshold=float(value("match_threshold")),
        min_records_for_probabilistic=int(value("min_records_for_probabilistic")),
        max_contacts_per_key=int(value("max_contacts_per_key")),
        seed=int(value("seed")),
        max_pairs_per_record=float(value("max_pairs_per_record")),
        refit_days=int(value("refit_days")),
    )


def as_of(configured: dict | None) -> datetime:
    """The build's outflow_as_of (naive UTC, like the outflow_as_of() macro); now when unset."""
    raw = (configured or {}).get("as_of")
    text = "" if raw is None else str(raw).strip()
    if text in ("", "None", "null"):
        return datetime.now(timezone.utc).replace(tzinfo=None)
    try:
        return datetime.fromisoformat(text.replace("T", " "))
    except ValueError:
        raise ValueError(f"var outflow_as_of must be an ISO date or timestamp such as '2025-06-30', got {text!r}")
