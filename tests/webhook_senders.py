"""What each tool sends, built and signed as the tool would: shared by the webhook tests."""

from __future__ import annotations

import base64
import json
import time
from email.utils import formatdate
from urllib.parse import urlencode

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from orchestration.webhooks import klaviyo, sendgrid

MAILCHIMP_TOKEN = "mc-url-token-0123456789"
KLAVIYO_SECRET = "klaviyo-signing-secret-0123"
SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC_KEY = base64.b64encode(SENDGRID_KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
ENV = {
    "OUTFLOW_MAILCHIMP_WEBHOOK_SECRET": MAILCHIMP_TOKEN,
    "OUTFLOW_KLAVIYO_WEBHOOK_SECRET": KLAVIYO_SECRET,
    "OUTFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY": SENDGRID_PUBLIC_KEY,
}


def config_yaml(spool: str, max_body_bytes: int = 100_000) -> str:
    return (
        f"spool: {spool}\nmax_body_bytes: {max_body_bytes}\ntools:\n"
        "  mailchimp: {secret_env: OUTFLOW_MAILCHIMP_WEBHOOK_SECRET, max_age_seconds: 7200}\n"
        "  klaviyo: {secret_env: OUTFLOW_KLAVIYO_WEBHOOK_SECRET}\n"
        "  sendgrid: {public_key_env: OUTFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY}\n"
    )


# ---- SendGrid

def sendgrid_events(email: str, event: str = "unsubscribe", *, sg_event_id: str = "sg-1",
                    at: float | None = None, **extra) -> list[dict]:
    return [{"email": email, "event": event, "timestamp": int(at or time.time()),
             "sg_event_id": sg_event_id, "sg_message_id": "msg-1", **extra}]


def sendgrid_post(url: str, events, *, signed_at: float | None = None, key=None, body: bytes | None = None):
    body = json.dumps(events).encode() if body is None else body
    stamp = str(int(signed_at if signed_at is not None else time.time()))
    headers = {"Content-Type": "application/json",
               "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
               "X-Twilio-Email-Event-Webhook-Signature": sendgrid.sign(key or SENDGRID_KEY, stamp, body)}
    return requests.post(f"{url}/webhooks/sendgrid", data=body, headers=headers, timeout=10)


# ---- Klaviyo

def klaviyo_body(email: str, topic: str = "event:klaviyo.unsubscribed_from_email_marketing", *,
                 external_id: str = "kl-evt-1", when: str = "2026-01-01T00:00:00+00:00", props=None) -> dict:
    return {
        "data": [{
            "topic": topic, "external_id": external_id,
            "payload": {
                "data": {"type": "event", "id": external_id,
                         "attributes": {"datetime": when, "event_properties": props or {}},
                         "relationships": {"profile": {"data": {"type": "profile", "id": "01PROFILE"}}}},
                "included": [{"type": "profile", "id": "01PROFILE", "attributes": {"email": email}}],
            },
        }],
        "meta": {"klaviyo_account_id": "AbC123", "klaviyo_webhook_id": "wh-1", "timestamp": when},
    }


def klaviyo_post(url: str, doc, *, signed_at: float | None = None, secret: str = KLAVIYO_SECRET,
                 body: bytes | None = None, webhook_id: str = "wh-1"):
    body = json.dumps(doc).encode() if body is None else body
    stamp = formatdate(signed_at if signed_at is not None else time.time(), usegmt=True)
    headers = {"Content-Type": "application/json", "Klaviyo-Timestamp": stamp, "Klaviyo-Webhook-Id": webhook_id,
               "Klaviyo-Signature": klaviyo.signature(secret, body, stamp)}
    return requests.post(f"{url}/webhooks/klaviyo", data=body, headers=headers, timeout=10)


# ---- Mailchimp

def mailchimp_form(email: str, kind: str = "unsubscribe", *, fired_at: float | None = None, **data) -> dict:
    fired = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(fired_at if fired_at is not None else time.time()))
    form = {"type": kind, "fired_at": fired, "data[email]": email, "data[list_id]": "list0001",
            "data[id]": "8a25ff1d98", "data[email_type]": "html"}
    form.update({f"data[{k}]": v for k, v in data.items()})
    return form


def mailchimp_post(url: str, form, *, token: str = MAILCHIMP_TOKEN, body: bytes | None = None):
    body = urlencode(form).encode() if body is None else body
    return requests.post(f"{url}/webhooks/mailchimp/{token}", data=body, timeout=10,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
