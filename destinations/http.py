"""The one HTTP client every destination uses.

One place for: timeouts, retries with capped exponential backoff and full jitter,
Retry-After, a token-bucket rate limiter shared by all threads of a destination, a
hook for a tool's own throttling signal, split-batch retry, and redaction of secrets
and PII in everything raised or logged.

Retry contract of `HttpClient.request`:
- 2xx/3xx and non-throttling 4xx responses are returned to the caller (it maps them).
- Connection errors, timeouts, 429, 5xx and responses the tool's `is_throttled` hook
  flags are retried; when retries run out (or may not be made) a
  DestinationError(retryable=True) is raised.
- A call that is not idempotent (POST/PATCH without `idempotent=True` or an
  Idempotency-Key header) is retried only when the server cannot have processed it:
  the connection was never made, or the server said it throttled the request.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import requests
import urllib3.exceptions
from pydantic import SecretStr
from requests.adapters import HTTPAdapter

from destinations.base import DestinationError, Record, RecordResult, ResultStatus

log = logging.getLogger("outflow.http")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# --------------------------------------------------------------------------- redaction

# '@' or its percent-encoding (an email in a URL path)
_EMAIL_RE = re.compile(r"[\w.%+'-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
# 9 to 15 digits, optionally with +, spaces, dots, dashes or brackets between them,
# not glued to a word (so "p-000123" style keys and 3-digit status codes survive).
_PHONE_RE = re.compile(r"(?<![\w-])\+?\(?\d(?:[\s().-]{0,2}\d){8,14}(?!\w)")
_AUTH_RE = re.compile(r"(?i)(authorization|x-outflow-signature|api[-_]?key|access_token|token)(['\"]?\s*[:=]\s*['\"]?)([^\s'\",&}]+)")
_QUERY_RE = re.compile(r"(https?://[^\s?'\"]+)\?[^\s'\"]*")
# A request line's query string, as urllib3 logs it: "GET /path?query HTTP/1.1"
_REQUEST_LINE_QUERY_RE = re.compile(r"(\b[A-Z]{3,7} /[^\s?'\"]*)\?[^\s'\"]*")


def redact(text: object, secrets: Iterable[str | SecretStr] = ()) -> str:
    """Text safe for logs and errors: secrets, credentials, URL query strings, emails
    and phone-like numbers replaced by placeholders."""
    out = str(text)
    for secret in secrets:
        if isinstance(secret, SecretStr):
            secret = secret.get_secret_value()
        if secret and len(secret) >= 4:
            out = out.replace(secret, "[secret]")
    out = _QUERY_RE.sub(r"\1?[query]", out)
    out = _REQUEST_LINE_QUERY_RE.sub(r"\1?[query]", out)
    out = _AUTH_RE.sub(r"\1\2[secret]", out)
    out = _EMAIL_RE.sub("[email]", out)
    out = _PHONE_RE.sub("[phone]", out)
    return out


class RedactingFilter(logging.Filter):
    """Redacts a library's log records before any handler sees them. urllib3 logs each
    request line at DEBUG, query string included (e.g. Klaviyo's
    `?filter=any(email,[...])`): that must not put an email in a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True


for _name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(RedactingFilter())


# --------------------------------------------------------------------------- rate limit


