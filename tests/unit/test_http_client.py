"""The one HTTP client, against a real scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from destinations.base import DestinationError, Record, RecordResult, ResultStatus
from destinations.http import (
    BatchRefused,
    HttpClient,
    RateLimiter,
    parse_retry_after,
    redact,
    split_batch_retry,
)


class ScriptedServer:
    """Answers each request with the next scripted (status, headers, body); 'drop'
    closes the connection without an answer. Records what it saw."""

    def __init__(self, script=()):
        self.script = deque(script)
        self.default = (200, {}, b'{"ok":true}')
        self.seen: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _handle(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                with server.lock:
                    server.seen.append({"t": time.monotonic(), "method": self.command,
                                        "headers": dict(self.headers), "body": body})
                    step = server.script.popleft() if server.script else server.default
                if step == "drop":
                    self.close_connection = True
                    return
                status, headers, data = step
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/x"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


class SleepRecorder:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, s: float) -> None:
        self.calls.append(s)


def client(**kw) -> HttpClient:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    kw.setdefault("read_timeout", 5.0)
    return HttpClient(**kw)


def test_retries_5xx_then_succeeds():
    with ScriptedServer([(503, {}, b""), (502, {}, b""), (200, {}, b"fine")]) as srv:
        c = client()
        resp = c.request("GET", srv.url)
        assert resp.status_code == 200 and resp.content == b"fine"
        assert len(srv.seen) == 3 and c.stats["retries"] == 2


def test_gives_up_after_max_retries_with_retryable_error():
    with ScriptedServer([(500, {}, b"")] * 10) as srv:
        c = client(max_retries=2)
        with pytest.raises(DestinationError) as info:
            c.request("GET", srv.url)
        assert info.value.retryable and "after 3 attempts" in str(info.value) and "HTTP 500" in str(info.value)
        assert len(srv.seen) == 3


def test_non_throttle_4xx_is_returned_not_retried():
    with ScriptedServer([(400, {}, b"bad")]) as srv:
        resp = client().request("POST", srv.url, json={"a": 1})
        assert resp.status_code == 400 and len(srv.seen) == 1


def test_retry_after_seconds_and_http_date_are_honoured_and_capped():
    sleep = SleepRecorder()
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    script = [(429, {"Retry-After": "2"}, b""), (429, {"Retry-After": future}, b""),
              (429, {"Retry-After": "3600"}, b""), (200, {}, b"")]
    with ScriptedServer(script) as srv:
        c = client(sleep=sleep, retry_after_cap=10.0)
        assert c.request("GET", srv.url).status_code == 200
    assert sleep.calls[0] == 2.0
    assert 10.0 == sleep.calls[1]  # ~30 s from the date, capped at 10
    assert sleep.calls[2] == 10.0
    assert c.stats["throttled"] == 3


def test_hook_gives_the_wait_of_a_429_without_retry_after():
    # Google-style: 429 RESOURCE_EXHAUSTED with the wait in the body (retryDelay), no header.
    def retry_delay(resp):
        try:
            return float(resp.json()["error"]["retryDelay"].rstrip("s"))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    body = json.dumps({"error": {"status": "RESOURCE_EXHAUSTED", "retryDelay": "7s"}}).encode()
    sleep = SleepRecorder()
    with ScriptedServer([(429, {}, body), (429, {"Retry-After": "2"}, body), (200, {}, b"{}")]) as srv:
        c = client(sleep=sleep, is_throttled=retry_delay)
        assert c.request("POST", srv.url, json={}, idempotent=True).status_code == 200
    assert sleep.calls[:2] == [7.0, 2.0]  # the body's delay; a Retry-After header wins when both exist


def test_parse_retry_after():
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    date = email.utils.formatdate(1_000_100, usegmt=True)
    assert parse_retry_after(date, now=1_000_000) == pytest.approx(100, abs=1)
    assert parse_retry_after(email.utils.formatdate(10, usegmt=True), now=1_000) == 0.0


def test_backoff_is_full_jitter_and_capped():
    c = HttpClient(backoff_base=0.5, backoff_cap=4.0)
    for attempt in range(12):
        values = [c.backoff(attempt) for _ in range(200)]
        ceiling = min(4.0, 0.5 * 2**attempt)
        assert all(0.0 <= v <= ceiling for v in values)
        assert max(values) > 0.7 * ceiling  # spread over the whole range, not a fixed delay
    sleep = SleepRecorder()
    with ScriptedServer([(503, {}, b"")] * 8) as srv:
        c = client(sleep=sleep, max_retries=7, backoff_base=1.0, backoff_cap=3.0)
        with pytest.raises(DestinationError):
            c.request("GET", srv.url)
    assert len(sleep.calls) == 7 and max(sleep.calls) <= 3.0


def test_tool_throttle_hook_retries_a_4xx():
    # Meta-style: a 400 whose error code means "slow down".
    def meta_throttled(resp):
        try:
            return resp.json()["error"]["code"] in (4, 17, 613, 80003)
        except (ValueError, KeyError, TypeError):
            return False

    body = json.dumps({"error": {"code": 17, "message": "User request limit reached"}}).encode()
    with ScriptedServer([(400, {}, body), (400, {}, body), (200, {}, b"{}")]) as srv:
        c = client(is_throttled=meta_throttled)
        assert c.request("POST", srv.url, json={}, idempotent=True).status_code == 200
        assert c.stats["throttled"] == 2
    other = json.dumps({"error": {"code": 100, "message": "Invalid parameter"}}).encode()
    with ScriptedServer([(400, {}, other)]) as srv:
        assert client(is_throttled=meta_throttled).request("POST", srv.url, json={}).status_code == 400


def test_non_idempotent_post_not_retried_on_5xx_or_lost_answer_but_on_429():
    with ScriptedServer([(503, {}, b"")]) as srv:
        with pytest.raises(DestinationError, match="not idempotent") as info:
            client().request("POST", srv.url, json={"a": 1})
        assert info.value.retryable and len(srv.seen) == 1
    with ScriptedServer(["drop"]) as srv:
        with pytest.raises(DestinationError, match="not idempotent"):
            client().request("POST", srv.url, json={"a": 1})
        assert len(srv.seen) == 1
    with ScriptedServer([(429, {"Retry-After": "0"}, b""), (200, {}, b"")]) as srv:
        assert client().request("POST", srv.url, json={}).status_code == 200  # 429 = not processed
    # An Idempotency-Key makes it safe.
    with ScriptedServer(["drop", (503, {}, b""), (200, {}, b"")]) as srv:
        resp = client().request("POST", srv.url, json={}, headers={"Idempotency-Key": "k1"})
        assert resp.status_code == 200 and len(srv.seen) == 3


def test_connection_refused_is_retried_then_raises_retryable():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c = client(max_retries=2)
    with pytest.raises(DestinationError) as info:
        c.request("POST", f"http://127.0.0.1:{port}/x", json={})  # never sent: safe to retry
    assert info.value.retryable and c.stats["requests"] == 3


def test_read_timeout_is_enforced():
    with ScriptedServer([(200, {}, b"")]) as srv:
        orig = srv.httpd.RequestHandlerClass._handle

        def slow(self):
            time.sleep(0.6)
            orig(self)

        srv.httpd.RequestHandlerClass.do_GET = slow
        c = client(read_timeout=0.2, max_retries=0)
        t0 = time.monotonic()
        with pytest.raises(DestinationError, match="ReadTimeout"):
            c.request("GET", srv.url)
        assert time.monotonic() - t0 < 0.6


def test_headers_fn_is_called_per_attempt():
    calls = []

    def fresh(body: bytes):
        calls.append(body)
        return {"X-Attempt": str(len(calls))}

    with ScriptedServer([(503, {}, b""), (200, {}, b"")]) as srv:
        client().request("POST", srv.url, json={"x": 1}, headers_fn=fresh, idempotent=True)
        assert [s["headers"]["X-Attempt"] for s in srv.seen] == ["1", "2"]
        assert calls == [b'{"x":1}', b'{"x":1}']


def test_rate_limiter_holds_the_rate_across_four_threads():
    rate = 40.0
    limiter = RateLimiter(rate, burst=1)
    stamps: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 1.5

    def worker():
        while True:
            limiter.acquire()
            now = time.monotonic()
            if now > stop:
                return
            with lock:
                stamps.append(now)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = stop - start
    achieved = (len(stamps) - 1) / elapsed  # the first token is the burst
    assert abs(achieved - rate) / rate <= 0.15, (achieved, len(stamps))


def test_rate_limiter_limits_real_requests_and_pauses_on_retry_after():
    limiter = RateLimiter(20.0, burst=1)
    with ScriptedServer([(429, {"Retry-After": "1"}, b"")]) as srv:
        c = client(rate_limiter=limiter)
        threads = [threading.Thread(target=lambda: [c.request("GET", srv.url) for _ in range(5)]) for _ in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
    # 21 requests at 20/s take ~1 s, plus the shared 1 s pause after the 429.
    assert len(srv.seen) == 21
    assert elapsed >= 1.8
    gaps = [b["t"] - a["t"] for a, b in zip(srv.seen, srv.seen[1:])]
    assert max(gaps) >= 0.9  # every thread waited out the Retry-After


def test_rate_limiter_rejects_bad_settings():
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(0)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(1, burst=0)


def _recs(n):
    return [Record(f"k{i}", {"i": i}) for i in range(n)]


def test_split_batch_isolates_bad_records():
    bad = {"k3", "k11"}
    calls = []

    def send(part):
        calls.append(len(part))
        if any(r.key in bad for r in part):
            raise BatchRefused("HTTP 400 invalid", status=400, reason="invalid_field")
        return [RecordResult(r.key, ResultStatus.OK, destination_id=f"id-{r.key}") for r in part]

    res = split_batch_retry(_recs(16), send)
    by = {r.key: r for r in res}
    assert len(res) == 16
    assert {k for k, r in by.items() if r.status is ResultStatus.REJECTED} == bad
    assert by["k3"].error.startswith("invalid_field")
    assert all(by[f"k{i}"].destination_id == f"id-k{i}" for i in range(16) if f"k{i}" not in bad)
    assert len(calls) <= 2 * len(bad) * 5 + 1  # logarithmic, not one call per record


def test_split_batch_errors():
    def refuse_all(part):
        raise BatchRefused("too large", status=413)

    assert [r.status for r in split_batch_retry(_recs(3), refuse_all)] == [ResultStatus.REJECTED] * 3

    def outage(part):
        raise DestinationError("down", retryable=True)

    with pytest.raises(DestinationError):  # unsplit batch: the caller decides
        split_batch_retry(_recs(4), outage)

    state = {"n": 0}

    def first_refused_then_down(part):
        state["n"] += 1
        if state["n"] == 1:
            raise BatchRefused("400", status=400)
        if part[0].key == "k0":
            return [RecordResult(r.key, ResultStatus.OK) for r in part]
        raise DestinationError("down", retryable=True)

    res = split_batch_retry(_recs(4), first_refused_then_down)
    assert [r.status for r in res] == [ResultStatus.OK] * 2 + [ResultStatus.RETRYABLE] * 2
    assert split_batch_retry([], refuse_all) == []


def test_redact():
    text = ("POST https://api.x.com/v1?access_token=abcd1234 Authorization: Bearer tok_live_9 "
            "for Jane.Doe+tag@Example.co.uk phone +1 (650) 253-0000 or 06 12 34 56 78; "
            "key p-0000123 status 503 secret=hunter22")
    out = redact(text, ["tok_live_9", "hunter22"])
    for leaked in ("abcd1234", "tok_live_9", "Jane.Doe", "Example.co.uk", "253-0000", "12 34 56", "hunter22"):
        assert leaked not in out
    assert "p-0000123" in out and "503" in out and "[email]" in out and "[phone]" in out


def test_errors_and_logs_are_redacted(caplog):
    secret = "s3cr3t-value-xyz"
    with ScriptedServer([(503, {}, b"jane@example.com")] * 3) as srv:
        c = client(max_retries=1, headers={"Authorization": f"Bearer {secret}"})
        url = srv.url + "?email=jane@example.com&token=" + secret
        with caplog.at_level(logging.DEBUG, logger="outflow.http"), pytest.raises(DestinationError) as info:
            c.request("GET", url)
    assert srv.seen[0]["headers"]["Authorization"] == f"Bearer {secret}"
    text = str(info.value) + "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "a retry is logged"
    assert secret not in text and "jane@example.com" not in text and "Bearer" not in text


def test_debug_logs_of_the_http_library_carry_no_email_or_secret(caplog):
    # urllib3 logs every request line at DEBUG, query string included.
    with ScriptedServer([(500, {}, b"boom"), (200, {}, b"{}")]) as srv, caplog.at_level(logging.DEBUG), \
            caplog.at_level(logging.DEBUG, logger="urllib3"):
        c = client(headers={"Authorization": "Bearer tok-123456"}, max_retries=2)
        c.request("GET", srv.url, params={"filter": 'any(email,["jane.doe@example.com"])', "phone": "+14155550109"})
    lines = [r.getMessage() for r in caplog.records]
    assert any("urllib3" in r.name for r in caplog.records)  # the library did log the request
    text = "\n".join(lines)
    assert "jane.doe@example.com" not in text and "4155550109" not in text and "tok-123456" not in text


def test_split_batch_leaves_no_reference_cycle():
    """A batch's records are freed by reference counting once split_batch_retry returns
    (a self-referencing closure kept every batch alive until the cyclic GC ran, which the
    engine pauses while it sends)."""
    import gc
    import weakref

    class Payload:
        pass

    for refuse in (False, True):
        payload = Payload()
        alive = weakref.ref(payload)
        records = [Record(f"k{i}", {"payload": payload}) for i in range(4)]

        def send(part, refuse=refuse):
            if refuse and len(part) > 1:
                raise BatchRefused("400", status=400)
            return [RecordResult(r.key, ResultStatus.OK) for r in part]

        was = gc.isenabled()
        gc.disable()
        try:
            assert len(split_batch_retry(records, send)) == 4
            del records, payload, send
            assert alive() is None, "the records outlived the call (a reference cycle)"
        finally:
            if was:
                gc.enable()
