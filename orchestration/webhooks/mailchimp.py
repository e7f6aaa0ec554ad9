"""Mailchimp audience (list) webhooks.

Mailchimp POSTs `application/x-www-form-urlencoded` bodies: `type` (subscribe,
unsubscribe, profile, upemail, cleaned, campaign), `fired_at` ("YYYY-MM-DD HH:MM:SS",
UTC) and `data[...]` (`data[email]`, `data[list_id]`, `data[action]` unsub|delete,
`data[reason]`: for `cleaned`, hard (bounce) or abuse (spam complaint)). It signs
nothing: the only authentication is a secret token in the URL we give it, so the
receiver listens on /webhooks/mailchimp/<token>. When the webhook is created Mailchimp
GETs the URL and expects a 200. Events have no id: the id is a hash of the whole form,
which Mailchimp's retries (over 75 minutes) resend unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone
from urllib.parse import parse_qsl

from orchestration.webhooks.events import (
    ConsentEvent, Refused, check_window, event_id, malformed, text_field,
)

NAME = "mailchimp"
# The events that revoke email consent, by type (and cleaned's reason).
_IGNORED_TYPES = {"subscribe", "profile", "upemail", "campaign"}


class MailchimpWebhook:
    name = NAME
    methods = ("GET", "POST")

    def __init__(self, token: str, max_age_s: int):
        self._token = token.encode()
        self.max_age_s = max_age_s

    def __repr__(self) -> str:
        return "MailchimpWebhook(token=<redacted>)"

    def verify(self, token: str | None, headers: dict[str, str], body: bytes, now: float) -> None:
        if not token:
            raise Refused(401, "unsigned", "the URL has no token: use /webhooks/mailchimp/<token>")
        if not hmac.compare_digest(token.encode(), self._token):
            raise Refused(403, "bad_signature", "the URL token does not match")

    def parse(self, headers: dict[str, str], body: bytes, now: float) -> tuple[list[ConsentEvent], int]:
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            raise Refused(415, "unsupported_media_type", "expected application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise malformed("the body is not a valid form") from None
        form: dict[str, str] = {}
        for key, value in pairs:
            if key in form:
                raise malformed("the form repeats a field")
            form[key] = value
        kind = text_field(form, "type", "type")
        fired = text_field(form, "fired_at", "fired_at")
        try:
            fired_at = datetime.strptime(fired, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise malformed("fired_at must be YYYY-MM-DD HH:MM:SS") from None
        age = now - fired_at.replace(tzinfo=timezone.utc).timestamp()
        check_window(age, self.max_age_s)
        if kind in _IGNORED_TYPES:
            return [], 1
        if kind == "unsubscribe":
            source = "mailchimp_unsubscribe"
            event_kind = "unsubscribe"
        elif kind == "cleaned":
            if form.get("data[reason]", "").strip().lower() == "abuse":
                source, event_kind = "mailchimp_cleaned_spam_complaint", "spam_report"
            else:  # 'hard': the address bounced for good
                source, event_kind = "mailchimp_cleaned_bounce", "bounce"
        else:
            raise malformed("unknown type (expected unsubscribe, cleaned, subscribe, profile, upemail, campaign)")
        email = text_field(form, "data[email]", "data[email]")
        native = hashlib.sha256("&".join(f"{k}={v}" for k, v in sorted(form.items())).encode()).hexdigest()
        return [ConsentEvent(event_id=event_id(NAME, native), tool=NAME, kind=event_kind, source=source,
                             email=email, occurred_at=fired_at)], 0

