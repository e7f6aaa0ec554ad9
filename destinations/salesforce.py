"""Salesforce destination: Contacts or Leads upserted by an external id, campaign membership
as CampaignMember records, deletion by record id; Bulk API 2.0 for large upserts.

Endpoints (REST API, base {instance_url}/services/data/v{api_version}; shapes as the
Salesforce REST and Bulk API 2.0 developer guides give them):
  PATCH  /composite/sobjects/{Object}/{ExtIdField}  {"allOrNone": false, "records": [{"attributes":
         {"type"}, ExtIdField, ...}]}  -> 200 [UpsertResult{id, success, created, errors[{statusCode,
         message, fields}]}] IN INPUT ORDER (<= 200 records per call; 400 for a malformed request)
  POST   /composite/sobjects  {"allOrNone": false, "records": [CampaignMember ...]} -> 200 [SaveResult]
  DELETE /composite/sobjects?ids=a,b&allOrNone=false  -> 200 [DeleteResult{id, success, errors}]
  GET    /query?q=SOQL  -> {totalSize, done, records[], nextRecordsUrl?}
  Bulk 2.0: POST /jobs/ingest, PUT /jobs/ingest/{id}/batches (text/csv), PATCH /jobs/ingest/{id}
         {"state": "UploadComplete"}, poll GET /jobs/ingest/{id} until JobComplete | Failed | Aborted,
         then GET .../successfulResults (sf__Id, sf__Created, columns) and .../failedResults (sf__Id,
         sf__Error, columns), mapped back to records by the external id column.

Operations:
- UPSERT: by `external_id_field`; its value is Record.fields[external_id_field] when the sync maps
  it, else Record.key (the sync's primary key, e.g. profile_id: stable and not PII). Batches of
  `bulk_threshold` records or more (or every batch with `bulk: true`) go through Bulk API 2.0.
- UPDATE: a SOQL lookup by external id first; records Salesforce does not know are REJECTED
  (NOT_FOUND), the rest are upserted (which then only updates).
- DELETE: `DELETE /composite/sobjects?ids=` of Record.destination_id (the id the upsert returned);
  records without one are looked up by external id. Already deleted = OK (goes to the Recycle Bin).
- ADD_MEMBER / REMOVE_MEMBER: Batch.target is the Campaign Id. Salesforce has no lists: membership
  is a CampaignMember record (CampaignId + ContactId or LeadId). ADD looks the people up by external
  id, finds existing members with one SOQL query (so a lost acknowledgement never creates a second
  member; Salesforce also refuses one with DUPLICATE_VALUE), and creates the rest. The result's
  destination_id is the CampaignMember Id: REMOVE deletes those ids, so the engine's stored
  destination_id is all a removal needs.

Throttling: Salesforce never answers 429; an exhausted API allocation is HTTP 403 with
[{"errorCode": "REQUEST_LIMIT_EXCEEDED"}] (the is_throttled hook). An expired or wrong token is
401 INVALID_SESSION_ID: not retryable, the message names the env var. Reasons are Salesforce
statusCodes (INVALID_EMAIL_ADDRESS, DUPLICATE_VALUE ...), never messages (they quote values).
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import requests
from pydantic import Field, model_validator

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
from destinations.registry import DestinationConfig, env_value

API_VERSION = "62.0"
MAX_COLLECTION = 200  # records per sObject Collections call (and ids per DELETE)
MAX_BULK_BATCH = 10_000
DEFAULT_BULK_THRESHOLD = 2_000
# Salesforce limits by API calls per 24 h, not per second: this is our own pacing.
DEFAULT_RPS = 20.0
OPERATIONS = frozenset({Operation.UPSERT, Operation.UPDATE, Operation.DELETE, Operation.DELETE_PERSON,
                        Operation.ADD_MEMBER, Operation.REMOVE_MEMBER})
# statusCodes that a retry of the same data will not change.
PERMANENT = frozenset({
    "INVALID_EMAIL_ADDRESS", "REQUIRED_FIELD_MISSING", "DUPLICATE_VALUE", "DUPLICATES_DETECTED",
    "STRING_TOO_LONG", "INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_TYPE_ON_FIELD_IN_RECORD",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION", "FIELD_INTEGRITY_EXCEPTION", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "MALFORMED_ID", "INVALID_ID_FIELD", "INVALID_CROSS_REFERENCE_KEY", "CANNOT_UPDATE_CONVERTED_LEAD",
    "NUMBER_OUTSIDE_VALID_RANGE", "INVALID_EMPTY_KEY_OWNER", "NOT_FOUND", "INSUFFICIENT_ACCESS_OR_READONLY",
})
GONE = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND"})  # a delete of what is already gone succeeded
TERMINAL = frozenset({"JobComplete", "Failed", "Aborted"})
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_SFID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
CSV_NULL = "#N/A"  # Bulk API 2.0: sets a field to null (an empty cell leaves it unchanged)


# --------------------------------------------------------------------------- helpers


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def _code(value: Any) -> str | None:
    return value if isinstance(value, str) and _CODE.match(value) else None


def error_code(body: Any) -> str:
    """The errorCode of a whole-request error ([{"message", "errorCode", "fields"?}]), never
    the message."""
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, Mapping):
            code = _code(item.get("errorCode")) or _code(item.get("statusCode"))
            if code:
                return code
    return "UNKNOWN_ERROR"


def record_reason(result: Mapping[str, Any]) -> str:
    """statusCode(s) of a per-record result's errors[], never the message (it quotes values)."""
    codes = []
    for err in result.get("errors") or ():
        code = _code(err.get("statusCode")) if isinstance(err, Mapping) else None
        if code and code not in codes:
            codes.append(code)
    return "/".join(codes) or "UNKNOWN_ERROR"


