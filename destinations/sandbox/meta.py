"""Meta Custom Audiences sandbox: /{audience_id}/users add and remove, over real HTTP on 127.0.0.1.

Routes (Graph API; paths, parameters and answers as the custom-audience/users reference and
facebook-business 26.0.3's CustomAudience.create_user / delete_users describe them):
  POST   /v{N}/{audience_id}/users   add       params payload (Object), session (Object), namespace
  DELETE /v{N}/{audience_id}/users   remove    as a JSON body, a form body, or query parameters
  -> 200 {"audience_id", "session_id", "num_received", "num_invalid_entries", "invalid_entry_samples"}

Auth: `Authorization: Bearer <token>` or an `access_token` parameter; otherwise HTTP 400
{"error": {"message", "type": "OAuthException", "code": 190, "fbtrace_id"}}.
Errors are Graph's shape {"error": {"message", "type", "code", "error_subcode"?, "fbtrace_id"}}:
- code 100 (HTTP 400): payload missing or not an object; schema not a list of known multi-key
  names (or a known single-key schema); data not a list of rows as wide as the schema; more
  than `max_rows` (10,000) rows; a malformed session object;
- code 100 subcode 33 (HTTP 400): an audience this sandbox does not know;
- throttling: HTTP 400 with code `throttle_code` (default 80003, the custom_audience BUC;
  17 gives subcode 2446079, 613 subcode 1487742) plus an X-Business-Use-Case-Usage header.
  Meta never answers 429 here.
- error_share: that share of requests answers HTTP 500 code 2 (is_transient) before any change.

Rows: a value is valid when "" or 64 lower-case hex (SHA-256). A row with no valid non-empty
value is an invalid entry (counted, sampled by value in invalid_entry_samples); `invalid_hashes`
makes given hashes invalid too, to reach that path. A valid row becomes a member: its
{key: hash} of non-empty values. A removal drops members sharing the row's EMAIL or PHONE hash,
or equal to the row.

Choices where Meta's docs are silent: the exact text of error messages, the reason strings in
invalid_entry_samples, and that a removal matches by EMAIL or PHONE hash (Meta matches people,
not rows).

State (inspect under `lock`): audiences {id: {member key: member dict}, in insertion order}, sessions {session_id: {...}},
values_seen (every identifier value received), bodies (the last raw request bodies).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections import deque
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from destinations.sandbox.server import Request, Response, SandboxServer, route

MAX_ROWS = 10_000
MULTI_KEYS = frozenset({"EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST",
                        "ZIP", "MADID", "COUNTRY", "LOOKALIKE_VALUE", "DATA_PROCESSING_OPTIONS"})
SINGLE_KEYS = frozenset({"EMAIL_SHA256", "PHONE_SHA256", "MOBILE_ADVERTISER_ID"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_THROTTLE = {
    4: (None, "(#4) Application request limit reached"),
    17: (2446079, "(#17) User request limit reached"),
    613: (1487742, "(#613) There have been too many calls from this ad-account. Please wait a bit and try again."),
    80003: (2446079, "(#80003) There have been too many calls to this ad-account. Wait a bit and try again."),
}


def _trace() -> str:
    return uuid.uuid4().hex[:11]


def _person(row: dict[str, str]) -> tuple:
    """Who a row matches: its email hash, else its phone hash, else all its keys together."""
    for key in ("EMAIL", "PHONE"):
        if key in row:
            return (key, row[key])
    return tuple(sorted(row.items()))


def graph_error(status: int, message: str, code: int, subcode: int | None = None, **extra: Any) -> Response:
    err: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    err.update(extra)
    err["fbtrace_id"] = _trace()
    return Response(status, {"error": err})


class MetaSandbox(SandboxServer):
    def __init__(
        self,
        *,
        token: str = "EAAB-sandbox-token",
        audiences: Iterable[str] = (),
        max_rows: int = MAX_ROWS,
        throttle_code: int = 80003,
        invalid_hashes: Iterable[str] = (),
        **knobs: Any,
    ):
        super().__init__(**knobs)
        if throttle_code not in _THROTTLE:
            raise ValueError(f"throttle_code must be one of {sorted(_THROTTLE)}, got {throttle_code}")
        self.token = token
        self.max_rows = max_rows
        self.throttle_code = throttle_code
        self.invalid_hashes = set(invalid_hashes)
        # Keyed by the person a row matches (see _person): an add is O(rows), not O(audience).
        self.audiences: dict[str, dict[tuple, dict[str, str]]] = {str(a): {} for a in audiences}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.values_seen: set[str] = set()
        self.bodies: deque[bytes] = deque(maxlen=50)
        self.calls: list[dict[str, Any]] = []  # one per accepted call: method, audience, rows, session
        self._session_ids = itertools.count(7_000_000_000)

    # ---- inspection helpers

    def create_audience(self, audience_id: str) -> str:
        with self.lock:
            self.audiences.setdefault(str(audience_id), {})
            return str(audience_id)

    def members(self, audience_id: str) -> list[dict[str, str]]:
        with self.lock:
            return [dict(m) for m in self.audiences[str(audience_id)].values()]

    def member_hashes(self, audience_id: str, key: str = "EMAIL") -> set[str]:
        with self.lock:
            return {m[key] for m in self.audiences[str(audience_id)].values() if key in m}

    # ---- the tool's answers

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        """Graph parameters from the query string, a form body or a JSON body; Object
        parameters given as strings are JSON-decoded, as Graph does."""
        params: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
        ctype = request.headers.get("content-type", "")
        if request.body:
            if "json" in ctype:
                body = json.loads(request.body)
                if not isinstance(body, dict):
                    raise ValueError("body is not an object")
                params.update(body)
            else:
                params.update({k: v[-1] for k, v in parse_qs(request.body.decode()).items()})
        for key in ("payload", "session"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else None
        if token is None:
            token = (request.query.get("access_token") or [None])[-1]
        if token is None and request.body and "json" not in request.headers.get("content-type", ""):
            token = (parse_qs(request.body.decode(errors="replace")).get("access_token") or [None])[-1]
        if token != self.token:
            return graph_error(400, "Invalid OAuth access token - Cannot parse access token", 190)
        return None

    def throttled(self, retry_after: int) -> Response:
        subcode, message = _THROTTLE[self.throttle_code]
        resp = graph_error(400, message, self.throttle_code, subcode, is_transient=True)
        usage = {"1234567890": [{"type": "custom_audience", "call_count": 100, "total_cputime": 28,
                                 "total_time": 33, "estimated_time_to_regain_access": 0}]}
        resp.headers["X-Business-Use-Case-Usage"] = json.dumps(usage)
        return resp

    def _bad(self, reason: str, message: str, subcode: int | None = None) -> Response:
        return self.refuse(reason, graph_error(400, f"(#100) {message}", 100, subcode))

    # ---- routes

    @route("POST", r"/v(?P<version>\d+\.\d+)/(?P<audience>\d+)/users")
    def add_users(self, request: Request) -> Response:
        return self._users(request, add=True)

    @route("DELETE", r"/v(?P<version>\d+\.\d+)/(?P<audience>\d+)/users")
    def remove_users(self, request: Request) -> Response:
        return self._users(request, add=False)

    def _users(self, request: Request, *, add: bool) -> Response:
        with self.lock:
            self.bodies.append(request.body)
        audience = request.params["audience"]
        if audience not in self.audiences:
            return self._bad("unknown_audience", f"Unsupported {'post' if add else 'delete'} request. Object with "
                             f"ID '{audience}' does not exist, cannot be loaded due to missing permissions, or does "
                             "not support this operation.", 33)
        try:
            params = self._params(request)
        except ValueError:
            return self._bad("bad_request", "Param payload must be a JSON object")
        payload = params.get("payload")
        if not isinstance(payload, dict):
            return self._bad("bad_request", "The parameter payload is required")
        schema, data = payload.get("schema"), payload.get("data")
        if isinstance(schema, str):
            if schema not in SINGLE_KEYS:
                return self._bad("bad_schema", "Invalid schema")
            schema, data = [schema.removesuffix("_SHA256")], [[v] for v in data] if isinstance(data, list) else data
        if not isinstance(schema, list) or not schema or any(k not in MULTI_KEYS for k in schema) \
                or len(set(schema)) != len(schema):
            return self._bad("bad_schema", "Invalid schema: use a list of distinct multi-key names")
        if not isinstance(data, list) or not data:
            return self._bad("bad_request", "payload.data must be a non-empty array")
        if len(data) > self.max_rows:
            return self._bad("too_many_rows", f"Too many users in a request: at most {self.max_rows} at a time",
                             1870034)
        if any(not isinstance(row, list) or len(row) != len(schema) for row in data):
            return self._bad("bad_row_width", "Number of keys in each list in the data should match the number "
                             "of keys specified in schema")
        session = params.get("session")
        if session is not None and not self._session_ok(session):
            return self._bad("bad_session", "Invalid session: session_id, batch_seq (>= 1), last_batch_flag "
                             "(bool) expected")
        if self.roll(self.error_share):
            return self.refuse("server_error", graph_error(
                500, "An unexpected error has occurred. Please retry your request later.", 2, is_transient=True))
        return self._apply(audience, schema, data, session, add=add)

    @staticmethod
    def _session_ok(session: Any) -> bool:
        if not isinstance(session, dict):
            return False
        sid, seq, last = session.get("session_id"), session.get("batch_seq"), session.get("last_batch_flag")
        total = session.get("estimated_num_total")
        return (isinstance(sid, int) and not isinstance(sid, bool) and sid > 0
                and isinstance(seq, int) and not isinstance(seq, bool) and seq >= 1
                and isinstance(last, bool)
                and (total is None or (isinstance(total, int) and total >= 0)))

    def _apply(self, audience: str, schema: list[str], data: list[list[Any]], session: dict | None, *,
               add: bool) -> Response:
        invalid: dict[str, str] = {}
        n_invalid = 0
        rows: list[dict[str, str]] = []
        with self.lock:
            for raw in data:
                row: dict[str, str] = {}
                bad_row = False
                for key, value in zip(schema, raw, strict=True):
                    if key in ("LOOKALIKE_VALUE", "DATA_PROCESSING_OPTIONS", "EXTERN_ID") or value in ("", None):
                        continue
                    value = str(value)
                    self.values_seen.add(value)
                    if not _HEX64.match(value) or value in self.invalid_hashes:
                        bad_row = True
                        if len(invalid) < 10:
                            invalid[value] = "Invalid format" if not _HEX64.match(value) else "Invalid entry"
                    else:
                        row[key] = value
                if bad_row or not row:
                    n_invalid += 1
                    continue
                rows.append(row)
            members = self.audiences[audience]
            if add:  # the audience holds people: the same email (or phone) again is the same member
                for row in rows:
                    members[_person(row)] = row
            else:
                exact = {_person(r) for r in rows}
                keys = {(k, r[k]) for r in rows for k in ("EMAIL", "PHONE") if k in r}

                def gone(ident: tuple, m: dict[str, str]) -> bool:
                    return ident in exact or any((k, m.get(k)) in keys for k in ("EMAIL", "PHONE"))
                self.audiences[audience] = {i: m for i, m in members.items() if not gone(i, m)}
            sid = str(session["session_id"]) if session else str(next(self._session_ids))
            state = self.sessions.setdefault(sid, {"audience_id": audience, "batches": [], "closed": False,
                                                   "num_received": 0, "num_invalid_entries": 0,
                                                   "estimated_num_total": None})
            if session:
                state["batches"].append(session["batch_seq"])
                state["closed"] = state["closed"] or session["last_batch_flag"]
                state["estimated_num_total"] = session.get("estimated_num_total")
            state["num_received"] += len(data)
            state["num_invalid_entries"] += n_invalid
            self.calls.append({"method": "POST" if add else "DELETE", "audience": audience, "rows": len(data),
                               "schema": list(schema), "session": dict(session) if session else None})
        return Response(200, {"audience_id": audience, "session_id": sid, "num_received": len(data),
                              "num_invalid_entries": n_invalid, "invalid_entry_samples": invalid})
