"""Klaviyo sandbox: the API subset destinations/klaviyo.py uses, over real HTTP.

Shapes follow klaviyo-api 25.0.0's models (tests/unit/test_klaviyo_contract.py parses
the answers with them): JSON:API documents, `errors: [{id, status, code, title, detail,
source: {pointer}}]` for 4xx/5xx, 429 `throttled` with Retry-After (klaviyo-api-node#66
shows the real body), `RateLimit-Limit/Remaining/Reset` on other answers.

Routes:
  POST   /api/profile-bulk-import-jobs                    202, job queued
  GET    /api/profile-bulk-import-jobs/{id}                each poll moves it on: queued ->
                                                           processing -> complete (processed then)
  GET    /api/profile-bulk-import-jobs/{id}/import-errors  invalid email / phone, unknown id
  GET    /api/profile-bulk-import-jobs/{id}/profiles       created or updated profiles
  GET    /api/profiles?filter=any(email,[...])|equals(...)
  POST   /api/lists/{id}/relationships/profiles            204 (1,000 ids max; unknown id -> 400)
  DELETE /api/lists/{id}/relationships/profiles            204
  POST   /api/data-privacy-deletion-jobs                   202 (exactly one identifier)

Faults: error_share is applied per request (a 503 in Klaviyo's error shape, nothing done),
plus the base's latency, dropped connections and throttle_rps. Inspect `profiles`,
`lists`, `jobs`, `deletions`; `profile_by_email()`, `members()`.
Emulator assumptions not confirmed by the library (no model for them): the 401 codes
(`not_authenticated`, `authentication_failed`), the 400 for a missing revision, the 413
for a body over 5 MB, import-error codes and pointers, and the 400 for an unknown profile id.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from destinations.sandbox.server import Request, Response, SandboxServer, route

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_FILTER = re.compile(r"^(any|equals)\((id|email|phone_number|external_id),(.*)\)$", re.S)
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
JSONAPI = "application/vnd.api+json"
STANDARD = ("email", "phone_number", "external_id", "first_name", "last_name", "organization", "locale",
            "title", "image")
MAX_IMPORT_PROFILES = 10_000
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_LIST_IDS = 1_000


class Problem(Exception):
    def __init__(self, status: int, code: str, title: str, detail: str, pointer: str = "/data"):
        super().__init__(detail)
        self.status, self.code, self.title, self.detail, self.pointer = status, code, title, detail, pointer


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _errors(status: int, code: str, title: str, detail: str, pointer: str = "/data") -> dict[str, Any]:
    return {"errors": [{"id": str(uuid.uuid4()), "status": status, "code": code, "title": title,
                        "detail": detail, "source": {"pointer": pointer}}]}


def jsonapi(fn):
    """Malformed bodies and Problems answer Klaviyo's JSON:API error document."""

    @functools.wraps(fn)
    def wrapper(self, request: Request) -> Response:
        try:
            return fn(self, request)
        except Problem as p:
            return self.refuse(p.code, Response(p.status, _errors(p.status, p.code, p.title, p.detail, p.pointer),
                                                {"Content-Type": JSONAPI}))
        except (KeyError, TypeError, ValueError, AttributeError, json.JSONDecodeError) as exc:
            return self.refuse("bad_request", Response(
                400, _errors(400, "invalid", "Invalid input.", f"malformed request body ({type(exc).__name__})"),
                {"Content-Type": JSONAPI}))

    return wrapper