def is_permanent(reason: str) -> bool:
    return any(part in PERMANENT for part in reason.split("/"))


def salesforce_throttled(resp: requests.Response) -> bool | None:
    """Salesforce's throttling signal: 403 with errorCode REQUEST_LIMIT_EXCEEDED (the API
    allocation, or too many concurrent long-running requests). It never sends 429."""
    if resp.status_code != 403:
        return None
    return error_code(_json(resp)) == "REQUEST_LIMIT_EXCEEDED" or None


def field_value(value: Any) -> Any:
    """A JSON value Salesforce takes: dates as ISO strings, None as null (clears the field)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str, separators=(",", ":"))
    return value


def csv_value(value: Any) -> str:
    if value is None:
        return CSV_NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    value = field_value(value)
    return str(value)


def soql_quote(value: str) -> str:
    """A SOQL string literal (backslash escapes, as the SOQL reference lists them)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return f"'{escaped}'"


def _sf_reason(text: str) -> str:
    """'STATUS_CODE' from a Bulk API sf__Error cell ('INVALID_EMAIL_ADDRESS:Email: invalid ...')."""
    head = (text or "").split(":", 1)[0].strip()
    return head if _CODE.match(head) else "UNKNOWN_ERROR"


# --------------------------------------------------------------------------- destination


