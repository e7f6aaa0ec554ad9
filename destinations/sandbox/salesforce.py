"""Salesforce sandbox: the REST / Bulk API 2.0 subset outflow uses, over real HTTP on 127.0.0.1.

Routes (under /services/data/vXX.X; shapes as the Salesforce REST API and Bulk API 2.0
developer guides give them):
  PATCH  /composite/sobjects/{Contact|Lead}/{ExtIdField}  200 [UpsertResult{id, success, errors, created}]
         in input order; 400 [{"message", "errorCode"}] for more than 200 records (EXCEEDED_ID_LIMIT),
         a record without attributes.type of the URI's object (INVALID_TYPE) or an unknown
         external id field (INVALID_FIELD).
  POST   /composite/sobjects     CampaignMember records -> 200 [SaveResult{id, success, errors}]
  DELETE /composite/sobjects?ids=a,b&allOrNone=false   200 [DeleteResult{id, success, errors}]
  GET    /query?q=SOQL   only the two shapes outflow sends:
         SELECT Id, <ext> FROM <Contact|Lead> WHERE <ext> IN ('a', ...)
         SELECT Id, <ContactId|LeadId> FROM CampaignMember WHERE CampaignId = 'x' AND <..Id> IN ('a', ...)
  Bulk 2.0: POST /jobs/ingest, PUT /jobs/ingest/{id}/batches (text/csv, 201), PATCH /jobs/ingest/{id}
         {"state": "UploadComplete" | "Aborted"}, GET /jobs/ingest/{id}, GET .../successfulResults
         ("sf__Id","sf__Created",columns) and .../failedResults ("sf__Id","sf__Error",columns).

Per-record errors: an invalid Email -> INVALID_EMAIL_ADDRESS (fields ["Email"]); creating a Contact
without LastName (a Lead without LastName or Company) -> REQUIRED_FIELD_MISSING; a second member of
one campaign -> DUPLICATE_VALUE; an unknown campaign -> INVALID_CROSS_REFERENCE_KEY (["CampaignId"]);
a deleted id -> ENTITY_IS_DELETED. error_share: that share of records fails with UNABLE_TO_LOCK_ROW
(not written; Salesforce's transient row-lock error), and that share of query/job calls answers 500.
Auth: `Authorization: Bearer <token>`, else 401 [{"message": "Session expired or invalid",
"errorCode": "INVALID_SESSION_ID"}]. Throttling: 403 [{"errorCode": "REQUEST_LIMIT_EXCEEDED"}]
(never 429). Every answer carries Sforce-Limit-Info: api-usage=N/M.
Bulk jobs are processed at UploadComplete but report InProgress for `bulk_polls_in_progress` polls.
State (inspect under `lock`): records {Id: {...fields}} of Contact/Lead, campaigns {Id: set of
CampaignMember Ids}, members {CampaignMember Id: {"CampaignId", "ContactId"|"LeadId"}}, deleted ids.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from destinations.sandbox.server import Request, Response, SandboxServer, route

V = r"/services/data/v(?P<version>\d{2}\.0)"
MAX_RECORDS = 200
PREFIX = {"Contact": "003", "Lead": "00Q", "CampaignMember": "00v", "Campaign": "701"}
REQUIRED = {"Contact": ("LastName",), "Lead": ("LastName", "Company")}
_EMAIL_OK = re.compile(r"^[^@\s\"<>(),;:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_LITERAL = r"'(?:[^'\\]|\\.)*'"
_IN = rf"\(\s*{_LITERAL}(?:\s*,\s*{_LITERAL})*\s*\)"
_Q_PEOPLE = re.compile(rf"^SELECT Id, (?P<ext>\w+) FROM (?P<obj>Contact|Lead) WHERE (?P=ext) IN (?P<vals>{_IN})$")
_Q_MEMBERS = re.compile(rf"^SELECT Id, (?P<pf>ContactId|LeadId) FROM CampaignMember WHERE CampaignId = "
                        rf"(?P<camp>{_LITERAL}) AND (?P=pf) IN (?P<vals>{_IN})$")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _literals(text: str) -> list[str]:
    out = []
    for lit in re.findall(_LITERAL, text):
        out.append(re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), lit[1:-1]))
    return out


def _err(code: str, message: str, fields: Iterable[str] = ()) -> dict[str, Any]:
    """A per-record error (statusCode, message, fields)."""
    return {"statusCode": code, "message": message, "fields": list(fields)}


def _fail(status: int, code: str, message: str) -> Response:
    """A whole-request error: a JSON array of {message, errorCode}."""
    return Response(status, [{"message": message, "errorCode": code}])


class SalesforceSandbox(SandboxServer):
    def __init__(
        self,
        *,
        token: str = "00Dsandbox!token",
        external_id_fields: Iterable[str] = ("Outflow_Id__c",),
        campaigns: Iterable[str] = (),
        max_records: int = MAX_RECORDS,
        bulk_polls_in_progress: int = 1,
        api_limit: int = 100_000,
        **knobs: Any,
    ):
        super().__init__(**knobs)
        self.token = token
        self.external_id_fields = set(external_id_fields)
        self.max_records = max_records
        self.bulk_polls_in_progress = bulk_polls_in_progress
        self.api_limit = api_limit
        self.records: dict[str, dict[str, Any]] = {}  # Id -> {"type", fields...}
        # (sObject, external id field, value) -> Id, so an upsert finds its record without a scan.
        self._by_external_id: dict[tuple[str, str, Any], str] = {}
        self.members: dict[str, dict[str, str]] = {}
        self.campaigns: dict[str, set[str]] = {}
        self.deleted: set[str] = set()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.creations = 0
        self.api_usage = 0
        self._seq = itertools.count(1)
        for c in campaigns:
            self.create_campaign(c)

    # ---- inspection helpers

    def _new_id(self, sobject: str) -> str:
        return f"{PREFIX[sobject]}Dn{next(self._seq):010d}AAA"

    def create_campaign(self, campaign_id: str | None = None) -> str:
        with self.lock:
            cid = campaign_id or self._new_id("Campaign")
            self.campaigns.setdefault(cid, set())
            return cid

    def by_external_id(self, value: str, field: str = "Outflow_Id__c") -> dict[str, Any] | None:
        with self.lock:
            return next((r for r in self.records.values() if r.get(field) == value), None)

    def campaign_people(self, campaign_id: str) -> set[str]:
        """Ids of the Contacts/Leads that are members of the campaign."""
        with self.lock:
            return {m.get("ContactId") or m.get("LeadId") for mid, m in self.members.items()
                    if m["CampaignId"] == campaign_id}

    # ---- the tool's answers

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _fail(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with self.lock:
            self.api_usage += 1
        return None

    def throttled(self, retry_after: int) -> Response:
        return _fail(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")

    def not_found(self, request: Request) -> Response:
        return _fail(404, "NOT_FOUND", "The requested resource does not exist")

    def dispatch(self, request: Request) -> Response | None:
        response = super().dispatch(request)
        if response is not None and response.status in (400, 404) and isinstance(response.body, dict):
            # The base's own answers (a malformed body, no such route), in Salesforce's shape.
            response = (_fail(400, "JSON_PARSER_ERROR", "The request body could not be parsed")
                        if response.status == 400 else self.not_found(request))
        if response is not None:
            response.headers.setdefault("Sforce-Limit-Info", f"api-usage={self.api_usage}/{self.api_limit}")
        return response

    def _server_error(self) -> Response | None:
        if self.roll(self.error_share):
            return self.refuse("server_error", _fail(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred."))
        return None

    def _lock_error(self) -> dict[str, Any] | None:
        if self._rng.random() < self.error_share:
            self.refused["record_error"] += 1
            return _err("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record")
        return None

    # ---- one record upsert (shared by Collections and Bulk)

    def _upsert_one(self, sobject: str, ext_field: str, fields: dict[str, Any]) -> dict[str, Any]:
        """An UpsertResult for one record; caller holds the lock."""
        ext = fields.get(ext_field)
        if ext in (None, ""):
            return {"id": None, "success": False, "created": False,
                    "errors": [_err("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{ext_field}]",
                                    [ext_field])]}
        lower = {k.lower(): k for k in fields}
        email = fields.get(lower.get("email", ""))
        if email not in (None, "") and not _EMAIL_OK.match(str(email)):
            self.refused["invalid_email"] += 1
            return {"id": None, "success": False, "created": False,
                    "errors": [_err("INVALID_EMAIL_ADDRESS", f"Email: invalid email address: {email}", ["Email"])]}
        lock = self._lock_error()
        if lock:
            return {"id": None, "success": False, "created": False, "errors": [lock]}
        rid = self._by_external_id.get((sobject, ext_field, ext))
        if rid is not None and (rid not in self.records or self.records[rid].get(ext_field) != ext):
            rid = None  # deleted, or its external id changed since
        created = rid is None
        if created:
            merged = {k.lower() for k, v in fields.items() if v not in (None, "")}
            missing = [f for f in REQUIRED[sobject] if f.lower() not in merged]
            if missing:
                return {"id": None, "success": False, "created": False,
                        "errors": [_err("REQUIRED_FIELD_MISSING", f"Required fields are missing: {missing}", missing)]}
            rid = self._new_id(sobject)
            self.records[rid] = {"type": sobject, "Id": rid}
            self.creations += 1
        self.records[rid].update(fields)
        for field in self.external_id_fields & fields.keys():
            self._by_external_id[(sobject, field, fields[field])] = rid
        return {"id": rid, "success": True, "errors": [], "created": created}

    # ---- sObject Collections

    def _too_many(self, n: int) -> Response | None:
        if n > self.max_records:
            return self.refuse("batch_too_large", _fail(
                400, "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {self.max_records} records into this call"))
        return None

    @route("PATCH", V + r"/composite/sobjects/(?P<sobject>\w+)/(?P<ext>\w+)")
    def upsert(self, request: Request) -> Response:
        sobject, ext_field = request.params["sobject"], request.params["ext"]
        if sobject not in REQUIRED:
            return self.refuse("not_found", _fail(404, "NOT_FOUND", "The requested resource does not exist"))
        if ext_field not in self.external_id_fields:
            return self.refuse("bad_request", _fail(
                400, "INVALID_FIELD", f"Field name provided, {ext_field} is not an External ID or indexed field "
                f"for {sobject}"))
        body = request.json()
        records = body["records"]
        refusal = self._too_many(len(records))
        if refusal:
            return refusal
        for rec in records:
            if (rec.get("attributes") or {}).get("type") != sobject or "Id" in rec or "id" in rec:
                return self.refuse("bad_request", _fail(
                    400, "INVALID_TYPE", "Each record needs attributes.type of the URI's object and no Id"))
        if body.get("allOrNone") is not False:
            raise ValueError("outflow always sends allOrNone: false")
        with self.lock:
            return Response(200, [self._upsert_one(sobject, ext_field, {k: v for k, v in rec.items()
                                                                        if k != "attributes"})
                                  for rec in records])

    @route("POST", V + r"/composite/sobjects")
    def create(self, request: Request) -> Response:
        body = request.json()
        records = body["records"]
        refusal = self._too_many(len(records)) or self._server_error()
        if refusal:
            return refusal
        out = []
        with self.lock:
            for rec in records:
                if (rec.get("attributes") or {}).get("type") != "CampaignMember":
                    raise ValueError("this sandbox creates CampaignMember records only")
                campaign = rec.get("CampaignId")
                person = rec.get("ContactId") or rec.get("LeadId")
                pf = "ContactId" if rec.get("ContactId") else "LeadId"
                if campaign not in self.campaigns:
                    out.append({"id": None, "success": False, "errors": [_err(
                        "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["CampaignId"])]})
                    continue
                if person not in self.records:
                    out.append({"id": None, "success": False, "errors": [_err(
                        "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [pf])]})
                    continue
                if any(m["CampaignId"] == campaign and m.get(pf) == person for m in self.members.values()):
                    out.append({"id": None, "success": False,
                                "errors": [_err("DUPLICATE_VALUE", "Already a campaign member.", [])]})
                    continue
                lock = self._lock_error()
                if lock:
                    out.append({"id": None, "success": False, "errors": [lock]})
                    continue
                mid = self._new_id("CampaignMember")
                self.members[mid] = {"CampaignId": campaign, pf: person, "Status": rec.get("Status") or "Sent"}
                self.campaigns[campaign].add(mid)
                out.append({"id": mid, "success": True, "errors": []})
        return Response(200, out)

    @route("DELETE", V + r"/composite/sobjects")
    def delete(self, request: Request) -> Response:
        ids = [i for i in ",".join(request.query.get("ids", [])).split(",") if i]
        if not ids:
            return self.refuse("bad_request", _fail(400, "MALFORMED_QUERY", "ids is required"))
        refusal = self._too_many(len(ids)) or self._server_error()
        if refusal:
            return refusal
        out = []
        with self.lock:
            for rid in ids:
                if rid in self.deleted or not (rid in self.records or rid in self.members):
                    out.append({"id": rid, "success": False,
                                "errors": [_err("ENTITY_IS_DELETED", "entity is deleted", [])]})
                    continue
                lock = self._lock_error()
                if lock:
                    out.append({"id": rid, "success": False, "errors": [lock]})
                    continue
                if rid in self.members:
                    m = self.members.pop(rid)
                    self.campaigns.get(m["CampaignId"], set()).discard(rid)
                else:
                    self.records.pop(rid)
                    for mid in [k for k, m in self.members.items() if rid in (m.get("ContactId"), m.get("LeadId"))]:
                        self.campaigns.get(self.members.pop(mid)["CampaignId"], set()).discard(mid)
                self.deleted.add(rid)
                out.append({"id": rid, "success": True, "errors": []})
        return Response(200, out)

    @route("GET", V + r"/query")
    def query(self, request: Request) -> Response:
        soql = " ".join((request.query.get("q") or [""])[0].split())
        refusal = self._server_error()
        if refusal:
            return refusal
        rows: list[dict[str, Any]] = []
        with self.lock:
            if m := _Q_PEOPLE.match(soql):
                ext, obj, wanted = m["ext"], m["obj"], set(_literals(m["vals"]))
                if ext not in self.external_id_fields:
                    return self.refuse("bad_request", _fail(400, "INVALID_FIELD", f"No such column '{ext}' on "
                                                            f"entity '{obj}'"))
                rows = [{"attributes": {"type": obj, "url": f"/services/data/v{request.params['version']}/sobjects/"
                                        f"{obj}/{rid}"}, "Id": rid, ext: r.get(ext)}
                        for rid, r in self.records.items() if r["type"] == obj and r.get(ext) in wanted]
            elif m := _Q_MEMBERS.match(soql):
                pf, camp, wanted = m["pf"], _literals(m["camp"])[0], set(_literals(m["vals"]))
                rows = [{"attributes": {"type": "CampaignMember", "url": f"/services/data/v{request.params['version']}"
                                        f"/sobjects/CampaignMember/{mid}"}, "Id": mid, pf: mem.get(pf)}
                        for mid, mem in self.members.items() if mem["CampaignId"] == camp and mem.get(pf) in wanted]
            else:
                return self.refuse("bad_request", _fail(400, "MALFORMED_QUERY", "unexpected SOQL for this sandbox"))
        return Response(200, {"totalSize": len(rows), "done": True, "records": rows})

    # ---- Bulk API 2.0 ingest

    def _job_info(self, job: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "operation", "object", "createdById", "createdDate", "systemModstamp", "state",
                "externalIdFieldName", "concurrencyMode", "contentType", "apiVersion", "contentUrl",
                "lineEnding", "columnDelimiter")
        info = {k: job[k] for k in keys if k in job}
        if job["state"] in ("InProgress", "JobComplete", "Failed", "Aborted"):
            info.update(numberRecordsProcessed=job.get("processed", 0), numberRecordsFailed=job.get("failed_n", 0),
                        retries=0, totalProcessingTime=1, jobType="V2Ingest")
        return info

    @route("POST", V + r"/jobs/ingest/?")
    def create_job(self, request: Request) -> Response:
        body = request.json()
        if body.get("operation") != "upsert" or body.get("contentType", "CSV") != "CSV":
            raise ValueError("this sandbox runs CSV upsert jobs only")
        if body["object"] not in REQUIRED or body.get("externalIdFieldName") not in self.external_id_fields:
            return self.refuse("bad_request", _fail(400, "INVALIDJOB", "InvalidJob : External ID was blank or "
                                                    "not an External ID field"))
        refusal = self._server_error()
        if refusal:
            return refusal
        with self.lock:
            jid = f"750Dn{next(self._seq):010d}AAA"
            version = request.params["version"]
            self.jobs[jid] = {
                "id": jid, "operation": "upsert", "object": body["object"], "createdById": "005Dn0000000001AAA",
                "createdDate": _now(), "systemModstamp": _now(), "state": "Open",
                "externalIdFieldName": body["externalIdFieldName"], "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(version),
                "contentUrl": f"services/data/v{version}/jobs/ingest/{jid}/batches",
                "lineEnding": body.get("lineEnding", "LF"), "columnDelimiter": body.get("columnDelimiter", "COMMA"),
                "data": b"", "polls": 0,
            }
            return Response(200, self._job_info(self.jobs[jid]))

    def _job(self, request: Request) -> dict[str, Any] | None:
        return self.jobs.get(request.params["job"])

    @route("PUT", V + r"/jobs/ingest/(?P<job>\w+)/batches/?")
    def upload(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("text/csv"):
            return self.refuse("bad_request", _fail(400, "INVALIDJOB", "Content-Type must be text/csv"))
        with self.lock:
            job = self._job(request)
            if job is None:
                return _fail(404, "NOT_FOUND", "The requested resource does not exist")
            if job["state"] != "Open":
                return _fail(409, "INVALIDJOBSTATE", f"Job is in state {job['state']}")
            job["data"] += request.body
        return Response(201)

    @route("PATCH", V + r"/jobs/ingest/(?P<job>\w+)/?")
    def close_job(self, request: Request) -> Response:
        state = request.json()["state"]
        with self.lock:
            job = self._job(request)
            if job is None:
                return _fail(404, "NOT_FOUND", "The requested resource does not exist")
            if state == "Aborted":
                job["state"] = "Aborted"
            elif state == "UploadComplete":
                if job["state"] != "Open":
                    return _fail(409, "INVALIDJOBSTATE", f"Job is in state {job['state']}")
                self._run_job(job)
                job["state"] = "UploadComplete"
            else:
                raise ValueError(f"unknown state {state}")
            return Response(200, self._job_info(job))

    def _run_job(self, job: dict[str, Any]) -> None:
        """Process the CSV now (caller holds the lock); GET reveals it after some polls."""
        reader = csv.DictReader(io.StringIO(job["data"].decode()))
        columns = list(reader.fieldnames or [])
        ok, failed = [], []
        for row in reader:
            fields = {k: (None if v == "#N/A" else v) for k, v in row.items() if v != ""}
            res = self._upsert_one(job["object"], job["externalIdFieldName"], fields)
            if res["success"]:
                ok.append([res["id"], "true" if res["created"] else "false"] + [row[c] for c in columns])
            else:
                e = res["errors"][0]
                failed.append(["", f"{e['statusCode']}:{e['message']}:{','.join(e['fields'])} --"]
                              + [row[c] for c in columns])
        job.update(columns=columns, ok=ok, failed=failed, processed=len(ok) + len(failed), failed_n=len(failed))

    @route("GET", V + r"/jobs/ingest/(?P<job>\w+)/?")
    def job_info(self, request: Request) -> Response:
        with self.lock:
            job = self._job(request)
            if job is None:
                return _fail(404, "NOT_FOUND", "The requested resource does not exist")
            if job["state"] in ("UploadComplete", "InProgress"):
                job["polls"] += 1
                job["state"] = "InProgress" if job["polls"] <= self.bulk_polls_in_progress else "JobComplete"
            return Response(200, self._job_info(job))

    @route("GET", V + r"/jobs/ingest/(?P<job>\w+)/(?P<kind>successfulResults|failedResults)/?")
    def job_results(self, request: Request) -> Response:
        with self.lock:
            job = self._job(request)
            if job is None or job["state"] != "JobComplete":
                return _fail(404 if job is None else 409, "INVALIDJOBSTATE", "Job is not complete")
            ok = request.params["kind"] == "successfulResults"
            head = ["sf__Id", "sf__Created" if ok else "sf__Error"] + job["columns"]
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
            writer.writerow(head)
            writer.writerows(job["ok"] if ok else job["failed"])
        return Response(200, buf.getvalue().encode(), {"Content-Type": "text/csv"})

    def bulk_job_ids(self) -> list[str]:
        with self.lock:
            return list(self.jobs)

