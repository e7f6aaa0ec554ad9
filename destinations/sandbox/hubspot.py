"""HubSpot sandbox: the CRM v3 subset outflow uses, over real HTTP on 127.0.0.1.

Routes (paths, bodies and answers as hubspot-api-client 12's models describe them):
  POST /crm/v3/objects/contacts/batch/upsert  200 BatchResponseSimplePublicUpsertObject, or 207
       ...WithErrors (results[] + errors[] + numErrors); a whole-batch 400 VALIDATION_ERROR for
       more than 100 inputs, a duplicate id, a missing id/properties, and (invalid_email="400")
       an invalid email.
  POST /crm/v3/objects/contacts/batch/read    by email (idProperty) or by id; 200, or 207 with one
       OBJECT_NOT_FOUND error whose context.ids lists the unknown ids.
  PUT  /crm/v3/lists/{listId}/memberships/add|remove   200 MembershipsUpdateResponse
       (recordsIdsAdded / recordIdsRemoved / recordIdsMissing); 404 for an unknown list; 400 for
       a DYNAMIC list.
  POST /crm/v3/objects/contacts/gdpr-delete   204 (by id, or by email with idProperty=email; an
       unknown email is added to the blocklist); 404 for an unknown id.

Auth: `Authorization: Bearer <token>`, else 401 INVALID_AUTHENTICATION in HubSpot's error shape.
Throttling: 429 {"status":"error","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING",...}
with X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds headers and no Retry-After.

Choices of this sandbox where HubSpot's docs are silent (so tests can reach both paths):
- invalid_email="207" (default) answers an invalid email as one per-record error
  (category VALIDATION_ERROR, errors[0].code INVALID_EMAIL, context.objectWriteTraceId);
  invalid_email="400" fails the whole batch with that error, as HubSpot often does.
- error_share: that share of upsert inputs fails with a per-record INTERNAL_ERROR (not
  written); on the other routes, that share of requests answers 500.
State (inspect under `lock`): contacts {id: {"id","properties","createdAt","updatedAt"}},
emails {email: id}, lists {list_id: {"processingType", "members": set of ids}}, blocklist.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from destinations.sandbox.server import Request, Response, SandboxServer, route

MAX_INPUTS = 100
_EMAIL_OK = re.compile(r"^[^@\s\"<>(),;:]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error shape (contacts `Error` model: message, category, correlationId ...)."""
    return {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category, **extra}


