"""Google Ads Customer Match destination: user-list membership through OfflineUserDataJobs (REST).

API subset (v26, the newest version google-ads 34.0.0 ships; request bodies checked against its
proto-plus messages in tests/unit/test_google_ads_contract.py):

  POST /v26/customers/{cid}/offlineUserDataJobs:create
       {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata":
                {"userList": "customers/{cid}/userLists/{id}", "consent": {...}}}}
       -> {"resourceName": "customers/{cid}/offlineUserDataJobs/{jobId}"}
  POST /v26/{job}:addOperations  {"operations": [{"create"|"remove": UserData}], "enablePartialFailure": true}
       -> {} or {"partialFailureError": google.rpc.Status with GoogleAdsFailure details whose
          errors[].location.fieldPathElements[0] is {"fieldName": "operations", "index": i}}
  POST /v26/{job}:run  -> a google.longrunning.Operation
  POST /v26/customers/{cid}/googleAds:search  (GAQL on offline_user_data_job) until SUCCESS | FAILED.
       OfflineUserDataJobService has no Get method (only create/addOperations/run, see
       google/ads/googleads/v26/services/services/offline_user_data_job_service/client.py), so the
       job status is read the way Google's add_customer_match_user_list.py example does.

One write() = one job: ADD_MEMBER sends `create` operations, REMOVE_MEMBER `remove` operations.
Google's Customer Match guide: one large job is far more efficient than several small ones, so a job
holds up to max_batch_size users (default 100,000) sent in several addOperations calls of
users_per_request (default 10,000, Google's advice per call) and run once.
Batch.target is the user list id (digits) or its resource name. A record's identifiers
(UserData.userIdentifiers, one oneof member each):
  email -> hashedEmail (sha256 of trimmed lower-case); phone|phone_number|phone_e164 -> hashedPhoneNumber
  (sha256 of E.164 with '+'); first_name + last_name + country_code + postal_code -> addressInfo (names
  hashed, country and postal code not); hashed_email / hashed_phone_number pass through (warehouses
  that store hashes). The OK result's destination_id is the JSON of the identifiers sent (hashes,
  country and postal code only), so a removal, which the engine sends without fields, removes exactly
  what was added.

Limits: <= 20 identifiers per user, <= 100,000 per addOperations request (more calls on one job
otherwise). Google asks that one user list is not modified by concurrent jobs: :run and the wait
for the job's end hold a lock per user list, so at most one job of this destination runs on a list
at a time, while max_concurrency (default 2) lets the next job be created and filled meanwhile.
Throttling: HTTP 429 RESOURCE_EXHAUSTED with QuotaErrorDetails.retryDelay in the body (no
Retry-After header): copied into Retry-After for HttpClient; RESOURCE_EXHAUSTED in any other status
goes through the is_throttled hook.
Reasons are Google's error enum names (INVALID_SHA256_FORMAT ...), never messages or identifiers.
"""

from __future__ import annotations

import json
import re
import threading
import time
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
from destinations.identifiers import normalise_email, normalise_phone, sha256_hex
from destinations.registry import DestinationConfig, env_value

API_URL = "https://googleads.googleapis.com"
API_VERSION = "v26"
MAX_USERS_PER_JOB = 1_000_000  # our cap on one write (memory), not Google's
DEFAULT_USERS_PER_JOB = 100_000
USERS_PER_REQUEST = 10_000  # Google advises about 10,000 per addOperations call
MAX_IDENTIFIERS_PER_REQUEST = 100_000
MAX_IDENTIFIERS_PER_USER = 20
OPERATIONS = frozenset({Operation.ADD_MEMBER, Operation.REMOVE_MEMBER})
CONSENT = ("GRANTED", "DENIED", "UNSPECIFIED")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_ENUM = re.compile(r"^[A-Z][A-Z0-9_]{1,79}$")
_KEY = re.compile(r"^[a-z][A-Za-z0-9]{1,63}$")
_DIGITS = re.compile(r"^\d{6,12}$")
_USER_LIST = re.compile(r"^(?:customers/(\d+)/userLists/)?(\d+)$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")
_PUNCT = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")
# Errors of the caller's credentials or account: never fixed by a retry of the same request.
AUTH_CODES = frozenset({
    "DEVELOPER_TOKEN_PARAMETER_MISSING", "DEVELOPER_TOKEN_INVALID", "DEVELOPER_TOKEN_NOT_APPROVED",
    "DEVELOPER_TOKEN_PROHIBITED", "DEVELOPER_TOKEN_NOT_ON_ALLOWLIST", "OAUTH_TOKEN_INVALID", "OAUTH_TOKEN_EXPIRED",
    "OAUTH_TOKEN_REVOKED", "OAUTH_TOKEN_DISABLED", "OAUTH_TOKEN_HEADER_INVALID", "NOT_ADS_USER",
    "USER_PERMISSION_DENIED", "CUSTOMER_NOT_ENABLED", "AUTHENTICATION_ERROR", "CUSTOMER_NOT_FOUND",
    "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS",
})

