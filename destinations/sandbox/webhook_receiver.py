"""A webhook receiver for outflow's webhook destination: real HTTP on 127.0.0.1.

Verifies `X-Outflow-Signature: v1=<hex hmac_sha256(secret, f"{ts}.{body}")>` and a
±300 s `X-Outflow-Timestamp` window, enforces a max batch size, applies each record's
operation to an inspectable in-memory state and answers one result per record.
Nothing about refused requests is stored except counters.

Fault knobs: error_share (share of records answered 'retryable', not applied),
latency_s, drop_connection_share (socket closed without an answer; half of these
after the batch was applied, as when an acknowledgement is lost), throttle_rps
(429 + Retry-After above that request rate).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SIGNATURE_WINDOW_S = 300
OPERATIONS = {"upsert", "update", "insert", "delete", "add_member", "remove_member"}
_EMAIL_OK = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header value for a body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


@dataclass
class ReceiverState:
    """records[target][key] = {"id": str, "fields": {...}}; members[target] = {keys}."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    members: dict[str, set[str]] = field(default_factory=dict)
    creations: int = 0  # records created (an insert repeated by idempotency key is not one)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class WebhookReceiver:
    def __init__(
        self,
        secret: str,
        *,
        max_batch_size: int = 500,
        error_share: float = 0.0,
        latency_s: float = 0.0,
        drop_connection_share: float = 0.0,
        throttle_rps: float | None = None,
        seed: int = 0,
        path: str = "/outflow",
        port: int = 0,  # 0 = any free port (tests); `outflow sandbox serve` uses a fixed one
    ):
        for name, share in (("error_share", error_share), ("drop_connection_share", drop_connection_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {share}")
        if throttle_rps is not None and throttle_rps <= 0:
            raise ValueError(f"throttle_rps must be > 0 or None, got {throttle_rps}")
        self.secret = secret
        self.max_batch_size = max_batch_size
        self.error_share = error_share
        self.latency_s = latency_s
        self.drop_connection_share = drop_connection_share
        self.throttle_rps = throttle_rps
        self.path = path
        self.port = port
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._state = ReceiverState()
        self._idem: dict[tuple[str, str], tuple[str, str]] = {}  # (target, idem key) -> (key, id)
        self._next_id = 0
        self.requests_seen = 0
        self.accepted_requests = 0
        self.refused: Counter[str] = Counter()
        # Throttle: token bucket, burst = one second's worth.
        self._bucket = float(max(1.0, throttle_rps or 1.0))
        self._bucket_at = time.monotonic()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    # ---- lifecycle

    def start(self) -> str:
        if self._server is not None:
            return self.url  # type: ignore[return-value]
        receiver = self

        class Handler(_Handler):
            pass

        Handler.receiver = receiver
        self._server = _Server(("127.0.0.1", self.port), Handler)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}{self.path}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)  # type: ignore[union-attr]
            self._server = None
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- inspection

    @property
    def state(self) -> ReceiverState:
        """A snapshot copy (safe to read while requests arrive)."""
        with self._lock:
            return copy.deepcopy(self._state)

    # ---- decisions (called by the handler)

    def _roll(self, share: float) -> bool:
        if share <= 0:
            return False
        with self._lock:
            return self._rng.random() < share

    def _throttle_wait(self) -> float:
        """0 when a request may pass, else seconds until it could."""
        if self.throttle_rps is None:
            return 0.0
        with self._lock:
            now = time.monotonic()
            cap = max(1.0, self.throttle_rps)
            self._bucket = min(cap, self._bucket + (now - self._bucket_at) * self.throttle_rps)
            self._bucket_at = now
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return 0.0
            return (1.0 - self._bucket) / self.throttle_rps

    def _verify(self, headers: Any, body: bytes) -> str | None:
        """None when signed correctly and fresh, else the refusal code."""
        ts = headers.get("X-Outflow-Timestamp")
        sig = headers.get("X-Outflow-Signature")
        if not ts or not sig:
            return "missing_signature"
        try:
            ts_int = int(ts)
        except ValueError:
            return "bad_timestamp"
        if abs(time.time() - ts_int) > SIGNATURE_WINDOW_S:
            return "stale_timestamp"
        expected = sign(self.secret, ts_int, body)
        offered = [s.strip() for s in sig.split(",")]
        if not any(hmac.compare_digest(expected, s) for s in offered):
            return "bad_signature"
        return None

    def _apply(self, payload: dict[str, Any]) -> list[dict[str, Any]]:
        target, op = payload["target"], payload["operation"]
        results = []
        with self._lock:
            records = self._state.records.setdefault(target, {})
            members = self._state.members.setdefault(target, set())
            for rec in payload["records"]:
                key = rec["key"]
                fields = rec.get("fields") or {}
                if self.error_share > 0 and self._rng.random() < self.error_share:
                    results.append(_result(key, "retryable", error="temporary_error"))
                    continue
                email = fields.get("email")
                if "email" in fields and email is not None and not (
                    isinstance(email, str) and _EMAIL_OK.match(email)
                ):
                    results.append(_result(key, "rejected", error="invalid_email"))
                    continue
                idem = rec.get("idempotency_key")
                if op == "upsert":
                    existing = records.get(key)
                    if existing is None:
                        existing = records[key] = {"id": self._new_id(), "fields": {}}
                    existing["fields"].update(fields)
                    results.append(_result(key, "ok", existing["id"]))
                elif op == "update":
                    existing = records.get(key)
                    if existing is None:
                        results.append(_result(key, "rejected", error="not_found"))
                        continue
                    existing["fields"].update(fields)
                    results.append(_result(key, "ok", existing["id"]))
                elif op == "insert":
                    existing = records.get(key)
                    seen = self._idem.get((target, idem)) if idem else None
                    if existing is not None:
                        if seen is not None and seen[0] == key:
                            results.append(_result(key, "ok", seen[1]))  # a repeat: same answer
                        else:
                            results.append(_result(key, "rejected", error="duplicate"))
                        continue
                    rid = self._new_id()
                    records[key] = {"id": rid, "fields": dict(fields)}
                    if idem:
                        self._idem[(target, idem)] = (key, rid)
                    results.append(_result(key, "ok", rid))
                elif op == "delete":
                    gone = records.pop(key, None)  # deleting what is gone is done
                    results.append(_result(key, "ok", gone["id"] if gone else rec.get("destination_id")))
                elif op == "add_member":
                    members.add(key)
                    results.append(_result(key, "ok", key))
                else:  # remove_member
                    members.discard(key)
                    results.append(_result(key, "ok", key))
        return results

    def _new_id(self) -> str:
        # Called only when a record is created (under the lock).
        self._next_id += 1
        self._state.creations += 1
        return f"wh-{self._next_id:08d}"

    def _count_refused(self, code: str) -> None:
        with self._lock:
            self.refused[code] += 1