class HubSpotSandbox(SandboxServer):
    def __init__(
        self,
        *,
        token: str = "pat-sandbox-token",
        lists: Iterable[str] = (),
        dynamic_lists: Iterable[str] = (),
        auto_create_lists: bool = False,
        invalid_email: str = "207",
        max_inputs: int = MAX_INPUTS,
        rate_limit_max: int = 100,
        **knobs: Any,
    ):
        super().__init__(**knobs)
        if invalid_email not in ("207", "400"):
            raise ValueError(f"invalid_email must be '207' or '400', got {invalid_email!r}")
        self.token = token
        self.invalid_email = invalid_email
        self.max_inputs = max_inputs
        self.rate_limit_max = rate_limit_max
        self.auto_create_lists = auto_create_lists
        self.contacts: dict[str, dict[str, Any]] = {}
        self.emails: dict[str, str] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self.blocklist: set[str] = set()
        self.creations = 0
        self._ids = itertools.count(101)
        for list_id in lists:
            self.create_list(list_id)
        for list_id in dynamic_lists:
            self.create_list(list_id, processing_type="DYNAMIC")

    # ---- inspection helpers

    def create_list(self, list_id: str | None = None, *, processing_type: str = "MANUAL") -> str:
        with self.lock:
            list_id = str(list_id or (1000 + len(self.lists)))
            self.lists.setdefault(list_id, {"processingType": processing_type, "members": set()})
            return list_id

    def contact_by_email(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            cid = self.emails.get(email.strip().lower())
            return self.contacts.get(cid) if cid else None

    def members(self, list_id: str) -> set[str]:
        with self.lock:
            return set(self.lists[str(list_id)]["members"])

    def member_emails(self, list_id: str) -> set[str]:
        with self.lock:
            return {self.contacts[c]["properties"].get("email") for c in self.lists[str(list_id)]["members"]
                    if c in self.contacts}

    # ---- the tool's answers

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Response(401, _error(
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                "INVALID_AUTHENTICATION"))
        return None

    def throttled(self, retry_after: int) -> Response:
        return Response(429, {
            "status": "error", "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()), "policyName": "TEN_SECONDLY_ROLLING",
            "requestId": str(uuid.uuid4()),
        }, {"X-HubSpot-RateLimit-Max": str(self.rate_limit_max), "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(retry_after * 1000))})

    def _server_error(self) -> Response | None:
        if self.roll(self.error_share):
            return self.refuse("server_error", Response(500, _error("internal error", "INTERNAL_ERROR")))
        return None

    def _too_many(self, n: int) -> Response | None:
        if n > self.max_inputs:
            return self.refuse("batch_too_large", Response(400, _error(
                f"Batch input size must be at most {self.max_inputs}, got {n}", "VALIDATION_ERROR",
                context={"maxInputs": [str(self.max_inputs)]})))
        return None

    @staticmethod
    def _batch_response(results: list[dict], errors: list[dict], started: str) -> Response:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": started,
                                "startedAt": started, "completedAt": _now()}
        if errors:
            body.update(numErrors=len(errors), errors=errors)
            return Response(207, body)
        return Response(200, body)

    @staticmethod
    def _invalid_email_error(email: str, trace: str | None) -> dict[str, Any]:
        detail = ('Property values were not valid: [{"isValid":false,"message":"Email address '
                  f'{email} is invalid","error":"INVALID_EMAIL","name":"email"}}]')
        err = _error(detail, "VALIDATION_ERROR", context={"objectWriteTraceId": [trace]} if trace else {"ids": [email]},
                     links={}, errors=[{"message": f"Email address {email} is invalid", "code": "INVALID_EMAIL",
                                        "context": {"propertyName": ["email"]}}])
        err.pop("correlationId")  # StandardError has no correlationId
        return err

    def _contact(self, cid: str, *, new: bool | None = None, trace: str | None = None,
                 only: Iterable[str] | None = None) -> dict[str, Any]:
        c = self.contacts[cid]
        props = c["properties"] if only is None else {k: c["properties"].get(k) for k in only}
        out = {"id": cid, "properties": {**props, "hs_object_id": cid}, "createdAt": c["createdAt"],
               "updatedAt": c["updatedAt"], "archived": False}
        if new is not None:
            out["new"] = new
        if trace is not None:
            out["objectWriteTraceId"] = trace
        return out

    # ---- routes

    @route("POST", r"/crm/v3/objects/contacts/batch/upsert")
    def upsert(self, request: Request) -> Response:
        started = _now()
        inputs = request.json()["inputs"]
        refusal = self._too_many(len(inputs))
        if refusal:
            return refusal
        ids = []
        for item in inputs:
            if item.get("idProperty") != "email" or not isinstance(item.get("id"), str) \
                    or not isinstance(item.get("properties"), dict):
                return self.refuse("bad_request", Response(400, _error(
                    "Invalid input: each input needs idProperty 'email', an id and properties", "VALIDATION_ERROR")))
            ids.append(item["id"].strip().lower())
        if len(set(ids)) != len(ids):
            return self.refuse("duplicate_ids", Response(400, _error(
                "Duplicate IDs found in batch input", "VALIDATION_ERROR")))
        if self.invalid_email == "400":
            for email in ids:
                if not _EMAIL_OK.match(email):
                    err = self._invalid_email_error(email, None)
                    return self.refuse("invalid_email", Response(400, _error(
                        err["message"], "VALIDATION_ERROR", errors=err["errors"])))
        results, errors = [], []
        with self.lock:
            for item, email in zip(inputs, ids, strict=True):
                trace = item.get("objectWriteTraceId")
                if not _EMAIL_OK.match(email):
                    self.refused["invalid_email"] += 1
                    errors.append(self._invalid_email_error(email, trace))
                    continue
                if self._rng.random() < self.error_share:
                    self.refused["record_error"] += 1
                    err = _error("Something went wrong on our side; try again", "INTERNAL_ERROR",
                                 context={"objectWriteTraceId": [trace]} if trace else {"ids": [email]},
                                 links={}, errors=[])
                    err.pop("correlationId")
                    errors.append(err)
                    continue
                props = {k: ("" if v is None else str(v)) for k, v in item["properties"].items()}
                props["email"] = email
                now = _now()
                cid = self.emails.get(email)
                new = cid is None
                if new:
                    cid = str(next(self._ids))
                    self.contacts[cid] = {"id": cid, "properties": {}, "createdAt": now, "updatedAt": now}
                    self.emails[email] = cid
                    self.creations += 1
                c = self.contacts[cid]
                c["properties"].update(props)
                c["updatedAt"] = now
                results.append(self._contact(cid, new=new, trace=trace, only=list(props)))
        return self._batch_response(results, errors, started)

    @route("POST", r"/crm/v3/objects/contacts/batch/read")
    def read(self, request: Request) -> Response:
        started = _now()
        body = request.json()
        inputs = body["inputs"]
        refusal = self._too_many(len(inputs)) or self._server_error()
        if refusal:
            return refusal
        by_email = body.get("idProperty") == "email"
        wanted = [str(i["id"]) for i in inputs]
        only = list(body.get("properties") or ()) or ["email", "firstname", "lastname"]
        results, missing = [], []
        with self.lock:
            for key in wanted:
                cid = self.emails.get(key.strip().lower()) if by_email else key
                if cid in self.contacts:
                    results.append(self._contact(cid, only=only))
                else:
                    missing.append(key)
        errors = []
        if missing:
            errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                           "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
                                      "Check that ids are valid.",
                           "context": {"ids": missing}, "links": {}, "errors": []})
        return self._batch_response(results, errors, started)

    @route("PUT", r"/crm/v3/lists/(?P<list_id>[^/]+)/memberships/(?P<action>add|remove)")
    def membership(self, request: Request) -> Response:
        record_ids = request.json()
        if not isinstance(record_ids, list):
            raise TypeError("body must be a JSON array of record ids")
        list_id = request.params["list_id"]
        with self.lock:
            if list_id not in self.lists and self.auto_create_lists:
                self.create_list(list_id)
            lst = self.lists.get(list_id)
        if lst is None:
            return self.refuse("list_not_found", Response(404, _error(
                f"List does not exist with ID {list_id}.", "OBJECT_NOT_FOUND")))
        if lst["processingType"] not in ("MANUAL", "SNAPSHOT"):
            return self.refuse("dynamic_list", Response(400, _error(
                f"List {list_id} has processingType {lst['processingType']}; memberships can only be changed "
                "for MANUAL or SNAPSHOT lists", "VALIDATION_ERROR")))
        refusal = self._server_error()
        if refusal:
            return refusal
        added, removed, missing = [], [], []
        with self.lock:
            for rid in (str(r) for r in record_ids):
                if rid not in self.contacts:
                    missing.append(rid)
                elif request.params["action"] == "add":
                    if rid not in lst["members"]:
                        lst["members"].add(rid)
                        added.append(rid)
                elif rid in lst["members"]:
                    lst["members"].discard(rid)
                    removed.append(rid)
        return Response(200, {"recordIdsRemoved": removed, "recordsIdsAdded": added, "recordIdsMissing": missing})

    @route("POST", r"/crm/v3/objects/contacts/gdpr-delete")
    def gdpr_delete(self, request: Request) -> Response:
        body = request.json()
        object_id = str(body["objectId"])
        refusal = self._server_error()
        if refusal:
            return refusal
        with self.lock:
            if body.get("idProperty") == "email":
                email = object_id.strip().lower()
                cid = self.emails.get(email)
                if cid is None:
                    self.blocklist.add(email)
                    return Response(204)
            else:
                cid = object_id
                if cid not in self.contacts:
                    return self.refuse("not_found", Response(404, _error("resource not found", "OBJECT_NOT_FOUND")))
            contact = self.contacts.pop(cid)
            self.emails.pop(contact["properties"].get("email"), None)
            for lst in self.lists.values():
                lst["members"].discard(cid)
        return Response(204)