class SalesforceDestination:
    def __init__(
        self,
        access_token: str,
        *,
        instance_url: str,
        name: str = "salesforce",
        sobject: str = "Contact",
        external_id_field: str = "Outflow_Id__c",
        api_version: str = API_VERSION,
        access_token_env: str | None = None,
        campaign_member_status: str | None = None,
        max_batch_size: int = MAX_COLLECTION,
        bulk: bool = False,
        bulk_threshold: int = DEFAULT_BULK_THRESHOLD,
        bulk_poll_interval: float = 2.0,
        bulk_timeout: float = 600.0,
        requests_per_second: float = DEFAULT_RPS,
        burst: int = 10,
        max_concurrency: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
    ):
        if not instance_url.startswith(("http://", "https://")):
            raise ValueError(f"salesforce {name}: instance_url must start with https:// (or http:// for a sandbox)")
        if not access_token:
            raise ValueError(f"salesforce {name}: access token is empty")
        if sobject not in ("Contact", "Lead"):
            raise ValueError(f"salesforce {name}: object must be Contact or Lead, got {sobject!r}")
        if not _NAME.match(external_id_field):
            raise ValueError(f"salesforce {name}: external_id_field must be a field API name, got {external_id_field!r}")
        if not re.match(r"^\d{2}\.0$", api_version) or float(api_version) < 46:
            raise ValueError(f"salesforce {name}: api_version must look like '62.0' and be >= 46.0 "
                             "(sObject Collections upsert)")
        if not 1 <= max_batch_size <= MAX_BULK_BATCH:
            raise ValueError(f"salesforce {name}: max_batch_size must be between 1 and {MAX_BULK_BATCH}")
        self.name = name
        self.sobject = sobject
        self.external_id_field = external_id_field
        self.instance_url = instance_url.rstrip("/")
        self.base_url = f"{self.instance_url}/services/data/v{api_version}"
        self.campaign_member_status = campaign_member_status
        self.bulk = bulk
        self.bulk_threshold = bulk_threshold
        self.bulk_poll_interval = bulk_poll_interval
        self.bulk_timeout = bulk_timeout
        self._token_hint = (f"the access token in env {access_token_env}" if access_token_env
                            else "the access token")
        self.capabilities = Capabilities(
            operations=OPERATIONS,
            max_batch_size=max_batch_size,
            max_requests_per_second=requests_per_second,
            max_concurrency=max_concurrency,
            async_jobs=bulk or bulk_threshold <= max_batch_size,
        )
        self.client = make_client(
            f"salesforce {name}", requests_per_second=requests_per_second, burst=burst,
            max_concurrency=max_concurrency,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=max_retries,
            backoff_base=backoff_base, backoff_cap=backoff_cap,
            is_throttled=salesforce_throttled, secrets=[access_token],
        )

    # ---- the protocol

    def write(self, batch: Batch) -> list[RecordResult]:
        if batch.operation not in OPERATIONS:
            raise DestinationError(
                f"salesforce {self.name}: {batch.sync}: operation {batch.operation.value} is not supported "
                f"(supported: {', '.join(sorted(o.value for o in OPERATIONS))})", retryable=False)
        records = list(batch.records)
        if batch.operation is Operation.UPSERT and records and (self.bulk or len(records) >= self.bulk_threshold):
            return check_results(batch, self._bulk_upsert(batch, records))
        handler: Callable[[Batch, list[Record]], list[RecordResult]] = {
            Operation.UPSERT: self._upsert,
            Operation.UPDATE: self._update,
            Operation.DELETE: self._delete,
            Operation.DELETE_PERSON: self._delete,  # the Contact/Lead by id or external id
            Operation.ADD_MEMBER: self._add_members,
            Operation.REMOVE_MEMBER: self._remove_members,
        }[batch.operation]
        results: list[RecordResult] = []
        for start in range(0, len(records), MAX_COLLECTION):
            results += handler(batch, records[start : start + MAX_COLLECTION])
        return check_results(batch, results)

    def close(self) -> None:
        self.client.close()

    # ---- plumbing

    def _what(self, batch: Batch) -> str:
        return f"salesforce {self.name}: {batch.sync}/{batch.operation.value}"

    def _call(self, method: str, path: str, what: str, *, json_body: Any = None, body: bytes | None = None,
              params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
              idempotent: bool) -> requests.Response:
        """Send; raise for answers about the whole call (auth, permissions, unknown object or
        field). Returns 2xx, 400 and 409 responses to the caller (409: a Bulk job already in the
        state asked for, e.g. a repeated UploadComplete whose first answer was lost)."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        resp = self.client.request(method, url, json=json_body, body=body, params=params, headers=headers,
                                   idempotent=idempotent)
        status = resp.status_code
        if status < 300 or status in (400, 409):
            return resp
        code = error_code(_json(resp))
        if status == 401:
            raise DestinationError(
                f"{what}: HTTP 401 {code}: Salesforce refused {self._token_hint} (session expired or "
                "invalid); set it to a fresh OAuth access token for this instance_url", retryable=False)
        if status == 403:
            raise DestinationError(
                f"{what}: HTTP 403 {code}: the user of {self._token_hint} may not do this (API Enabled "
                f"permission, and create/edit/delete on {self.sobject} and CampaignMember)", retryable=False)
        if status == 404:
            raise DestinationError(
                f"{what}: HTTP 404 {code}: no such resource; check object {self.sobject!r}, "
                f"external_id_field {self.external_id_field!r} (an External ID field) and api_version",
                retryable=False)
        raise DestinationError(f"{what}: HTTP {status} {code}: unexpected answer", retryable=status >= 500)

    def _results(self, resp: requests.Response, n: int, what: str) -> list[Mapping[str, Any]]:
        """The per-record result array of a 200 collections answer: exactly n items."""
        body = _json(resp)
        if not isinstance(body, list) or len(body) != n or not all(isinstance(i, Mapping) for i in body):
            raise DestinationError(f"{what}: HTTP {resp.status_code}: expected {n} results in order, "
                                   f"got {len(body) if isinstance(body, list) else type(body).__name__}",
                                   retryable=True)
        return body

    def external_id(self, record: Record) -> str:
        value = record.fields.get(self.external_id_field)
        return str(value) if value not in (None, "") else record.key

    # ---- upsert (sObject Collections)

    def _upsert(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        results: list[RecordResult] = []
        for wave in _waves(records, self.external_id):
            results += split_batch_retry(wave, lambda part: self._send_upsert(batch, part),
                                         redactor=self.client.redact)
        return results

    def upsert_body(self, records: Sequence[Record]) -> dict[str, Any]:
        out = []
        for r in records:
            rec: dict[str, Any] = {"attributes": {"type": self.sobject}}
            rec.update({str(k): field_value(v) for k, v in r.fields.items()
                        if str(k).lower() not in ("id", "attributes")})
            rec[self.external_id_field] = self.external_id(r)
            out.append(rec)
        return {"allOrNone": False, "records": out}

    def _send_upsert(self, batch: Batch, records: Sequence[Record]) -> list[RecordResult]:
        what = self._what(batch)
        # Upsert by external id is safe to repeat.
        resp = self._call("PATCH", f"/composite/sobjects/{self.sobject}/{self.external_id_field}", what,
                          json_body=self.upsert_body(records), idempotent=True)
        if resp.status_code == 400:
            code = error_code(_json(resp))
            raise BatchRefused(f"{what}: HTTP 400 {code}", status=400, reason=code)
        return [_to_result(r, item) for r, item in zip(records, self._results(resp, len(records), what), strict=True)]

    # ---- lookups (SOQL)

    def _query(self, soql: str, what: str) -> list[Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = []
        resp = self._call("GET", "/query", what, params={"q": soql}, idempotent=True)
        while True:
            if resp.status_code == 400:
                raise DestinationError(f"{what}: query HTTP 400 {error_code(_json(resp))}: check object "
                                       f"{self.sobject!r} and external_id_field {self.external_id_field!r}",
                                       retryable=False)
            body = _json(resp)
            if not isinstance(body, Mapping):
                raise DestinationError(f"{what}: query answer is not a JSON object", retryable=True)
            rows += [r for r in body.get("records") or () if isinstance(r, Mapping)]
            nxt = body.get("nextRecordsUrl")
            if body.get("done", True) or not nxt:
                return rows
            resp = self._call("GET", f"{self.instance_url}{nxt}", what, idempotent=True)

    def _ids_by_external_id(self, batch: Batch, values: Sequence[str]) -> dict[str, str]:
        """external id -> record Id for those Salesforce knows."""
        what = self._what(batch)
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), MAX_COLLECTION):
            chunk = unique[start : start + MAX_COLLECTION]
            soql = (f"SELECT Id, {self.external_id_field} FROM {self.sobject} WHERE {self.external_id_field} "
                    f"IN ({', '.join(soql_quote(v) for v in chunk)})")
            for row in self._query(soql, what):
                if row.get("Id") and row.get(self.external_id_field) is not None:
                    found[str(row[self.external_id_field])] = str(row["Id"])
        return found

    # ---- update

    def _update(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        known = self._ids_by_external_id(batch, [self.external_id(r) for r in records])
        results = [RecordResult(r.key, ResultStatus.REJECTED, error=f"NOT_FOUND: no {self.sobject} with this "
                                "external id (update mode never creates)")
                   for r in records if self.external_id(r) not in known]
        return results + self._upsert(batch, [r for r in records if self.external_id(r) in known])

    # ---- delete (DELETE /composite/sobjects?ids=)

    def _delete_ids(self, batch: Batch, pairs: list[tuple[Record, str]]) -> list[RecordResult]:
        """Delete by record id; one result per pair, in order."""
        what = self._what(batch)
        if not pairs:
            return []
        resp = self._call("DELETE", "/composite/sobjects", what, idempotent=True,
                          params={"ids": ",".join(i for _, i in pairs), "allOrNone": "false"})
        if resp.status_code == 400:
            code = error_code(_json(resp))
            return [RecordResult(r.key, ResultStatus.RETRYABLE, error=f"{code}: HTTP 400") for r, _ in pairs]
        out = []
        for (r, rid), item in zip(pairs, self._results(resp, len(pairs), what), strict=True):
            reason = record_reason(item)
            if item.get("success") is True or any(p in GONE for p in reason.split("/")):
                out.append(RecordResult(r.key, ResultStatus.OK, destination_id=rid))
            else:
                status = ResultStatus.REJECTED if is_permanent(reason) else ResultStatus.RETRYABLE
                out.append(RecordResult(r.key, status, error=reason))
        return out

    def _delete(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        results: list[RecordResult] = []
        pairs = [(r, str(r.destination_id)) for r in records if r.destination_id and _SFID.match(str(r.destination_id))]
        lookup = [r for r in records if not (r.destination_id and _SFID.match(str(r.destination_id)))]
        if lookup:
            known = self._ids_by_external_id(batch, [self.external_id(r) for r in lookup])
            for r in lookup:
                if self.external_id(r) in known:
                    pairs.append((r, known[self.external_id(r)]))
                else:  # nothing by that id: already gone
                    results.append(RecordResult(r.key, ResultStatus.OK, destination_id=None))
        return results + self._delete_ids(batch, pairs)

    # ---- campaign membership

    def _campaign(self, batch: Batch) -> str:
        if not _SFID.match(batch.target or ""):
            raise DestinationError(
                f"{self._what(batch)}: target {batch.target!r} is not a Salesforce Campaign Id (15 or 18 "
                "characters, e.g. 701...): set the sync's target to the campaign's Id", retryable=False)
        return batch.target

    def _add_members(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        what = self._what(batch)
        campaign = self._campaign(batch)
        person_field = "ContactId" if self.sobject == "Contact" else "LeadId"
        people = self._ids_by_external_id(batch, [self.external_id(r) for r in records])
        results = [RecordResult(r.key, ResultStatus.RETRYABLE, error=f"{self.sobject.upper()}_NOT_FOUND: no "
                                f"{self.sobject} with this external id yet")
                   for r in records if self.external_id(r) not in people]
        wanted = [(r, people[self.external_id(r)]) for r in records if self.external_id(r) in people]
        if not wanted:
            return results
        # Existing members first: a repeat (or a lost answer) never creates a second member.
        person_ids = list(dict.fromkeys(pid for _, pid in wanted))
        soql = (f"SELECT Id, {person_field} FROM CampaignMember WHERE CampaignId = {soql_quote(campaign)} "
                f"AND {person_field} IN ({', '.join(soql_quote(p) for p in person_ids)})")
        members = {str(row[person_field]): str(row["Id"]) for row in self._query(soql, what)
                   if row.get(person_field) and row.get("Id")}
        to_create: dict[str, list[Record]] = {}
        for r, pid in wanted:
            if pid in members:
                results.append(RecordResult(r.key, ResultStatus.OK, destination_id=members[pid]))
            else:
                to_create.setdefault(pid, []).append(r)
        if not to_create:
            return results
        body = self.member_body(campaign, list(to_create), person_field)
        # Not idempotent: HttpClient retries it only when it cannot have landed; a lost answer
        # leaves the records RETRYABLE and the next run finds what landed with the query above.
        resp = self._call("POST", "/composite/sobjects", what, json_body=body, idempotent=False)
        if resp.status_code == 400:
            code = error_code(_json(resp))
            return results + [RecordResult(r.key, ResultStatus.RETRYABLE, error=f"{code}: HTTP 400")
                              for recs in to_create.values() for r in recs]
        items = self._results(resp, len(to_create), what)
        reasons = [record_reason(i) for i in items if i.get("success") is not True]
        if reasons and len(reasons) == len(items) and all("INVALID_CROSS_REFERENCE_KEY" in x for x in reasons) \
                and all("CampaignId" in (e.get("fields") or ()) for i in items for e in i.get("errors") or ()):
            raise DestinationError(f"{what}: INVALID_CROSS_REFERENCE_KEY: Salesforce has no campaign {campaign}; "
                                   "check the sync's target Campaign Id", retryable=False)
        for (pid, recs), item in zip(to_create.items(), items, strict=True):
            if item.get("success") is True and item.get("id"):
                results += [RecordResult(r.key, ResultStatus.OK, destination_id=str(item["id"])) for r in recs]
            else:
                reason = record_reason(item)
                # DUPLICATE_VALUE here is a member created meanwhile: the next run's query finds it.
                status = (ResultStatus.RETRYABLE if reason == "DUPLICATE_VALUE" or not is_permanent(reason)
                          else ResultStatus.REJECTED)
                results += [RecordResult(r.key, status, error=reason) for r in recs]
        return results

    def member_body(self, campaign: str, person_ids: Sequence[str], person_field: str) -> dict[str, Any]:
        records = []
        for pid in person_ids:
            rec: dict[str, Any] = {"attributes": {"type": "CampaignMember"}, "CampaignId": campaign, person_field: pid}
            if self.campaign_member_status:
                rec["Status"] = self.campaign_member_status
            records.append(rec)
        return {"allOrNone": False, "records": records}

    def _remove_members(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        self._campaign(batch)
        results: list[RecordResult] = []
        pairs = []
        for r in records:
            if r.destination_id and _SFID.match(str(r.destination_id)):
                pairs.append((r, str(r.destination_id)))
            else:  # never added by this sync (no CampaignMember id): nothing to remove
                results.append(RecordResult(r.key, ResultStatus.OK))
        return results + self._delete_ids(batch, pairs)

    # ---- Bulk API 2.0

    def bulk_job_body(self) -> dict[str, Any]:
        return {"object": self.sobject, "externalIdFieldName": self.external_id_field, "contentType": "CSV",
                "operation": "upsert", "lineEnding": "LF", "columnDelimiter": "COMMA"}

    def bulk_csv(self, records: Sequence[Record]) -> bytes:
        columns = [self.external_id_field]
        for r in records:
            for k in r.fields:
                k = str(k)
                if k not in columns and k.lower() not in ("id", "attributes"):
                    columns.append(k)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for r in records:
            row = [self.external_id(r)]
            # An absent value is an empty cell (left unchanged); None is #N/A (cleared).
            row += [csv_value(r.fields[c]) if c in r.fields else "" for c in columns[1:]]
            writer.writerow(row)
        return buf.getvalue().encode()

    def _bulk_upsert(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        results: list[RecordResult] = []
        for wave in _waves(records, self.external_id):
            results += self._bulk_job(batch, wave)
        return results

    def _bulk_job(self, batch: Batch, records: list[Record]) -> list[RecordResult]:
        what = f"{self._what(batch)} (bulk)"
        resp = self._call("POST", "/jobs/ingest", what, json_body=self.bulk_job_body(), idempotent=False)
        job = _json(resp)
        if resp.status_code >= 300 or not isinstance(job, Mapping) or not job.get("id"):
            raise DestinationError(f"{what}: job not created: HTTP {resp.status_code} {error_code(job)}",
                                   retryable=resp.status_code != 400)
        job_path = f"/jobs/ingest/{job['id']}"
        try:
            # Not repeated: a second upload would add the rows to the job twice.
            up = self._call("PUT", f"{job_path}/batches", what, body=self.bulk_csv(records),
                            headers={"Content-Type": "text/csv"}, idempotent=False)
            if up.status_code >= 300:
                raise DestinationError(f"{what}: upload refused: HTTP {up.status_code} {error_code(_json(up))}",
                                       retryable=True)
            # A repeat after a lost answer gets 400/409 (already closed): polling tells the truth.
            self._call("PATCH", job_path, what, json_body={"state": "UploadComplete"}, idempotent=True)
        except DestinationError:
            self._abort(job_path, what)
            raise
        info = self._poll(job_path, what)
        if info is None:  # still running: the upsert is idempotent, a later run re-sends
            return [RecordResult(r.key, ResultStatus.RETRYABLE, error="BULK_JOB_RUNNING: job did not finish in "
                                 f"{self.bulk_timeout:g}s") for r in records]
        by_ext: dict[str, list[Record]] = {}
        for r in records:
            by_ext.setdefault(self.external_id(r), []).append(r)
        answered: dict[str, RecordResult] = {}
        for row in self._bulk_rows(f"{job_path}/successfulResults", what):
            for r in by_ext.get(row.get(self.external_id_field, ""), ()):
                answered[r.key] = RecordResult(r.key, ResultStatus.OK, destination_id=row.get("sf__Id") or None)
        for row in self._bulk_rows(f"{job_path}/failedResults", what):
            reason = _sf_reason(row.get("sf__Error", ""))
            status = ResultStatus.REJECTED if is_permanent(reason) else ResultStatus.RETRYABLE
            for r in by_ext.get(row.get(self.external_id_field, ""), ()):
                answered.setdefault(r.key, RecordResult(r.key, status, error=reason))
        state = info.get("state")
        return [answered.get(r.key) or RecordResult(r.key, ResultStatus.RETRYABLE, error=f"BULK_UNPROCESSED: job "
                                                     f"{state}, no result for this record") for r in records]

    def _poll(self, job_path: str, what: str) -> Mapping[str, Any] | None:
        deadline = time.monotonic() + self.bulk_timeout
        while True:
            info = _json(self._call("GET", job_path, what, idempotent=True))
            if isinstance(info, Mapping) and info.get("state") in TERMINAL:
                return info
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.bulk_poll_interval)

    def _bulk_rows(self, path: str, what: str) -> list[dict[str, str]]:
        resp = self._call("GET", path, what, headers={"Accept": "text/csv"}, idempotent=True)
        if resp.status_code >= 300:
            return []
        return list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig"))))

    def _abort(self, job_path: str, what: str) -> None:
        try:
            self._call("PATCH", job_path, what, json_body={"state": "Aborted"}, idempotent=True)
        except DestinationError:
            pass  # an Open job that is never closed is discarded by Salesforce


# --------------------------------------------------------------------------- mapping


def _to_result(record: Record, item: Mapping[str, Any]) -> RecordResult:
    if item.get("success") is True and item.get("id"):
        return RecordResult(record.key, ResultStatus.OK, destination_id=str(item["id"]))
    reason = record_reason(item)
    status = ResultStatus.REJECTED if is_permanent(reason) else ResultStatus.RETRYABLE
    return RecordResult(record.key, status, error=reason)


def _waves(records: Sequence[Record], key: Callable[[Record], str]) -> list[list[Record]]:
    """Rounds in which no external id appears twice (the last one is sent last and wins)."""
    seen: dict[str, int] = {}
    waves: list[list[Record]] = []
    for r in records:
        i = seen.get(key(r), 0)
        seen[key(r)] = i + 1
        if len(waves) <= i:
            waves.append([])
        waves[i].append(r)
    return waves


# --------------------------------------------------------------------------- config


class Config(DestinationConfig):
    type: Literal["salesforce"]
    access_token_env: str = Field(description="env var holding an OAuth access token (Bearer) for instance_url")
    instance_url: str | None = Field(None, description="https://<MyDomain>.my.salesforce.com, or a sandbox URL")
    instance_url_env: str | None = Field(None, description="env var that overrides instance_url")
    object: Literal["Contact", "Lead"] = "Contact"
    external_id_field: str = Field("Outflow_Id__c", pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
                                   description="an External ID field of the object; holds the sync's key")
    api_version: str = Field(API_VERSION, pattern=r"^\d{2}\.0$")
    campaign_member_status: str | None = Field(None, description="Status of new CampaignMembers (campaign default)")
    max_batch_size: int = Field(MAX_COLLECTION, ge=1, le=MAX_BULK_BATCH)
    bulk: bool = Field(False, description="send every upsert batch through Bulk API 2.0")
    bulk_threshold: int = Field(DEFAULT_BULK_THRESHOLD, ge=1, description="upsert batches this large use Bulk 2.0")
    bulk_poll_interval: float = Field(2.0, gt=0)
    bulk_timeout: float = Field(600.0, gt=0)
    requests_per_second: float = Field(DEFAULT_RPS, gt=0, le=100)
    burst: int = Field(10, ge=1, le=200)
    max_concurrency: int = Field(4, ge=1, le=16)
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)

    @model_validator(mode="after")
    def _where(self):
        if not self.instance_url and not self.instance_url_env:
            raise ValueError("instance_url: give an instance_url or an instance_url_env")
        return self


def from_config(name: str, config: Config, *, where: Path, env: Mapping[str, str]) -> SalesforceDestination:
    token = env_value(env, config.access_token_env, name=name, key="access_token_env", where=where)
    instance_url = (env.get(config.instance_url_env) if config.instance_url_env else None) or config.instance_url
    if not instance_url:
        env_value(env, config.instance_url_env, name=name, key="instance_url_env", where=where)
    return SalesforceDestination(
        token, instance_url=instance_url, name=name, sobject=config.object,  # type: ignore[arg-type]
        external_id_field=config.external_id_field, api_version=config.api_version,
        access_token_env=config.access_token_env, campaign_member_status=config.campaign_member_status,
        max_batch_size=config.max_batch_size, bulk=config.bulk, bulk_threshold=config.bulk_threshold,
        bulk_poll_interval=config.bulk_poll_interval, bulk_timeout=config.bulk_timeout,
        requests_per_second=config.requests_per_second, burst=config.burst,
        max_concurrency=config.max_concurrency, connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout, max_retries=config.max_retries,
    )