def _result(key: str, status: str, rid: str | None = None, error: str | None = None) -> dict[str, Any]:
    return {"key": key, "status": status, "id": rid, "error": error}


def _validate(payload: Any) -> str | None:
    """None when the body has the wire shape, else what is wrong (no values echoed)."""
    if not isinstance(payload, dict):
        return "body must be a JSON object"
    for name in ("sync", "target", "operation"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            return f"'{name}' must be a non-empty string"
    if payload["operation"] not in OPERATIONS:
        return f"'operation' must be one of {sorted(OPERATIONS)}"
    recs = payload.get("records")
    if not isinstance(recs, list):
        return "'records' must be a list"
    keys = set()
    for i, rec in enumerate(recs):
        if not isinstance(rec, dict) or not isinstance(rec.get("key"), str):
            return f"records[{i}] must be an object with a string 'key'"
        if rec["key"] in keys:
            return f"records[{i}]: key repeated in the batch"
        keys.add(rec["key"])
        if not isinstance(rec.get("fields", {}), dict | type(None)):
            return f"records[{i}].fields must be an object"
    return None


class _Handler(BaseHTTPRequestHandler):
    receiver: WebhookReceiver
    protocol_version = "HTTP/1.1"  # keep-alive, as real webhook endpoints do

    def log_message(self, format: str, *args: Any) -> None:  # never print request lines
        return

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        self.receiver._count_refused(code)
        self._send(status, {"error": {"code": code, "message": message}}, headers)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_POST(self) -> None:  # noqa: N802
        rc = self.receiver
        with rc._lock:
            rc.requests_seen += 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.split("?", 1)[0] != rc.path:
            self._refuse(404, "not_found", f"POST to {rc.path}")
            return
        wait = rc._throttle_wait()
        if wait > 0:
            retry_after = str(max(1, math.ceil(wait)))
            self._refuse(429, "throttled", "too many requests", {"Retry-After": retry_after})
            return
        refusal = rc._verify(self.headers, body)
        if refusal is not None:
            self._refuse(401, refusal, "signature or timestamp refused")
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._refuse(400, "bad_json", "body is not JSON")
            return
        problem = _validate(payload)
        if problem is not None:
            self._refuse(400, "bad_request", problem)
            return
        if len(payload["records"]) > rc.max_batch_size:
            self._refuse(413, "batch_too_large", f"at most {rc.max_batch_size} records per request")
            return
        if rc.latency_s > 0:
            time.sleep(rc.latency_s)
        drop = rc._roll(rc.drop_connection_share)
        if drop and rc._roll(0.5):
            rc._count_refused("dropped_before_apply")
            self._drop()
            return
        results = rc._apply(payload)
        if drop:
            rc._count_refused("dropped_after_apply")
            self._drop()
            return
        with rc._lock:
            rc.accepted_requests += 1
        self._send(200, {"results": results})
