"""Klaviyo destination: profiles by bulk import job, list membership, privacy deletion.

API subset (JSON:API, revisioned; request bodies checked against klaviyo-api 25.0.0's
pydantic models in tests/unit/test_klaviyo_contract.py):

  UPSERT, UPDATE  POST /api/profile-bulk-import-jobs (<= 10,000 profiles, <= 5 MB) -> 202,
                  poll GET /api/profile-bulk-import-jobs/{id} (queued -> processing -> complete),
                  GET .../{id}/import-errors (per-record errors, mapped back by pointer or
                  original_payload), GET .../{id}/profiles (the profile ids we return).
                  UPDATE only touches existing profiles: ids from Record.destination_id or a
                  lookup `GET /api/profiles?filter=any(email,[...])`; unknown -> REJECTED.
  ADD_MEMBER      POST   /api/lists/{list}/relationships/profiles {"data":[{type:profile,id}]}
  REMOVE_MEMBER   DELETE /api/lists/{list}/relationships/profiles   (<= 1,000 ids per call)
                  Ids come from Record.destination_id; records without one are imported
                  (ADD) or looked up (REMOVE) first.
  DELETE          POST /api/data-privacy-deletion-jobs, one profile (one identifier) per call.

Headers: `Authorization: Klaviyo-API-Key <key>` and the required `revision: YYYY-MM-DD`.
Throttling: 429 + Retry-After (HttpClient); a JSON:API error with code 'throttled' in any
status, and `RateLimit-Remaining: 0` on a success pauses the limiter until RateLimit-Reset.

Capabilities: one max_batch_size for every operation, so 1,000 (the list endpoints' limit);
imports of larger batches are split internally at 10,000 profiles / 5 MB anyway. Rate:
the import-job and list endpoints share the 10/s burst, 150/min steady tier -> 2.5 req/s;
data-privacy deletion is 3/s burst, 60/min steady -> its own limiter at 1 req/s, so a
mirror DELETE of 1,000 records takes ~17 minutes by Klaviyo's documented limits.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
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
from destinations.http import BatchRefused, HttpClient, RateLimiter, make_client, split_batch_retry
from destinations.identifiers import normalise_email, normalise_phone
from destinations.registry import DestinationConfig, RegistryError, env_value

DEFAULT_BASE_URL = "https://a.klaviyo.com"
# The revision klaviyo-api 25.0.0 pins (klaviyo_api/wrapper.py _REVISION).
DEFAULT_REVISION = "2026-10-15"
JSONAPI = "application/vnd.api+json"

MAX_LIST_IDS = 1_000
MAX_IMPORT_PROFILES = 10_000
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_PROFILE_BYTES = 100 * 1024
PAGE_SIZE = 100  # the maximum page[size] of the collection endpoints we read

IDENTIFIERS = ("email", "phone_number", "external_id")
# ProfileUpsertQueryResourceObjectAttributes: everything else goes to `properties`.
STANDARD_ATTRIBUTES = frozenset(
    {"email", "phone_number", "external_id", "first_name", "last_name", "organization", "locale", "title", "image"}
)
LOCATION_ATTRIBUTES = frozenset(
    {"address1", "address2", "city", "country", "latitude", "longitude", "region", "zip", "timezone", "ip"}
)
_POINTER_INDEX = re.compile(r"^/data/attributes/profiles/data/(\d+)(?:/(.*))?$")
_SAFE_CODE = re.compile(r"[^A-Za-z0-9_.-]+")


def _code(text: object) -> str:
    """A token safe for reasons: letters, digits, _ . - only (never free text that may hold PII)."""
    return _SAFE_CODE.sub("_", str(text or ""))[:48] or "unknown"


class KlaviyoDestination:
    def __init__(
        self,
        api_key: str,
        *,
        name: str = "klaviyo",
        base_url: str = DEFAULT_BASE_URL,
        revision: str = DEFAULT_REVISION,
        api_key_env: str | None = None,
        requests_per_second: float | None = 2.5,
        burst: int = 10,
        deletion_requests_per_second: float | None = 1.0,
        deletion_burst: int = 3,
        max_concurrency: int = 3,
        poll_interval: float = 1.0,
        poll_interval_cap: float = 10.0,
        job_timeout: float = 900.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not api_key:
            raise ValueError(f"klaviyo {name}: api key is empty")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"klaviyo {name}: base_url must start with http:// or https://")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", revision):
            raise ValueError(f"klaviyo {name}: revision must look like YYYY-MM-DD, got {revision!r}")
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.revision = revision
        self._key_hint = f"the API key in env {api_key_env}" if api_key_env else "the API key"
        self.poll_interval = poll_interval
        self.poll_interval_cap = poll_interval_cap
        self.job_timeout = job_timeout
        self._sleep = sleep
        self.capabilities = Capabilities(
            operations=frozenset({Operation.UPSERT, Operation.UPDATE, Operation.DELETE, Operation.DELETE_PERSON,
                                  Operation.ADD_MEMBER, Operation.REMOVE_MEMBER}),
            max_batch_size=MAX_LIST_IDS,
            max_requests_per_second=requests_per_second,
            max_concurrency=max_concurrency,
            async_jobs=True,
        )
        headers = {
            "Authorization": f"Klaviyo-API-Key {api_key}",
            "revision": revision,
            "Accept": JSONAPI,
        }
        common = dict(
            headers=headers, connect_timeout=connect_timeout, read_timeout=read_timeout,
            max_retries=max_retries, backoff_base=backoff_base, backoff_cap=backoff_cap,
            retry_after_cap=retry_after_cap, secrets=[api_key], max_concurrency=max_concurrency, sleep=sleep,
        )
        # The hooks read the limiter attributes at call time, so they may be set after the clients.
        self.client = make_client(f"klaviyo {name}", requests_per_second=requests_per_second, burst=burst,
                                  is_throttled=self._make_hook(lambda: self.limiter), **common)
        self.limiter = self.client.rate_limiter
        self.deletion_client = make_client(
            f"klaviyo {name} deletion", requests_per_second=deletion_requests_per_second, burst=deletion_burst,
            is_throttled=self._make_hook(lambda: self.deletion_limiter), **common)
        self.deletion_limiter = self.deletion_client.rate_limiter

    # ------------------------------------------------------------------ throttling

    @staticmethod
    def _make_hook(limiter: Callable[[], RateLimiter | None]):
        def is_throttled(resp: requests.Response) -> bool:
            # Out of budget but answered: slow every thread down before the 429s start.
            if resp.status_code < 400 and resp.headers.get("RateLimit-Remaining", "").strip() == "0":
                lim = limiter()
                try:
                    reset = float(resp.headers.get("RateLimit-Reset", "1"))
                except ValueError:
                    reset = 1.0
                if lim is not None:
                    lim.pause(min(max(reset, 0.0), 60.0))
                return False
            if resp.status_code >= 400 and "json" in resp.headers.get("Content-Type", ""):
                return "throttled" in _error_codes(resp)
            return False

        return is_throttled

    # ------------------------------------------------------------------ entry point

    def write(self, batch: Batch) -> list[RecordResult]:
        op = batch.operation
        if op not in self.capabilities.operations:
            raise DestinationError(f"klaviyo {self.name}: operation {op.value} is not supported", retryable=False)
        records = list(batch.records)
        results: list[RecordResult] = []
        for start in range(0, len(records), MAX_LIST_IDS):  # the engine batches at this size; be safe
            chunk = records[start : start + MAX_LIST_IDS]
            if op in (Operation.UPSERT, Operation.UPDATE):
                results += self._write_profiles(chunk, update_only=op is Operation.UPDATE)
            elif op is Operation.ADD_MEMBER:
                results += self._add_members(batch.target, chunk)
            elif op is Operation.REMOVE_MEMBER:
                results += self._remove_members(batch.target, chunk)
            else:
                results += [self._delete(r) for r in chunk]
        return check_results(batch, results)

    def close(self) -> None:
        self.client.close()
        self.deletion_client.close()

    # ------------------------------------------------------------------ HTTP helpers

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _call(self, method: str, path_or_url: str, *, what: str, json_body: Any = None,
              params: Mapping[str, Any] | None = None, client: HttpClient | None = None) -> requests.Response:
        url = path_or_url if path_or_url.startswith("http") else self._url(path_or_url)
        headers = {"Content-Type": JSONAPI} if json_body is not None else None
        # Every call here is safe to repeat: an import re-applies the same values, list
        # add/remove and privacy deletion are idempotent in effect.
        resp = (client or self.client).request(method, url, json=json_body, params=params,
                                               headers=headers, idempotent=True)
        status = resp.status_code
        if status < 300:
            return resp
        codes = ",".join(_error_codes(resp)) or f"http_{status}"
        where = f"klaviyo {self.name}: {what}"
        if status in (401, 403):
            raise DestinationError(
                f"{where}: HTTP {status} {codes}: Klaviyo refused the credentials; check {self._key_hint} "
                "is a private API key with the profiles, lists and data-privacy write scopes",
                retryable=False,
            )
        if status == 404:
            raise DestinationError(f"{where}: HTTP 404 {codes}: not found; check the sync's object "
                                   "(a Klaviyo list id) and base_url", retryable=False)
        if status in (400, 409, 413, 422):
            raise BatchRefused(f"{where}: HTTP {status} {codes}", status=status, reason=codes.upper())
        raise DestinationError(f"{where}: HTTP {status} {codes}: unexpected answer", retryable=False)

    def _pages(self, path: str, *, what: str, params: Mapping[str, Any] | None = None) -> list[dict]:
        """Every item of a paginated collection, following links.next."""
        items: list[dict] = []
        url, query = path, {**(params or {}), "page[size]": PAGE_SIZE}
        for _ in range(10_000):
            body = _json(self._call("GET", url, what=what, params=query), what)
            data = body.get("data")
            if not isinstance(data, list):
                raise DestinationError(f"klaviyo {self.name}: {what}: response has no data list", retryable=True)
            items += [d for d in data if isinstance(d, Mapping)]
            nxt = (body.get("links") or {}).get("next")
            if not nxt:
                return items
            url, query = nxt, None
        raise DestinationError(f"klaviyo {self.name}: {what}: too many pages", retryable=True)

    # ------------------------------------------------------------------ profiles

    def _write_profiles(self, records: Sequence[Record], *, update_only: bool) -> list[RecordResult]:
        results: dict[str, RecordResult] = {}
        ids: dict[str, str] = {}
        todo: list[Record] = []
        for r in records:
            problem = _check_identifiers(r)
            if problem and not r.destination_id:
                results[r.key] = _rejected(r, problem)
            elif r.destination_id:
                ids[r.key] = r.destination_id
                todo.append(r)
            else:
                todo.append(r)
        if update_only:
            # UPDATE never creates: profiles we have no id for must already exist.
            found = self._lookup([r for r in todo if r.key not in ids])
            for r in list(todo):
                if r.key not in ids:
                    if r.key in found:
                        ids[r.key] = found[r.key]
                    else:
                        results[r.key] = _rejected(r, "PROFILE_NOT_FOUND: no Klaviyo profile has this record's identifiers")
                        todo.remove(r)
        for part in self._import_parts(todo, ids, results):
            for res in split_batch_retry(part, lambda p: self._import(p, ids), redactor=self.client.redact):
                results[res.key] = res
        return [results[r.key] for r in records]

    def profile_resource(self, record: Record, profile_id: str | None = None) -> dict[str, Any]:
        """A ProfileUpsertQueryResourceObject: standard attributes, location, properties."""
        attributes: dict[str, Any] = {}
        location: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        for name, value in record.fields.items():
            if name == "email":
                value = normalise_email(value)
            elif name == "phone_number" and value is not None:
                value = normalise_phone(value, None) or str(value).strip()
            if name in STANDARD_ATTRIBUTES:
                if value is None and name in IDENTIFIERS:
                    continue  # a missing identifier is not a request to clear it
                attributes[name] = None if value is None else str(value)
            elif name in LOCATION_ATTRIBUTES:
                location[name] = value if name in ("latitude", "longitude") or value is None else str(value)
            else:
                properties[name] = _jsonable(value)
        if location:
            attributes["location"] = location
        if properties:
            attributes["properties"] = properties
        resource: dict[str, Any] = {"type": "profile", "attributes": attributes}
        if profile_id:
            resource["id"] = profile_id
        return resource

    def import_body(self, records: Sequence[Record], ids: Mapping[str, str]) -> dict[str, Any]:
        return {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": [self.profile_resource(r, ids.get(r.key)) for r in records]}},
            }
        }

    def _import_parts(self, records: Sequence[Record], ids: Mapping[str, str],
                      results: dict[str, RecordResult]) -> list[list[Record]]:
        """Split at 10,000 profiles / 5 MB; a profile over 100 KB is rejected here."""
        parts: list[list[Record]] = []
        current: list[Record] = []
        size = 0
        budget = MAX_IMPORT_BYTES - 1024  # the envelope
        for r in records:
            n = len(json.dumps(self.profile_resource(r, ids.get(r.key)), separators=(",", ":"), default=str)) + 1
            if n > MAX_PROFILE_BYTES:
                results[r.key] = _rejected(r, "PROFILE_TOO_LARGE: over Klaviyo's 100 KB per profile")
                continue
            if current and (len(current) >= MAX_IMPORT_PROFILES or size + n > budget):
                parts.append(current)
                current, size = [], 0
            current.append(r)
            size += n
        if current:
            parts.append(current)
        return parts

    def _import(self, records: Sequence[Record], ids: Mapping[str, str]) -> list[RecordResult]:
        """One bulk import job: create, poll to completion, map errors and profile ids."""
        if not records:
            return []
        body = _json(self._call("POST", "/api/profile-bulk-import-jobs", what="create profile import job",
                                json_body=self.import_body(records, ids)), "create profile import job")
        job_id = (body.get("data") or {}).get("id")
        if not isinstance(job_id, str) or not job_id:
            raise DestinationError(f"klaviyo {self.name}: import job answer has no data.id", retryable=True)
        self._wait_for_job(job_id)
        rejected = self._import_errors(job_id, records)
        found = self._job_profiles(job_id, records, ids)
        missing = [r for r in records if r.key not in rejected and r.key not in found]
        if missing:  # not listed by the job (e.g. unchanged profiles): ask for their ids
            found.update(self._lookup(missing))
        out = []
        for r in records:
            if r.key in rejected:
                out.append(rejected[r.key])
            else:
                out.append(RecordResult(r.key, ResultStatus.OK, destination_id=found.get(r.key) or ids.get(r.key)))
        return out

    def _wait_for_job(self, job_id: str) -> None:
        what = "poll profile import job"
        deadline = time.monotonic() + self.job_timeout
        interval = self.poll_interval
        while True:
            body = _json(self._call("GET", f"/api/profile-bulk-import-jobs/{job_id}", what=what), what)
            status = ((body.get("data") or {}).get("attributes") or {}).get("status")
            if status == "complete":
                return
            if status == "cancelled":
                raise DestinationError(f"klaviyo {self.name}: import job {job_id} was cancelled", retryable=True)
            if status not in ("queued", "processing"):
                raise DestinationError(f"klaviyo {self.name}: import job {job_id} has unknown status "
                                       f"{_code(status)}", retryable=True)
            if time.monotonic() + interval > deadline:
                # It may still finish: the records stay pending and are re-sent (an upsert repeats safely).
                raise DestinationError(f"klaviyo {self.name}: import job {job_id} not complete after "
                                       f"{self.job_timeout:.0f}s (status {status})", retryable=True)
            self._sleep(interval)
            interval = min(self.poll_interval_cap, interval * 1.5)

    def _import_errors(self, job_id: str, records: Sequence[Record]) -> dict[str, RecordResult]:
        what = "read import errors"
        index = _identifier_index(records)
        out: dict[str, RecordResult] = {}
        for item in self._pages(f"/api/profile-bulk-import-jobs/{job_id}/import-errors", what=what):
            attrs = item.get("attributes") or {}
            pointer = str((attrs.get("source") or {}).get("pointer") or "")
            m = _POINTER_INDEX.match(pointer)
            field = ""
            hits: list[int] = []
            if m and int(m.group(1)) < len(records):
                hits = [int(m.group(1))]
                field = (m.group(2) or "").rsplit("/", 1)[-1]
            else:
                hits = _match_payload(attrs.get("original_payload"), index)
            code = _code(attrs.get("code"))
            reason = _reason(code, field)
            for i in hits:
                out[records[i].key] = _rejected(records[i], reason)
        return out

    def _job_profiles(self, job_id: str, records: Sequence[Record], ids: Mapping[str, str]) -> dict[str, str]:
        """record key -> profile id, from the profiles the job created or updated."""
        items = self._pages(f"/api/profile-bulk-import-jobs/{job_id}/profiles", what="read imported profiles",
                            params={"fields[profile]": "email,phone_number,external_id"})
        return _assign_ids(items, records, ids)

    def _lookup(self, records: Sequence[Record]) -> dict[str, str]:
        """record key -> id of the existing profile with its email (else phone, else external id)."""
        out: dict[str, str] = {}
        for ident in IDENTIFIERS:
            wanted: dict[str, list[Record]] = {}
            for r in records:
                if r.key in out:
                    continue
                value = _identifier(r, ident)
                if value:
                    wanted.setdefault(value, []).append(r)
            values = list(wanted)
            for start in range(0, len(values), PAGE_SIZE):
                chunk = values[start : start + PAGE_SIZE]
                flt = f"any({ident},{json.dumps(chunk)})"
                items = self._pages("/api/profiles", what="look up profiles",
                                    params={"filter": flt, "fields[profile]": "email,phone_number,external_id"})
                for item in items:
                    value = _normalise(ident, (item.get("attributes") or {}).get(ident))
                    for r in wanted.get(value or "", []):
                        if isinstance(item.get("id"), str):
                            out[r.key] = item["id"]
        return out

    # ------------------------------------------------------------------ lists

    def list_body(self, profile_ids: Sequence[str]) -> dict[str, Any]:
        return {"data": [{"type": "profile", "id": pid} for pid in profile_ids]}

    def prepare(self, batch: Batch) -> list[RecordResult]:
        """Each person's profile id, from an import job that creates or updates the profiles
        (no list membership yet): a later removal needs only that id."""
        records = list(batch.records)
        results: dict[str, RecordResult] = {}
        for start in range(0, len(records), MAX_LIST_IDS):
            chunk = records[start : start + MAX_LIST_IDS]
            ids = self._profile_ids(chunk, results)
            results.update({k: RecordResult(k, ResultStatus.OK, destination_id=v) for k, v in ids.items()})
        return [results[r.key] for r in records]

    def _add_members(self, list_id: str, records: Sequence[Record]) -> list[RecordResult]:
        results: dict[str, RecordResult] = {}
        ids = self._profile_ids(records, results)
        self._membership("POST", list_id, [r for r in records if r.key in ids and r.key not in results],
                         ids, results)
        return [results[r.key] for r in records]

    def _profile_ids(self, records: Sequence[Record], results: dict[str, RecordResult]) -> dict[str, str]:
        """record key -> profile id: the known ones, the rest from an import job. Records that
        cannot get one get their answer in `results`."""
        ids = {r.key: r.destination_id for r in records if r.destination_id}
        to_import = []
        for r in records:
            if r.key in ids:
                continue
            problem = _check_identifiers(r)
            if problem:
                results[r.key] = _rejected(r, problem)
            else:
                to_import.append(r)
        # Profiles we have no id for are created or updated first; the job gives their ids.
        for part in self._import_parts(to_import, {}, results):
            for res in split_batch_retry(part, lambda p: self._import(p, {}), redactor=self.client.redact):
                if res.status is ResultStatus.OK and res.destination_id:
                    ids[res.key] = res.destination_id
                elif res.status is ResultStatus.OK:
                    results[res.key] = RecordResult(res.key, ResultStatus.RETRYABLE,
                                                    error="PROFILE_ID_UNKNOWN: imported but its id was not returned")
                else:
                    results[res.key] = res
        return ids

    def _remove_members(self, list_id: str, records: Sequence[Record]) -> list[RecordResult]:
        results: dict[str, RecordResult] = {}
        ids = {r.key: r.destination_id for r in records if r.destination_id}
        unknown = [r for r in records if r.key not in ids]
        if unknown:
            found = self._lookup([r for r in unknown if not _check_identifiers(r)])
            for r in unknown:
                if r.key in found:
                    ids[r.key] = found[r.key]
                elif _check_identifiers(r):
                    results[r.key] = _rejected(r, "MISSING_PROFILE_ID: no destination id and no identifier")
                else:  # no such profile: it is in no list
                    results[r.key] = RecordResult(r.key, ResultStatus.OK)
        self._membership("DELETE", list_id, [r for r in records if r.key not in results], ids, results)
        return [results[r.key] for r in records]

    def _membership(self, method: str, list_id: str, records: Sequence[Record], ids: Mapping[str, str],
                    results: dict[str, RecordResult]) -> None:
        if not records:
            return
        if not list_id or "/" in list_id:
            raise DestinationError(f"klaviyo {self.name}: the sync's object must be a Klaviyo list id",
                                   retryable=False)
        what = f"{'add to' if method == 'POST' else 'remove from'} list {_code(list_id)}"

        def send(part: Sequence[Record]) -> list[RecordResult]:
            self._call(method, f"/api/lists/{list_id}/relationships/profiles", what=what,
                       json_body=self.list_body(list(dict.fromkeys(ids[r.key] for r in part))))
            return [RecordResult(r.key, ResultStatus.OK, destination_id=ids[r.key]) for r in part]

        for start in range(0, len(records), MAX_LIST_IDS):
            chunk = records[start : start + MAX_LIST_IDS]
            for res in split_batch_retry(chunk, send, redactor=self.client.redact):
                if res.status is ResultStatus.REJECTED:  # the one id Klaviyo would not take
                    res = RecordResult(res.key, res.status, error=f"INVALID_PROFILE_ID: {res.error}")
                results[res.key] = res

    # ------------------------------------------------------------------ deletion

    def deletion_body(self, record: Record) -> dict[str, Any] | None:
        """DataPrivacyCreateDeletionJobQuery with exactly one identifier: id, else email, else phone."""
        if record.destination_id:
            profile: dict[str, Any] = {"type": "profile", "id": record.destination_id, "attributes": {}}
        elif email := _identifier(record, "email"):
            profile = {"type": "profile", "attributes": {"email": email}}
        elif phone := _identifier(record, "phone_number"):
            profile = {"type": "profile", "attributes": {"phone_number": phone}}
        else:
            return None
        return {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": profile}}}}

    def _delete(self, record: Record) -> RecordResult:
        body = self.deletion_body(record)
        if body is None:
            return _rejected(record, "MISSING_PROFILE_ID: no destination id, email or phone to delete by")
        try:
            self._call("POST", "/api/data-privacy-deletion-jobs", what="request profile deletion",
                       json_body=body, client=self.deletion_client)
        except BatchRefused as exc:
            return _rejected(record, f"{exc.reason}: Klaviyo refused the deletion request")
        return RecordResult(record.key, ResultStatus.OK, destination_id=record.destination_id)


# ---------------------------------------------------------------------- helpers


def _json(resp: requests.Response, what: str) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        raise DestinationError(f"klaviyo: {what}: response is not JSON", retryable=True) from None
    if not isinstance(body, dict):
        raise DestinationError(f"klaviyo: {what}: response is not a JSON object", retryable=True)
    return body


def _error_codes(resp: requests.Response) -> list[str]:
    """The JSON:API error codes of a response (never the details: they may hold PII)."""
    try:
        errors = resp.json().get("errors")
    except (ValueError, AttributeError):
        return []
    if not isinstance(errors, list):
        return []
    return [_code(e.get("code")) for e in errors if isinstance(e, Mapping) and e.get("code")]


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    try:
        return float(value)  # Decimal, numpy numbers
    except (TypeError, ValueError):
        return str(value)


def _normalise(ident: str, value: Any) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    if ident == "email":
        return normalise_email(value)
    if ident == "phone_number":
        return normalise_phone(value, None) or str(value).strip()
    return str(value).strip()


def _identifier(record: Record, ident: str) -> str | None:
    return _normalise(ident, record.fields.get(ident))


def _check_identifiers(record: Record) -> str | None:
    """Why a record cannot identify a profile, or None."""
    if not any(_identifier(record, i) for i in IDENTIFIERS):
        return "MISSING_IDENTIFIER: needs an email, phone_number or external_id field"
    return None


def _identifier_index(records: Sequence[Record]) -> dict[tuple[str, str], list[int]]:
    index: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(records):
        for ident in IDENTIFIERS:
            value = _identifier(r, ident)
            if value:
                index.setdefault((ident, value), []).append(i)
    return index


def _match_payload(payload: Any, index: Mapping[tuple[str, str], list[int]]) -> list[int]:
    """Indexes of the records an import error's original_payload names."""
    if not isinstance(payload, Mapping):
        return []
    attrs = payload.get("attributes") if isinstance(payload.get("attributes"), Mapping) else payload
    for ident in IDENTIFIERS:
        value = _normalise(ident, attrs.get(ident))
        if value and (ident, value) in index:
            return list(index[(ident, value)])
    return []


