"""`outflow webhooks serve`: the HTTP receiver (stdlib ThreadingHTTPServer).

Routes: POST /webhooks/klaviyo, POST /webhooks/sendgrid, GET|POST
/webhooks/mailchimp/<token>, GET /healthz (counters only). Checks, in order: route
(404), method (405), Content-Length (411 missing, 400 bad, 413 over the limit, checked
before reading), the tool's signature or token (401 unsigned / stale, 403 bad),
the body (415, 400). Accepted events are fsynced to the spool before the 200; a spool
that cannot be written answers 503 so the tool retries. A refused request leaves
nothing behind but a counter (tool, reason): no body, no email, no request line.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from destinations.loopback import ThreadedServer
from orchestration.webhooks.config import TOOLS, ConfigError, WebhooksConfig, env_secret
from orchestration.webhooks.events import ConsentEvent, Refused
from orchestration.webhooks.spool import Spool

log = logging.getLogger("outflow.webhooks")
READ_TIMEOUT_S = 10  # a client that stalls mid-body is cut off (slowloris)
# Headers that must appear once: the length and every signature/timestamp header.
_SINGLE_HEADERS = ("content-length", "transfer-encoding", "content-type", "klaviyo-", "x-twilio-")


class ToolWebhook(Protocol):
    name: str
    methods: tuple[str, ...]

    def verify(self, token: str | None, headers: dict[str, str], body: bytes, now: float) -> None: ...

    def parse(self, headers: dict[str, str], body: bytes, now: float) -> tuple[list[ConsentEvent], int]: ...


def build_tools(config: WebhooksConfig, where: Path, env: Mapping[str, str],
                only: list[str] | None = None) -> dict[str, ToolWebhook]:
    """One verifier per configured tool; an unset variable is an error naming it."""
    from orchestration.webhooks.klaviyo import KlaviyoWebhook
    from orchestration.webhooks.mailchimp import MailchimpWebhook
    from orchestration.webhooks.sendgrid import SendGridWebhook

    names = only or list(config.tools)
    tools: dict[str, ToolWebhook] = {}
    for name in names:
        if name not in config.tools:
            raise ConfigError(f"{where}: tool {name!r} is not configured under 'tools' (known: {', '.join(TOOLS)})")
        settings = config.tools[name]
        if name == "sendgrid":
            value = env_secret(env, name, "public_key_env", settings.public_key_env, where)
            try:
                tools[name] = SendGridWebhook(value, settings.max_age_seconds)
            except ValueError as exc:
                raise ConfigError(f"{where}: tools.sendgrid.public_key_env: {settings.public_key_env} {exc}") from None
        else:
            value = env_secret(env, name, "secret_env", settings.secret_env, where)
            cls = MailchimpWebhook if name == "mailchimp" else KlaviyoWebhook
            tools[name] = cls(value, settings.max_age_seconds)
    if not tools:
        raise ConfigError(f"{where}: no tools configured under 'tools'")
    return tools


class WebhookReceiver(ThreadedServer):
    poll_interval = 0.1

    def __init__(self, tools: Mapping[str, ToolWebhook], spool: Spool, *, max_body_bytes: int = 1_000_000,
                 host: str = "127.0.0.1", port: int = 0, clock: Callable[[], float] = time.time):
        self.tools = dict(tools)
        self.spool = spool
        self.max_body_bytes = max_body_bytes
        self.host, self.port = host, port
        self.clock = clock
        self.lock = threading.Lock()
        self.refused: Counter[tuple[str, str]] = Counter()  # (tool, reason) -> requests
        self.accepted: Counter[str] = Counter()  # tool -> events spooled
        self.ignored: Counter[str] = Counter()  # tool -> events that revoke nothing (opens, profile...)

    # ---- lifecycle

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(_Handler):
            app = receiver

        return Handler

    def counters(self) -> dict[str, Any]:
        with self.lock:
            return {
                "accepted": dict(self.accepted),
                "ignored": dict(self.ignored),
                "refused": {f"{tool}/{reason}": n for (tool, reason), n in sorted(self.refused.items())},
            }

    # ---- one request

    def tool_named(self, path: str) -> str:
        """The tool a path is for (counters key refusals by it), or 'unknown'."""
        parts = [p for p in urlsplit(path).path.split("/") if p]
        return parts[1] if len(parts) >= 2 and parts[0] == "webhooks" and parts[1] in self.tools else "unknown"

    def route(self, method: str, path: str) -> tuple[ToolWebhook, str | None]:
        parts = [p for p in urlsplit(path).path.split("/") if p]
        if len(parts) < 2 or parts[0] != "webhooks" or parts[1] not in self.tools:
            raise Refused(404, "not_found", "no webhook here: POST to /webhooks/<tool>")
        tool = self.tools[parts[1]]
        token = parts[2] if len(parts) == 3 and tool.name == "mailchimp" else None
        if len(parts) > (3 if tool.name == "mailchimp" else 2):
            raise Refused(404, "not_found", "no webhook here: POST to /webhooks/<tool>")
        if method not in tool.methods:
            raise Refused(405, "method_not_allowed", f"{method} is not allowed here",
                          {"Allow": ", ".join(tool.methods)})
        return tool, token

    def body_length(self, headers: Mapping[str, str]) -> int:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise Refused(411, "length_required", "send a Content-Length (chunked bodies are not read)")
        raw = headers.get("content-length")
        if raw is None:
            raise Refused(411, "length_required", "Content-Length is required")
        if not raw.strip().isdigit():
            raise Refused(400, "malformed", "Content-Length is not a number")
        length = int(raw)
        if length > self.max_body_bytes:
            raise Refused(413, "too_large", f"the body is over {self.max_body_bytes} bytes")
        return length

    def accept(self, tool: ToolWebhook, token: str | None, headers: dict[str, str], body: bytes) -> dict[str, int]:
        now = self.clock()
        tool.verify(token, headers, body, now)
        events, ignored = tool.parse(headers, body, now)
        try:
            self.spool.append(events)
        except OSError:
            log.error("webhooks: spool %s not writable; %s answered 503", self.spool.folder, tool.name)
            raise Refused(503, "spool_unavailable", "try again later", {"Retry-After": "60"}) from None
        with self.lock:
            self.accepted[tool.name] += len(events)
            self.ignored[tool.name] += ignored
        log.info("webhooks: %s accepted %d event(s), ignored %d", tool.name, len(events), ignored)
        return {"accepted": len(events), "ignored": ignored}

    def count_refusal(self, tool: str, reason: str) -> None:
        with self.lock:
            self.refused[(tool, reason)] += 1
        log.info("webhooks: refused a %s request: %s", tool, reason)


class _Handler(BaseHTTPRequestHandler):
    app: WebhookReceiver
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_S
    server_version = "outflow-webhooks"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # request lines hold Mailchimp's token
        return

    def _answer(self, status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None,
                close: bool = False) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        app, method = self.app, self.command
        headers = {k.lower(): v for k, v in self.headers.items()}
        if method == "GET" and urlsplit(self.path).path == "/healthz":
            self._answer(200, {"status": "ok", **app.counters()})
            return
        tool_name = app.tool_named(self.path)
        body_read = method not in ("POST", "PUT", "PATCH")
        try:
            tool, token = app.route(method, self.path)
            if method == "GET":  # Mailchimp validates the URL with a GET
                tool.verify(token, headers, b"", app.clock())
                self._answer(200, {"status": "ok"})
                return
            names = [k.lower() for k in self.headers.keys()]
            repeated = sorted({n for n in names if names.count(n) > 1 and n.startswith(_SINGLE_HEADERS)})
            if repeated:  # two signatures or lengths: ambiguous, never guess which one counts
                raise Refused(400, "malformed", f"header {repeated[0]} is sent more than once")
            length = app.body_length(headers)
            body = self.rfile.read(length) if length else b""
            body_read = True
            if len(body) != length:
                raise Refused(400, "malformed", "the body is shorter than its Content-Length")
            self._answer(200, app.accept(tool, token, headers, body))
        except Refused as refusal:
            app.count_refusal(tool_name, refusal.reason)
            # An unread body would be taken for the next request: close instead.
            self._answer(refusal.status, {"error": refusal.reason, "detail": refusal.message}, refusal.headers,
                         close=not body_read)
        except TimeoutError:
            app.count_refusal(tool_name, "timeout")
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500 (the tool retries); log the type only, never the data
            app.count_refusal(tool_name, "internal_error")
            log.error("webhooks: %s request failed with %s", tool_name, type(exc).__name__)
            self._answer(500, {"error": "internal_error", "detail": "retry later"}, close=True)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815
