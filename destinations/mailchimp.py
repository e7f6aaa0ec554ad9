"""Mailchimp Marketing API v3 destination: audience members, static segments, deletion.

Requests (paths as `mailchimp_marketing.api.lists_api.ListsApi` builds them):
  UPSERT        POST /lists/{list_id}  {"members": [<=500 {email_address, status, merge_fields}],
                                        "update_existing": true}  (batch_list_members)
  UPDATE        PATCH /lists/{list_id}/members/{hash}  {"merge_fields": {...}}  (update_list_member),
                one call per record: the batch endpoint always creates, and UPDATE must not;
                404 -> REJECTED NOT_FOUND.
  DELETE        POST /lists/{list_id}/members/{hash}/actions/delete-permanent
                (delete_list_member_permanent; or, with delete_mode: archive,
                DELETE /lists/{list_id}/members/{hash}); 404 = already gone = OK.
  ADD_MEMBER    the UPSERT call first (a static segment only takes audience members; someone
                who unsubscribed in Mailchimp comes back as COMPLIANCE_STATE and is not added),
                then POST /lists/{list_id}/segments/{segment_id} {"members_to_add": [<=500 emails]}
                (batch_segment_members).
  REMOVE_MEMBER POST /lists/{list_id}/segments/{segment_id} {"members_to_remove": [emails]} when
                the records carry an email; the engine sends removals with the tool id only,
                so those go one by one: DELETE /lists/{list_id}/segments/{segment_id}/members/{hash}
                (remove_segment_member); 404 = not in the segment = OK.

The batch member schema (AddListMembers in Mailchimp's spec) has `status` but no
`status_if_new` (that is a field of the single-member PUT), so UPSERT sends
status 'subscribed'; Mailchimp itself refuses to re-subscribe someone who unsubscribed
(per-record COMPLIANCE_STATE), which keeps their opt-out.

Target (Batch.target, the sync's `object`):
  '<list_id>'               member operations (UPSERT, UPDATE, DELETE)
  '<list_id>/<segment_id>'  any operation; membership operations need the segment
  '<segment_id>'            when Config.list_id is set (membership); member operations
                            then use Config.list_id whatever the target names.

Results: destination_id is the member id Mailchimp returns, the subscriber hash
md5(lower(email)), so removals and deletes work from it alone. Per-record errors inside
the 200 (`errors[]`, matched back by email) become REJECTED or RETRYABLE with a reason
made only of the error_code and a class (e.g. 'ERROR_GENERIC: INVALID_EMAIL'): never the
message, which quotes the email. Merge field keys are sent upper-cased (merge tags are
FNAME, LNAME ...). Throttling: 429 (more than 10 simultaneous connections), so
max_concurrency is capped at 10; errors are application/problem+json.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import requests
from pydantic import Field, field_validator

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
from destinations.registry import DestinationConfig, RegistryError, env_value

MAX_BATCH = 500  # members per batch subscribe; emails per segment array
MAX_CONNECTIONS = 10  # Mailchimp answers 429 beyond 10 simultaneous connections per key
_DC = re.compile(r"-([a-z]{2,4}\d{1,3})$")


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: hex MD5 of the lower-cased email (trimmed first)."""
    return hashlib.md5(str(email).strip().lower().encode("utf-8")).hexdigest()  # noqa: S324 - the API's key, not security


def base_url_from_key(api_key: str) -> str | None:
    """https://<dc>.api.mailchimp.com/3.0 from a key ending in -<dc> (e.g. -us19)."""
    m = _DC.search(api_key.strip())
    return f"https://{m.group(1)}.api.mailchimp.com/3.0" if m else None


# --------------------------------------------------------------------------- request bodies


def merge_fields(fields: Mapping[str, Any], email_field: str) -> dict[str, Any]:
    """Every mapped field except the email, keyed by merge tag (upper case); None clears."""
    out = {}
    for k, v in fields.items():
        if k == email_field or k in ("email", "email_address"):
            continue
        out[str(k).upper()] = "" if v is None else v
    return out