def _assign_ids(items: Sequence[Mapping[str, Any]], records: Sequence[Record],
                ids: Mapping[str, str]) -> dict[str, str]:
    index = _identifier_index(records)
    by_id: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if ids.get(r.key):
            by_id.setdefault(ids[r.key], []).append(i)
    out: dict[str, str] = {}
    for item in items:
        pid = item.get("id")
        if not isinstance(pid, str):
            continue
        hits = list(by_id.get(pid, []))
        attrs = item.get("attributes") or {}
        for ident in IDENTIFIERS:
            value = _normalise(ident, attrs.get(ident))
            if value:
                hits += index.get((ident, value), [])
        for i in hits:
            out.setdefault(records[i].key, pid)
    return out


_FIELD_REASONS = {"email": "INVALID_EMAIL", "phone_number": "INVALID_PHONE", "id": "PROFILE_NOT_FOUND"}


def _reason(code: str, field: str) -> str:
    label = _FIELD_REASONS.get(field) or ("PROFILE_NOT_FOUND" if code == "not_found" else "IMPORT_ERROR")
    return f"{label}: klaviyo import-error code {code}" + (f" on {_code(field)}" if field else "")


def _rejected(record: Record, reason: str) -> RecordResult:
    return RecordResult(record.key, ResultStatus.REJECTED, error=reason)


