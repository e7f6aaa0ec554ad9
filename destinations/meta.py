"""Meta Custom Audiences destination: add and remove people of a customer-file audience.

Endpoints (Graph API, https://graph.facebook.com/v{N}; N defaults to the version the
facebook-business 26.0.3 SDK pins, v26.0):
  POST   /v{N}/{audience_id}/users   add     JSON body {"payload": {"schema": [...], "data": [[...]]},
  DELETE /v{N}/{audience_id}/users   remove               "session": {...}}
  -> 200 {"audience_id", "session_id", "num_received", "num_invalid_entries", "invalid_entry_samples"}
Auth: `Authorization: Bearer <access token>` (as Segment's connector sends it; Graph also
takes an access_token parameter, which would put the token in URLs and logs).

Identifiers (multi-key schema). Record.fields keys -> Meta schema keys:
  email -> EMAIL; phone -> PHONE; first_name|firstname -> FN; last_name|lastname -> LN;
  city -> CT; state -> ST; zip|postal_code -> ZIP; country|country_code -> COUNTRY;
  date_of_birth -> DOBY, DOBM, DOBD; gender -> GEN. Other fields are never sent.
Each value is normalised by Meta's rules (see `normalise`) and SHA-256 hashed here: no raw
identifier leaves the process. A batch's schema lists only the keys some of its rows carry;
a row's unknown keys are "" (as the users reference asks).

Results: Meta answers counts, not per-row statuses. So:
- a row with no usable identifier (nothing but a country, or values that do not normalise)
  is REJECTED locally as MISSING_IDENTIFIER and never sent;
- every sent row is OK once Meta answers 200 with num_received covering the rows, except a
  row whose hashed value Meta quotes in invalid_entry_samples (REJECTED, META_INVALID_ENTRY).
  Meta samples only a few invalid entries: the rest of num_invalid_entries cannot be told
  apart and stay OK (the count is logged, without values). Matching happens later (up to 24 h)
  and is never reported per row;
- a 200 whose num_received is short of the rows sent leaves the call's rows RETRYABLE
  (re-adding or re-removing a hash is harmless).

Sessions: the engine sends batches independently, so each write() is one session: a random
64-bit session_id, batch_seq 1..n over the write's requests (rows_per_request, at most
10,000), last_batch_flag on the last, estimated_num_total = rows sent by the write. Retries of
a request resend the same session fields. Parts of a request Meta refused and that we bisect
go without a session (a session is bookkeeping for /users; it carries no replace semantics).

Errors ({"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}, HTTP 4xx):
- throttling (the HttpClient hook; Meta does not use 429): codes 4, 17, 32, 613 and the
  Business-Use-Case range 80000-80014 (80003 custom_audience, 80004 ads_management); a wait
  comes from X-Business-Use-Case-Usage `estimated_time_to_regain_access` (minutes);
- 190 (invalid or expired token) and 102/463/467 -> DestinationError(retryable=False) naming
  the env var; 10/200/294 (permissions) likewise;
- 100 with subcode 33 (no such audience or no access) or 1713230 (upload blocked) -> not
  retryable, naming the audience; any other 100 refuses the batch: it is bisected and only the
  rows Meta keeps refusing are REJECTED (INVALID_PARAMETER);
- `is_transient: true`, 1, 2 and 2650 -> retryable.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets as pysecrets
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import pycountry
import requests
from pydantic import Field

from destinations.base import (
    Batch,
    Capabilities,
    DestinationError,
    Operation,
    PreparedMemo,
    Record,
    RecordResult,
    ResultStatus,
    check_results,
)
from destinations.http import BatchRefused, make_client, split_batch_retry
from destinations.identifiers import normalise_email, normalise_phone, sha256_hex
from destinations.registry import DestinationConfig, env_value

log = logging.getLogger("outflow.meta")

API_URL = "https://graph.facebook.com"
API_VERSION = "v26.0"  # facebook_business/apiconfig.py in facebook-business 26.0.3
MAX_ROWS = 10_000  # "only a maximum of 10000 at a time" (custom-audience/users reference)
# custom_audience BUC: >= 190,000 points/hour per ad account on the Standard tier, 5,000 on
# the Development tier; 1 request/s with 10,000 rows each is 36M rows/hour.
DEFAULT_RPS = 1.0
OPERATIONS = frozenset({Operation.ADD_MEMBER, Operation.REMOVE_MEMBER})
THROTTLE_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TOKEN_CODES = frozenset({102, 190, 463, 467})
PERMISSION_CODES = frozenset({10, 200, 294})
TRANSIENT_CODES = frozenset({1, 2, 2650})

# Schema keys in the order a batch lists them; every one of them is hashed.
SCHEMA_ORDER = ("EMAIL", "PHONE", "FN", "LN", "CT", "ST", "ZIP", "COUNTRY", "DOBY", "DOBM", "DOBD", "GEN")
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "EMAIL": ("email",),
    "PHONE": ("phone", "phone_e164"),
    "FN": ("first_name", "firstname"),
    "LN": ("last_name", "lastname"),
    "CT": ("city",),
    "ST": ("state",),
    "ZIP": ("zip", "postal_code"),
    "COUNTRY": ("country", "country_code"),
    "GEN": ("gender",),
}
# Keys that qualify a match but cannot identify a person alone.
QUALIFIERS = frozenset({"COUNTRY"})
JSON_HEADERS = {"Content-Type": "application/json"}
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_EMAIL_OK = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_AUDIENCE_ID = re.compile(r"^\d{1,20}$")
_NOT_ASCII_LETTER = re.compile(r"[^a-z]+")

# --------------------------------------------------------------------------- normalisation
# Meta's "Hashing and normalizing data" rules; the SDK's CustomAudienceMixin.normalize_key is
# a weaker subset (it keeps leading zeros and non-US zip dashes).


def _text(value: Any) -> str:
    return unicodedata.normalize("NFC", str(value)).strip().lower()


def _letters(value: Any) -> str:
    """Lower-case letters only (any script: Meta accepts UTF-8 names), no digits,
    punctuation or spaces."""
    return _letters_of(value) if type(value) is str else _letters_of(str(value))


@functools.lru_cache(maxsize=1 << 16)  # names and places repeat across an audience
def _letters_of(value: str) -> str:
    text = _text(value)
    if text.isascii():  # the common case, in C: ASCII letters are exactly [a-z] once lower-cased
        return _NOT_ASCII_LETTER.sub("", text)
    return "".join(ch for ch in text if ch.isalpha())


def normalise_country(value: Any) -> str | None:
    """ISO 3166-1 alpha-2, lower-case; names and alpha-3 codes are looked up."""
    if value is None or not str(value).strip():
        return None
    return _country(str(value).strip())


@functools.lru_cache(maxsize=4096)  # a handful of values, looked up once per record
def _country(text: str) -> str | None:
    if re.fullmatch(r"[A-Za-z]{2}", text):
        return text.lower() if pycountry.countries.get(alpha_2=text.upper()) else None
    try:
        return pycountry.countries.lookup(text).alpha_2.lower()
    except LookupError:
        return None


def normalise_meta_phone(value: Any, region: str | None) -> str | None:
    """Digits only, with the country code, no '+' and no leading zeros ('16502530000')."""
    e164 = normalise_phone(None if value is None else str(value), region)
    return e164.lstrip("+").lstrip("0") if e164 else None


def normalise_state(value: Any, country: str | None) -> str | None:
    """US states: the 2-letter code (names are mapped); elsewhere letters only."""
    letters = _letters(value) if value is not None else ""
    if not letters:
        return None
    if country in (None, "us") and len(letters) > 2:
        for sub in pycountry.subdivisions.get(country_code="US") or ():
            if _letters(sub.name) == letters:
                return sub.code.split("-", 1)[1].lower()
    return letters


def normalise_zip(value: Any, country: str | None) -> str | None:
    """Lower-case, no spaces or dashes; US: the first 5 digits."""
    if value is None:
        return None
    text = _text(value)
    us = country == "us" or (country is None and re.fullmatch(r"\d{5}(-?\d{4})?", text))
    if us:
        digits = re.sub(r"\D", "", text)
        return digits[:5] if len(digits) >= 5 else None
    out = re.sub(r"[\s-]", "", text)
    return out or None


def _dob(value: Any) -> tuple[str, str, str] | None:
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return f"{value.year:04d}", f"{value.month:02d}", f"{value.day:02d}"
    if value is None:
        return None
    try:
        d = date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None
    return f"{d.year:04d}", f"{d.month:02d}", f"{d.day:02d}"


def _first(fields: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        value = fields.get(name)
        if value is None:
            continue
        if (value if isinstance(value, str) else str(value)).strip():
            return value
    return None


def normalise(fields: Mapping[str, Any], *, default_region: str | None = "US") -> dict[str, str]:
    """Meta schema key -> normalised (not yet hashed) value, for the keys this record has
    a usable value for."""
    out: dict[str, str] = {}
    country = normalise_country(_first(fields, FIELD_ALIASES["COUNTRY"]))
    email = normalise_email(_first(fields, FIELD_ALIASES["EMAIL"]))
    if email and _EMAIL_OK.match(email):
        out["EMAIL"] = email
    phone = normalise_meta_phone(_first(fields, FIELD_ALIASES["PHONE"]), (country or default_region or "").upper())
    if phone:
        out["PHONE"] = phone
    for key in ("FN", "LN", "CT"):
        value = _letters(_first(fields, FIELD_ALIASES[key]) or "")
        if value:
            out[key] = value
    state = normalise_state(_first(fields, FIELD_ALIASES["ST"]), country)
    if state:
        out["ST"] = state
    zip_code = normalise_zip(_first(fields, FIELD_ALIASES["ZIP"]), country)
    if zip_code:
        out["ZIP"] = zip_code
    if country:
        out["COUNTRY"] = country
    dob = _dob(fields.get("date_of_birth"))
    if dob:
        out["DOBY"], out["DOBM"], out["DOBD"] = dob
    gender = _letters(fields.get("gender") or "")[:1]
    if gender in ("m", "f"):
        out["GEN"] = gender
    return out


# Keys whose values identify one person; the others (names, places, dates, gender) take few
# distinct values across an audience, so their hashes are cached.
PERSONAL_KEYS = frozenset({"EMAIL", "PHONE"})
_shared_sha256 = functools.lru_cache(maxsize=1 << 16)(sha256_hex)


def hashed_row(fields: Mapping[str, Any], *, default_region: str | None = "US") -> dict[str, str]:
    """Meta schema key -> SHA-256 hex of the normalised value."""
    return {k: sha256_hex(v) if k in PERSONAL_KEYS else _shared_sha256(v)  # type: ignore[misc]
            for k, v in normalise(fields, default_region=default_region).items()}


def row_id(row: Mapping[str, str]) -> str:
    """A member's destination_id: its hashed row as JSON (hashes only), so a removal, which the
    engine sends without fields, removes exactly the row that was added.

    Keys sorted, no spaces: the bytes of json.dumps(row, sort_keys=True, separators=(",", ":")),
    which is stored in sync_state. Written by orjson (json.dumps was most of a prepare's
    cost), which gives those bytes for ASCII text; anything else goes through json.dumps."""
    out = orjson.dumps(row if type(row) is dict else dict(row), option=orjson.OPT_SORT_KEYS)
    # Printable ASCII that needed no escape: then the same bytes as json.dumps (which also
    # escapes non-ASCII and DEL); a hashed row always is.
    if out.isascii() and b"\\" not in out and b"\x7f" not in out:
        return out.decode()
    return json.dumps(dict(row), sort_keys=True, separators=(",", ":"))


def row_from_id(destination_id: str | None) -> dict[str, str] | None:
    try:
        row = json.loads(destination_id) if destination_id else None
    except ValueError:
        return None
    if not isinstance(row, dict) or not row or not all(
            k in SCHEMA_ORDER and isinstance(v, str) and _HEX64.match(v) for k, v in row.items()):
        return None
    return row


def users_body(rows: Sequence[Mapping[str, str]], session: Mapping[str, Any] | None) -> dict[str, Any]:
    """The /users body: the schema is the keys any row carries, in SCHEMA_ORDER; "" where a
    row lacks one."""
    present = {k for row in rows for k in row}
    schema = [k for k in SCHEMA_ORDER if k in present]
    body: dict[str, Any] = {"payload": {"schema": schema, "data": [[row.get(k, "") for k in schema] for row in rows]}}
    if session is not None:
        body["session"] = dict(session)
    return body


# --------------------------------------------------------------------------- errors


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return None


def graph_error(resp: requests.Response) -> dict[str, Any]:
    body = _json(resp)
    err = body.get("error") if isinstance(body, Mapping) else None
    return dict(err) if isinstance(err, Mapping) else {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def error_reason(err: Mapping[str, Any]) -> str:
    """'META_<code>[/<subcode>]' and the error type; never the message (Meta may quote values)."""
    code, sub = _int(err.get("code")), _int(err.get("error_subcode"))
    kind = err.get("type") if isinstance(err.get("type"), str) and re.fullmatch(r"\w{1,64}", err["type"]) else None
    text = f"META_{code if code is not None else 'UNKNOWN'}" + (f"/{sub}" if sub is not None else "")
    return f"{text} ({kind})" if kind else text


def buc_wait(resp: requests.Response) -> float | None:
    """Seconds until access returns, from X-Business-Use-Case-Usage (minutes per use case)."""
    raw = resp.headers.get("X-Business-Use-Case-Usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes = [
        item.get("estimated_time_to_regain_access")
        for items in (usage.values() if isinstance(usage, Mapping) else ())
        for item in (items if isinstance(items, list) else ())
        if isinstance(item, Mapping)
    ]
    waits = [float(m) for m in minutes if isinstance(m, int | float) and not isinstance(m, bool) and m > 0]
    return max(waits) * 60.0 if waits else None


def meta_throttled(resp: requests.Response) -> bool | float | None:
    """Meta's throttling signal: an error code of the rate-limit family in a 4xx."""
    if resp.status_code < 400 or resp.status_code == 429:
        return None
    code = _int(graph_error(resp).get("code"))
    if code not in THROTTLE_CODES:
        return None
    return buc_wait(resp) or True