def subscribe_body(members: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """batch_list_members body: (email, merge fields) pairs, every one 'subscribed'."""
    return {
        "members": [
            {"email_address": email, "status": "subscribed", **({"merge_fields": dict(mf)} if mf else {})}
            for email, mf in members
        ],
        "update_existing": True,
    }


def segment_body(*, add: Sequence[str] = (), remove: Sequence[str] = ()) -> dict[str, list[str]]:
    body: dict[str, list[str]] = {}
    if add:
        body["members_to_add"] = list(add)
    if remove:
        body["members_to_remove"] = list(remove)
    return body


# --------------------------------------------------------------------------- error mapping

_CLASSES: tuple[tuple[str, str, ResultStatus], ...] = (
    # (substring of Mailchimp's message, class, status); order matters
    ("fake or invalid", "INVALID_EMAIL", ResultStatus.REJECTED),
    ("valid email", "INVALID_EMAIL", ResultStatus.REJECTED),
    ("invalid email", "INVALID_EMAIL", ResultStatus.REJECTED),
    ("permanently deleted", "FORGOTTEN_EMAIL", ResultStatus.REJECTED),
    ("compliance state", "COMPLIANCE_STATE", ResultStatus.REJECTED),
    ("signed up to a lot of lists", "SIGNUP_THROTTLED", ResultStatus.RETRYABLE),
    ("try again", "TRY_AGAIN", ResultStatus.RETRYABLE),
    ("already a list member", "CONTACT_EXISTS", ResultStatus.REJECTED),
    ("not a list member", "NOT_ON_LIST", ResultStatus.REJECTED),
    ("do not belong", "NOT_ON_LIST", ResultStatus.REJECTED),
)


def _token(text: Any, limit: int = 40) -> str:
    """An identifier-like token (A-Z, 0-9, _) from a title or field name: never free text."""
    return re.sub(r"[^A-Z0-9]+", "_", str(text or "").upper()).strip("_")[:limit]


def classify(error_code: str | None, message: str | None, field: str | None = None) -> tuple[ResultStatus, str]:
    """(status, reason) for one per-record error. The reason holds codes only: Mailchimp's
    messages quote the email, so they are read here and never passed on."""
    code = _token(error_code) or "ERROR"
    text = str(message or "").lower()
    for needle, cls, status in _CLASSES:
        if needle in text:
            return status, f"{code}: {cls}"
    if code == "ERROR_CONTACT_EXISTS":
        return ResultStatus.REJECTED, f"{code}: CONTACT_EXISTS"
    if field and _token(field) not in ("", "EMAIL_ADDRESS"):
        return ResultStatus.REJECTED, f"{code}: MERGE_FIELD {_token(field)}"
    return ResultStatus.REJECTED, f"{code}: OTHER"


def _problem(resp: requests.Response) -> tuple[str, str]:
    """(TITLE_TOKEN, detail) of an application/problem+json answer (detail is not passed on)."""
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP_{resp.status_code}", ""
    if not isinstance(body, Mapping):
        return f"HTTP_{resp.status_code}", ""
    return _token(body.get("title")) or f"HTTP_{resp.status_code}", str(body.get("detail") or "")


# --------------------------------------------------------------------------- destination


class MailchimpDestination:
    def __init__(
        self,
        api_key: str,
        *,
        name: str = "mailchimp",
        base_url: str | None = None,
        list_id: str | None = None,
        email_field: str = "email",
        delete_mode: str = "permanent",
        max_concurrency: int = MAX_CONNECTIONS,
        requests_per_second: float | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        api_key_env: str | None = None,
    ):
        where = f" (from env {api_key_env})" if api_key_env else ""
        if not api_key:
            raise ValueError(f"mailchimp {name}: the API key{where} is empty")
        url = base_url or base_url_from_key(api_key)
        if not url:
            raise ValueError(
                f"mailchimp {name}: the API key{where} does not end in -<dc> (e.g. -us19), "
                "so the data centre is unknown; fix the key or set base_url"
            )
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"mailchimp {name}: base_url must start with http:// or https://")
        if not 1 <= max_concurrency <= MAX_CONNECTIONS:
            raise ValueError(f"mailchimp {name}: max_concurrency must be 1..{MAX_CONNECTIONS} (Mailchimp's connection limit)")
        if delete_mode not in ("permanent", "archive"):
            raise ValueError(f"mailchimp {name}: delete_mode must be 'permanent' or 'archive'")
        self.name = name
        self.base_url = url.rstrip("/")
        self.list_id = list_id
        self.email_field = email_field
        self.delete_mode = delete_mode
        self._auth_hint = f"check the API key in env {api_key_env}" if api_key_env else "check the API key"
        self.capabilities = Capabilities(
            operations=frozenset({Operation.UPSERT, Operation.UPDATE, Operation.DELETE, Operation.DELETE_PERSON,
                                  Operation.ADD_MEMBER, Operation.REMOVE_MEMBER}),
            max_batch_size=MAX_BATCH,
            max_requests_per_second=requests_per_second,
            max_concurrency=max_concurrency,
        )
        token = base64.b64encode(f"anystring:{api_key}".encode()).decode()
        self.client = make_client(
            f"mailchimp {name}", requests_per_second=requests_per_second, max_concurrency=max_concurrency,
            headers={"Authorization": f"Basic {token}", "Accept": "application/json, application/problem+json"},
            connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=max_retries,
            backoff_base=backoff_base, backoff_cap=backoff_cap,
            is_throttled=is_throttled, secrets=[api_key],
        )

    # ---- target

    def _target(self, batch: Batch) -> tuple[str, str | None]:
        """(list_id, segment_id or None) for this batch; see the module docstring."""
        target = (batch.target or "").strip().strip("/")
        membership = batch.operation in (Operation.ADD_MEMBER, Operation.REMOVE_MEMBER)
        what = f"mailchimp {self.name}: {batch.sync}: target {batch.target!r}"
        parts = [p for p in target.split("/") if p] if target else []
        if len(parts) > 2:
            raise DestinationError(f"{what}: use '<list_id>' or '<list_id>/<segment_id>'", retryable=False)
        if self.list_id:
            if len(parts) == 2 and parts[0] != self.list_id:
                raise DestinationError(f"{what}: names list {parts[0]!r} but list_id is {self.list_id!r}", retryable=False)
            seg = parts[-1] if parts and parts[-1] != self.list_id else None
            list_id = self.list_id
        else:
            if not parts:
                raise DestinationError(f"{what}: empty; name the audience ('<list_id>') or set list_id", retryable=False)
            list_id, seg = parts[0], (parts[1] if len(parts) == 2 else None)
        if membership and not seg:
            raise DestinationError(
                f"{what}: membership needs a static segment: '<list_id>/<segment_id>' "
                "(or '<segment_id>' with list_id set)", retryable=False)
        return list_id, seg

    # ---- write

    def write(self, batch: Batch) -> list[RecordResult]:
        if batch.operation not in self.capabilities.operations:
            raise DestinationError(
                f"mailchimp {self.name}: operation {batch.operation.value} is not supported "
                f"(supported: {', '.join(sorted(o.value for o in self.capabilities.operations))})",
                retryable=False)
        records = list(batch.records)
        if not records:
            return []
        list_id, seg = self._target(batch)
        op = batch.operation
        results: list[RecordResult] = []
        for start in range(0, len(records), MAX_BATCH):  # the engine batches at 500; be safe anyway
            chunk = records[start : start + MAX_BATCH]
            if op is Operation.UPSERT:
                results += self._subscribe(batch, list_id, chunk)
            elif op is Operation.ADD_MEMBER:
                results += self._add_to_segment(batch, list_id, seg, chunk)  # type: ignore[arg-type]
            elif op is Operation.REMOVE_MEMBER:
                results += self._remove_from_segment(batch, list_id, seg, chunk)  # type: ignore[arg-type]
            elif op is Operation.UPDATE:
                results += self._each(chunk, lambda r: self._update_one(batch, list_id, r))
            elif op is Operation.DELETE_PERSON:  # a privacy deletion is permanent whatever delete_mode says
                results += self._each(chunk, lambda r: self._delete_one(batch, list_id, r, permanent=True))
            else:
                results += self._each(chunk, lambda r: self._delete_one(batch, list_id, r))
        return check_results(batch, results)

    def prepare(self, batch: Batch) -> list[RecordResult]:
        """The subscriber hash each member will have (Mailchimp's member id), computed locally."""
        out = []
        for r in batch.records:
            email = self._email(r)
            out.append(RecordResult(r.key, ResultStatus.OK, destination_id=subscriber_hash(email)) if email
                       else RecordResult(r.key, ResultStatus.REJECTED, error="MISSING_EMAIL: no email to subscribe"))
        return out

    def close(self) -> None:
        self.client.close()

    # ---- helpers

    def _email(self, record: Record) -> str | None:
        f = record.fields
        value = f.get(self.email_field) if self.email_field in f else f.get("email_address")
        return normalise_email(value) if isinstance(value, str) else None

    def _hash(self, record: Record) -> str | None:
        email = self._email(record)
        if email:
            return subscriber_hash(email)
        return record.destination_id or None

    def _what(self, batch: Batch) -> str:
        return f"mailchimp {self.name}: {batch.sync}/{batch.operation.value}"

    def _fail_whole(self, batch: Batch, resp: requests.Response, *, refusable: bool) -> None:
        """Raise for a non-2xx answer to a whole request (never returns)."""
        title, _ = _problem(resp)
        what = f"{self._what(batch)}: HTTP {resp.status_code} {title}"
        if resp.status_code in (401, 403):
            raise DestinationError(f"{what}: Mailchimp refused the credentials; {self._auth_hint} "
                                   "(and that its -<dc> suffix matches the account)", retryable=False)
        if resp.status_code == 404:
            raise DestinationError(f"{what}: the audience or segment does not exist; check the sync's "
                                   "object (list id / segment id) and list_id", retryable=False)
        if refusable and resp.status_code in (400, 413, 422):
            raise BatchRefused(what, status=resp.status_code, reason=title)
        raise DestinationError(f"{what}: unexpected answer", retryable=False)

    def _json(self, batch: Batch, resp: requests.Response) -> Mapping[str, Any]:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, Mapping):
            raise DestinationError(f"{self._what(batch)}: 200 response body is not a JSON object", retryable=True)
        return body

    @staticmethod
    def _rounds(items: list[tuple[Record, str]]) -> list[list[tuple[Record, str]]]:
        """Split so no email appears twice in one call (the answer is matched by email)."""
        rounds: list[list[tuple[Record, str]]] = []
        seen: list[set[str]] = []
        for rec, email in items:
            for i, emails in enumerate(seen):
                if email not in emails:
                    emails.add(email)
                    rounds[i].append((rec, email))
                    break
            else:
                seen.append({email})
                rounds.append([(rec, email)])
        return rounds

    def _with_emails(self, records: Sequence[Record]) -> tuple[list[tuple[Record, str]], list[RecordResult]]:
        ok, missing = [], []
        for r in records:
            email = self._email(r)
            if email:
                ok.append((r, email))
            else:
                missing.append(RecordResult(r.key, ResultStatus.REJECTED,
                                            error=f"MISSING_EMAIL: no '{self.email_field}' value to send"))
        return ok, missing

    # ---- UPSERT: batch subscribe

    def _subscribe(self, batch: Batch, list_id: str, records: Sequence[Record]) -> list[RecordResult]:
        items, results = self._with_emails(records)
        for rnd in self._rounds(items):
            by_key = {rec.key: email for rec, email in rnd}
            results += split_batch_retry(
                [rec for rec, _ in rnd],
                lambda part: self._subscribe_call(batch, list_id, [(r, by_key[r.key]) for r in part]),
                redactor=self.client.redact,
            )
        return results

    def _subscribe_call(self, batch: Batch, list_id: str, items: list[tuple[Record, str]]) -> list[RecordResult]:
        body = subscribe_body([(email, merge_fields(r.fields, self.email_field)) for r, email in items])
        resp = self.client.request("POST", f"{self.base_url}/lists/{list_id}", json=body, idempotent=True)
        if resp.status_code != 200:
            self._fail_whole(batch, resp, refusable=True)
        data = self._json(batch, resp)
        done: set[str] = set()
        for m in list(data.get("new_members") or []) + list(data.get("updated_members") or []):
            if isinstance(m, Mapping) and isinstance(m.get("email_address"), str):
                done.add(subscriber_hash(m["email_address"]))
        errors: dict[str, tuple[ResultStatus, str]] = {}
        for e in data.get("errors") or []:
            if isinstance(e, Mapping) and isinstance(e.get("email_address"), str):
                errors[subscriber_hash(e["email_address"])] = classify(e.get("error_code"), e.get("error"), e.get("field"))
        out = []
        for r, email in items:
            h = subscriber_hash(email)
            if h in errors:
                status, reason = errors[h]
                out.append(RecordResult(r.key, status, error=reason))
            elif h in done:
                out.append(RecordResult(r.key, ResultStatus.OK, destination_id=h))
            else:
                out.append(RecordResult(r.key, ResultStatus.RETRYABLE,
                                        error="NOT_IN_RESPONSE: Mailchimp neither confirmed nor refused this member"))
        return out

    # ---- membership

    def _segment_call(self, batch: Batch, list_id: str, seg: str, *, add: list[str] = (), remove: list[str] = ()
                      ) -> tuple[set[str], dict[str, tuple[ResultStatus, str]]]:
        """(hashes confirmed, {hash: (status, reason)} for errors) of one segment batch call."""
        resp = self.client.request("POST", f"{self.base_url}/lists/{list_id}/segments/{seg}",
                                   json=segment_body(add=add, remove=remove), idempotent=True)
        if resp.status_code != 200:
            self._fail_whole(batch, resp, refusable=True)
        data = self._json(batch, resp)
        key = "members_added" if add else "members_removed"
        done = {subscriber_hash(m["email_address"]) for m in data.get(key) or []
                if isinstance(m, Mapping) and isinstance(m.get("email_address"), str)}
        errors: dict[str, tuple[ResultStatus, str]] = {}
        for e in data.get("errors") or []:
            if not isinstance(e, Mapping):
                continue
            verdict = classify("SEGMENT_ERROR", e.get("error"))
            for email in e.get("email_addresses") or []:
                if isinstance(email, str):
                    errors[subscriber_hash(email)] = verdict
        return done, errors

    def _add_to_segment(self, batch: Batch, list_id: str, seg: str, records: Sequence[Record]) -> list[RecordResult]:
        # A static segment only holds audience members: subscribe (update) them first.
        subscribed = self._subscribe(batch, list_id, records)
        out = [r for r in subscribed if r.status is not ResultStatus.OK]
        ok_keys = {r.key for r in subscribed if r.status is ResultStatus.OK}
        items = [(r, self._email(r)) for r in records if r.key in ok_keys]
        for rnd in self._rounds(items):  # type: ignore[arg-type]
            out += split_batch_retry(
                [rec for rec, _ in rnd],
                lambda part: self._segment_results(batch, list_id, seg, part, add=True),
                redactor=self.client.redact,
            )
        return out

    def _segment_results(self, batch: Batch, list_id: str, seg: str, part: Sequence[Record], *, add: bool
                         ) -> list[RecordResult]:
        emails = [self._email(r) for r in part]
        done, errors = self._segment_call(batch, list_id, seg, **({"add": emails} if add else {"remove": emails}))
        out = []
        for r, email in zip(part, emails, strict=True):
            h = subscriber_hash(email)  # type: ignore[arg-type]
            if h in done:
                out.append(RecordResult(r.key, ResultStatus.OK, destination_id=h))
            elif h in errors:
                status, reason = errors[h]
                if not add and reason.endswith("NOT_ON_LIST"):
                    out.append(RecordResult(r.key, ResultStatus.OK, destination_id=h))  # already gone
                else:
                    out.append(RecordResult(r.key, status, error=reason))
            elif add:
                out.append(RecordResult(r.key, ResultStatus.RETRYABLE,
                                        error="NOT_IN_RESPONSE: Mailchimp neither confirmed nor refused this member"))
            else:  # emails not in the segment are ignored: it is not there, which is what we want
                out.append(RecordResult(r.key, ResultStatus.OK, destination_id=h))
        return out

    def _remove_from_segment(self, batch: Batch, list_id: str, seg: str, records: Sequence[Record]) -> list[RecordResult]:
        with_email = [r for r in records if self._email(r)]
        by_id = [r for r in records if not self._email(r)]
        out: list[RecordResult] = []
        for rnd in self._rounds([(r, self._email(r)) for r in with_email]):  # type: ignore[misc]
            out += split_batch_retry(
                [rec for rec, _ in rnd],
                lambda part: self._segment_results(batch, list_id, seg, part, add=False),
                redactor=self.client.redact,
            )
        out += self._each(by_id, lambda r: self._remove_one(batch, list_id, seg, r))
        return out

    # ---- one call per record

    def _each(self, records: Sequence[Record], one: Callable[[Record], RecordResult]) -> list[RecordResult]:
        """one(record) for each; after a retryable failure (outage, throttling past the
        retries) the rest are marked RETRYABLE without being tried."""
        out: list[RecordResult] = []
        for i, r in enumerate(records):
            try:
                out.append(one(r))
            except DestinationError as exc:
                if not exc.retryable:
                    raise
                reason = self.client.redact(str(exc))
                out += [RecordResult(x.key, ResultStatus.RETRYABLE, error=reason) for x in records[i:]]
                break
        return out

    def _single(self, batch: Batch, record: Record, resp: requests.Response, h: str, *, missing_ok: bool
                ) -> RecordResult:
        if 200 <= resp.status_code < 300:
            return RecordResult(record.key, ResultStatus.OK, destination_id=h)
        if resp.status_code == 404:
            if missing_ok:
                return RecordResult(record.key, ResultStatus.OK, destination_id=h)
            return RecordResult(record.key, ResultStatus.REJECTED, error="NOT_FOUND: no such member in the audience")
        if resp.status_code in (401, 403):
            self._fail_whole(batch, resp, refusable=False)
        title, detail = _problem(resp)
        status, reason = classify(title, detail)
        return RecordResult(record.key, status, error=f"HTTP_{resp.status_code} {reason}")

    def _no_id(self, record: Record) -> RecordResult:
        return RecordResult(record.key, ResultStatus.REJECTED,
                            error=f"MISSING_ID: neither '{self.email_field}' nor a destination id to address the member")

    def _update_one(self, batch: Batch, list_id: str, record: Record) -> RecordResult:
        h = self._hash(record)
        if not h:
            return self._no_id(record)
        body = {"merge_fields": merge_fields(record.fields, self.email_field)}
        resp = self.client.request("PATCH", f"{self.base_url}/lists/{list_id}/members/{h}", json=body, idempotent=True)
        return self._single(batch, record, resp, h, missing_ok=False)

    def _delete_one(self, batch: Batch, list_id: str, record: Record, *, permanent: bool = False) -> RecordResult:
        h = self._hash(record)
        if not h:
            return self._no_id(record)
        if self.delete_mode == "archive" and not permanent:
            resp = self.client.request("DELETE", f"{self.base_url}/lists/{list_id}/members/{h}")
        else:
            resp = self.client.request(
                "POST", f"{self.base_url}/lists/{list_id}/members/{h}/actions/delete-permanent", idempotent=True)
        return self._single(batch, record, resp, h, missing_ok=True)

    def _remove_one(self, batch: Batch, list_id: str, seg: str, record: Record) -> RecordResult:
        h = record.destination_id
        if not h:
            return self._no_id(record)
        resp = self.client.request("DELETE", f"{self.base_url}/lists/{list_id}/segments/{seg}/members/{h}")
        return self._single(batch, record, resp, h, missing_ok=True)


