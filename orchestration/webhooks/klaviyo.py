"""Klaviyo system webhooks.

Klaviyo POSTs JSON `{"data": [{"topic", "external_id", "payload"}...], "meta":
{"klaviyo_webhook_id", ...}}`, signed: `Klaviyo-Signature` = hex HMAC-SHA256 with the
webhook's secret over the raw body followed by the `Klaviyo-Timestamp` header value
(an HTTP date, e.g. "Thu, 04 Jan 2024 18:05:25 GMT"); `Klaviyo-Webhook-Id` must match
meta.klaviyo_webhook_id. `payload` has the shape of a Get Event response: the event in
`data` (attributes.datetime / timestamp), the profile (with its email) in `included`.
`external_id` is the event's id.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from orchestration.webhooks.events import (
    ConsentEvent, bad_signature, check_window, event_id, from_unix, json_body, malformed, text_field, unsigned,
    utc_naive,
)

NAME = "klaviyo"
# topic -> (kind, source). Soft bounces do not revoke (see _is_soft_bounce).
TOPICS = {
    "event:klaviyo.unsubscribed_from_email_marketing": ("unsubscribe", "klaviyo_unsubscribe"),
    "event:klaviyo.bounced_email": ("bounce", "klaviyo_bounce"),
    "event:klaviyo.marked_email_as_spam": ("spam_report", "klaviyo_spam_report"),
    "event:klaviyo.manually_suppressed_from_email_marketing": ("suppression", "klaviyo_manual_suppression"),
}


def signature(secret: str, body: bytes, timestamp: str) -> str:
    """The Klaviyo-Signature of `body` sent with Klaviyo-Timestamp `timestamp`."""
    return hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def _timestamp_seconds(value: str) -> float:
    """Klaviyo sends an HTTP date; unix seconds and ISO 8601 are read too."""
    value = value.strip()
    try:
        return float(value) if value.replace(".", "", 1).isdigit() else _date(value).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError):
        raise unsigned("Klaviyo-Timestamp is not a date") from None


def _date(value: str) -> datetime:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("no zone")
    return moment


class KlaviyoWebhook:
    name = NAME
    methods = ("POST",)

    def __init__(self, secret: str, max_age_s: int):
        self._secret = secret
        self.max_age_s = max_age_s

    def __repr__(self) -> str:
        return "KlaviyoWebhook(secret=<redacted>)"

    def verify(self, token: str | None, headers: dict[str, str], body: bytes, now: float) -> None:
        sent, stamp = headers.get("klaviyo-signature"), headers.get("klaviyo-timestamp")
        if not sent or not stamp:
            raise unsigned("Klaviyo-Signature and Klaviyo-Timestamp headers are required")
        if not hmac.compare_digest(sent.strip().lower().encode(), signature(self._secret, body, stamp).encode()):
            raise bad_signature("Klaviyo-Signature does not match the body and timestamp")
        age = now - _timestamp_seconds(stamp)
        check_window(age, self.max_age_s)

    def parse(self, headers: dict[str, str], body: bytes, now: float) -> tuple[list[ConsentEvent], int]:
        doc = json_body(body)
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            raise malformed("the body must be an object with a 'data' array")
        meta = doc.get("meta")
        hook_id = headers.get("klaviyo-webhook-id")
        if hook_id and isinstance(meta, dict) and meta.get("klaviyo_webhook_id") not in (None, hook_id):
            raise bad_signature("meta.klaviyo_webhook_id does not match the Klaviyo-Webhook-Id header")
        events, ignored = [], 0
        for i, item in enumerate(doc["data"]):
            if not isinstance(item, dict):
                raise malformed(f"data[{i}] is not an object")
            topic = text_field(item, "topic", f"data[{i}].topic")
            if topic not in TOPICS or _is_soft_bounce(topic, item.get("payload")):
                ignored += 1
                continue
            kind, source = TOPICS[topic]
            native = text_field(item, "external_id", f"data[{i}].external_id")
            payload = item.get("payload")
            events.append(ConsentEvent(
                event_id=event_id(NAME, native), tool=NAME, kind=kind, source=source,
                email=_email(payload, i), occurred_at=_occurred_at(payload, i),
            ))
        return events, ignored


def _event(payload: Any) -> dict[str, Any]:
    data = payload.get("data") if isinstance(payload, dict) else None
    return data if isinstance(data, dict) else {}


def _attributes(payload: Any) -> dict[str, Any]:
    attributes = _event(payload).get("attributes")
    return attributes if isinstance(attributes, dict) else {}


def _email(payload: Any, i: int) -> str:
    included = payload.get("included") if isinstance(payload, dict) else None
    for resource in included if isinstance(included, list) else []:
        if isinstance(resource, dict) and resource.get("type") == "profile":
            attributes = resource.get("attributes")
            email = attributes.get("email") if isinstance(attributes, dict) else None
            if isinstance(email, str) and email.strip():
                return email.strip()
    props = _attributes(payload).get("event_properties")
    for key in ("$email", "email", "Email"):
        value = props.get(key) if isinstance(props, dict) else None
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise malformed(f"data[{i}].payload has no profile email")


def _occurred_at(payload: Any, i: int) -> datetime:
    attributes = _attributes(payload)
    if isinstance(attributes.get("datetime"), str):
        try:
            return utc_naive(_date(attributes["datetime"]))
        except (ValueError, OverflowError):
            raise malformed(f"data[{i}].payload.data.attributes.datetime is not a date") from None
    if "timestamp" in attributes:
        return from_unix(attributes["timestamp"], f"data[{i}].payload.data.attributes.timestamp")
    raise malformed(f"data[{i}].payload.data.attributes has no datetime")


def _is_soft_bounce(topic: str, payload: Any) -> bool:
    """Klaviyo's Bounced Email covers soft bounces too; its 'Bounce Type' says which."""
    if topic != "event:klaviyo.bounced_email":
        return False
    props = _attributes(payload).get("event_properties")
    bounce_type = props.get("Bounce Type") if isinstance(props, dict) else None
    return isinstance(bounce_type, str) and "soft" in bounce_type.lower()
