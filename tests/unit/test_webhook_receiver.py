"""The consent webhook receiver over real HTTP: each tool's format and signature, every
refusal with its status code and nothing stored, and a durable spool."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from orchestration.webhooks.config import ConfigError, load_config, spool_dir
from orchestration.webhooks.receiver import WebhookReceiver, build_tools
from orchestration.webhooks.spool import Spool, read_batch
from tests.webhook_senders import (
    ENV, KLAVIYO_SECRET, MAILCHIMP_TOKEN, config_yaml, klaviyo_body, klaviyo_post, mailchimp_form,
    mailchimp_post, sendgrid_events, sendgrid_post,
)

EMAIL = "Jane.Doe+news@Example.com"


@pytest.fixture
def receiver(tmp_path):
    path = tmp_path / "webhooks.yml"
    path.write_text(config_yaml("spool"))
    config, where = load_config(path)
    spool = Spool(spool_dir(config, where))
    with WebhookReceiver(build_tools(config, where, ENV), spool, max_body_bytes=config.max_body_bytes) as r:
        yield r


def spooled(receiver) -> list:
    if not receiver.spool.incoming.exists():
        return []
    return read_batch(receiver.spool.incoming)[0]


def assert_nothing_stored(receiver, tool: str, reason: str, times: int = 1) -> None:
    assert spooled(receiver) == []
    assert receiver.refused[(tool, reason)] == times
    leftovers = [p.name for p in receiver.spool.folder.iterdir() if p.name != ".lock"] \
        if receiver.spool.folder.exists() else []
    assert leftovers == []


# ---- accepted, in each tool's own format

def test_sendgrid_signed_events_are_spooled_with_their_meaning(receiver):
    events = [
        *sendgrid_events(EMAIL, "unsubscribe", sg_event_id="a"),
        *sendgrid_events("b@example.com", "group_unsubscribe", sg_event_id="b", asm_group_id=3),
        *sendgrid_events("c@example.com", "spamreport", sg_event_id="c"),
        *sendgrid_events("d@example.com", "bounce", sg_event_id="d", type="bounce", status="5.1.1"),
        *sendgrid_events("e@example.com", "bounce", sg_event_id="e", type="blocked"),  # temporary: no revoke
        *sendgrid_events("f@example.com", "dropped", sg_event_id="f", reason="Bounced Address"),
        *sendgrid_events("g@example.com", "open", sg_event_id="g"),
        *sendgrid_events("h@example.com", "delivered", sg_event_id="h"),
    ]
    response = sendgrid_post(receiver.url, events)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 5, "ignored": 3}
    got = {(e.email, e.kind, e.source) for e in spooled(receiver)}
    assert got == {
        (EMAIL, "unsubscribe", "sendgrid_unsubscribe"),
        ("b@example.com", "unsubscribe", "sendgrid_group_unsubscribe"),
        ("c@example.com", "spam_report", "sendgrid_spam_report"),
        ("d@example.com", "bounce", "sendgrid_bounce"),
        ("f@example.com", "bounce", "sendgrid_dropped_bounce"),
    }
    assert all(e.channel == "email" and e.status == "revoked" for e in spooled(receiver))


def test_klaviyo_signed_topics_are_spooled(receiver):
    doc = klaviyo_body(EMAIL, external_id="k1")
    for topic, ext, props in (("event:klaviyo.bounced_email", "k2", {"Bounce Type": "Hard"}),
                              ("event:klaviyo.bounced_email", "k3", {"Bounce Type": "Soft"}),
                              ("event:klaviyo.marked_email_as_spam", "k4", {}),
                              ("event:klaviyo.opened_email", "k5", {})):
        doc["data"] += klaviyo_body(f"{ext}@example.com", topic, external_id=ext, props=props)["data"]
    response = klaviyo_post(receiver.url, doc)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "ignored": 2}
    events = spooled(receiver)
    assert [(e.kind, e.source) for e in events] == [
        ("unsubscribe", "klaviyo_unsubscribe"), ("bounce", "klaviyo_bounce"), ("spam_report", "klaviyo_spam_report")]
    assert events[0].email == EMAIL and str(events[0].occurred_at) == "2026-01-01 00:00:00"


def test_mailchimp_validation_get_and_form_events(receiver):
    assert requests.get(f"{receiver.url}/webhooks/mailchimp/{MAILCHIMP_TOKEN}", timeout=5).status_code == 200
    fired = time.time() - 60
    for form in (mailchimp_form(EMAIL, "unsubscribe", fired_at=fired, action="unsub", reason="manual"),
                 mailchimp_form("c@example.com", "cleaned", fired_at=fired, reason="hard"),
                 mailchimp_form("s@example.com", "cleaned", fired_at=fired, reason="abuse"),
                 mailchimp_form("p@example.com", "profile", fired_at=fired)):
        assert mailchimp_post(receiver.url, form).status_code == 200
    assert [(e.email, e.kind, e.source) for e in spooled(receiver)] == [
        (EMAIL, "unsubscribe", "mailchimp_unsubscribe"),
        ("c@example.com", "bounce", "mailchimp_cleaned_bounce"),
        ("s@example.com", "spam_report", "mailchimp_cleaned_spam_complaint"),
    ]
    assert receiver.ignored["mailchimp"] == 1


def test_event_ids_are_deterministic_so_a_replay_repeats_the_id(receiver):
    events = sendgrid_events(EMAIL, sg_event_id="same")
    assert sendgrid_post(receiver.url, events).status_code == 200
    assert sendgrid_post(receiver.url, events).status_code == 200  # a replay inside the window
    first, second = spooled(receiver)
    assert first.event_id == second.event_id  # the drain keeps one (tests/integration/test_webhooks_drain.py)


# ---- refused: status code, and nothing but a counter

def test_unsigned_requests_are_401(receiver):
    body = json.dumps(sendgrid_events(EMAIL)).encode()
    assert requests.post(f"{receiver.url}/webhooks/sendgrid", data=body, timeout=5).status_code == 401
    assert requests.post(f"{receiver.url}/webhooks/klaviyo", data=json.dumps(klaviyo_body(EMAIL)),
                         timeout=5).status_code == 401
    assert requests.post(f"{receiver.url}/webhooks/mailchimp", data="type=unsubscribe", timeout=5,
                         headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 401
    for tool in ("sendgrid", "klaviyo", "mailchimp"):
        assert_nothing_stored(receiver, tool, "unsigned")


def test_badly_signed_requests_are_403(receiver):
    other_key = ec.generate_private_key(ec.SECP256R1())
    assert sendgrid_post(receiver.url, sendgrid_events(EMAIL), key=other_key).status_code == 403
    assert klaviyo_post(receiver.url, klaviyo_body(EMAIL), secret="not-the-secret").status_code == 403
    assert mailchimp_post(receiver.url, mailchimp_form(EMAIL), token="wrong-token").status_code == 403
    assert requests.get(f"{receiver.url}/webhooks/mailchimp/wrong-token", timeout=5).status_code == 403
    # a valid signature of another body: the body was tampered with
    good = json.dumps(sendgrid_events(EMAIL)).encode()
    stamp = str(int(time.time()))
    from orchestration.webhooks.sendgrid import sign
    from tests.webhook_senders import SENDGRID_KEY
    tampered = requests.post(f"{receiver.url}/webhooks/sendgrid", data=good.replace(b"unsubscribe", b"delivered"),
                             headers={"X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                                      "X-Twilio-Email-Event-Webhook-Signature": sign(SENDGRID_KEY, stamp, good)},
                             timeout=5)
    assert tampered.status_code == 403
    assert receiver.refused[("sendgrid", "bad_signature")] == 2
    assert receiver.refused[("klaviyo", "bad_signature")] == 1
    assert_nothing_stored(receiver, "mailchimp", "bad_signature", times=2)


def test_a_repeated_signature_header_is_ambiguous_and_400(receiver):
    port = int(receiver.url.rsplit(":", 1)[1])
    with socket.create_connection((receiver.host, port), timeout=5) as sock:
        sock.sendall(b"POST /webhooks/sendgrid HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                     b"X-Twilio-Email-Event-Webhook-Signature: a\r\nX-Twilio-Email-Event-Webhook-Signature: b\r\n"
                     b"X-Twilio-Email-Event-Webhook-Timestamp: 1\r\n\r\n[]")
        assert sock.recv(200).startswith(b"HTTP/1.1 400")
    assert_nothing_stored(receiver, "sendgrid", "malformed")


def test_klaviyo_webhook_id_must_match_the_body(receiver):
    assert klaviyo_post(receiver.url, klaviyo_body(EMAIL), webhook_id="another-hook").status_code == 403
    assert_nothing_stored(receiver, "klaviyo", "bad_signature")


def test_stale_requests_are_replays_and_401(receiver):
    old = time.time() - 3600
    assert sendgrid_post(receiver.url, sendgrid_events(EMAIL), signed_at=old).status_code == 401
    assert klaviyo_post(receiver.url, klaviyo_body(EMAIL), signed_at=old).status_code == 401
    assert klaviyo_post(receiver.url, klaviyo_body(EMAIL), signed_at=time.time() + 3600).status_code == 401
    assert mailchimp_post(receiver.url, mailchimp_form(EMAIL, fired_at=time.time() - 3 * 3600)).status_code == 401
    assert receiver.refused[("sendgrid", "stale")] == 1
    assert receiver.refused[("klaviyo", "stale")] == 2
    assert_nothing_stored(receiver, "mailchimp", "stale")


@pytest.mark.parametrize("body", [b"{not json", b'{"events": []}', b'["x"]', b"\xff\xfe",
                                  b'[{"event": "unsubscribe", "timestamp": 1, "sg_event_id": "x"}]',
                                  b'[{"event": "bounce", "email": "a@b.co", "timestamp": "soon", "sg_event_id": "x"}]'])
def test_malformed_sendgrid_bodies_are_400(receiver, body):
    response = sendgrid_post(receiver.url, None, body=body)
    assert response.status_code == 400 and response.json()["error"] == "malformed"
    assert_nothing_stored(receiver, "sendgrid", "malformed")


def test_malformed_klaviyo_and_mailchimp_bodies_are_400(receiver):
    assert klaviyo_post(receiver.url, None, body=b"[]").status_code == 400
    no_email = klaviyo_body(EMAIL)
    no_email["data"][0]["payload"]["included"] = []
    assert klaviyo_post(receiver.url, no_email).status_code == 400
    no_email["data"][0]["payload"]["included"] = [{"type": "profile", "attributes": ["not", "a", "mapping"]}]
    assert klaviyo_post(receiver.url, no_email).status_code == 400
    assert mailchimp_post(receiver.url, None, body=b"type=unsubscribe&&&=").status_code == 400
    assert mailchimp_post(receiver.url, {"type": "unsubscribe", "fired_at": "yesterday"}).status_code == 400
    no_mail = mailchimp_form(EMAIL)
    del no_mail["data[email]"]
    assert mailchimp_post(receiver.url, no_mail).status_code == 400
    assert receiver.refused[("klaviyo", "malformed")] == 3
    assert_nothing_stored(receiver, "mailchimp", "malformed", times=3)
    # a form sent as JSON is the wrong media type
    response = requests.post(f"{receiver.url}/webhooks/mailchimp/{MAILCHIMP_TOKEN}", json={"type": "x"}, timeout=5)
    assert response.status_code == 415


def test_wrong_method_is_405_and_unknown_paths_404(receiver):
    response = requests.get(f"{receiver.url}/webhooks/sendgrid", timeout=5)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert requests.delete(f"{receiver.url}/webhooks/klaviyo", timeout=5).status_code == 405
    assert requests.put(f"{receiver.url}/webhooks/mailchimp/{MAILCHIMP_TOKEN}", data=b"x", timeout=5).status_code == 405
    assert requests.post(f"{receiver.url}/webhooks/hubspot", data=b"{}", timeout=5).status_code == 404
    assert requests.post(f"{receiver.url}/other", data=b"{}", timeout=5).status_code == 404
    assert receiver.refused[("sendgrid", "method_not_allowed")] == 1
    assert_nothing_stored(receiver, "unknown", "not_found", times=2)


def test_oversize_bodies_are_413_before_being_read(receiver):
    big = b"[" + b" " * 200_000 + b"]"
    response = sendgrid_post(receiver.url, None, body=big)
    assert response.status_code == 413
    # a client that only announces a huge body is answered without sending it
    with socket.create_connection((receiver.host, int(receiver.url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"POST /webhooks/klaviyo HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        assert sock.recv(200).startswith(b"HTTP/1.1 413")
    with socket.create_connection((receiver.host, int(receiver.url.rsplit(":", 1)[1])), timeout=5) as sock:
        sock.sendall(b"POST /webhooks/klaviyo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert sock.recv(200).startswith(b"HTTP/1.1 411")
    assert receiver.refused[("klaviyo", "too_large")] == 1
    assert_nothing_stored(receiver, "sendgrid", "too_large")


def test_refusals_never_echo_the_email_or_secret(receiver, caplog):
    caplog.set_level("DEBUG")
    answers = [
        sendgrid_post(receiver.url, None, body=json.dumps(sendgrid_events(EMAIL))[:-3].encode()).text,
        klaviyo_post(receiver.url, klaviyo_body(EMAIL), secret="nope").text,
        mailchimp_post(receiver.url, mailchimp_form(EMAIL), token="wrong").text,
        requests.get(f"{receiver.url}/healthz", timeout=5).text,
    ]
    text = "\n".join(answers) + caplog.text + repr(receiver.tools)
    for secret in (EMAIL, EMAIL.lower(), KLAVIYO_SECRET, MAILCHIMP_TOKEN):
        assert secret not in text


def test_an_unwritable_spool_is_503_so_the_tool_retries(receiver):
    receiver.spool.folder.mkdir(parents=True, exist_ok=True)
    receiver.spool.incoming.mkdir()  # appending to a directory fails
    response = sendgrid_post(receiver.url, sendgrid_events(EMAIL))
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert receiver.accepted["sendgrid"] == 0


def test_a_missing_secret_names_its_variable(tmp_path):
    path = tmp_path / "webhooks.yml"
    path.write_text(config_yaml("spool"))
    config, where = load_config(path)
    env = {k: v for k, v in ENV.items() if k != "OUTFLOW_KLAVIYO_WEBHOOK_SECRET"}
    with pytest.raises(ConfigError, match="OUTFLOW_KLAVIYO_WEBHOOK_SECRET is not set"):
        build_tools(config, where, env)
    assert set(build_tools(config, where, env, only=["sendgrid", "mailchimp"])) == {"sendgrid", "mailchimp"}
    with pytest.raises(ConfigError, match="OUTFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER or PEM"):
        build_tools(config, where, {**ENV, "OUTFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY": "bm90IGEga2V5"})
    path.write_text("tools:\n  klaviyo: {secret_env: 'sk_live_value!'}\n")
    with pytest.raises(ConfigError, match="environment variable NAME"):
        load_config(path)


def test_the_spool_survives_a_claim_between_appends(tmp_path):
    """Events appended while a drain holds a batch go to a new incoming file: none lost."""
    from orchestration.webhooks.events import ConsentEvent
    from datetime import datetime

    spool = Spool(tmp_path / "spool")
    make = lambda i: ConsentEvent(f"id{i}", "sendgrid", "unsubscribe", "sendgrid_unsubscribe",  # noqa: E731
                                  f"p{i}@example.com", datetime(2026, 1, 1))
    spool.append([make(1), make(2)])
    first = spool.claim()
    spool.append([make(3)])
    assert len(first) == 1 and [e.event_id for e in read_batch(first[0])[0]] == ["id1", "id2"]
    assert spool.pending().files == 2
    batches = spool.claim()
    assert [e.event_id for b in batches for e in read_batch(b)[0]] == ["id1", "id2", "id3"]
    for b in batches:
        spool.release(b)
    assert spool.pending().bytes == 0 and spool.claim() == []
    assert oct(spool.folder.stat().st_mode & 0o777) == "0o700"


def test_concurrent_deliveries_are_all_spooled(receiver):
    from concurrent.futures import ThreadPoolExecutor

    def deliver(n: int) -> int:
        events = [sendgrid_events(f"p{n}-{i}@example.com", sg_event_id=f"{n}-{i}")[0] for i in range(5)]
        return sendgrid_post(receiver.url, events).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(deliver, range(40))) == {200}
    ids = [e.event_id for e in spooled(receiver)]
    assert len(ids) == len(set(ids)) == 200


# ---- hostile bodies: each tool's parser refuses with a reason, never crashes

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from orchestration.webhooks.events import Refused  # noqa: E402
from orchestration.webhooks.klaviyo import KlaviyoWebhook  # noqa: E402
from orchestration.webhooks.mailchimp import MailchimpWebhook  # noqa: E402
from orchestration.webhooks.sendgrid import SendGridWebhook  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["event", "email", "timestamp", "sg_event_id", "type", "reason", "data", "topic", "external_id",
         "payload", "included", "attributes", "datetime", "meta", "event_properties"]) | st.text(max_size=8),
        inner, max_size=5),
    max_leaves=20)
_PARSERS = [
    (SendGridWebhook(ENV["OUTFLOW_SENDGRID_WEBHOOK_PUBLIC_KEY"], 300), {"content-type": "application/json"}),
    (KlaviyoWebhook(KLAVIYO_SECRET, 300), {"content-type": "application/json"}),
    (MailchimpWebhook(MAILCHIMP_TOKEN, 7200), {"content-type": "application/x-www-form-urlencoded"}),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=_json, raw=st.binary(max_size=200), which=st.integers(0, 2), use_raw=st.booleans())
def test_parsers_accept_or_refuse_but_never_crash(doc, raw, which, use_raw):
    tool, headers = _PARSERS[which]
    body = raw if use_raw else json.dumps(doc).encode()
    if which == 2 and not use_raw:
        body = "&".join(f"{k}={v}" for k, v in (doc.items() if isinstance(doc, dict) else [])).encode()
    try:
        events, ignored = tool.parse(headers, body, time.time())
    except Refused as refusal:
        assert refusal.status in (400, 401, 403, 415) and refusal.reason
    else:
        assert all(e.email and e.event_id and e.kind for e in events) and ignored >= 0
