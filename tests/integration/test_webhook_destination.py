"""WebhookDestination against the sandbox receiver, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from destinations.base import Batch, Destination, DestinationError, Operation, Record, ResultStatus
from destinations.sandbox.webhook_receiver import WebhookReceiver
from destinations.webhook import WebhookDestination, signature_headers
from tests.integration.delivery import resend_until_acknowledged

SECRET = "whsec-test-0123456789"
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "read_timeout": 5.0}


def recs(n, start=0, email=True, idem=False):
    return tuple(
        Record(f"p{i:05d}", {"email": f"user{i}@example.com", "score": i} if email else {"score": i},
               idempotency_key=f"ik-{i}" if idem else None)
        for i in range(start, start + n)
    )


@pytest.fixture
def receiver():
    with WebhookReceiver(SECRET) as rc:
        yield rc


def dest(url, **kw):
    return WebhookDestination(url, kw.pop("secret", SECRET), **{**FAST, **kw})


def test_signed_upsert_lands_in_state_with_ids(receiver):
    d = dest(receiver.url)
    assert isinstance(d, Destination)
    res = d.write(Batch("s1", "contacts", Operation.UPSERT, recs(5)))
    assert [r.status for r in res] == [ResultStatus.OK] * 5
    state = receiver.state.records["contacts"]
    assert set(state) == {f"p{i:05d}" for i in range(5)}
    assert state["p00003"]["fields"] == {"email": "user3@example.com", "score": 3}
    assert {r.key: r.destination_id for r in res} == {k: v["id"] for k, v in state.items()}
    # Update changes fields, keeps ids; membership and delete.
    d.write(Batch("s1", "contacts", Operation.UPDATE, (Record("p00001", {"score": 99}),)))
    assert receiver.state.records["contacts"]["p00001"]["fields"]["score"] == 99
    d.write(Batch("s1", "vip", Operation.ADD_MEMBER, recs(3, email=False)))
    d.write(Batch("s1", "vip", Operation.REMOVE_MEMBER, recs(1, email=False)))
    assert receiver.state.members["vip"] == {"p00001", "p00002"}
    d.write(Batch("s1", "contacts", Operation.DELETE, recs(2, email=False)))
    assert set(receiver.state.records["contacts"]) == {"p00002", "p00003", "p00004"}
    assert sum(receiver.refused.values()) == 0
    d.close()


def test_wrong_secret_is_401_not_retryable_and_counted(receiver):
    d = dest(receiver.url, secret="not-the-secret", secret_env="OUTFLOW_WEBHOOK_SECRET")
    with pytest.raises(DestinationError) as info:
        d.write(Batch("s1", "contacts", Operation.UPSERT, recs(3)))
    assert not info.value.retryable
    msg = str(info.value)
    assert "401" in msg and "OUTFLOW_WEBHOOK_SECRET" in msg and "not-the-secret" not in msg
    assert receiver.refused["bad_signature"] == 1
    assert receiver.state.records == {}


def _raw_post(url, body: bytes, headers):
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=5)


def test_missing_stale_and_future_signatures_are_401(receiver):
    body = json.dumps({"sync": "s", "target": "t", "operation": "upsert",
                       "records": [{"key": "k", "fields": {}}]}).encode()
    assert _raw_post(receiver.url, body, {}).status_code == 401
    stale = signature_headers(SECRET, body, now=time.time() - 301)
    assert _raw_post(receiver.url, body, stale).status_code == 401
    future = signature_headers(SECRET, body, now=time.time() + 301)
    assert _raw_post(receiver.url, body, future).status_code == 401
    tampered = signature_headers(SECRET, body)
    resp = _raw_post(receiver.url, body.replace(b'"k"', b'"j"'), tampered)
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "bad_signature"
    ok = _raw_post(receiver.url, body, signature_headers(SECRET, body, now=time.time() - 290))
    assert ok.status_code == 200 and ok.json()["results"][0]["status"] == "ok"
    assert receiver.refused == Counter(missing_signature=1, stale_timestamp=2, bad_signature=1)
    assert receiver.requests_seen == 5 and set(receiver.state.records["t"]) == {"k"}


def test_per_record_rejections(receiver):
    d = dest(receiver.url)
    batch = recs(4) + (Record("bad1", {"email": "not-an-email"}), Record("bad2", {"email": 42}))
    res = {r.key: r for r in d.write(Batch("s", "contacts", Operation.UPSERT, batch))}
    assert res["bad1"].status is ResultStatus.REJECTED and res["bad1"].error == "invalid_email"
    assert res["bad2"].error == "invalid_email"
    assert sum(r.status is ResultStatus.OK for r in res.values()) == 4
    assert "bad1" not in receiver.state.records["contacts"]

    res = {r.key: r for r in d.write(Batch("s", "contacts", Operation.UPDATE, recs(2, start=3)))}
    assert res["p00003"].status is ResultStatus.OK
    assert res["p00004"].status is ResultStatus.REJECTED and res["p00004"].error == "not_found"

    res = d.write(Batch("s", "contacts", Operation.INSERT, recs(1, idem=True)))
    assert res[0].status is ResultStatus.REJECTED and res[0].error == "duplicate"


def test_insert_is_idempotent_by_key(receiver):
    d = dest(receiver.url)
    first = d.write(Batch("s", "leads", Operation.INSERT, recs(10, idem=True)))
    again = d.write(Batch("s", "leads", Operation.INSERT, recs(10, idem=True)))
    assert all(r.status is ResultStatus.OK for r in first + again)
    assert {r.key: r.destination_id for r in first} == {r.key: r.destination_id for r in again}
    assert receiver.state.creations == 10 and len(receiver.state.records["leads"]) == 10


def test_batch_too_large_is_split_not_failed():
    with WebhookReceiver(SECRET, max_batch_size=8) as rc:
        d = dest(rc.url, max_batch_size=50)
        batch = recs(30) + (Record("bad", {"email": "nope"}),)
        res = {r.key: r for r in d.write(Batch("s", "c", Operation.UPSERT, batch))}
        assert len(res) == 31 and res["bad"].error == "invalid_email"
        assert sum(r.status is ResultStatus.OK for r in res.values()) == 30
        assert rc.refused["batch_too_large"] >= 1 and len(rc.state.records["c"]) == 30


@pytest.mark.parametrize("operation", [Operation.INSERT, Operation.UPSERT])
def test_faults_lose_nothing_and_create_nothing_twice(operation):
    n = 400
    with WebhookReceiver(SECRET, max_batch_size=50, error_share=0.25, drop_connection_share=0.2, seed=11) as rc:
        d = dest(rc.url, max_batch_size=50, max_retries=3)
        pending = {r.key: r for r in recs(n, idem=True)}
        acked, rounds = resend_until_acknowledged(d, "people", operation, pending, batch_size=50, workers=4, max_rounds=30)
        state = rc.state
        assert rounds > 1 and rc.refused["dropped_after_apply"] > 0  # the faults did happen
        assert set(state.records["people"]) == {f"p{i:05d}" for i in range(n)}
        assert state.creations == n  # exactly once: no record created twice
        assert {k: v["id"] for k, v in state.records["people"].items()} == acked


def test_throttling_slows_the_client_and_everything_arrives():
    with WebhookReceiver(SECRET, max_batch_size=10, throttle_rps=20) as rc:
        d = dest(rc.url, max_batch_size=10, max_retries=8)
        batches = [Batch("s", "c", Operation.UPSERT, recs(10, start=i * 10)) for i in range(40)]
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            results = [r for res in pool.map(d.write, batches) for r in res]
        elapsed = time.monotonic() - t0
        assert all(r.status is ResultStatus.OK for r in results) and len(results) == 400
        assert rc.refused["throttled"] > 0 and d.client.stats["throttled"] == rc.refused["throttled"]
        assert len(rc.state.records["c"]) == 400
        # 40 requests at 20/s with a burst of 20 cannot finish in under ~1 s.
        assert elapsed >= 0.9


class BadServer:
    """Answers every POST with a fixed (status, body)."""

    def __init__(self, status: int, body: bytes):
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _results(*items):
    return json.dumps({"results": list(items)}).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"<html>oops jane@example.com</html>", "not JSON"),
        (200, b'{"ok": true}', "no 'results' list"),
        (200, b'[1, 2]', "no 'results' list"),
        (200, _results("x"), r"results\[0\] is not an object"),
        (200, _results({"key": "p00000", "status": "maybe"}), r"results\[0\].status"),
        (200, _results({"status": "ok"}), r"results\[0\].key"),
        (200, _results({"key": "p00000", "status": "ok"}), "1 results for 2 records"),
        (200, _results(*[{"key": k, "status": "ok"} for k in ("p00000", "p00001", "zzz")]), "3 results for 2"),
    ],
)
def test_garbage_answers_are_clear_retryable_errors(status, body, expected, caplog):
    with BadServer(status, body) as srv, caplog.at_level(logging.DEBUG):
        with pytest.raises(DestinationError, match=expected) as info:
            dest(srv.url, max_retries=0).write(Batch("s", "c", Operation.UPSERT, recs(2)))
    assert info.value.retryable
    text = str(info.value) + caplog.text
    assert "jane@example.com" not in text and "user0@example.com" not in text


@pytest.mark.parametrize(("status", "retryable"), [(404, False), (405, False), (500, True), (503, True)])
def test_other_statuses(status, retryable, caplog):
    body = json.dumps({"error": {"code": "boom", "message": f"user1@example.com {SECRET}"}}).encode()
    with BadServer(status, body) as srv, caplog.at_level(logging.DEBUG):
        d = dest(srv.url, max_retries=1)
        with pytest.raises(DestinationError) as info:
            d.write(Batch("s", "c", Operation.UPSERT, recs(2)))
    assert info.value.retryable is retryable and str(status) in str(info.value)
    text = str(info.value) + caplog.text
    assert SECRET not in text and "@example.com" not in text


def test_whole_batch_400_rejects_each_record_not_the_run():
    body = json.dumps({"error": {"code": "bad_request", "message": "x"}}).encode()
    with BadServer(400, body) as srv:
        res = dest(srv.url).write(Batch("s", "c", Operation.UPSERT, recs(4)))
    assert [r.status for r in res] == [ResultStatus.REJECTED] * 4
    assert all(r.error.startswith("bad_request") for r in res)


def test_nothing_sensitive_in_errors_or_logs(caplog):
    with WebhookReceiver(SECRET, drop_connection_share=1.0, seed=1) as rc, caplog.at_level(logging.DEBUG):
        d = dest(rc.url, max_retries=2)
        with pytest.raises(DestinationError) as info:
            d.write(Batch("s", "c", Operation.UPSERT, recs(3)))
    with WebhookReceiver(SECRET) as rc, caplog.at_level(logging.DEBUG):
        out = dest(rc.url).write(Batch("s", "c", Operation.UPSERT, (Record("k", {"email": "bad@@x"}),)))
    text = str(info.value) + caplog.text + " ".join(str(r) for r in out)
    assert info.value.retryable and caplog.records
    assert SECRET not in text and "@example.com" not in text and "bad@@x" not in text
