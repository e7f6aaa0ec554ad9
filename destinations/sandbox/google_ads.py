"""Google Ads sandbox: the Customer Match subset of the REST interface outflow uses (v26).

Routes (bodies and answers in the JSON form of google-ads 34.0.0's proto-plus messages):
  POST /v26/customers/{cid}/offlineUserDataJobs:create    -> {"resourceName"}; 400 INVALID_USER_LIST_ID
       for a list that is not a Customer Match list of this customer.
  POST /v26/customers/{cid}/offlineUserDataJobs/{id}:addOperations -> {} or {"partialFailureError": Status}
       (enablePartialFailure); without it, any bad operation fails the whole request (400). More than
       `max_identifiers` (100,000) identifiers in a request: 400 TOO_MANY_USER_IDENTIFIERS; a user with
       more than 20, an identifier not 64 hex (INVALID_SHA256_FORMAT), a bad countryCode
       (INVALID_COUNTRY_CODE) or none (MISSING_USER_IDENTIFIER) fails that operation.
       Operations on a job already run: 400 JOB_ALREADY_STARTED.
  POST /v26/customers/{cid}/offlineUserDataJobs/{id}:run  -> google.longrunning.Operation {"name"};
       400 JOB_ALREADY_STARTED when run twice.
  POST /v26/customers/{cid}/googleAds:search  (GAQL on offline_user_data_job by resource_name)
       -> {"results": [{"offlineUserDataJob": {...status...}}], "fieldMask"}. A job runs PENDING ->
       RUNNING -> SUCCESS: it is applied (its operations, in order) on the `polls_to_finish`th poll
       after :run; `fail_jobs=True` ends jobs FAILED without applying them.

Errors: {"error": {"code", "message", "status", "details": [GoogleAdsFailure]}}. Auth: a wrong or
missing Bearer token -> 401 UNAUTHENTICATED (authenticationError OAUTH_TOKEN_INVALID); no
developer-token -> 400 INVALID_ARGUMENT (requestError DEVELOPER_TOKEN_PARAMETER_MISSING); a wrong one
-> 401 (authenticationError DEVELOPER_TOKEN_INVALID). Throttling: 429 RESOURCE_EXHAUSTED (quotaError
RESOURCE_EXHAUSTED, QuotaErrorDetails.retryDelay "Ns"), no Retry-After header. error_share: that share
of requests answers 500 INTERNAL before doing anything.
State (inspect under `lock`): user_lists {list id: set of identifiers}, where an identifier is
("hashedEmail", hex) | ("hashedPhoneNumber", hex) | ("addressInfo", (fn, ln, cc, postal)); jobs.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterable
from typing import Any

from destinations.sandbox.server import Request, Response, SandboxServer, route

VERSION = "v26"
FAILURE_TYPE = f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"
MAX_IDENTIFIERS = 100_000
MAX_PER_USER = 20
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_QUERY_JOB = re.compile(r"offline_user_data_job\.resource_name\s*=\s*'([^']+)'")
HASHED = ("hashedEmail", "hashedPhoneNumber")
_PREFIX = rf"/{VERSION}/customers/(?P<cid>\d+)"


def google_error(code: int, status: str, message: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status,
                      "details": [{"@type": FAILURE_TYPE, "errors": errors, "requestId": uuid.uuid4().hex[:22]}]}}


def ads_error(family: str, name: str, message: str, *, index: int | None = None,
              path: Iterable[dict[str, Any]] = (), details: dict[str, Any] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"errorCode": {family: name}, "message": message}
    if index is not None:
        err["location"] = {"fieldPathElements": [{"fieldName": "operations", "index": index}, *path]}
    if details:
        err["details"] = details
    return err


class GoogleAdsSandbox(SandboxServer):
    def __init__(
        self,
        *,
        customer_id: str = "1234567890",
        access_token: str = "ya29.sandbox-token",
        developer_token: str = "dev-sandbox-token",
        user_lists: Iterable[str] = (),
        max_identifiers: int = MAX_IDENTIFIERS,
        polls_to_finish: int = 2,
        fail_jobs: bool = False,
        **knobs: Any,
    ):
        super().__init__(**knobs)
        self.customer_id = customer_id
        self.access_token = access_token
        self.developer_token = developer_token
        self.max_identifiers = max_identifiers
        self.polls_to_finish = polls_to_finish
        self.fail_jobs = fail_jobs
        self.user_lists: dict[str, set[tuple[str, Any]]] = {str(u): set() for u in user_lists}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.applied_jobs = 0
        # Most jobs RUNNING on one list at the same time (inspectable): Google asks that a list is
        # not modified by concurrent jobs, so a well-behaved client keeps this at 1.
        self.max_running_per_list = 0
        self.polls_seen = 0  # job status reads (googleAds:search)
        self._ids = itertools.count(9000001)

    # ---- inspection

    def members(self, list_id: str) -> set[tuple[str, Any]]:
        with self.lock:
            return set(self.user_lists[str(list_id)])

    def hashed_emails(self, list_id: str) -> set[str]:
        return {v for k, v in self.members(list_id) if k == "hashedEmail"}

    # ---- the tool's answers

    def authenticate(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return Response(401, google_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                [ads_error("authenticationError", "OAUTH_TOKEN_INVALID", "Oauth token is invalid.")]))
        token = request.headers.get("developer-token")
        if not token:
            return Response(400, google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.", [
                ads_error("requestError", "DEVELOPER_TOKEN_PARAMETER_MISSING", "Developer token is missing.")]))
        if token != self.developer_token:
            return Response(401, google_error(401, "UNAUTHENTICATED", "Request is missing required authentication "
                                              "credential.", [ads_error("authenticationError",
                                                                        "DEVELOPER_TOKEN_INVALID",
                                                                        "The developer token is not valid.")]))
        return None

    def throttled(self, retry_after: int) -> Response:
        return Response(429, google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [
            ads_error("quotaError", "RESOURCE_EXHAUSTED", "Too many requests. Retry in "
                      f"{retry_after} seconds.", details={"quotaErrorDetails": {
                          "rateScope": "ACCOUNT", "rateName": "Requests per service per method",
                          "retryDelay": f"{retry_after}s"}})]))

    def _bad(self, reason: str, family: str, name: str, message: str, **kw: Any) -> Response:
        return self.refuse(reason, Response(400, google_error(400, "INVALID_ARGUMENT",
                                                              "Request contains an invalid argument.",
                                                              [ads_error(family, name, message, **kw)])))

    def _precheck(self, request: Request) -> Response | None:
        if request.params["cid"] != self.customer_id:
            return self.refuse("permission_denied", Response(403, google_error(
                403, "PERMISSION_DENIED", "The caller does not have permission",
                [ads_error("authorizationError", "USER_PERMISSION_DENIED", "User doesn't have permission to access "
                           "customer.")])))
        if self.roll(self.error_share):
            return self.refuse("server_error", Response(500, google_error(
                500, "INTERNAL", "Internal error encountered.",
                [ads_error("internalError", "INTERNAL_ERROR", "An internal error has occurred.")])))
        return None

    # ---- routes

    @route("POST", _PREFIX + r"/offlineUserDataJobs:create")
    def create(self, request: Request) -> Response:
        refusal = self._precheck(request)
        if refusal:
            return refusal
        job = request.json()["job"]
        meta = job.get("customerMatchUserListMetadata") or {}
        m = re.fullmatch(rf"customers/{self.customer_id}/userLists/(\d+)", str(meta.get("userList", "")))
        if job.get("type") != "CUSTOMER_MATCH_USER_LIST" or not m:
            return self._bad("bad_request", "fieldError", "REQUIRED", "The required field was not present.")
        with self.lock:
            if m.group(1) not in self.user_lists:
                return self._bad("invalid_user_list", "offlineUserDataJobError", "INVALID_USER_LIST_ID",
                                 "The user list ID provided for the job is invalid.")
            job_id = str(next(self._ids))
            name = f"customers/{self.customer_id}/offlineUserDataJobs/{job_id}"
            self.jobs[job_id] = {"resourceName": name, "id": job_id, "list": m.group(1), "status": "PENDING",
                                 "operations": [], "polls": 0, "consent": meta.get("consent")}
        return Response(200, {"resourceName": name})

    def _job(self, request: Request) -> dict[str, Any] | None:
        with self.lock:
            return self.jobs.get(request.params["job"])

    @staticmethod
    def _check_user(user: Any) -> tuple[str, str, list[dict[str, Any]]] | None:
        """(error name, message, path) of a bad UserData, or None."""
        ids = user.get("userIdentifiers") if isinstance(user, dict) else None
        if not ids:
            return "MISSING_USER_IDENTIFIER", "User identifier is required.", [{"fieldName": "user_identifiers"}]
        if len(ids) > MAX_PER_USER:
            return ("TOO_MANY_USER_IDENTIFIERS", "Maximum number of user identifiers allowed per request is "
                    "100,000 and per operation is 20.", [{"fieldName": "user_identifiers"}])
        for j, ident in enumerate(ids):
            at = [{"fieldName": "user_identifiers", "index": j}]
            for key in HASHED:
                if key in ident and not _HEX64.match(str(ident[key])):
                    return ("INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.",
                            at + [{"fieldName": "hashed_email" if key == "hashedEmail" else "hashed_phone_number"}])
            addr = ident.get("addressInfo")
            if addr is not None:
                for key in ("hashedFirstName", "hashedLastName"):
                    if not _HEX64.match(str(addr.get(key, ""))):
                        return ("INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.",
                                at + [{"fieldName": "address_info"}])
                if not re.fullmatch(r"[A-Z]{2}", str(addr.get("countryCode", ""))):
                    return ("INVALID_COUNTRY_CODE", "The country code is invalid.",
                            at + [{"fieldName": "address_info"}, {"fieldName": "country_code"}])
            if not any(k in ident for k in (*HASHED, "addressInfo")):
                return "MISSING_USER_IDENTIFIER", "User identifier is required.", at
        return None

    @route("POST", _PREFIX + r"/offlineUserDataJobs/(?P<job>\d+):addOperations")
    def add_operations(self, request: Request) -> Response:
        refusal = self._precheck(request)
        if refusal:
            return refusal
        body = request.json()
        job = self._job(request)
        if job is None:
            return self._bad("job_not_found", "mutateError", "RESOURCE_NOT_FOUND", "The requested resource "
                             "was not found.")
        if job["status"] != "PENDING":
            return self._bad("job_already_started", "offlineUserDataJobError", "JOB_ALREADY_STARTED",
                             "The job has already been run; operations can no longer be added.")
        operations = body["operations"]
        total = sum(len((op.get("create") or op.get("remove") or {}).get("userIdentifiers") or ())
                    for op in operations)
        if total > self.max_identifiers:
            return self._bad("too_many_identifiers", "offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS",
                             f"Maximum number of user identifiers allowed per request is {self.max_identifiers:,} "
                             "and per operation is 20.")
        errors, good = [], []
        for i, op in enumerate(operations):
            kind = "create" if "create" in op else "remove" if "remove" in op else None
            if kind is None:
                errors.append(ads_error("offlineUserDataJobError", "INVALID_OPERATION_ORDER",
                                        "Operation must be create or remove.", index=i))
                continue
            bad = self._check_user(op[kind])
            if bad:
                name, message, path = bad
                errors.append(ads_error("offlineUserDataJobError", name, message, index=i,
                                        path=[{"fieldName": kind}, *path]))
            else:
                good.append((kind, op[kind]))
        if errors and not body.get("enablePartialFailure"):
            with self.lock:
                self.refused["operation_error"] += 1
            return Response(400, google_error(400, "INVALID_ARGUMENT", "Request contains an invalid argument.",
                                              errors))
        with self.lock:
            self.refused["operation_error"] += len(errors)
            job["operations"] += good
        if not errors:
            return Response(200, {})
        first = errors[0]
        return Response(200, {"partialFailureError": {
            "code": 3, "message": f"{first['message']}, at operations[{first['location']['fieldPathElements'][0]['index']}]",
            "details": [{"@type": FAILURE_TYPE, "errors": errors, "requestId": uuid.uuid4().hex[:22]}]}})

    @route("POST", _PREFIX + r"/offlineUserDataJobs/(?P<job>\d+):run")
    def run(self, request: Request) -> Response:
        refusal = self._precheck(request)
        if refusal:
            return refusal
        job = self._job(request)
        if job is None:
            return self._bad("job_not_found", "mutateError", "RESOURCE_NOT_FOUND", "The requested resource "
                             "was not found.")
        with self.lock:
            if job["status"] != "PENDING":
                return self._bad("job_already_started", "offlineUserDataJobError", "JOB_ALREADY_STARTED",
                                 "The job has already been run.")
            job["status"] = "RUNNING"
            running = sum(1 for j in self.jobs.values() if j["list"] == job["list"] and j["status"] == "RUNNING")
            self.max_running_per_list = max(self.max_running_per_list, running)
        return Response(200, {"name": f"customers/{self.customer_id}/operations/{uuid.uuid4().hex[:16]}"})

    def _advance(self, job: dict[str, Any]) -> None:
        if job["status"] != "RUNNING":
            return
        job["polls"] += 1
        if job["polls"] < self.polls_to_finish:
            return
        if self.fail_jobs:
            job["status"], job["failureReason"] = "FAILED", "UNSPECIFIED"
            return
        members = self.user_lists[job["list"]]
        for kind, user in job["operations"]:
            keys = set()
            for ident in user["userIdentifiers"]:
                for key in HASHED:
                    if key in ident:
                        keys.add((key, str(ident[key]).lower()))
                if "addressInfo" in ident:
                    a = ident["addressInfo"]
                    keys.add(("addressInfo", (a["hashedFirstName"].lower(), a["hashedLastName"].lower(),
                                              a["countryCode"], str(a.get("postalCode", "")))))
            if kind == "create":
                members |= keys
            else:
                members -= keys
        job["status"] = "SUCCESS"
        self.applied_jobs += 1

    @route("POST", _PREFIX + r"/googleAds:search")
    def search(self, request: Request) -> Response:
        refusal = self._precheck(request)
        if refusal:
            return refusal
        query = request.json()["query"]
        m = _QUERY_JOB.search(query)
        if "FROM offline_user_data_job" not in query or not m:
            return self._bad("bad_query", "queryError", "UNEXPECTED_END_OF_QUERY",
                             "This sandbox answers GAQL on offline_user_data_job by resource_name only.")
        rows = []
        with self.lock:
            self.polls_seen += 1
            job = self.jobs.get(m.group(1).rsplit("/", 1)[-1])
            if job is not None and job["resourceName"] == m.group(1):
                self._advance(job)
                row = {"resourceName": job["resourceName"], "type": "CUSTOMER_MATCH_USER_LIST",
                       "status": job["status"]}
                if job.get("failureReason"):
                    row["failureReason"] = job["failureReason"]
                rows.append({"offlineUserDataJob": row})
        return Response(200, {"results": rows, "fieldMask": "offlineUserDataJob.resourceName,"
                              "offlineUserDataJob.status,offlineUserDataJob.failureReason,offlineUserDataJob.type",
                              "queryResourceConsumption": "1"}, {"request-id": uuid.uuid4().hex[:22]})