# ---------------------------------------------------------------------- config


class Config(DestinationConfig):
    type: Literal["klaviyo"]
    api_key_env: str = Field(description="name of the env var holding the private API key (pk_...)")
    base_url: str = Field(DEFAULT_BASE_URL, description="API host; a local sandbox for trials")
    base_url_env: str | None = Field(None, description="env var that overrides base_url")
    revision: str = Field(DEFAULT_REVISION, pattern=r"^\d{4}-\d{2}-\d{2}(\.[a-z]+)?$",
                          description="the required `revision` header")
    requests_per_second: float | None = Field(2.5, gt=0, description="import and list tier: 150/min steady")
    burst: int = Field(10, ge=1)
    deletion_requests_per_second: float | None = Field(1.0, gt=0, description="deletion tier: 60/min steady")
    max_concurrency: int = Field(3, ge=1, le=32)
    poll_interval: float = Field(1.0, gt=0)
    job_timeout: float = Field(900.0, gt=0)
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)


def from_config(name: str, config: Config, *, where: Path, env: Mapping[str, str]) -> KlaviyoDestination:
    api_key = env_value(env, config.api_key_env, name=name, key="api_key_env", where=where)
    base_url = (env.get(config.base_url_env) if config.base_url_env else None) or config.base_url
    if not base_url:
        raise RegistryError(f"{where}: destination '{name}', key 'base_url': no base url")
    return KlaviyoDestination(
        api_key, name=name, base_url=base_url, revision=config.revision, api_key_env=config.api_key_env,
        requests_per_second=config.requests_per_second, burst=config.burst,
        deletion_requests_per_second=config.deletion_requests_per_second,
        max_concurrency=config.max_concurrency, poll_interval=config.poll_interval,
        job_timeout=config.job_timeout, connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout, max_retries=config.max_retries,
    )
