"""HubSpot destination: contacts upserted by email, static-list membership, GDPR delete.

Endpoints (CRM v3; paths and bodies as hubspot-api-client 12 models them):
  POST /crm/v3/objects/contacts/batch/upsert   {"inputs": [{"idProperty": "email", "id", "properties",
                                                 "objectWriteTraceId"}]}  -> 200 | 207 (results[], errors[])
  POST /crm/v3/objects/contacts/batch/read     {"idProperty": "email", "inputs": [{"id"}], "properties",
                                                 "propertiesWithHistory"}  -> 200 | 207 (OBJECT_NOT_FOUND)
  PUT  /crm/v3/lists/{listId}/memberships/add|remove   ["<record id>", ...]  -> 200 MembershipsUpdateResponse
  POST /crm/v3/objects/contacts/gdpr-delete    {"objectId", "idProperty"?}  -> 204

Operations: UPSERT (batch/upsert), UPDATE (batch/read first: a contact HubSpot does not
know is REJECTED as OBJECT_NOT_FOUND, the rest are upserted), DELETE (GDPR delete, one
call per record: permanent), ADD_MEMBER / REMOVE_MEMBER (Batch.target is the list's ILS
id; contact ids come from Record.destination_id or are resolved by email with batch/read).

HubSpot does not keep input order in batch results, so every answer is mapped back by
objectWriteTraceId (we send the input's index), else by email. A record without an
answer is RETRYABLE, never OK. Reasons are HubSpot's error category/code (INVALID_EMAIL,
VALIDATION_ERROR ...), never the message, which quotes the email.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import requests
from pydantic import Field

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
from destinations.identifiers import normalise_email
from destinations.registry import DestinationConfig, env_value

API_URL = "https://api.hubapi.com"
MAX_BATCH = 100  # inputs per batch/upsert and batch/read call
# Private apps on Free/Starter: 100 requests per 10 s (Professional/Enterprise: 190).
DEFAULT_RPS = 10.0
OPERATIONS = frozenset({Operation.UPSERT, Operation.UPDATE, Operation.DELETE, Operation.DELETE_PERSON,
                        Operation.ADD_MEMBER, Operation.REMOVE_MEMBER})
# Error categories/codes that will not change on a retry of the same data.
PERMANENT = frozenset({
    "VALIDATION_ERROR", "INVALID_EMAIL", "PROPERTY_DOESNT_EXIST", "INVALID_OPTION", "INVALID_INTEGER",
    "INVALID_DATE", "INVALID_LONG", "INVALID_DECIMAL", "INVALID_BOOLEAN", "INVALID_PHONE_NUMBER",
    "READ_ONLY_VALUE", "OBJECT_NOT_FOUND", "CONFLICT", "DUPLICATE_VALUE", "BLOCKED_EMAIL",
    "GDPR_BLOCKLISTED",
})
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
_EMBEDDED_CODE = re.compile(r'"error"\s*:\s*"([A-Z][A-Z0-9_]{1,63})"')


# --------------------------------------------------------------------------- helpers


def property_value(value: Any) -> str:
    """HubSpot property values are strings; an empty string clears a property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def _code(value: Any) -> str | None:
    return value if isinstance(value, str) and _CODE.match(value) else None


def error_reason(err: Any) -> str:
    """'CATEGORY' or 'CATEGORY/CODE' from a HubSpot error object, never its message text
    (HubSpot quotes the offending value, e.g. the email, in messages)."""
    if not isinstance(err, Mapping):
        return "UNKNOWN_ERROR"
    category = _code(err.get("category")) or _code(err.get("errorType"))
    detail = None
    for item in err.get("errors") or ():
        if isinstance(item, Mapping):
            detail = _code(item.get("code")) or _code(item.get("subCategory"))
            if detail:
                break
    if detail is None:
        detail = _code(err.get("subCategory"))
    if detail is None and isinstance(err.get("message"), str):
        found = _EMBEDDED_CODE.search(err["message"])  # "Property values were not valid: [{..."error":"INVALID_EMAIL"}]"
        detail = found.group(1) if found else None
    parts = [p for p in (category, detail) if p]
    if len(parts) == 2 and parts[0] == parts[1]:
        parts = parts[:1]
    return "/".join(parts) or "UNKNOWN_ERROR"


def is_permanent(reason: str) -> bool:
    return any(part in PERMANENT for part in reason.split("/"))


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def hubspot_throttled(resp: requests.Response) -> bool | float | None:
    """HubSpot's throttling signal outside a 429 (the client treats every 429 as one):
    a RATE_LIMIT error body. A float is the wait the rate-limit headers suggest."""
    if resp.status_code < 400 or resp.status_code == 429:
        return None
    if "json" not in resp.headers.get("Content-Type", "json"):
        return None
    body = _json(resp)
    if not isinstance(body, Mapping) or body.get("errorType") != "RATE_LIMIT":
        return None
    return rate_limit_wait(resp) or True