FIELD_ALIASES = {
    "email": ("email",),
    "phone": ("phone", "phone_number", "phone_e164"),
    "first_name": ("first_name", "firstname"),
    "last_name": ("last_name", "lastname"),
    "country_code": ("country_code", "country"),
    "postal_code": ("postal_code", "zip", "postcode"),
}


# --------------------------------------------------------------------------- identifiers


def normalise_first_name(value: Any) -> str | None:
    """UserIdentifier docs: lower-case, no extra spaces before, after or in between."""
    if value is None:
        return None
    out = _SPACES.sub(" ", str(value).strip().lower())
    return out or None


def normalise_last_name(value: Any) -> str | None:
    """UserIdentifier docs: lower case only and no punctuation."""
    if value is None:
        return None
    out = _SPACES.sub(" ", _PUNCT.sub("", str(value)).strip().lower())
    return out or None


def _field(record: Record, name: str) -> Any:
    for alias in FIELD_ALIASES[name]:
        value = record.fields.get(alias)
        if value is not None and str(value).strip() != "":
            return value
    return None


def user_identifiers(record: Record, default_region: str | None = "US") -> tuple[list[dict[str, Any]], str | None]:
    """(UserIdentifier JSON list, why there is none). Invalid values are left out, not sent."""
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    if (h := record.fields.get("hashed_email")) not in (None, ""):
        out.append({"hashedEmail": str(h).strip().lower()})
    elif (email := _field(record, "email")) is not None:
        out.append({"hashedEmail": sha256_hex(normalise_email(email))})
    country = _field(record, "country_code")
    country = str(country).strip().upper() if country is not None else None
    if country is not None and not re.fullmatch(r"[A-Z]{2}", country):
        country = None
    if (h := record.fields.get("hashed_phone_number")) not in (None, ""):
        out.append({"hashedPhoneNumber": str(h).strip().lower()})
    elif (phone := _field(record, "phone")) is not None:
        e164 = normalise_phone(phone, country or default_region)
        if e164:
            out.append({"hashedPhoneNumber": sha256_hex(e164)})
        else:
            problems.append("INVALID_PHONE")
    first = normalise_first_name(_field(record, "first_name"))
    last = normalise_last_name(_field(record, "last_name"))
    postal = _field(record, "postal_code")
    postal = str(postal).strip() if postal is not None else None
    if first and last and country and postal:
        out.append({"addressInfo": {"hashedFirstName": sha256_hex(first), "hashedLastName": sha256_hex(last),
                                    "countryCode": country, "postalCode": postal}})
    if out:
        return out[:MAX_IDENTIFIERS_PER_USER], None
    return [], (problems[0] if problems else "MISSING_USER_IDENTIFIER") + (
        ": needs an email, a valid phone, or first_name + last_name + country_code + postal_code")


def identifiers_from_destination_id(destination_id: str | None) -> list[dict[str, Any]] | None:
    """The identifiers an earlier ADD_MEMBER sent (its OK result's destination_id)."""
    if not destination_id:
        return None
    try:
        value = json.loads(destination_id)
    except ValueError:
        return None
    if isinstance(value, list) and value and all(isinstance(i, dict) and len(i) == 1 for i in value):
        return value
    return None


