"""Mailchimp Marketing API v3 sandbox: the subset destinations/mailchimp.py uses.

Paths as `mailchimp_marketing.api.lists_api.ListsApi` calls them (under /3.0):
  POST   /lists/{list_id}                                          batch_list_members
  PATCH  /lists/{list_id}/members/{hash}                           update_list_member
  DELETE /lists/{list_id}/members/{hash}                           delete_list_member (archive)
  POST   /lists/{list_id}/members/{hash}/actions/delete-permanent  delete_list_member_permanent
  POST   /lists/{list_id}/segments/{segment_id}                    batch_segment_members
  DELETE /lists/{list_id}/segments/{segment_id}/members/{hash}     remove_segment_member
  GET    /lists/{list_id}/members/{hash}                           get_list_member

Behaviour emulated (response shapes as Mailchimp's spec names them: BatchUpdateListMembers,
BatchAddremoveListMembersTofromStaticSegment, ListMembers):
- HTTP Basic auth, any user name, the API key as password; else 401 'API Key Invalid'.
- Errors are application/problem+json {type, title, status, detail, instance}.
- More than 10 requests in flight at once -> 429 'Too Many Requests' (Mailchimp's
  connection limit); `throttle_rps` (base knob) throttles the same way. No Retry-After
  is sent: whether Mailchimp sends one is unverified.
- More than 500 members (or 500 in either segment array) -> 400 'Invalid Resource'.
- Per-record errors inside the 200 batch answer (`errors[]` with email_address, error,
  error_code, field, field_message): an invalid email; a permanently deleted email
  ('cannot be re-imported'); an unsubscribed or cleaned member asked to be 'subscribed'
  (compliance state); ERROR_CONTACT_EXISTS when update_existing is false; `error_share`
  of members refused with the transient 'signed up to a lot of lists very recently'.
- Segment batch: emails not on the audience come back in `errors[]`; adding someone
  already in the segment lists them in members_added again, removing someone absent is
  silently ignored [assumptions: the real answer for those two cases is unverified].
- Per-member endpoints answer `error_share` of calls with a 500 before changing anything.
State: `lists[list_id]` holds members by subscriber hash and static segments by id.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from destinations.sandbox.server import Request, Response, SandboxServer, route

MAX_MEMBERS = 500
MAX_CONNECTIONS = 10
ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_LIST = r"/3\.0/lists/(?P<list_id>[^/]+)"
_HASH = r"(?P<hash>[^/]+)"


def md5_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's id


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": ERRORS_DOC, "title": title, "status": status, "detail": detail,
            "instance": str(uuid.uuid4()), **extra}
    return Response(status, body, {"Content-Type": "application/problem+json"})


@dataclass
class Audience:
    list_id: str
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # hash -> ListMembers
    segments: dict[str, set[str]] = field(default_factory=dict)  # segment id -> member hashes
    forgotten: set[str] = field(default_factory=set)  # hashes permanently deleted


class MailchimpSandbox(SandboxServer):
    def __init__(self, *, api_key: str = "sandbox0key-us19", lists: dict[str, list[str]] | None = None,
                 max_connections: int = MAX_CONNECTIONS, **knobs: Any):
        super().__init__(**knobs)
        self.api_key = api_key
        self.max_connections = max_connections
        self.lists: dict[str, Audience] = {}
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self.max_inflight_seen = 0
        self.journal: list[tuple[str, str, Any]] = []  # (method, path, body) of authenticated calls
        for list_id, segments in (lists or {"list0001": ["seg1"]}).items():
            self.add_list(list_id, segments)

    @property
    def api_url(self) -> str | None:
        url = getattr(self, "url", None)  # the base scans attributes before start() sets it
        return f"{url}/3.0" if url else None

    # ---- setup and inspection (tests, demo)

    def add_list(self, list_id: str, segments: list[str] = ()) -> None:
        with self.lock:
            aud = self.lists.setdefault(list_id, Audience(list_id))
            for s in segments:
                aud.segments.setdefault(str(s), set())

    def member(self, list_id: str, email: str) -> dict[str, Any] | None:
        with self.lock:
            m = self.lists[list_id].members.get(md5_hash(email))
            return dict(m) if m else None

    def emails(self, list_id: str, status: str | None = "subscribed") -> set[str]:
        with self.lock:
            return {m["email_address"] for m in self.lists[list_id].members.values()
                    if status is None or m["status"] == status}

    def segment_emails(self, list_id: str, segment_id: str) -> set[str]:
        with self.lock:
            aud = self.lists[list_id]
            return {aud.members[h]["email_address"] for h in aud.segments[segment_id] if h in aud.members}

    def set_status(self, list_id: str, email: str, status: str) -> None:
        """What a person does in Mailchimp (e.g. unsubscribes from a campaign link)."""
        with self.lock:
            self.lists[list_id].members[md5_hash(email)]["status"] = status

    # ---- the tool's shapes

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        ok = False
        if header.startswith("Basic "):
            try:
                _, _, password = base64.b64decode(header[6:]).decode().partition(":")
                ok = password == self.api_key
            except (ValueError, UnicodeDecodeError):
                ok = False
        if not ok:
            return problem(401, "API Key Invalid",
                           "Your API key may be invalid, or you've attempted to access the wrong datacenter.")
        return None

    def throttled(self, retry_after: int) -> Response:
        return problem(429, "Too Many Requests",
                       f"You have exceeded the limit of {self.max_connections} simultaneous connections.")

    def dispatch(self, request: Request) -> Response | None:
        with self._inflight_lock:
            self._inflight += 1
            self.max_inflight_seen = max(self.max_inflight_seen, self._inflight)
            over = self._inflight > self.max_connections
        try:
            if over:
                with self.lock:
                    self.requests_seen += 1
                return self.refuse("throttled", self.throttled(1))
            resp = super().dispatch(request)
        finally:
            with self._inflight_lock:
                self._inflight -= 1
        if resp is not None and resp.status in (400, 404) and isinstance(resp.body, dict) and "error" in resp.body:
            # the base's own answers (no route, unparsable body) in Mailchimp's shape
            return problem(resp.status, "Resource Not Found" if resp.status == 404 else "Invalid Resource",
                           "The requested resource could not be found." if resp.status == 404
                           else "The resource submitted could not be validated.")
        return resp

    def _journal(self, request: Request) -> Any:
        body = request.json() if request.body else None
        with self.lock:
            self.journal.append((request.method, request.path, body))
        return body

    def _audience(self, request: Request) -> Audience | None:
        return self.lists.get(request.params["list_id"])

    @staticmethod
    def _not_found() -> Response:
        return problem(404, "Resource Not Found", "The requested resource could not be found.")

    def _member_view(self, aud: Audience, h: str) -> dict[str, Any]:
        m = aud.members[h]
        return {"id": h, "email_address": m["email_address"], "unique_email_id": m["unique_email_id"],
                "contact_id": m["contact_id"], "email_type": "html", "status": m["status"],
                "merge_fields": dict(m["merge_fields"]), "list_id": aud.list_id,
                "last_changed": m["last_changed"], "tags_count": 0, "tags": []}

    # ---- batch subscribe

    @route("POST", _LIST)
    def batch_subscribe(self, request: Request) -> Response:
        body = self._journal(request)
        aud = self._audience(request)
        if aud is None:
            return self._not_found()
        if not isinstance(body, dict) or not isinstance(body.get("members"), list):
            return problem(400, "Invalid Resource", "The resource submitted could not be validated. "
                           "For field-specific details, see the 'errors' array.",
                           errors=[{"field": "members", "message": "Required property members was not present."}])
        members = body["members"]
        if len(members) > MAX_MEMBERS:
            return problem(400, "Invalid Resource", "The resource submitted could not be validated. "
                           "For field-specific details, see the 'errors' array.",
                           errors=[{"field": "members", "message": f"Schema describes array, maximum {MAX_MEMBERS} items"}])
        update_existing = bool(body.get("update_existing", False))
        created, updated, errors = [], [], []

        def error(email: str, text: str, code: str = "ERROR_GENERIC", fld: str = "", msg: str = "") -> None:
            errors.append({"email_address": email, "error": text, "error_code": code,
                           "field": fld, "field_message": msg})

        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self.lock:
            for m in members:
                email = str(m.get("email_address") or "") if isinstance(m, dict) else ""
                status = m.get("status") if isinstance(m, dict) else None
                if status not in ("subscribed", "unsubscribed", "cleaned", "pending", "transactional"):
                    error(email, "Invalid status.", fld="status", msg="Status must be one of the documented values")
                    continue
                if not _EMAIL.match(email.strip()):
                    error(email, f"{email} looks fake or invalid, please enter a real email address.",
                          fld="email_address", msg="Invalid email address")
                    continue
                h = md5_hash(email)
                if h in aud.forgotten:
                    error(email, f"{email} was permanently deleted and cannot be re-imported. "
                          "The contact must re-subscribe to get back on the list.")
                    continue
                if self.roll(self.error_share):
                    error(email, f"{email} has signed up to a lot of lists very recently; "
                          "we're not allowing more signups for now")
                    continue
                fields = m.get("merge_fields") or {}
                if not isinstance(fields, dict):
                    error(email, "Merge fields must be an object.", fld="merge_fields")
                    continue
                existing = aud.members.get(h)
                if existing is not None and existing["status"] != "archived":
                    if not update_existing:
                        error(email, f"{email} is already a list member. Use PUT to insert or update list members.",
                              code="ERROR_CONTACT_EXISTS")
                        continue
                    if status == "subscribed" and existing["status"] in ("unsubscribed", "cleaned"):
                        error(email, f"{email} is in a compliance state due to unsubscribe, bounce, or "
                              "compliance review and cannot be subscribed.")
                        continue
                    existing["merge_fields"].update({str(k).upper(): v for k, v in fields.items()})
                    existing["status"] = status
                    existing["last_changed"] = now
                    updated.append(self._member_view(aud, h))
                else:
                    aud.members[h] = {"email_address": email.strip(), "status": status,
                                      "merge_fields": {str(k).upper(): v for k, v in fields.items()},
                                      "unique_email_id": uuid.uuid4().hex[:10],
                                      "contact_id": uuid.uuid4().hex, "last_changed": now}
                    created.append(self._member_view(aud, h))
        return Response(200, {"new_members": created, "updated_members": updated, "errors": errors,
                              "total_created": len(created), "total_updated": len(updated),
                              "error_count": len(errors), "_links": []})

    # ---- single member

    def _member_hash(self, request: Request) -> str:
        # The API takes the hash, or (as its docs say) the email address itself.
        raw = request.params["hash"]
        return md5_hash(raw) if "@" in raw else raw.lower()

    @route("GET", _LIST + r"/members/" + _HASH)
    def get_member(self, request: Request) -> Response:
        aud = self._audience(request)
        with self.lock:
            h = self._member_hash(request)
            if aud is None or h not in aud.members:
                return self._not_found()
            return Response(200, self._member_view(aud, h))

    @route("PATCH", _LIST + r"/members/" + _HASH)
    def update_member(self, request: Request) -> Response:
        body = self._journal(request)
        if self.roll(self.error_share):
            return problem(500, "Internal Server Error", "An unexpected internal error has occurred.")
        aud = self._audience(request)
        with self.lock:
            h = self._member_hash(request)
            if aud is None or h not in aud.members or aud.members[h]["status"] == "archived":
                return self._not_found()
            fields = (body or {}).get("merge_fields") or {}
            if not isinstance(fields, dict):
                return problem(400, "Invalid Resource", "The resource submitted could not be validated.")
            m = aud.members[h]
            m["merge_fields"].update({str(k).upper(): v for k, v in fields.items()})
            m["last_changed"] = datetime.now(UTC).isoformat(timespec="seconds")
            return Response(200, self._member_view(aud, h))

    @route("DELETE", _LIST + r"/members/" + _HASH)
    def archive_member(self, request: Request) -> Response:
        self._journal(request)
        if self.roll(self.error_share):
            return problem(500, "Internal Server Error", "An unexpected internal error has occurred.")
        aud = self._audience(request)
        with self.lock:
            h = self._member_hash(request)
            if aud is None or h not in aud.members or aud.members[h]["status"] == "archived":
                return self._not_found()
            aud.members[h]["status"] = "archived"
            for seg in aud.segments.values():
                seg.discard(h)
        return Response(204)

    @route("POST", _LIST + r"/members/" + _HASH + r"/actions/delete-permanent")
    def delete_permanent(self, request: Request) -> Response:
        self._journal(request)
        if self.roll(self.error_share):
            return problem(500, "Internal Server Error", "An unexpected internal error has occurred.")
        aud = self._audience(request)
        with self.lock:
            h = self._member_hash(request)
            if aud is None or h not in aud.members:
                return self._not_found()
            del aud.members[h]
            aud.forgotten.add(h)
            for seg in aud.segments.values():
                seg.discard(h)
        return Response(204)

    # ---- static segments

    @route("POST", _LIST + r"/segments/(?P<segment_id>[^/]+)")
    def batch_segment(self, request: Request) -> Response:
        body = self._journal(request)
        aud = self._audience(request)
        if aud is None or request.params["segment_id"] not in aud.segments:
            return self._not_found()
        body = body if isinstance(body, dict) else {}
        add, remove = body.get("members_to_add") or [], body.get("members_to_remove") or []
        if not isinstance(add, list) or not isinstance(remove, list):
            return problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        if len(add) > MAX_MEMBERS or len(remove) > MAX_MEMBERS:
            return problem(400, "Invalid Resource",
                           "Maximum allowed member items exceeded, please provide at most 500 items in "
                           "members_to_add field or members_to_remove field")
        if self.roll(self.error_share):
            return problem(500, "Internal Server Error", "An unexpected internal error has occurred.")
        seg = aud.segments[request.params["segment_id"]]
        added, removed, missing = [], [], []
        with self.lock:
            for email in add:
                h = md5_hash(str(email))
                if h not in aud.members or aud.members[h]["status"] == "archived":
                    missing.append(email)
                    continue
                seg.add(h)
                added.append(self._member_view(aud, h))
            for email in remove:
                h = md5_hash(str(email))
                if h in seg:
                    seg.discard(h)
                    removed.append(self._member_view(aud, h))
        errors = [{"email_addresses": missing, "error": "Email addresses do not belong to list"}] if missing else []
        return Response(200, {"members_added": added, "members_removed": removed, "errors": errors,
                              "total_added": len(added), "total_removed": len(removed),
                              "error_count": len(missing), "_links": []})

    @route("DELETE", _LIST + r"/segments/(?P<segment_id>[^/]+)/members/" + _HASH)
    def remove_segment_member(self, request: Request) -> Response:
        self._journal(request)
        if self.roll(self.error_share):
            return problem(500, "Internal Server Error", "An unexpected internal error has occurred.")
        aud = self._audience(request)
        with self.lock:
            h = self._member_hash(request)
            if aud is None or request.params["segment_id"] not in aud.segments:
                return self._not_found()
            seg = aud.segments[request.params["segment_id"]]
            if h not in seg:
                return self._not_found()
            seg.discard(h)
        return Response(204)