class RateLimiter:
    """Token bucket shared by every thread of one destination.

    `acquire()` reserves a token and sleeps outside the lock until it is due, so N
    threads together never exceed `rate` per second (plus the initial `burst`).
    `pause(seconds)` makes every thread wait, e.g. after a Retry-After.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if rate <= 0:
            raise ValueError(f"rate must be > 0 requests per second, got {rate}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock()
        self._paused_until = 0.0
        self._epoch = 0

    def acquire(self) -> float:
        """Take one token, waiting as long as needed. Returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                epoch = self._epoch
                if now < self._paused_until:
                    wait, reserved = self._paused_until - now, False
                else:
                    elapsed = max(0.0, now - self._last)
                    self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
                    self._last = max(self._last, now)
                    self._tokens -= 1.0  # reserve; a negative balance is a queue of waiters
                    wait, reserved = max(0.0, -self._tokens / self.rate), True
            if wait > 0:
                self._sleep(wait)
                waited += wait
            if reserved:
                with self._lock:
                    if self._epoch == epoch:
                        return waited
                # A pause began while we slept: our reservation was cancelled; queue again.

    def pause(self, seconds: float) -> None:
        """Hold every caller for `seconds` from now (the server asked us to back off).
        Reservations made before are cancelled, and no tokens accrue during the pause,
        so callers resume at the steady rate instead of in a burst."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            if until > self._paused_until:
                self._paused_until = until
                self._epoch += 1
                self._tokens = 0.0
                self._last = until


# --------------------------------------------------------------------------- client


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _never_sent(exc: BaseException) -> bool:
    """True when the request cannot have reached the server (no connection made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        cur = stack.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return True
        stack.extend([cur.__cause__, cur.__context__, getattr(cur, "reason", None)])
        stack.extend(a for a in getattr(cur, "args", ()) if isinstance(a, BaseException))
    return False


ThrottleHook = Callable[[requests.Response], "bool | float | None"]


class HttpClient:
    """requests.Session with timeouts, retries, rate limiting and redaction.

    is_throttled(response) -> bool | float | None: the tool's own throttling signal
    (e.g. Meta's error codes in a 400). A float is a suggested wait in seconds.
    """

    def __init__(
        self,
        *,
        name: str = "http",
        headers: Mapping[str, str] | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 60.0,
        rate_limiter: RateLimiter | None = None,
        is_throttled: ThrottleHook | None = None,
        secrets: Iterable[str] = (),
        pool_size: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.name = name
        self.timeout = (connect_timeout, read_timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self.rate_limiter = rate_limiter
        self.is_throttled = is_throttled
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(headers or {})
        # SecretStr: a repr of the client (or a debugger's view of it) never shows them.
        self._secrets = {SecretStr(s) for s in secrets if s}
        for key, value in (headers or {}).items():
            if key.lower() in {"authorization", "x-api-key", "api-key"}:
                self._secrets.update(SecretStr(v) for v in (value, *value.split(" ")[1:]))
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "throttled": 0, "connection_errors": 0}

    # ---- helpers

    def add_secret(self, secret: str) -> None:
        if secret:
            self._secrets.add(SecretStr(secret))

    def redact(self, text: object) -> str:
        return redact(text, self._secrets)

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform(0, min(cap, base * 2**attempt))."""
        ceiling = min(self.backoff_cap, self.backoff_base * (2**attempt))
        with self._rng_lock:
            return self._rng.uniform(0.0, ceiling)

    def _throttle_signal(self, resp: requests.Response) -> tuple[bool, float | None]:
        """(throttled?, wait hint in seconds)."""
        hint = parse_retry_after(resp.headers.get("Retry-After"))
        # The tool's hook is asked on every answer, 429 included: some tools put the
        # wait in the body (Google's retryDelay) or in their own headers, not Retry-After.
        verdict = self.is_throttled(resp) if self.is_throttled is not None else None
        if isinstance(verdict, int | float) and not isinstance(verdict, bool):
            return True, float(verdict) if hint is None else hint
        if verdict is True or resp.status_code == 429:
            return True, hint
        return False, None

    def _describe(self, method: str, url: str) -> str:
        return self.redact(f"{self.name}: {method} {url.split('?', 1)[0]}")

    # ---- the call

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        headers_fn: Callable[[bytes], Mapping[str, str]] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        """Send with retries. `headers_fn(body)` is called before every attempt (fresh
        signature timestamps). Returns the response unless it is retryable, in which
        case it raises DestinationError(retryable=True) once retries are exhausted."""
        method = method.upper()
        hdrs = dict(headers or {})
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":"), default=str).encode()
            hdrs.setdefault("Content-Type", "application/json")
        body = body if body is not None else b""
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS or any(
                k.lower() == "idempotency-key" for k in hdrs
            )
        what = self._describe(method, url)
        attempt = 0
        while True:
            if self.rate_limiter is not None:
                self.rate_limiter.acquire()
            send_headers = dict(hdrs)
            if headers_fn is not None:
                send_headers.update(headers_fn(body))
            self._count("requests")
            wait: float | None = None
            try:
                resp = self.session.request(
                    method, url, data=body or None, headers=send_headers,
                    params=params, timeout=timeout or self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                self._count("connection_errors")
                why = f"{type(exc).__name__}: {self.redact(exc)}"
                may_retry = idempotent or _never_sent(exc)
                if not may_retry:
                    raise DestinationError(
                        f"{what} failed ({why}); not retried: the call is not idempotent",
                        retryable=True,
                    ) from None
            else:
                throttled, hint = self._throttle_signal(resp)
                if not throttled and resp.status_code < 500:
                    return resp
                resp.close()
                why = f"HTTP {resp.status_code}" + (" (throttled)" if throttled else "")
                if throttled:
                    self._count("throttled")
                    if hint is not None:
                        wait = min(hint, self.retry_after_cap)
                        if self.rate_limiter is not None:
                            self.rate_limiter.pause(wait)
                elif not idempotent:
                    raise DestinationError(
                        f"{what} failed ({why}); not retried: the call is not idempotent",
                        retryable=True,
                    )
            if attempt >= self.max_retries:
                raise DestinationError(
                    f"{what} failed after {attempt + 1} attempts ({why})", retryable=True
                )
            if wait is None:
                wait = self.backoff(attempt)
            attempt += 1
            self._count("retries")
            # Throttling is expected traffic shaping; anything else is worth a warning.
            level = logging.INFO if "throttled" in why else logging.WARNING
            log.log(level, "%s: %s, retry %d/%d in %.2fs", what, why, attempt, self.max_retries, wait)
            if wait > 0:
                self._sleep(wait)

    def close(self) -> None:
        self.session.close()


def make_client(
    name: str,
    *,
    requests_per_second: float | None,
    burst: int = 1,
    max_concurrency: int = 1,
    **options: Any,
) -> HttpClient:
    """One destination's HttpClient: a token bucket shared by its threads when a rate is
    set (None = unlimited) and a connection pool big enough for every worker thread.
    `options` go to HttpClient unchanged (headers, timeouts, retries, is_throttled, secrets)."""
    limiter = RateLimiter(requests_per_second, burst) if requests_per_second else None
    return HttpClient(name=name, rate_limiter=limiter, pool_size=max(10, max_concurrency), **options)


# --------------------------------------------------------------------------- split batch


class BatchRefused(DestinationError):
    """The tool refused a whole batch for a reason that may lie in some of its records
    (a non-throttling 4xx such as 400 or 413). split_batch_retry bisects on it."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message, retryable=False)
        self.status = status
        self.reason = reason or (f"http_{status}" if status else "refused")


def split_batch_retry(
    records: Sequence[Record],
    send: Callable[[Sequence[Record]], list[RecordResult]],
    *,
    redactor: Callable[[object], str] = redact,
) -> list[RecordResult]:
    """send(records); when the whole batch is refused (BatchRefused), bisect until the
    refused records are isolated: only those are REJECTED, the rest get their real
    answers. Other errors propagate from the first call; once a batch has been split,
    an error in one part marks only that part RETRYABLE (the other parts were written)."""

    if not records:
        return []
    return _attempt(records, send, redactor, split=False)


def _attempt(part: Sequence[Record], send: Callable[[Sequence[Record]], list[RecordResult]],
             redactor: Callable[[object], str], *, split: bool) -> list[RecordResult]:
    # A module function, not a closure calling itself: that closure would be a reference
    # cycle holding every record of the batch until the cyclic GC ran (docs/performance.md).
    try:
        return send(part)
    except BatchRefused as exc:
        if len(part) == 1:
            return [RecordResult(part[0].key, ResultStatus.REJECTED, error=redactor(f"{exc.reason}: {exc}"))]
        mid = len(part) // 2
        return (_attempt(part[:mid], send, redactor, split=True)
                + _attempt(part[mid:], send, redactor, split=True))
    except DestinationError as exc:
        if not split:
            raise
        # Not the records' fault (throttling, auth, outage): try them again later.
        return [RecordResult(r.key, ResultStatus.RETRYABLE, error=redactor(str(exc))) for r in part]