def destination_id_of(identifiers: Sequence[Mapping[str, Any]]) -> str:
    return json.dumps(list(identifiers), separators=(",", ":"), sort_keys=True)


def _count(identifiers: Sequence[Mapping[str, Any]]) -> int:
    return len(identifiers)


# --------------------------------------------------------------------------- errors


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def failure_errors(status: Any) -> list[Mapping[str, Any]]:
    """GoogleAdsError objects of a google.rpc.Status (its GoogleAdsFailure details)."""
    if not isinstance(status, Mapping):
        return []
    out: list[Mapping[str, Any]] = []
    for detail in status.get("details") or ():
        if isinstance(detail, Mapping):
            out += [e for e in detail.get("errors") or () if isinstance(e, Mapping)]
    return out


def error_code(err: Mapping[str, Any]) -> tuple[str, str]:
    """(enum name, error family) of a GoogleAdsError, e.g. ('INVALID_SHA256_FORMAT',
    'offlineUserDataJobError'). Never the message: it may quote the value."""
    code = err.get("errorCode")
    if isinstance(code, Mapping):
        for family, name in code.items():
            if isinstance(name, str) and _ENUM.match(name) and isinstance(family, str) and _KEY.match(family):
                return name, family
    return "UNKNOWN", "unknown"


def status_codes(body: Any) -> list[str]:
    """The enum names of an error answer {"error": Status}, else the Status's own status."""
    status = body.get("error") if isinstance(body, Mapping) else None
    codes = [error_code(e)[0] for e in failure_errors(status)]
    if not codes and isinstance(status, Mapping) and isinstance(status.get("status"), str) \
            and _ENUM.match(status["status"]):
        codes = [status["status"]]
    return codes


def retry_delay(body: Any) -> float | None:
    """QuotaErrorDetails.retryDelay ("30s") of a RESOURCE_EXHAUSTED answer, in seconds."""
    status = body.get("error") if isinstance(body, Mapping) else None
    for err in failure_errors(status):
        details = err.get("details")
        quota = details.get("quotaErrorDetails") if isinstance(details, Mapping) else None
        delay = quota.get("retryDelay") if isinstance(quota, Mapping) else None
        m = _DURATION.match(delay) if isinstance(delay, str) else None
        if m:
            return float(m.group(1))
    return None


def google_throttled(resp: requests.Response) -> bool | float | None:
    """RESOURCE_EXHAUSTED outside a 429 (the client treats every 429 as throttling): the wait
    Google asks for when it gives one."""
    if resp.status_code < 400 or resp.status_code == 429:
        return None
    body = _json(resp)
    status = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(status, Mapping):
        return None
    quota = any(error_code(e)[1] == "quotaError" and error_code(e)[0] in
                ("RESOURCE_EXHAUSTED", "RESOURCE_TEMPORARILY_EXHAUSTED") for e in failure_errors(status))
    if status.get("status") == "RESOURCE_EXHAUSTED" or quota:
        return retry_delay(body) or True
    return None


