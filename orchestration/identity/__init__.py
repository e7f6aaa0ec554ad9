"""Identity resolution: which raw contacts are the same person.

Runs inside dbt (the `int_contacts__resolved` Python model) and in tests; it knows
nothing of Dagster or of any destination.
"""

from orchestration.identity.resolve import MatchSettings, resolve_contacts

__all__ = ["MatchSettings", "resolve_contacts"]