# --------------------------------------------------------------------------- destination


class MetaAudienceDestination:
    def __init__(
        self,
        access_token: str,
        *,
        name: str = "meta",
        base_url: str = API_URL,
        api_version: str = API_VERSION,
        access_token_env: str | None = None,
        default_phone_region: str | None = "US",
        max_batch_size: int = MAX_ROWS,
        rows_per_request: int = MAX_ROWS,
        requests_per_second: float = DEFAULT_RPS,
        burst: int = 1,
        max_concurrency: int = 2,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        retry_after_cap: float = 300.0,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"meta {name}: base_url must start with http:// or https://")
        if not re.fullmatch(r"v\d+\.\d+", api_version):
            raise ValueError(f"meta {name}: api_version must look like 'v26.0', got {api_version!r}")
        if not access_token:
            raise ValueError(f"meta {name}: access token is empty")
        if not 1 <= rows_per_request <= MAX_ROWS:
            raise ValueError(f"meta {name}: rows_per_request must be between 1 and {MAX_ROWS}")
        if max_batch_size < 1:
            raise ValueError(f"meta {name}: max_batch_size must be >= 1")
        if max_concurrency < 1:
            raise ValueError(f"meta {name}: max_concurrency must be >= 1")
        self.name = name
        self.base_url = f"{base_url.rstrip('/')}/{api_version}"
        self.default_phone_region = default_phone_region
        self.rows_per_request = rows_per_request
        # prepare's hashed rows, for the write that follows (hashing is most of its cost)
        self._prepared = PreparedMemo(limit=4 * max_batch_size)
        self._token_hint = (f"the access token in env {access_token_env}" if access_token_env
                            else "the access token")
        self.capabilities = Capabilities(
            operations=OPERATIONS,
            max_batch_size=max_batch_size,
            max_requests_per_second=requests_per_second,
            max_concurrency=max_concurrency,
        )
        self.client = make_client(
            f"meta {name}", requests_per_second=requests_per_second, burst=burst,
            max_concurrency=max_concurrency,
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            connect_timeout=connect_timeout, read_timeout=read_timeout, max_retries=max_retries,
            backoff_base=backoff_base, backoff_cap=backoff_cap, retry_after_cap=retry_after_cap,
            is_throttled=meta_throttled, secrets=[access_token],
        )

    # ---- the protocol

    def write(self, batch: Batch) -> list[RecordResult]:
        what = f"meta {self.name}: {batch.sync}/{batch.operation.value}"
        if batch.operation not in OPERATIONS:
            raise DestinationError(
                f"{what}: operation not supported (Meta Custom Audiences take add_member and remove_member)",
                retryable=False)
        if not _AUDIENCE_ID.match(str(batch.target)):
            raise DestinationError(f"{what}: target {batch.target!r} is not a Meta custom audience id (digits)",
                                   retryable=False)
        results: list[RecordResult] = []
        sendable: list[tuple[Record, dict[str, str]]] = []
        ids: dict[str, str] = {}  # key -> row_id, where prepare made it
        for rec in batch.records:
            hit = self._prepared.take(batch.sync, rec)
            row = hashed_row(rec.fields, default_region=self.default_phone_region) if hit is None else hit[0]
            if hit is not None:
                ids[rec.key] = hit[1]
            if not row and batch.operation is Operation.REMOVE_MEMBER:
                row = row_from_id(rec.destination_id) or {}
            if not set(row) - QUALIFIERS:
                results.append(RecordResult(rec.key, ResultStatus.REJECTED, error=(
                    "MISSING_IDENTIFIER: no usable email, phone, name, city, state, zip, date of birth or gender")))
            else:
                sendable.append((rec, row))
        chunks = [sendable[i : i + self.rows_per_request] for i in range(0, len(sendable), self.rows_per_request)]
        session_id = pysecrets.randbits(63) or 1
        method = "POST" if batch.operation is Operation.ADD_MEMBER else "DELETE"
        for seq, chunk in enumerate(chunks, start=1):
            session = {"session_id": session_id, "batch_seq": seq, "last_batch_flag": seq == len(chunks),
                       "estimated_num_total": len(sendable)}
            rows = {rec.key: row for rec, row in chunk}
            records = [rec for rec, _ in chunk]

            def send(part: Sequence[Record], _chunk=records, _session=session, _rows=rows) -> list[RecordResult]:
                whole = len(part) == len(_chunk)
                return self._send(what, method, batch.target, part, _rows, _session if whole else None, ids)

            try:
                results += split_batch_retry(records, send, redactor=self.client.redact)
            except DestinationError as exc:
                if exc.retryable and results:  # earlier chunks were written: keep their answers
                    results += [RecordResult(r.key, ResultStatus.RETRYABLE, error=self.client.redact(str(exc)))
                                for r in records]
                    continue
                raise
        return check_results(batch, results)

    def prepare(self, batch: Batch) -> list[RecordResult]:
        """The hashed row each person will be added with, as the destination_id a removal sends."""
        out = []
        for rec in batch.records:
            row = hashed_row(rec.fields, default_region=self.default_phone_region)
            if set(row) - QUALIFIERS:
                rid = row_id(row)
                self._prepared.put(batch.sync, rec, (row, rid))
            out.append(RecordResult(rec.key, ResultStatus.OK, destination_id=rid) if set(row) - QUALIFIERS
                       else RecordResult(rec.key, ResultStatus.REJECTED, error="MISSING_IDENTIFIER: no usable "
                                         "email, phone, name, city, state, zip, date of birth or gender"))
        return out

    def close(self) -> None:
        self.client.close()

    # ---- one call

    def _send(self, what: str, method: str, audience: str, part: Sequence[Record],
              rows: Mapping[str, Mapping[str, str]], session: Mapping[str, Any] | None,
              ids: Mapping[str, str] | None = None) -> list[RecordResult]:
        # orjson: a 10,000-row body in a fifth of json.dumps's time; it holds only str, int, bool
        body = orjson.dumps(users_body([rows[r.key] for r in part], session))
        # Adding or removing the same hashes again is harmless: safe to retry.
        resp = self.client.request(method, f"{self.base_url}/{audience}/users", body=body,
                                   headers=JSON_HEADERS, idempotent=True)
        if resp.status_code >= 300:
            self._raise(what, audience, resp)
        payload = _json(resp)
        if not isinstance(payload, Mapping):
            raise DestinationError(f"{what}: HTTP {resp.status_code} body is not a JSON object", retryable=True)
        return self._map(what, part, rows, payload, ids or {})

    def _raise(self, what: str, audience: str, resp: requests.Response) -> None:
        err = graph_error(resp)
        code, sub = _int(err.get("code")), _int(err.get("error_subcode"))
        reason = error_reason(err)
        status = resp.status_code
        if code in TOKEN_CODES:
            raise DestinationError(
                f"{what}: HTTP {status} {reason}: Meta refused {self._token_hint} (invalid or expired); set it to "
                "a valid system-user access token with ads_management", retryable=False)
        if code in PERMISSION_CODES:
            raise DestinationError(
                f"{what}: HTTP {status} {reason}: {self._token_hint} may not edit audience {audience} "
                "(needs ads_management and access to the ad account)", retryable=False)
        if code == 100 and sub in (33, 1713230):
            why = ("is blocked for uploads: resolve its restrictions in Audience Manager" if sub == 1713230
                   else "does not exist or this token cannot reach it")
            raise DestinationError(f"{what}: HTTP {status} {reason}: audience {audience} {why}", retryable=False)
        if code == 100:
            raise BatchRefused(f"{what}: HTTP {status} {reason}: invalid parameter", status=status,
                               reason="INVALID_PARAMETER")
        transient = err.get("is_transient") is True or code in TRANSIENT_CODES or status >= 500
        raise DestinationError(f"{what}: HTTP {status} {reason}", retryable=transient)

    def _map(self, what: str, part: Sequence[Record], rows: Mapping[str, Mapping[str, str]],
             payload: Mapping[str, Any], ids: Mapping[str, str]) -> list[RecordResult]:
        received = _int(payload.get("num_received"))
        if received is None or received < len(part):
            return [RecordResult(r.key, ResultStatus.RETRYABLE, error=(
                f"PARTIAL_RECEIPT: Meta received {received} of {len(part)} rows")) for r in part]
        samples = payload.get("invalid_entry_samples")
        bad = {str(k) for k in samples} if isinstance(samples, Mapping) else (
            {str(k) for k in samples} if isinstance(samples, list) else set())
        invalid = _int(payload.get("num_invalid_entries")) or 0
        results = []
        for r in part:
            if bad and not bad.isdisjoint(rows[r.key].values()):
                results.append(RecordResult(r.key, ResultStatus.REJECTED, error="META_INVALID_ENTRY: Meta "
                                            "reported this row's hashed value as invalid"))
            else:
                rid = ids.get(r.key) or row_id(rows[r.key])
                results.append(RecordResult(r.key, ResultStatus.OK, destination_id=rid))
        unmatched = invalid - sum(res.status is ResultStatus.REJECTED for res in results)
        if unmatched > 0:
            log.info("%s: Meta counted %d invalid rows it did not sample; they cannot be told apart", what, unmatched)
        return results