class KlaviyoSandbox(SandboxServer):
    def __init__(self, api_key: str = "pk_sandbox_key", *, lists: tuple[str, ...] = ("Y6nRLr",),
                 auto_create_lists: bool = True, job_polls: int = 2, **knobs: Any):
        super().__init__(**knobs)
        self.api_key = api_key
        self.auto_create_lists = auto_create_lists
        self.job_polls = max(0, job_polls)
        self.profiles: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, set[str]] = {lid: set() for lid in lists}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.deletions: list[dict[str, Any]] = []  # the identifier of each deletion request
        self.revisions_seen: set[str] = set()
        self._ids = itertools.count(1)

    # ---- ids and lookups

    def _new_id(self) -> str:
        n, out = next(self._ids), ""
        for _ in range(24):
            n, r = divmod(n, 32)
            out = _CROCKFORD[r] + out
        return "01" + out

    def _find(self, ident: str, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if ident == "id":
            return self.profiles.get(str(value))
        want = str(value).strip().lower() if ident == "email" else str(value)
        for p in self.profiles.values():
            have = p.get(ident)
            if have is not None and (have.lower() if ident == "email" else have) == want:
                return p
        return None

    def profile_by_email(self, email: str) -> dict[str, Any] | None:
        with self.lock:
            return self._find("email", email)

    def members(self, list_id: str) -> set[str]:
        with self.lock:
            return set(self.lists.get(list_id, set()))

    def member_emails(self, list_id: str) -> set[str]:
        with self.lock:
            return {self.profiles[i].get("email") for i in self.lists.get(list_id, set()) if i in self.profiles}

    def settle(self) -> None:
        """Complete every job still pending (as Klaviyo would, polled or not)."""
        with self.lock:
            for job in self.jobs.values():
                if job["status"] != "complete":
                    self._process(job)

    # ---- what the base asks

    def authenticate(self, request: Request) -> Response | None:
        auth = request.headers.get("authorization", "")
        if not auth:
            return Response(401, _errors(401, "not_authenticated", "Authentication credentials were not provided.",
                                         "Missing `Authorization` header."), {"Content-Type": JSONAPI})
        scheme, _, key = auth.partition(" ")
        if scheme != "Klaviyo-API-Key" or key != self.api_key:
            return Response(401, _errors(401, "authentication_failed", "Incorrect authentication credentials.",
                                         "Incorrect authentication credentials."), {"Content-Type": JSONAPI})
        revision = request.headers.get("revision", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", revision):
            return Response(400, _errors(400, "invalid", "Invalid input.",
                                         "The `revision` header is required (YYYY-MM-DD)."),
                            {"Content-Type": JSONAPI})
        with self.lock:
            self.revisions_seen.add(revision)
        return None

    def throttled(self, retry_after: int) -> Response:
        s = "second" if retry_after == 1 else "seconds"
        return Response(429, _errors(429, "throttled", "Request was throttled.",
                                     f"Request was throttled. Expected available in {retry_after} {s}."),
                        {"Retry-After": str(retry_after), "Content-Type": JSONAPI})

    def dispatch(self, request: Request) -> Response | None:
        response = super().dispatch(request)
        if response is not None and response.status != 429 and self.throttle_rps:
            with self.lock:
                left = int(max(0.0, self._bucket))
            response.headers.update({"RateLimit-Limit": str(max(1, int(self.throttle_rps))),
                                     "RateLimit-Remaining": str(left), "RateLimit-Reset": "1"})
        return response

    def _fault(self) -> None:
        if self.roll(self.error_share):
            raise Problem(503, "error", "A server error occurred.", "Service temporarily unavailable.")

    def _doc(self, status: int, body: Any = None) -> Response:
        return Response(status, body, {"Content-Type": JSONAPI})

    # ---- profiles

    def _profile_doc(self, p: dict[str, Any]) -> dict[str, Any]:
        attrs = {k: p.get(k) for k in STANDARD}
        attrs.update(created=p["created"], updated=p["updated"], last_event_date=None,
                     location=p.get("location") or {}, properties=p.get("properties") or {})
        return {"type": "profile", "id": p["id"], "attributes": attrs,
                "links": {"self": f"{self.url}/api/profiles/{p['id']}/"}}

    def _upsert(self, resource: dict[str, Any], pointer: str) -> tuple[str | None, dict[str, Any] | None]:
        """Apply one ProfileUpsertQueryResourceObject: (profile id, None) or (None, import error)."""
        if resource.get("type") != "profile" or not isinstance(resource.get("attributes"), dict):
            return None, self._import_error("invalid", "Invalid input.", "Not a profile resource.", pointer, resource)
        attrs = resource["attributes"]
        email, phone = attrs.get("email"), attrs.get("phone_number")
        if email is not None and not _EMAIL.match(str(email)):
            return None, self._import_error("invalid", "Invalid input.", f"Invalid email address: {email}",
                                            f"{pointer}/attributes/email", resource)
        if phone is not None and not _E164.match(str(phone)):
            return None, self._import_error("invalid", "Invalid input.", "Invalid phone number.",
                                            f"{pointer}/attributes/phone_number", resource)
        if resource.get("id"):
            profile = self._find("id", resource["id"])
            if profile is None:
                return None, self._import_error("not_found", "Not found.", "Profile does not exist.",
                                                f"{pointer}/id", resource)
        else:
            if not any(attrs.get(k) for k in ("email", "phone_number", "external_id")):
                return None, self._import_error("invalid", "Invalid input.",
                                                "One of email, phone_number or external_id is required.",
                                                f"{pointer}/attributes", resource)
            profile = (self._find("email", email) or self._find("phone_number", phone)
                       or self._find("external_id", attrs.get("external_id")))
            if profile is None:
                pid = self._new_id()
                profile = self.profiles[pid] = {"id": pid, "created": _now(), "properties": {}, "location": {}}
        for k in STANDARD:
            if k in attrs:
                profile[k] = attrs[k].lower() if k == "email" and attrs[k] else attrs[k]
        profile["location"] = {**profile.get("location", {}), **(attrs.get("location") or {})}
        profile["properties"] = {**profile.get("properties", {}), **(attrs.get("properties") or {})}
        profile["updated"] = _now()
        return profile["id"], None

    def _import_error(self, code, title, detail, pointer, payload) -> dict[str, Any]:
        return {"type": "import-error", "id": str(uuid.uuid4()),
                "attributes": {"code": code, "title": title, "detail": detail, "source": {"pointer": pointer},
                               "original_payload": payload}}

    def _process(self, job: dict[str, Any]) -> None:
        for i, resource in enumerate(job["payload"]):
            pid, error = self._upsert(resource, f"/data/attributes/profiles/data/{i}")
            if error is not None:
                job["errors"].append(error)
            else:
                job["profile_ids"].append(pid)
                for lid in job["lists"]:
                    self.lists.setdefault(lid, set()).add(pid)
        job["profile_ids"] = list(dict.fromkeys(job["profile_ids"]))
        job.update(status="complete", completed_at=_now(), completed_count=len(job["payload"]) - len(job["errors"]),
                   failed_count=len(job["errors"]))

    def _job_doc(self, job: dict[str, Any]) -> dict[str, Any]:
        base = f"{self.url}/api/profile-bulk-import-jobs/{job['id']}"
        return {"type": "profile-bulk-import-job", "id": job["id"],
                "attributes": {k: job.get(k) for k in ("status", "created_at", "total_count", "completed_count",
                                                       "failed_count", "completed_at", "expires_at", "started_at")},
                "relationships": {
                    "lists": {"data": [{"type": "list", "id": lid} for lid in job["lists"]]},
                    "profiles": {"links": {"self": f"{base}/relationships/profiles/", "related": f"{base}/profiles/"}},
                    "import-errors": {"links": {"related": f"{base}/import-errors/"}},
                },
                "links": {"self": f"{base}/"}}

    @route("POST", r"/api/profile-bulk-import-jobs/?")
    @jsonapi
    def create_import_job(self, request: Request) -> Response:
        if len(request.body) > MAX_IMPORT_BYTES:
            raise Problem(413, "request_too_large", "Request entity too large.",
                          "The maximum allowed payload size is 5MB.")
        data = request.json()["data"]
        if data["type"] != "profile-bulk-import-job":
            raise Problem(409, "conflict", "Conflict.", "Resource type must be profile-bulk-import-job.",
                          "/data/type")
        profiles = data["attributes"]["profiles"]["data"]
        if not isinstance(profiles, list) or not profiles:
            raise Problem(400, "invalid", "Invalid input.", "At least one profile is required.",
                          "/data/attributes/profiles/data")
        if len(profiles) > MAX_IMPORT_PROFILES:
            raise Problem(400, "invalid", "Invalid input.",
                          f"A maximum of {MAX_IMPORT_PROFILES} profiles may be imported per job.",
                          "/data/attributes/profiles/data")
        lists = [d["id"] for d in (((data.get("relationships") or {}).get("lists") or {}).get("data") or [])]
        self._fault()
        with self.lock:
            for lid in lists:
                self._list(lid)
            jid = self._new_id()
            job = self.jobs[jid] = {
                "id": jid, "status": "queued", "created_at": _now(), "started_at": None, "completed_at": None,
                "expires_at": None, "total_count": len(profiles), "completed_count": 0, "failed_count": 0,
                "payload": profiles, "lists": lists, "errors": [], "profile_ids": [], "polls": 0,
            }
            if self.job_polls == 0:
                self._process(job)
            return self._doc(202, {"data": self._job_doc(job), "links": {"self": f"{self.url}/api/profile-bulk-import-jobs/"}})

    def _job(self, jid: str) -> dict[str, Any]:
        job = self.jobs.get(jid)
        if job is None:
            raise Problem(404, "not_found", "Not found.", f"A profile bulk import job with id {jid} does not exist.")
        return job

    @route("GET", r"/api/profile-bulk-import-jobs/(?P<jid>[A-Za-z0-9]+)/?")
    @jsonapi
    def get_import_job(self, request: Request) -> Response:
        with self.lock:
            job = self._job(request.params["jid"])
            if job["status"] != "complete":
                job["polls"] += 1
                if job["polls"] >= self.job_polls:
                    self._process(job)
                else:
                    job.update(status="processing", started_at=job["started_at"] or _now())
            return self._doc(200, {"data": self._job_doc(job), "links": {"self": f"{self.url}{request.path}"}})

    def _page(self, request: Request, items: list[dict[str, Any]], extra: dict[str, str] | None = None) -> Response:
        size = int((request.query.get("page[size]") or ["20"])[0])
        if not 1 <= size <= 100:
            raise Problem(400, "invalid", "Invalid input.", "page[size] must be between 1 and 100.",
                          "/page[size]")
        start = int((request.query.get("page[cursor]") or ["0"])[0] or 0)
        links: dict[str, Any] = {"self": f"{self.url}{request.path}", "prev": None, "next": None}
        if start + size < len(items):
            q = {**(extra or {}), "page[size]": str(size), "page[cursor]": str(start + size)}
            links["next"] = f"{self.url}{request.path}?{urlencode(q)}"
        return self._doc(200, {"data": items[start : start + size], "links": links})

    @route("GET", r"/api/profile-bulk-import-jobs/(?P<jid>[A-Za-z0-9]+)/import-errors/?")
    @jsonapi
    def get_import_errors(self, request: Request) -> Response:
        with self.lock:
            return self._page(request, list(self._job(request.params["jid"])["errors"]))

    @route("GET", r"/api/profile-bulk-import-jobs/(?P<jid>[A-Za-z0-9]+)/profiles/?")
    @jsonapi
    def get_import_profiles(self, request: Request) -> Response:
        with self.lock:
            job = self._job(request.params["jid"])
            docs = [self._profile_doc(self.profiles[i]) for i in job["profile_ids"] if i in self.profiles]
            return self._page(request, docs, self._fields(request))

    def _fields(self, request: Request) -> dict[str, str]:
        return {k: v[0] for k, v in request.query.items() if k.startswith(("fields[", "filter"))}

    @route("GET", r"/api/profiles/?")
    @jsonapi
    def get_profiles(self, request: Request) -> Response:
        raw = (request.query.get("filter") or [""])[0]
        m = _FILTER.match(raw)
        if raw and not m:
            raise Problem(400, "invalid", "Invalid filter.", "Unsupported filter.", "/filter")
        with self.lock:
            found = list(self.profiles.values())
            if m:
                op, ident, arg = m.groups()
                values = json.loads(arg)
                values = values if op == "any" else [values]
                if op == "any" and (not isinstance(values, list) or len(values) > 100):
                    raise Problem(400, "invalid", "Invalid filter.", "any() takes a list of at most 100 values.",
                                  "/filter")
                hits = {id(p): p for v in values if (p := self._find(ident, v)) is not None}
                found = list(hits.values())
            return self._page(request, [self._profile_doc(p) for p in found], self._fields(request))

    # ---- lists

    def _list(self, lid: str) -> set[str]:
        if lid not in self.lists:
            if not self.auto_create_lists:
                raise Problem(404, "not_found", "Not found.", f"A list with id {lid} does not exist.")
            self.lists[lid] = set()
        return self.lists[lid]

    def _list_ids(self, request: Request) -> list[str]:
        data = request.json()["data"]
        if not isinstance(data, list):
            raise TypeError("data must be a list")
        if len(data) > MAX_LIST_IDS:
            raise Problem(400, "invalid", "Invalid input.",
                          f"This endpoint accepts a maximum of {MAX_LIST_IDS} profiles per call.", "/data")
        out = []
        for item in data:
            if item["type"] != "profile" or not isinstance(item["id"], str):
                raise ValueError("bad resource identifier")
            out.append(item["id"])
        return out

    @route("POST", r"/api/lists/(?P<lid>[A-Za-z0-9_-]+)/relationships/profiles/?")
    @jsonapi
    def add_to_list(self, request: Request) -> Response:
        ids = self._list_ids(request)
        self._fault()
        with self.lock:
            members = self._list(request.params["lid"])
            for i, pid in enumerate(ids):
                if pid not in self.profiles:
                    raise Problem(400, "invalid", "Invalid input.", f"Profile {pid} does not exist.", f"/data/{i}/id")
            members.update(ids)
        return Response(204, b"", {"Content-Type": JSONAPI})

    @route("DELETE", r"/api/lists/(?P<lid>[A-Za-z0-9_-]+)/relationships/profiles/?")
    @jsonapi
    def remove_from_list(self, request: Request) -> Response:
        ids = self._list_ids(request)
        self._fault()
        with self.lock:
            self._list(request.params["lid"]).difference_update(ids)
        return Response(204, b"", {"Content-Type": JSONAPI})

    # ---- deletion

    @route("POST", r"/api/data-privacy-deletion-jobs/?")
    @jsonapi
    def request_deletion(self, request: Request) -> Response:
        data = request.json()["data"]
        if data["type"] != "data-privacy-deletion-job":
            raise Problem(409, "conflict", "Conflict.", "Resource type must be data-privacy-deletion-job.",
                          "/data/type")
        profile = data["attributes"]["profile"]["data"]
        if profile["type"] != "profile":
            raise ValueError("profile type")
        attrs = profile.get("attributes") or {}
        given = [(k, v) for k, v in (("id", profile.get("id")), ("email", attrs.get("email")),
                                     ("phone_number", attrs.get("phone_number"))) if v]
        if len(given) != 1:
            raise Problem(400, "invalid", "Invalid input.",
                          "Exactly one of id, email or phone_number must be provided.",
                          "/data/attributes/profile/data")
        self._fault()
        ident, value = given[0]
        with self.lock:
            self.deletions.append({ident: value})
            victim = self._find(ident, value)
            if victim is not None:  # asynchronous at Klaviyo; done at once here
                del self.profiles[victim["id"]]
                for members in self.lists.values():
                    members.discard(victim["id"])
        return Response(202, b"", {"Content-Type": JSONAPI})