def is_throttled(resp: requests.Response) -> bool:
    """Mailchimp throttles with 429 (the client knows that one); a problem document titled
    'Too Many Requests' under another status is taken the same way."""
    if resp.status_code == 429:
        return True
    if "problem+json" not in resp.headers.get("Content-Type", "") or resp.status_code < 400:
        return False
    title, _ = _problem(resp)
    return title == "TOO_MANY_REQUESTS"


# --------------------------------------------------------------------------- config


class Config(DestinationConfig):
    type: Literal["mailchimp"]
    api_key_env: str = Field(description="env var holding the API key ('<key>-<dc>')")
    base_url: str | None = Field(None, description="override https://<dc>.api.mailchimp.com/3.0 (a sandbox)")
    list_id: str | None = Field(None, description="the audience; then a sync's object may be a segment id alone")
    email_field: str = Field("email", description="the mapped field that holds the email")
    delete_mode: Literal["permanent", "archive"] = "permanent"
    max_concurrency: int = Field(MAX_CONNECTIONS, ge=1, le=MAX_CONNECTIONS)
    requests_per_second: float | None = Field(None, gt=0)
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (e.g. https://us19.api.mailchimp.com/3.0)")
        return v


def from_config(name: str, config: Config, *, where: Path, env: Mapping[str, str]) -> MailchimpDestination:
    api_key = env_value(env, config.api_key_env, name=name, key="api_key_env", where=where)
    if not config.base_url and not base_url_from_key(api_key):
        raise RegistryError(
            f"{where}: destination '{name}', key 'api_key_env': the key in {config.api_key_env} does not end "
            "in -<dc> (e.g. -us19); fix it or set base_url")
    return MailchimpDestination(
        api_key, name=name, base_url=config.base_url, list_id=config.list_id, email_field=config.email_field,
        delete_mode=config.delete_mode, max_concurrency=config.max_concurrency,
        requests_per_second=config.requests_per_second, connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout, max_retries=config.max_retries, api_key_env=config.api_key_env,
    )
