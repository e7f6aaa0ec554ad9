"""The base of every tool sandbox: real HTTP on 127.0.0.1, routing, auth, faults.

A sandbox subclasses `SandboxServer`, declares its routes with `@route(METHOD, regex)`
and answers `Response`s; the base handles the socket, JSON, the fault knobs
(error_share is the subclass's to apply per record, latency, dropped connections) and
throttling, which each tool signals its own way (`throttled()`).

    class HubSpotSandbox(SandboxServer):
        def authenticate(self, request): ...          # a Response to refuse, or None
        def throttled(self, retry_after): ...          # the tool's throttling answer

        @route("POST", r"/crm/v3/objects/contacts/batch/upsert")
        def upsert(self, request): return Response(200, {...})
"""

from __future__ import annotations

import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from destinations.loopback import ThreadedServer


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups of the route regex
    # When its headers arrived (time.monotonic): the rate limit counts a request on arrival, as
    # an API gateway does, not after its body was read (a 1 MB body takes a varying while).
    arrived_at: float | None = None

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


def _truncated(response: Response) -> Response:
    data = response.body if isinstance(response.body, bytes) else json.dumps(response.body).encode()
    return Response(200, data[: max(1, len(data) // 2)])


# Garbage a tool might answer instead of its API's shape (the `garbage_share` knob).
GARBAGE: dict[str, Callable[[Response], Response]] = {
    "non_json": lambda r: Response(200, b"OK", {"Content-Type": "text/plain"}),
    "truncated": _truncated,
    "wrong_shape": lambda r: Response(200, {"unexpected": [1, 2, 3], "results": "none"}),
    "empty": lambda r: Response(200, b""),
    "html_error": lambda r: Response(
        502, b"<html><body><h1>502 Bad Gateway</h1><p>upstream error</p></body></html>",
        {"Content-Type": "text/html"}),
    "html_200": lambda r: Response(
        200, b"<!DOCTYPE html><html><body>Service temporarily unavailable</body></html>",
        {"Content-Type": "text/html"}),
}


def route(method: str, pattern: str) -> Callable:
    """Mark a SandboxServer method as the handler of METHOD on paths matching `pattern`."""

    def mark(fn: Callable) -> Callable:
        fn._route = (method.upper(), re.compile(pattern + r"$"))
        return fn

    return mark


class SandboxServer(ThreadedServer):
    def __init__(
        self,
        *,
        port: int = 0,
        error_share: float = 0.0,
        latency_s: float = 0.0,
        drop_connection_share: float = 0.0,
        throttle_rps: float | None = None,
        seed: int = 0,
    ):
        for name, share in (("error_share", error_share), ("drop_connection_share", drop_connection_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {share}")
        if throttle_rps is not None and throttle_rps <= 0:
            raise ValueError(f"throttle_rps must be > 0 or None, got {throttle_rps}")
        self.port = port
        self.error_share = error_share
        self.latency_s = latency_s
        self.drop_connection_share = drop_connection_share
        self.throttle_rps = throttle_rps
        # Garbage answers (set on a running sandbox): after the handler ran, this share of
        # answers is replaced by one of `garbage_kinds` (GARBAGE), as a broken proxy or a
        # tool's bad day would send. What the handler did stays done.
        self.garbage_share = 0.0
        self.garbage_kinds: tuple[str, ...] = tuple(GARBAGE)
        self.lock = threading.RLock()  # subclasses guard their state with it
        self.requests_seen = 0
        self.refused: Counter[str] = Counter()  # refused requests by reason; nothing else is kept
        self._rng = random.Random(seed)
        self._bucket = float(max(1.0, throttle_rps or 1.0))
        self._bucket_at = time.monotonic()
        # Looked up on the class, so no property of a subclass runs before its __init__ is done.
        self._routes = [
            (fn._route[0], fn._route[1], getattr(self, n))
            for n, fn in ((n, getattr(type(self), n)) for n in dir(type(self)) if not n.startswith("__"))
            if callable(fn) and hasattr(fn, "_route")
        ]

    # ---- what a tool sandbox overrides

    def authenticate(self, request: Request) -> Response | None:
        """A Response refusing the request (401/403 in the tool's shape), or None."""
        return None

    def throttled(self, retry_after: int) -> Response:
        """The tool's own throttling answer."""
        return Response(429, {"error": "rate limited"}, {"Retry-After": str(retry_after)})

    def not_found(self, request: Request) -> Response:
        """The tool's answer to a method and path no route takes."""
        return Response(404, {"error": f"no route for {request.method} {request.path}"})

    def faults_before_handler(self, request: Request) -> bool:
        """Sleep latency_s; True drops the connection before the handler runs. A tool whose
        faults fall after checks on the body (the webhook receiver) applies them in its handler."""
        if self.latency_s:
            time.sleep(self.latency_s)
        return self.roll(self.drop_connection_share)

    # ---- helpers for subclasses

    def roll(self, share: float) -> bool:
        """True with probability `share` (seeded, so a run can be replayed)."""
        with self.lock:
            return share > 0 and self._rng.random() < share

    def refuse(self, reason: str, response: Response) -> Response:
        with self.lock:
            self.refused[reason] += 1
        return response

    # ---- lifecycle

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        sandbox = self

        class Handler(_Handler):
            server_app = sandbox

        return Handler

    # ---- dispatch (called by the handler thread)

    def _throttle_wait(self, arrived_at: float | None = None) -> float:
        if self.throttle_rps is None:
            return 0.0
        with self.lock:
            # Requests are checked in the order their bodies finish; one that arrived earlier
            # than the last one checked refills nothing.
            now = max(self._bucket_at, arrived_at if arrived_at is not None else time.monotonic())
            # Room for one early arrival: a bucket of exactly one token would refuse a client
            # pacing itself at the limit whenever network jitter brings a request in early.
            cap = max(2.0, self.throttle_rps)
            self._bucket = min(cap, self._bucket + (now - self._bucket_at) * self.throttle_rps)
            self._bucket_at = now
            if self._bucket >= 1.0:
                self._bucket -= 1.0
                return 0.0
            return (1.0 - self._bucket) / self.throttle_rps

    def dispatch(self, request: Request) -> Response | None:
        """The answer to a request, or None to drop the connection without one."""
        with self.lock:
            self.requests_seen += 1
        for method, pattern, fn in self._routes:
            match = pattern.match(request.path)
            if match and method == request.method:
                break
        else:
            return self.refuse("not_found", self.not_found(request))
        wait = self._throttle_wait(request.arrived_at)
        if wait > 0:
            return self.refuse("throttled", self.throttled(max(1, math.ceil(wait))))
        refusal = self.authenticate(request)
        if refusal is not None:
            return self.refuse("unauthorized", refusal)
        if self.faults_before_handler(request):
            return None
        request.params = match.groupdict()
        try:
            response = fn(request)  # None from the handler drops the connection too
        except (ValueError, KeyError, TypeError) as exc:  # a malformed body: the tool's 400
            return self.refuse("bad_request", Response(400, {"error": "bad request", "detail": type(exc).__name__}))
        if response is not None and self.roll(self.garbage_share):
            with self.lock:
                kind = self._rng.choice(self.garbage_kinds)
            return GARBAGE[kind](response)
        return response


class _Handler(BaseHTTPRequestHandler):
    server_app: SandboxServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # request lines may hold PII
        return

    def _handle(self) -> None:
        arrived_at = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, parse_qs(parts.query),
                          {k.lower(): v for k, v in self.headers.items()}, body, arrived_at=arrived_at)
        response = self.server_app.dispatch(request)
        if response is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        data = response.body if isinstance(response.body, bytes) else (
            b"" if response.body is None else json.dumps(response.body, separators=(",", ":")).encode())
        self.send_response(response.status)
        self.send_header("Content-Type", response.headers.pop("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(data)))
        for k, v in response.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815
