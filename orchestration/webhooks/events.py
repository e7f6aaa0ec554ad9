"""What every tool's webhook becomes: consent events, and refusals with a status code."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

# The consent mart reads the reason from these source keywords (consent.sql):
# unsub -> unsubscribed, spam|complaint -> spam_report, bounce -> bounced, else manual.
KINDS = ("unsubscribe", "bounce", "spam_report", "suppression")


@dataclass(frozen=True)
class ConsentEvent:
    """One revocation for raw.consent_events; `event_id` makes a replay a no-op."""

    event_id: str
    tool: str
    kind: str  # one of KINDS
    source: str  # e.g. sendgrid_unsubscribe; its keywords decide the consent reason
    email: str
    occurred_at: datetime  # UTC, naive
    channel: str = "email"
    status: str = "revoked"

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["occurred_at"] = self.occurred_at.isoformat(sep=" ")
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "ConsentEvent":
        values = {k: row[k] for k in cls.__dataclass_fields__}
        values["occurred_at"] = datetime.fromisoformat(values["occurred_at"])
        if values["kind"] not in KINDS:
            raise ValueError(f"unknown kind {values['kind']!r}")
        return cls(**values)


class Refused(Exception):
    """A request the receiver turns away. `reason` is the counter's key; the message
    goes to the caller and never holds an email, a body or a secret."""

    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.headers = headers or {}


def unsigned(message: str) -> Refused:
    return Refused(401, "unsigned", message)


def bad_signature(message: str) -> Refused:
    return Refused(403, "bad_signature", message)


def stale(age_s: float, max_age_s: int) -> Refused:
    return Refused(401, "stale", f"request timestamp is {age_s:.0f} s from now; the window is {max_age_s} s")


def malformed(message: str) -> Refused:
    return Refused(400, "malformed", message)


def check_window(age_s: float, max_age_s: int) -> None:
    """A request `age_s` seconds old (negative: from the future) must be inside the window."""
    if abs(age_s) > max_age_s:
        raise stale(age_s, max_age_s)


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise malformed("the body is not JSON") from None


def event_id(tool: str, native_id: str) -> str:
    """Deterministic id: the same tool event always maps to the same row."""
    return hashlib.sha256(f"{tool}:{native_id}".encode()).hexdigest()[:32]


def utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


def from_unix(seconds: Any, what: str) -> datetime:
    """A unix-seconds value (int, float or digits) as naive UTC; malformed otherwise."""
    try:
        value = float(seconds)
        if isinstance(seconds, bool) or not 0 <= value < 32503680000:  # before year 3000
            raise ValueError
        return datetime.fromtimestamp(value, timezone.utc).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError):
        raise malformed(f"{what} must be unix seconds") from None


def text_field(container: Any, key: str, what: str) -> str:
    """A required non-empty string field; malformed naming `what` otherwise."""
    value = container.get(key) if isinstance(container, dict) else None
    if not isinstance(value, str) or not value.strip():
        raise malformed(f"{what} is missing or not a string")
    return value.strip()