def _retry_after_from_body(resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """requests response hook: Google puts the wait of a 429 in the body (retryDelay), not in a
    Retry-After header; HttpClient reads the header, so the hint is copied there."""
    if resp.status_code == 429 and "Retry-After" not in resp.headers:
        delay = retry_delay(_json(resp))
        if delay is not None:
            resp.headers["Retry-After"] = str(int(delay) if delay == int(delay) else delay)
    return resp


# --------------------------------------------------------------------------- destination


class GoogleAdsDestination:
    def __init__(
        self,
        access_token: str,
        developer_token: str,
        customer_id: str,
        *,
        name: str = "google_ads",
        login_customer_id: str | None = None,
        base_url: str = API_URL,
        api_version: str = API_VERSION,
        access_token_env: str | None = None,
        developer_token_env: str | None = None,
        ad_user_data_consent: str = "GRANTED",
        ad_personalization_consent: str = "GRANTED",
        phone_region: str | None = "US",
        max_batch_size: int = DEFAULT_USERS_PER_JOB,
        users_per_request: int = USERS_PER_REQUEST,
        max_identifiers_per_request: int = MAX_IDENTIFIERS_PER_REQUEST,
        requests_per_second: float | None = 2.0,
        burst: int = 5,
        max_concurrency: int = 2,
        poll_interval: float = 2.0,
        poll_interval_cap: float = 30.0,
        job_timeout: float = 3600.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        retry_after_cap: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not access_token or not developer_token:
            raise ValueError(f"google_ads {name}: access token and developer token must not be empty")
        customer_id, login_customer_id = _cid(customer_id, "customer_id"), (
            _cid(login_customer_id, "login_customer_id") if login_customer_id else None)
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"google_ads {name}: base_url must start with http:// or https://")
        if not re.fullmatch(r"v\d{2}", api_version):
            raise ValueError(f"google_ads {name}: api_version must look like v26, got {api_version!r}")
        for key, value in (("ad_user_data_consent", ad_user_data_consent),
                           ("ad_personalization_consent", ad_personalization_consent)):
            if value not in CONSENT:
                raise ValueError(f"google_ads {name}: {key} must be one of {', '.join(CONSENT)}")
        if not 1 <= max_batch_size <= MAX_USERS_PER_JOB:
            raise ValueError(f"google_ads {name}: max_batch_size (users per job) must be 1..{MAX_USERS_PER_JOB}, "
                             f"got {max_batch_size}")
        if not 1 <= users_per_request <= MAX_IDENTIFIERS_PER_REQUEST:
            raise ValueError(f"google_ads {name}: users_per_request must be 1..{MAX_IDENTIFIERS_PER_REQUEST}, "
                             f"got {users_per_request}")
        if not MAX_IDENTIFIERS_PER_USER <= max_identifiers_per_request <= MAX_IDENTIFIERS_PER_REQUEST:
            raise ValueError(f"google_ads {name}: max_identifiers_per_request must be "
                             f"{MAX_IDENTIFIERS_PER_USER}..{MAX_IDENTIFIERS_PER_REQUEST}")
        self.name = name
        self.customer_id = customer_id
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.consent = {"adUserData": ad_user_data_consent, "adPersonalization": ad_personalization_consent}
        self.phone_region = phone_region
        self.max_identifiers_per_request = max_identifiers_per_request
        self.users_per_request = users_per_request
        self._list_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self.poll_interval = poll_interval
        self.poll_interval_cap = poll_interval_cap
        self.job_timeout = job_timeout
        self._sleep = sleep
        self._hint = (f"the OAuth access token in env {access_token_env or '?'} and the developer token in env "
                      f"{developer_token_env or '?'}")
        self.capabilities = Capabilities(operations=OPERATIONS, max_batch_size=max_batch_size,
                                         max_requests_per_second=requests_per_second,
                                         max_concurrency=max_concurrency, async_jobs=True)
        headers = {"Authorization": f"Bearer {access_token}", "developer-token": developer_token}
        if login_customer_id:
            headers["login-customer-id"] = login_customer_id
        self.client = make_client(
            f"google_ads {name}", requests_per_second=requests_per_second, burst=burst,
            max_concurrency=max_concurrency, headers=headers, connect_timeout=connect_timeout,
            read_timeout=read_timeout, max_retries=max_retries, backoff_base=backoff_base,
            backoff_cap=backoff_cap, retry_after_cap=retry_after_cap,
            is_throttled=google_throttled, secrets=[access_token, developer_token], sleep=sleep,
        )
        self.limiter = self.client.rate_limiter
        self.client.session.hooks["response"].append(_retry_after_from_body)

    # ------------------------------------------------------------------ bodies

    def user_list(self, target: str) -> str:
        m = _USER_LIST.match(str(target or "").strip())
        if not m or (m.group(1) and m.group(1) != self.customer_id):
            raise DestinationError(
                f"google_ads {self.name}: the sync's object must be a Customer Match user list id of customer "
                f"{self.customer_id} (digits, or customers/{self.customer_id}/userLists/<id>)", retryable=False)
        return f"customers/{self.customer_id}/userLists/{m.group(2)}"

    def create_body(self, user_list: str) -> dict[str, Any]:
        return {"job": {"type": "CUSTOMER_MATCH_USER_LIST",
                        "customerMatchUserListMetadata": {"userList": user_list, "consent": dict(self.consent)}}}

    @staticmethod
    def operations_body(kind: str, users: Sequence[Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
        return {"operations": [{kind: {"userIdentifiers": list(ids)}} for ids in users],
                "enablePartialFailure": True}

    @staticmethod
    def search_body(job: str) -> dict[str, Any]:
        return {"query": "SELECT offline_user_data_job.resource_name, offline_user_data_job.status, "
                         "offline_user_data_job.failure_reason, offline_user_data_job.type "
                         f"FROM offline_user_data_job WHERE offline_user_data_job.resource_name = '{job}'"}

    # ------------------------------------------------------------------ entry point

    def write(self, batch: Batch) -> list[RecordResult]:
        op = batch.operation
        if op not in OPERATIONS:
            raise DestinationError(f"google_ads {self.name}: operation {op.value} is not supported "
                                   "(Customer Match lists take ADD_MEMBER and REMOVE_MEMBER only)", retryable=False)
        user_list = self.user_list(batch.target)
        results: dict[str, RecordResult] = {}
        sendable: list[tuple[Record, list[dict[str, Any]]]] = []
        for r in batch.records:
            ids = identifiers_from_destination_id(r.destination_id) if op is Operation.REMOVE_MEMBER else None
            problem = None
            if ids is None:
                ids, problem = user_identifiers(r, self.phone_region)
            if problem:
                results[r.key] = RecordResult(r.key, ResultStatus.REJECTED, error=problem)
            else:
                sendable.append((r, ids))
        for start in range(0, len(sendable), self.capabilities.max_batch_size):
            part = sendable[start : start + self.capabilities.max_batch_size]
            results.update(self._job(user_list, "create" if op is Operation.ADD_MEMBER else "remove", part))
        return check_results(batch, [results[r.key] for r in batch.records])

    def prepare(self, batch: Batch) -> list[RecordResult]:
        """The identifiers each user will be added with (hashes, country and postal code), as the
        destination_id a later removal sends; computed here, nothing is sent."""
        out = []
        for r in batch.records:
            ids, problem = user_identifiers(r, self.phone_region)
            out.append(RecordResult(r.key, ResultStatus.REJECTED, error=problem) if problem
                       else RecordResult(r.key, ResultStatus.OK, destination_id=destination_id_of(ids)))
        return out

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ the job

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.api_version}/{path}"

    def _call(self, path: str, body: Mapping[str, Any], *, what: str) -> Any:
        # Safe to repeat: a repeated create leaves an empty job that is never run, a repeated
        # addOperations repeats set operations, a repeated run is answered JOB_ALREADY_STARTED.
        resp = self.client.request("POST", self._url(path), json=body, idempotent=True)
        data = _json(resp)
        if resp.status_code < 300:
            if not isinstance(data, Mapping):
                raise DestinationError(f"google_ads {self.name}: {what}: answer is not a JSON object",
                                       retryable=True)
            return data
        codes = status_codes(data) or [f"HTTP_{resp.status_code}"]
        where = f"google_ads {self.name}: {what}: HTTP {resp.status_code} {','.join(dict.fromkeys(codes))}"
        if resp.status_code in (401, 403) or AUTH_CODES & set(codes):
            raise DestinationError(f"{where}: Google Ads refused the credentials or account; check {self._hint}, "
                                   f"and that customer {self.customer_id} (and login-customer-id) is right",
                                   retryable=False)
        if resp.status_code == 400:
            raise BatchRefused(where, status=400, reason=codes[0])
        if resp.status_code == 404:
            raise DestinationError(f"{where}: not found; check base_url and api_version", retryable=False)
        raise DestinationError(f"{where}: unexpected answer", retryable=False)

    def _job(self, user_list: str, kind: str,
             part: Sequence[tuple[Record, list[dict[str, Any]]]]) -> dict[str, RecordResult]:
        try:
            job = self._call(f"customers/{self.customer_id}/offlineUserDataJobs:create",
                             self.create_body(user_list), what="create job").get("resourceName")
        except BatchRefused as exc:  # the list itself is wrong: nothing a retry fixes
            raise DestinationError(f"{exc}: check that the sync's object is a Customer Match (CRM-based) "
                                   "user list of this customer", retryable=False) from None
        if not isinstance(job, str) or not job.startswith(f"customers/{self.customer_id}/offlineUserDataJobs/"):
            raise DestinationError(f"google_ads {self.name}: create job: no job resourceName in the answer",
                                   retryable=True)
        results: dict[str, RecordResult] = {}
        sent: list[Record] = []
        index = {r.key: ids for r, ids in part}

        def add(records: Sequence[Record]) -> list[RecordResult]:
            body = self.operations_body(kind, [index[r.key] for r in records])
            answer = self._call(f"{job}:addOperations", body, what="add operations")
            rejected = _partial_failures(answer.get("partialFailureError"), records)
            return [rejected.get(r.key) or RecordResult(r.key, ResultStatus.OK) for r in records]

        by_key = {r.key: r for r, _ in part}
        for chunk in self._chunks(part):
            for res in split_batch_retry(chunk, add, redactor=self.client.redact):
                if res.status is ResultStatus.OK:
                    sent.append(by_key[res.key])
                else:
                    results[res.key] = res
        if not sent:
            return results  # an empty job is never run
        with self._list_lock(user_list):  # one running job per list; the next one fills meanwhile
            status, reason = self._run_and_wait(job)
        for r in sent:
            if status == "SUCCESS":
                did = destination_id_of(index[r.key]) if kind == "create" else None
                results[r.key] = RecordResult(r.key, ResultStatus.OK, destination_id=did)
            else:
                results[r.key] = RecordResult(r.key, ResultStatus.RETRYABLE, error=reason)
        return results

    def _list_lock(self, user_list: str) -> threading.Lock:
        with self._locks_guard:
            return self._list_locks.setdefault(user_list, threading.Lock())

    def _chunks(self, part: Sequence[tuple[Record, list[dict[str, Any]]]]) -> list[list[Record]]:
        """addOperations calls: <= users_per_request users and <= max_identifiers_per_request identifiers."""
        chunks: list[list[Record]] = [[]]
        size = 0
        for r, ids in part:
            if chunks[-1] and (size + _count(ids) > self.max_identifiers_per_request
                               or len(chunks[-1]) >= self.users_per_request):
                chunks.append([])
                size = 0
            chunks[-1].append(r)
            size += _count(ids)
        return [c for c in chunks if c]

    def _run_and_wait(self, job: str) -> tuple[str, str | None]:
        try:
            self._call(f"{job}:run", {}, what="run job")
        except BatchRefused as exc:
            if exc.reason != "JOB_ALREADY_STARTED":  # a repeated run after a lost answer is fine
                return "FAILED", f"{exc.reason}: the job could not be run"
        deadline = time.monotonic() + self.job_timeout
        interval = self.poll_interval
        while True:
            data = self._call(f"customers/{self.customer_id}/googleAds:search", self.search_body(job),
                              what="read job status")
            rows = data.get("results") or []
            info = rows[0].get("offlineUserDataJob") if rows and isinstance(rows[0], Mapping) else None
            status = info.get("status") if isinstance(info, Mapping) else None
            if status == "SUCCESS":
                return status, None
            if status == "FAILED":
                why = info.get("failureReason")
                why = why if isinstance(why, str) and _ENUM.match(why) else "UNSPECIFIED"
                return status, f"JOB_FAILED: {why}; some operations may have been applied, resend them"
            if time.monotonic() >= deadline:
                return "TIMEOUT", (f"JOB_TIMEOUT: job not finished after {self.job_timeout:.0f}s (status "
                                   f"{status if isinstance(status, str) and _ENUM.match(status) else 'unknown'})")
            self._sleep(interval)
            interval = min(self.poll_interval_cap, interval * 1.5)


def _partial_failures(status: Any, records: Sequence[Record]) -> dict[str, RecordResult]:
    """record key -> REJECTED for each operation a partialFailureError names."""
    out: dict[str, RecordResult] = {}
    for err in failure_errors(status):
        path = ((err.get("location") or {}).get("fieldPathElements") or [None])[0]
        if not isinstance(path, Mapping) or path.get("fieldName") != "operations":
            continue
        try:
            i = int(path.get("index", 0))
        except (TypeError, ValueError):
            continue
        if 0 <= i < len(records) and records[i].key not in out:
            name, family = error_code(err)
            out[records[i].key] = RecordResult(records[i].key, ResultStatus.REJECTED, error=f"{name} ({family})")
    if isinstance(status, Mapping) and status.get("code") and not out:
        # A partial failure we cannot place: do not claim success for anyone.
        raise DestinationError("google_ads: add operations: partialFailureError without operation indexes",
                               retryable=True)
    return out


def _cid(value: str, key: str) -> str:
    digits = str(value).replace("-", "").strip()
    if not _DIGITS.match(digits):
        raise ValueError(f"{key} must be a Google Ads customer id (10 digits, dashes allowed)")
    return digits


# --------------------------------------------------------------------------- config


class Config(DestinationConfig):
    type: Literal["google_ads"]
    customer_id: str = Field(description="the advertiser account that owns the user lists (123-456-7890)")
    login_customer_id: str | None = Field(None, description="manager account id when access goes through an MCC")
    access_token_env: str = Field(description="env var holding the OAuth 2.0 access token")
    developer_token_env: str = Field(description="env var holding the Google Ads API developer token")
    base_url: str = Field(API_URL, description="API host; a local sandbox for trials")
    base_url_env: str | None = Field(None, description="env var that overrides base_url")
    api_version: str = Field(API_VERSION, pattern=r"^v\d{2}$")
    ad_user_data_consent: Literal["GRANTED", "DENIED", "UNSPECIFIED"] = "GRANTED"
    ad_personalization_consent: Literal["GRANTED", "DENIED", "UNSPECIFIED"] = "GRANTED"
    phone_region: str | None = Field("US", description="region of phone numbers written without a country code")
    max_batch_size: int = Field(DEFAULT_USERS_PER_JOB, ge=1, le=MAX_USERS_PER_JOB,
                                description="users per job (one write); Google prefers few large jobs")
    users_per_request: int = Field(USERS_PER_REQUEST, ge=1, le=MAX_IDENTIFIERS_PER_REQUEST,
                                   description="users per addOperations call")
    requests_per_second: float | None = Field(2.0, gt=0)
    max_concurrency: int = Field(2, ge=1, le=8, description="jobs being filled at once; :run is serialised "
                                 "per user list, as Google asks")
    poll_interval: float = Field(2.0, gt=0)
    job_timeout: float = Field(3600.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)

    @field_validator("customer_id", "login_customer_id")
    @classmethod
    def _customer(cls, v: str | None) -> str | None:
        return None if v is None else _cid(v, "customer id")


def from_config(name: str, config: Config, *, where: Path, env: Mapping[str, str]) -> GoogleAdsDestination:
    access = env_value(env, config.access_token_env, name=name, key="access_token_env", where=where)
    developer = env_value(env, config.developer_token_env, name=name, key="developer_token_env", where=where)
    base_url = (env.get(config.base_url_env) if config.base_url_env else None) or config.base_url
    return GoogleAdsDestination(
        access, developer, config.customer_id, name=name, login_customer_id=config.login_customer_id,
        base_url=base_url, api_version=config.api_version, access_token_env=config.access_token_env,
        developer_token_env=config.developer_token_env, ad_user_data_consent=config.ad_user_data_consent,
        ad_personalization_consent=config.ad_personalization_consent, phone_region=config.phone_region,
        max_batch_size=config.max_batch_size, users_per_request=config.users_per_request,
        requests_per_second=config.requests_per_second,
        max_concurrency=config.max_concurrency, poll_interval=config.poll_interval,
        job_timeout=config.job_timeout, max_retries=config.max_retries,
    )
