"""Webhook destination: POSTs signed JSON batches and maps the per-record answers.

Wire format (both sides agree; see destinations/sandbox/webhook_receiver.py):
  POST {url}
  X-Outflow-Timestamp: <unix seconds>
  X-Outflow-Signature: v1=<hex hmac_sha256(secret, f"{ts}.{body}")>
  {"sync", "target", "operation", "records": [{"key", "fields", "destination_id", "idempotency_key"}]}
  200 -> {"results": [{"key", "status": "ok"|"rejected"|"retryable", "id", "error"}]}
  401 signature refused; 413 batch too large; 429 throttled (Retry-After); 5xx server error.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from destinations.base import (
    Batch,
    Capabilities,
    DestinationError,
    Operation,
    Record,
    RecordResult,
    ResultStatus,
    check_results,
)
from destinations.http import BatchRefused, make_client, split_batch_retry
from destinations.registry import DestinationConfig, RegistryError, env_value

_STATUSES = {s.value: s for s in ResultStatus}


def signature_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    ts = int(time.time() if now is None else now)
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Outflow-Timestamp": str(ts), "X-Outflow-Signature": f"v1={mac}"}


class WebhookDestination:
    def __init__(
        self,
        url: str,
        secret: str,
        *,
        name: str = "webhook",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_batch_size: int = 500,
        requests_per_second: float | None = None,
        burst: int = 1,
        max_concurrency: int = 4,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 60.0,
        secret_env: str | None = None,
    ):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {name}: url must start with http:// or https://")
        if not secret:
            raise ValueError(f"webhook {name}: secret is empty")
        if max_batch_size < 1 or max_concurrency < 1:
            raise ValueError(f"webhook {name}: max_batch_size and max_concurrency must be >= 1")
        self.name = name
        self.url = url
        self._secret = SecretStr(secret)  # never shown by a repr or a traceback's locals
        self._secret_hint = f" (secret from env {secret_env})" if secret_env else ""
        self.capabilities = Capabilities(
            operations=frozenset(Operation) - {Operation.DELETE_PERSON},  # no person to erase: removal only
            max_batch_size=max_batch_size,
            max_requests_per_second=requests_per_second,
            max_concurrency=max_concurrency,
        )
        self.client = make_client(
            f"webhook {name}", requests_per_second=requests_per_second, burst=burst,
            max_concurrency=max_concurrency,
            connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=max_retries,
            backoff_base=backoff_base, backoff_cap=backoff_cap, retry_after_cap=retry_after_cap,
            secrets=[secret],
        )

    def write(self, batch: Batch) -> list[RecordResult]:
        records = list(batch.records)
        results: list[RecordResult] = []
        size = self.capabilities.max_batch_size
        for start in range(0, len(records), size):  # the engine batches at size; be safe anyway
            chunk = records[start : start + size]
            results += split_batch_retry(chunk, lambda part: self._send(batch, part), redactor=self.client.redact)
        return check_results(batch, results)

    def _send(self, batch: Batch, records: Sequence[Record]) -> list[RecordResult]:
        payload = {
            "sync": batch.sync,
            "target": batch.target,
            "operation": batch.operation.value,
            "records": [
                {
                    "key": r.key,
                    "fields": dict(r.fields),
                    "destination_id": r.destination_id,
                    "idempotency_key": r.idempotency_key,
                }
                for r in records
            ],
        }
        # Every operation is safe to repeat on the receiver except an insert without
        # an idempotency key (it could create twice).
        safe = batch.operation is not Operation.INSERT or all(r.idempotency_key for r in records)
        resp = self.client.request(
            "POST",
            self.url,
            json=payload,
            headers_fn=lambda body: signature_headers(self._secret.get_secret_value(), body),
            idempotent=safe,
        )
        status = resp.status_code
        what = f"webhook {self.name}: {batch.sync}/{batch.operation.value}"
        if status == 200:
            try:
                body = resp.json()
            except ValueError:
                raise DestinationError(f"{what}: 200 response body is not JSON", retryable=True) from None
            return check_results(
                Batch(batch.sync, batch.target, batch.operation, tuple(records)),
                _parse_results(body, what, self.client.redact),
            )
        code = _error_code(resp)
        if status in (401, 403):
            raise DestinationError(
                f"{what}: HTTP {status} {code}: the receiver refused our signature; check the "
                f"secret{self._secret_hint} matches the receiver's and the clock is right",
                retryable=False,
            )
        if status in (400, 413, 422):
            # Maybe only some records are at fault (or the batch is too big): bisect.
            raise BatchRefused(f"{what}: HTTP {status} {code}", status=status, reason=code or f"http_{status}")
        raise DestinationError(
            f"{what}: HTTP {status} {code}: unexpected answer; check the url", retryable=False
        )

    def close(self) -> None:
        self.client.close()


def _error_code(resp: Any) -> str:
    """The receiver's error code, if it sent the error shape; never the body itself."""
    try:
        err = resp.json().get("error")
        code = err.get("code") if isinstance(err, Mapping) else None
    except (ValueError, AttributeError):
        return ""
    return code if isinstance(code, str) and code.replace("_", "").isalnum() and len(code) <= 64 else ""


def _parse_results(body: Any, what: str, redactor: Any) -> list[RecordResult]:
    if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
        raise DestinationError(f"{what}: 200 response has no 'results' list", retryable=True)
    out = []
    for i, item in enumerate(body["results"]):
        if not isinstance(item, Mapping):
            raise DestinationError(f"{what}: results[{i}] is not an object", retryable=True)
        key, status = item.get("key"), item.get("status")
        if not isinstance(key, str):
            raise DestinationError(f"{what}: results[{i}].key is missing or not a string", retryable=True)
        if status not in _STATUSES:
            raise DestinationError(
                f"{what}: results[{i}].status is not one of ok, rejected, retryable", retryable=True
            )
        rid, error = item.get("id"), item.get("error")
        out.append(
            RecordResult(
                key=key,
                status=_STATUSES[status],
                destination_id=str(rid) if rid is not None else None,
                error=redactor(str(error)[:200]) if error is not None and _STATUSES[status] is not ResultStatus.OK else None,
            )
        )
    return out


class Config(DestinationConfig):
    type: Literal["webhook"]
    url: str | None = Field(None, description="the endpoint, or the default when url_env is unset")
    url_env: str | None = Field(None, description="env var that overrides url")
    secret_env: str = Field(description="name of the env var holding the signing secret")
    max_batch_size: int = Field(500, ge=1, le=10_000)
    requests_per_second: float | None = Field(None, gt=0)
    max_concurrency: int = Field(4, ge=1, le=64)
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)

    @model_validator(mode="after")
    def _has_url(self) -> Config:
        if not self.url and not self.url_env:
            raise ValueError("url: give a url or a url_env")
        return self


def from_config(name: str, config: Config, *, where: Path, env: Mapping[str, str]) -> WebhookDestination:
    secret = env_value(env, config.secret_env, name=name, key="secret_env", where=where)
    url = (env.get(config.url_env) if config.url_env else None) or config.url
    if not url:
        raise RegistryError(
            f"{where}: destination '{name}', key 'url_env': environment variable {config.url_env} "
            "is not set and no default url is given"
        )
    return WebhookDestination(
        url, secret, name=name, max_batch_size=config.max_batch_size,
        requests_per_second=config.requests_per_second, max_concurrency=config.max_concurrency,
        connect_timeout=config.connect_timeout, read_timeout=config.read_timeout,
        max_retries=config.max_retries, secret_env=config.secret_env,
    )