# --------------------------------------------------------------------------- config


class Config(DestinationConfig):
    type: Literal["meta"]
    access_token_env: str = Field(description="name of the env var holding the system-user access token")
    base_url: str = Field(API_URL, description="Graph API root; a sandbox URL for local trials")
    base_url_env: str | None = Field(None, description="env var that overrides base_url")
    api_version: str = Field(API_VERSION, pattern=r"^v\d+\.\d+$")
    default_phone_region: str | None = Field("US", min_length=2, max_length=2)
    max_batch_size: int = Field(MAX_ROWS, ge=1, le=100_000)
    rows_per_request: int = Field(MAX_ROWS, ge=1, le=MAX_ROWS)
    requests_per_second: float = Field(DEFAULT_RPS, gt=0, le=50)
    burst: int = Field(1, ge=1, le=50)  # steady pacing: Meta counts usage per rolling hour
    max_concurrency: int = Field(2, ge=1, le=8)
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)


def from_config(name: str, config: Config, *, where: Path, env: Mapping[str, str]) -> MetaAudienceDestination:
    token = env_value(env, config.access_token_env, name=name, key="access_token_env", where=where)
    base_url = (env.get(config.base_url_env) if config.base_url_env else None) or config.base_url
    return MetaAudienceDestination(
        token, name=name, base_url=base_url, api_version=config.api_version,
        access_token_env=config.access_token_env, default_phone_region=config.default_phone_region,
        max_batch_size=config.max_batch_size, rows_per_request=config.rows_per_request,
        requests_per_second=config.requests_per_second, burst=config.burst,
        max_concurrency=config.max_concurrency, connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout, max_retries=config.max_retries,
    )
