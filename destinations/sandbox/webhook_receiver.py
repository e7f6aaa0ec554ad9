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
import re
import time
from dataclasses import dataclass, field
from typing import Any

from destinations.sandbox.server import Request, Response, SandboxServer, route

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


class WebhookReceiver(SandboxServer):
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
        super().__init__(port=port, error_share=error_share, latency_s=latency_s,
                         drop_connection_share=drop_connection_share, throttle_rps=throttle_rps, seed=seed)
        self.secret = secret
        self.max_batch_size = max_batch_size
        self.path = path
        # The path is per instance: point the one @route at it (literally, not as a regex).
        self._routes = [(method, re.compile(re.escape(path) + "$"), fn) for method, _, fn in self._routes]
        self._state = ReceiverState()
        self._idem: dict[tuple[str, str], tuple[str, str]] = {}  # (target, idem key) -> (key, id)
        self._next_id = 0
        self.accepted_requests = 0

    def start(self) -> str:
        """The full URL to post to, path included."""
        running = self._server is not None
        root = super().start()
        if not running:
            self.url = root + self.path
        return self.url  # type: ignore[return-value]

    # ---- inspection

    @property
    def state(self) -> ReceiverState:
        """A snapshot copy (safe to read while requests arrive)."""
        with self.lock:
            return copy.deepcopy(self._state)

    # ---- the receiver's answers in its own error shape

    def authenticate(self, request: Request) -> Response | None:
        code = self._verify(request.headers, request.body)
        return None if code is None else _error(401, code, "signature or timestamp refused")

    def throttled(self, retry_after: int) -> Response:
        return _error(429, "throttled", "too many requests", {"Retry-After": str(retry_after)})

    def not_found(self, request: Request) -> Response:
        return _error(404, "not_found", f"POST to {self.path}")

    def refuse(self, reason: str, response: Response) -> Response:
        """Refusals are counted by the error code answered (bad_signature, throttled ...)."""
        err = response.body.get("error") if isinstance(response.body, dict) else None
        return super().refuse(err["code"] if isinstance(err, dict) else reason, response)

    def faults_before_handler(self, request: Request) -> bool:
        return False  # latency and drops come after the body checks, in receive()

    # ---- the one route

    @route("POST", "/outflow")  # re-pointed at `path` in __init__
    def receive(self, request: Request) -> Response | None:
        """200 with one result per record; None drops the connection."""
        try:
            payload = json.loads(request.body)
        except ValueError:
            return self.refuse("bad_json", _error(400, "bad_json", "body is not JSON"))
        problem = _validate(payload)
        if problem is not None:
            return self.refuse("bad_request", _error(400, "bad_request", problem))
        if len(payload["records"]) > self.max_batch_size:
            return self.refuse("batch_too_large", _error(
                413, "batch_too_large", f"at most {self.max_batch_size} records per request"))
        if self.latency_s > 0:
            time.sleep(self.latency_s)
        # Half of the drops fall after the batch was applied, as when an acknowledgement is lost.
        drop = self.roll(self.drop_connection_share)
        if drop and self.roll(0.5):
            return self._dropped("dropped_before_apply")
        results = self._apply(payload)
        if drop:
            return self._dropped("dropped_after_apply")
        with self.lock:
            self.accepted_requests += 1
        return Response(200, {"results": results})

    def _dropped(self, reason: str) -> None:
        with self.lock:
            self.refused[reason] += 1

    def _verify(self, headers: dict[str, str], body: bytes) -> str | None:
        """None when signed correctly and fresh, else the refusal code."""
        ts = headers.get("x-outflow-timestamp")
        sig = headers.get("x-outflow-signature")
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
        with self.lock:
            records = self._state.records.setdefault(target, {})
            members = self._state.members.setdefault(target, set())
            for rec in payload["records"]:
                key = rec["key"]
                fields = rec.get("fields") or {}
                if self.roll(self.error_share):
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


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(status, {"error": {"code": code, "message": message}}, headers or {})