def rate_limit_wait(resp: requests.Response) -> float | None:
    """Seconds until the window in X-HubSpot-RateLimit-* headers frees a request, when
    they say it is spent."""
    h = resp.headers
    remaining = h.get("X-HubSpot-RateLimit-Remaining") or h.get("X-HubSpot-RateLimit-Secondly-Remaining")
    interval = h.get("X-HubSpot-RateLimit-Interval-Milliseconds")
    try:
        if remaining is not None and int(remaining) <= 0:
            return float(interval) / 1000.0 if interval else 1.0
    except ValueError:
        return None
    return None


# --------------------------------------------------------------------------- destination


class HubSpotDestination:
    def __init__(
        self,
        token: str,
        *,
        name: str = "hubspot",
        base_url: str = API_URL,
        token_env: str | None = None,
        max_batch_size: int = MAX_BATCH,
        requests_per_second: float = DEFAULT_RPS,
        burst: int = 10,
        max_concurrency: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 60.0,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"hubspot {name}: base_url must start with http:// or https://")
        if not token:
            raise ValueError(f"hubspot {name}: token is empty")
        if not 1 <= max_batch_size <= MAX_BATCH:
            raise ValueError(f"hubspot {name}: max_batch_size must be between 1 and {MAX_BATCH}")
        if max_concurrency < 1:
            raise ValueError(f"hubspot {name}: max_concurrency must be >= 1")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._token_hint = f"the private app token in env {token_env}" if token_env else "the private app token"
        self.capabilities = Capabilities(
            operations=OPERATIONS,
            max_batch_size=max_batch_size,
            max_requests_per_second=requests_per_second,
            max_concurrency=max_concurrency,
        )
        self.client = make_client(
            f"hubspot {name}", requests_per_second=requests_per_second, burst=burst,
            max_concurrency=max_concurrency,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=max_retries,
            backoff_base=backoff_base, backoff_cap=backoff_cap, retry_after_cap=retry_after_cap,
            is_throttled=hubspot_throttled, secrets=[token],
        )

    # ---- the protocol

    def write(self, batch: Batch) -> list[RecordResult]:
        if batch.operation not in OPERATIONS:
            raise DestinationError(
                f"hubspot {self.name}: {batch.sync}: operation {batch.operation.value} is not supported "
                f"(supported: {', '.join(sorted(o.value for o in OPERATIONS))})",
                retryable=False,
            )
        records = list(batch.records)
        size = self.capabilities.max_batch_size
        handler: Callable[[Batch, list[Record]], list[RecordResult]] = {
            Operation.UPSERT: self._upsert,
            Operation.UPDATE: self._update,
            Operation.DELETE: self._delete,
            Operation.DELETE_PERSON: self._delete,  # GDPR delete is already permanent
            Operation.ADD_MEMBER: self._membership,
            Operation.REMOVE_MEMBER: self._membership,
        }[batch.operation]
        results: list[RecordResult] = []
        for start in range(0, len(records), size):  # the engine batches at size; be safe anyway
            results += handler(batch, records[start : start + size])
        return check_results(batch, results)

    def close(self) -> None:
        self.client.close()

    # ---- plumbing

    def _what(self, batch: Batch) -> str:
        return f"hubspot {self.name}: {batch.sync}/{batch.operation.value}"

    def _call(self, method: str, path: str, body: Any, what: str) -> requests.Response:
        """Send; raise for answers that concern the whole call: auth (not retryable),
        and anything unexpected. Returns 2xx, 400 and 404 responses to the caller."""
        # Every call we make is safe to repeat: upsert by email, reads, membership PUTs,
        # and a GDPR delete of what is already gone.
        resp = self.client.request(method, f"{self.base_url}{path}", json=body, idempotent=True)
        status = resp.status_code
        if status < 300 or status in (400, 404, 409, 413):
            return resp
        reason = error_reason(_json(resp))
        if status == 401:
            raise DestinationError(
                f"{what}: HTTP 401 {reason}: HubSpot refused {self._token_hint}; set it to a valid "
                "private app access token", retryable=False)
        if status == 403:
            raise DestinationError(
                f"{what}: HTTP 403 {reason}: {self._token_hint} lacks a scope this sync needs "
                "(crm.objects.contacts.write, crm.objects.contacts.read, crm.lists.write)", retryable=False)
        raise DestinationError(f"{what}: HTTP {status} {reason}: unexpected answer", retryable=status >= 500)

    def _ok_json(self, resp: requests.Response, what: str) -> Mapping[str, Any]:
        body = _json(resp)
        if not isinstance(body, Mapping):
            raise DestinationError(f"{what}: HTTP {resp.status_code} body is not a JSON object", retryable=True)
        return body

    # ---- upsert / update

    def _upsert(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        results, by_email = _split_emails(records)
        # HubSpot refuses a batch naming one id twice: send duplicates in later rounds.
        for wave in _waves(by_email):
            results += split_batch_retry(
                wave, lambda part: self._send_upsert(batch, part), redactor=self.client.redact)
        return results

    def _update(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        results, by_email = _split_emails(records)
        if not by_email:
            return results
        found, missing, unknown = self._read_ids(batch, list(by_email))
        to_write: list[Record] = []
        for email, recs in by_email.items():
            if email in found:
                to_write += recs
            elif email in missing:
                results += [RecordResult(r.key, ResultStatus.REJECTED, error="OBJECT_NOT_FOUND: no contact "
                                         "with this email (update mode never creates)") for r in recs]
            else:
                results += [RecordResult(r.key, ResultStatus.RETRYABLE, error=unknown.get(email, "NO_RESULT"))
                            for r in recs]
        for wave in _waves(_group(to_write)):
            results += split_batch_retry(
                wave, lambda part: self._send_upsert(batch, part), redactor=self.client.redact)
        return results

    def _send_upsert(self, batch: Batch, records: Sequence[Record]) -> list[RecordResult]:
        what = self._what(batch)
        body = upsert_body(records)
        resp = self._call("POST", "/crm/v3/objects/contacts/batch/upsert", body, what)
        if resp.status_code in (400, 409, 413):
            reason = error_reason(_json(resp))
            raise BatchRefused(f"{what}: HTTP {resp.status_code} {reason}", status=resp.status_code, reason=reason)
        if resp.status_code == 404:
            raise DestinationError(f"{what}: HTTP 404: no contacts batch/upsert endpoint at the base_url",
                                   retryable=False)
        payload = self._ok_json(resp, what)
        return _map_upsert(records, payload)

    # ---- reads

    def _read_ids(self, batch: Batch, emails: list[str]) -> tuple[dict[str, str], set[str], dict[str, str]]:
        """email -> contact id for those HubSpot knows; emails it says it does not know;
        email -> reason for those it did not answer for."""
        what = self._what(batch)
        found: dict[str, str] = {}
        missing: set[str] = set()
        unanswered: dict[str, str] = {}
        for start in range(0, len(emails), MAX_BATCH):
            chunk = emails[start : start + MAX_BATCH]
            resp = self._call("POST", "/crm/v3/objects/contacts/batch/read", read_body(chunk), what)
            if resp.status_code in (400, 404, 409, 413):
                reason = error_reason(_json(resp))
                raise DestinationError(f"{what}: batch/read HTTP {resp.status_code} {reason}", retryable=False)
            payload = self._ok_json(resp, what)
            wanted = set(chunk)
            for item in payload.get("results") or ():
                if not isinstance(item, Mapping) or item.get("id") is None:
                    continue
                email = normalise_email((item.get("properties") or {}).get("email"))
                if email in wanted:
                    found[email] = str(item["id"])
            for err in payload.get("errors") or ():
                reason = error_reason(err)
                for value in _context_values(err):
                    email = normalise_email(value)
                    if email in wanted and email not in found:
                        if reason.startswith("OBJECT_NOT_FOUND"):
                            missing.add(email)
                        else:
                            unanswered[email] = reason
        return found, missing, unanswered

    # ---- membership

    def _membership(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        adding = batch.operation is Operation.ADD_MEMBER
        what = self._what(batch)
        list_id = str(batch.target).strip()
        if not list_id.isdigit():
            raise DestinationError(
                f"{what}: target {batch.target!r} is not a HubSpot list id (the list's ILS id, digits); "
                "set the sync's object to it", retryable=False)
        results: list[RecordResult] = []
        ids: dict[str, list[Record]] = {}
        to_resolve: dict[str, list[Record]] = {}
        for r in records:
            if r.destination_id:
                ids.setdefault(str(r.destination_id), []).append(r)
                continue
            email = normalise_email(r.fields.get("email"))
            if email:
                to_resolve.setdefault(email, []).append(r)
            else:
                results.append(RecordResult(r.key, ResultStatus.REJECTED, error=(
                    "MISSING_EMAIL: no HubSpot id and no email to find the contact by")))
        if to_resolve:
            found, missing, unknown = self._read_ids(batch, list(to_resolve))
            for email, recs in to_resolve.items():
                if email in found:
                    ids.setdefault(found[email], []).extend(recs)
                elif email in missing:
                    status = ResultStatus.RETRYABLE if adding else ResultStatus.OK
                    results += [RecordResult(r.key, status, error=(
                        "CONTACT_NOT_FOUND: create the contact first (an upsert sync)") if adding else None)
                        for r in recs]
                else:
                    results += [RecordResult(r.key, ResultStatus.RETRYABLE, error=unknown.get(email, "NO_RESULT"))
                                for r in recs]
        if not ids:
            return results
        action = "add" if adding else "remove"
        resp = self._call("PUT", f"/crm/v3/lists/{list_id}/memberships/{action}", list(ids), what)
        if resp.status_code == 404:
            raise DestinationError(f"{what}: HTTP 404 {error_reason(_json(resp))}: HubSpot has no list "
                                   f"{list_id}; check the sync's target list id", retryable=False)
        if resp.status_code >= 300:
            raise DestinationError(
                f"{what}: HTTP {resp.status_code} {error_reason(_json(resp))}: HubSpot refused the membership "
                f"change on list {list_id} (only MANUAL or SNAPSHOT lists take record ids)", retryable=False)
        payload = self._ok_json(resp, what)
        missing_ids = {str(i) for i in payload.get("recordIdsMissing") or ()}
        for rid, recs in ids.items():
            if rid in missing_ids and adding:
                # The id no longer names a contact (deleted or merged): try again later;
                # a stale id is dropped by the engine only when the data changes.
                results += [RecordResult(r.key, ResultStatus.RETRYABLE, error="RECORD_ID_MISSING: HubSpot has "
                                         "no contact with this id") for r in recs]
            else:
                # Added, already a member, removed, or (remove) not a contact at all: done.
                results += [RecordResult(r.key, ResultStatus.OK, destination_id=rid) for r in recs]
        return results

    # ---- delete

    def _delete(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        what = self._what(batch)
        results: list[RecordResult] = []
        outage: str | None = None
        for r in records:
            email = normalise_email(r.fields.get("email"))
            if outage is not None:
                results.append(RecordResult(r.key, ResultStatus.RETRYABLE, error=outage))
                continue
            if r.destination_id:
                body = gdpr_body(str(r.destination_id))
            elif email:
                body = gdpr_body(email, id_property="email")
            else:
                results.append(RecordResult(r.key, ResultStatus.REJECTED, error=(
                    "NO_RECORD_ID: neither a HubSpot id nor an email to delete by")))
                continue
            try:
                resp = self._call("POST", "/crm/v3/objects/contacts/gdpr-delete", body, what)
            except DestinationError as exc:
                if not exc.retryable:
                    raise
                outage = self.client.redact(str(exc))  # stop calling; the rest wait for a later run
                results.append(RecordResult(r.key, ResultStatus.RETRYABLE, error=outage))
                continue
            if resp.status_code < 300 or resp.status_code == 404:  # 404: already gone
                results.append(RecordResult(r.key, ResultStatus.OK, destination_id=r.destination_id))
            else:
                reason = error_reason(_json(resp))
                status = ResultStatus.REJECTED if is_permanent(reason) else ResultStatus.RETRYABLE
                results.append(RecordResult(r.key, status, error=f"{reason}: HTTP {resp.status_code}"))
        return results


# --------------------------------------------------------------------------- bodies


def upsert_body(records: Sequence[Record]) -> dict[str, Any]:
    """batch/upsert input (BatchInputSimplePublicObjectBatchInputUpsert); objectWriteTraceId
    is the input's index, so errors and results map back without relying on order."""
    inputs = []
    for i, r in enumerate(records):
        email = normalise_email(r.fields.get("email"))
        props = {str(k): property_value(v) for k, v in r.fields.items()}
        props["email"] = email or ""
        inputs.append({"idProperty": "email", "id": email, "properties": props, "objectWriteTraceId": str(i)})
    return {"inputs": inputs}


def read_body(emails: Sequence[str]) -> dict[str, Any]:
    """batch/read input (BatchReadInputSimplePublicObjectId) by email."""
    return {"idProperty": "email", "inputs": [{"id": e} for e in emails],
            "properties": ["email"], "propertiesWithHistory": []}


def gdpr_body(object_id: str, *, id_property: str | None = None) -> dict[str, Any]:
    """gdpr-delete input (PublicGdprDeleteInput)."""
    body: dict[str, Any] = {"objectId": object_id}
    if id_property:
        body["idProperty"] = id_property
    return body


# --------------------------------------------------------------------------- mapping


def _split_emails(records: Sequence[Record]) -> tuple[list[RecordResult], dict[str, list[Record]]]:
    rejected = [RecordResult(r.key, ResultStatus.REJECTED, error="MISSING_EMAIL: HubSpot upserts contacts by email")
                for r in records if not normalise_email(r.fields.get("email"))]
    return rejected, _group([r for r in records if normalise_email(r.fields.get("email"))])


def _group(records: Sequence[Record]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(normalise_email(r.fields.get("email")), []).append(r)  # type: ignore[arg-type]
    return out


def _waves(by_email: Mapping[str, list[Record]]) -> list[list[Record]]:
    """Rounds in which no email appears twice (the last record of an email is sent last,
    so the latest data wins)."""
    waves: list[list[Record]] = []
    for recs in by_email.values():
        for i, r in enumerate(recs):
            if len(waves) <= i:
                waves.append([])
            waves[i].append(r)
    return waves


def _context_values(err: Mapping[str, Any]) -> list[str]:
    ctx = err.get("context")
    out: list[str] = []
    if isinstance(ctx, Mapping):
        for values in ctx.values():
            if isinstance(values, list):
                out += [v for v in values if isinstance(v, str)]
            elif isinstance(values, str):
                out.append(values)
    return out


def _map_upsert(records: Sequence[Record], payload: Mapping[str, Any]) -> list[RecordResult]:
    """One result per record from a 200/207 body: results[] and errors[] matched by
    objectWriteTraceId, else by email. Unmatched records are RETRYABLE."""
    by_trace = {str(i): r for i, r in enumerate(records)}
    by_email = {normalise_email(r.fields.get("email")): r for r in records}
    answered: dict[str, RecordResult] = {}

    def match(trace: Any, emails: Sequence[Any]) -> Record | None:
        if isinstance(trace, str) and trace in by_trace:
            return by_trace[trace]
        for e in emails:
            rec = by_email.get(normalise_email(e) if isinstance(e, str) else None)
            if rec is not None:
                return rec
        return None

    for item in payload.get("results") or ():
        if not isinstance(item, Mapping) or item.get("id") is None:
            continue
        rec = match(item.get("objectWriteTraceId"), [(item.get("properties") or {}).get("email")])
        if rec is not None:
            answered[rec.key] = RecordResult(rec.key, ResultStatus.OK, destination_id=str(item["id"]))
    for err in payload.get("errors") or ():
        if not isinstance(err, Mapping):
            continue
        reason = error_reason(err)
        status = ResultStatus.REJECTED if is_permanent(reason) else ResultStatus.RETRYABLE
        ctx = err.get("context") if isinstance(err.get("context"), Mapping) else {}
        traces = [t for t in (ctx.get("objectWriteTraceId") or ()) if isinstance(t, str)]
        targets = [by_trace[t] for t in traces if t in by_trace] or [
            r for r in (match(None, [v]) for v in _context_values(err)) if r is not None]
        for rec in targets:
            if rec.key not in answered:
                answered[rec.key] = RecordResult(rec.key, status, error=reason)
    return [answered.get(r.key) or RecordResult(r.key, ResultStatus.RETRYABLE, error="NO_RESULT: HubSpot "
                                                "answered nothing for this record") for r in records]


# --------------------------------------------------------------------------- config


class Config(DestinationConfig):
    type: Literal["hubspot"]
    token_env: str = Field(description="name of the env var holding the private app access token")
    base_url: str = Field(API_URL, description="API root; a sandbox URL for local trials")
    base_url_env: str | None = Field(None, description="env var that overrides base_url")
    max_batch_size: int = Field(MAX_BATCH, ge=1, le=MAX_BATCH)
    requests_per_second: float = Field(DEFAULT_RPS, gt=0, le=100)
    burst: int = Field(10, ge=1, le=200)
    max_concurrency: int = Field(4, ge=1, le=16)
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)


def from_config(name: str, config: Config, *, where: Path, env: Mapping[str, str]) -> HubSpotDestination:
    token = env_value(env, config.token_env, name=name, key="token_env", where=where)
    base_url = (env.get(config.base_url_env) if config.base_url_env else None) or config.base_url
    return HubSpotDestination(
        token, name=name, base_url=base_url, token_env=config.token_env,
        max_batch_size=config.max_batch_size, requests_per_second=config.requests_per_second,
        burst=config.burst, max_concurrency=config.max_concurrency,
        connect_timeout=config.connect_timeout, read_timeout=config.read_timeout,
        max_retries=config.max_retries,
    )
