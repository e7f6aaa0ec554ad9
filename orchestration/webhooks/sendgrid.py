"""SendGrid Event Webhook (signed).

SendGrid POSTs a JSON array of events (`event`, `email`, `timestamp` unix seconds,
`sg_event_id`, ...). With the Signed Event Webhook on, `X-Twilio-Email-Event-Webhook-
Signature` is a base64 DER ECDSA P-256 / SHA-256 signature over the
`X-Twilio-Email-Event-Webhook-Timestamp` value followed by the raw body, verified with
the account's public "verification key" (base64 DER SubjectPublicKeyInfo, as the
dashboard shows it; PEM works too).

Revoking events: unsubscribe, group_unsubscribe, spamreport, bounce (not type
'blocked', which is temporary), and dropped when SendGrid dropped the message because
the address had already bounced, unsubscribed or reported spam.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from orchestration.webhooks.events import (
    ConsentEvent, bad_signature, check_window, event_id, from_unix, json_body, malformed, text_field, unsigned,
)

NAME = "sendgrid"
SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"
_DIRECT = {
    "unsubscribe": ("unsubscribe", "sendgrid_unsubscribe"),
    "group_unsubscribe": ("unsubscribe", "sendgrid_group_unsubscribe"),
    "spamreport": ("spam_report", "sendgrid_spam_report"),
    "bounce": ("bounce", "sendgrid_bounce"),
}
_DROPPED = {  # dropped's `reason` when the address itself is suppressed
    "bounced address": ("bounce", "sendgrid_dropped_bounce"),
    "unsubscribed address": ("unsubscribe", "sendgrid_dropped_unsubscribe"),
    "spam reporting address": ("spam_report", "sendgrid_dropped_spam_report"),
}


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its env value; ValueError says what is wrong (never the value)."""
    text = value.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("is not a base64 DER or PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("is not an ECDSA P-256 public key")
    return key


def sign(private_key: ec.EllipticCurvePrivateKey, timestamp: str, body: bytes) -> str:
    """The signature header SendGrid would send (tests and the docs' curl example)."""
    return base64.b64encode(private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


class SendGridWebhook:
    name = NAME
    methods = ("POST",)

    def __init__(self, public_key: str, max_age_s: int):
        self._key = load_public_key(public_key)
        self.max_age_s = max_age_s

    def __repr__(self) -> str:
        return "SendGridWebhook(public_key=<configured>)"

    def verify(self, token: str | None, headers: dict[str, str], body: bytes, now: float) -> None:
        sent, stamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
        if not sent or not stamp:
            raise unsigned("X-Twilio-Email-Event-Webhook-Signature and -Timestamp headers are required")
        try:
            der = base64.b64decode(sent.strip(), validate=True)
            self._key.verify(der, stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature):
            raise bad_signature("the event webhook signature does not verify with the public key") from None
        try:
            age = now - int(stamp.strip())
        except ValueError:
            raise unsigned("X-Twilio-Email-Event-Webhook-Timestamp is not unix seconds") from None
        check_window(age, self.max_age_s)

    def parse(self, headers: dict[str, str], body: bytes, now: float) -> tuple[list[ConsentEvent], int]:
        doc = json_body(body)
        if not isinstance(doc, list):
            raise malformed("the body must be a JSON array of events")
        events, ignored = [], 0
        for i, item in enumerate(doc):
            if not isinstance(item, dict):
                raise malformed(f"event {i} is not an object")
            name = text_field(item, "event", f"event {i}: 'event'")
            mapped = _DIRECT.get(name)
            if name == "bounce" and str(item.get("type", "")).lower() == "blocked":
                mapped = None  # a block is temporary: the address may still be fine
            if name == "dropped":
                mapped = _DROPPED.get(str(item.get("reason", "")).strip().lower())
            if mapped is None:
                ignored += 1
                continue
            kind, source = mapped
            events.append(ConsentEvent(
                event_id=event_id(NAME, text_field(item, "sg_event_id", f"event {i}: 'sg_event_id'")),
                tool=NAME, kind=kind, source=source,
                email=text_field(item, "email", f"event {i}: 'email'"),
                occurred_at=from_unix(item.get("timestamp"), f"event {i}: 'timestamp'"),
            ))
        return events, ignored
