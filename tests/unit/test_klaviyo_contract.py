"""Every request body the Klaviyo connector sends, and every answer the sandbox gives,
parses with klaviyo-api 25.0.0's own pydantic models (openapi_client.models), with no
field dropped on the way (from_dict(...).to_dict() gives the body back)."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest
import requests

from destinations.base import Batch, Operation, Record
from destinations.klaviyo import DEFAULT_REVISION, KlaviyoDestination
from destinations.sandbox.klaviyo import KlaviyoSandbox

models = pytest.importorskip("openapi_client.models", reason="klaviyo-api (test dependency) is not installed")
from klaviyo_api import KlaviyoAPI  # noqa: E402

KEY = "pk_contract_0123456789"


def strip_none(value):
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [strip_none(v) for v in value]
    return value


def same_after_parse(model, body):
    """Parses, and nothing the connector sent is unknown to the model (the SDK's to_dict
    drops None and unknown keys, so compare against the body without its nulls)."""
    parsed = model.from_dict(body)
    assert parsed is not None
    assert strip_none(parsed.to_dict()) == strip_none(body)
    return parsed


class RecordingSandbox(KlaviyoSandbox):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = []  # (method, path, body, status, answer)

    def dispatch(self, request):
        response = super().dispatch(request)
        with self.lock:
            self.seen.append((request.method, request.path, request.body, response.status,
                              response.body, dict(request.headers)))
        return response


@pytest.fixture(scope="module")
def traffic():
    with RecordingSandbox(KEY, job_polls=2) as sb:
        d = KlaviyoDestination(KEY, base_url=sb.url, requests_per_second=None, deletion_requests_per_second=None,
                               poll_interval=0.001)
        rich = Record("p1", {"email": " Ann@Example.com ", "phone_number": "+14155550123", "external_id": "crm-1",
                             "first_name": "Ann", "last_name": None, "organization": "Acme", "title": "CTO",
                             "locale": "en-US", "city": "Oslo", "country": "NO", "zip": 1234, "latitude": 59.9,
                             "lead_score": Decimal("7.5"), "signup": date(2026, 1, 2),
                             "seen_at": datetime(2026, 1, 2, 3, 4), "tags": ["a", "b"], "vip": True})
        plain = tuple(Record(f"q{i}", {"email": f"q{i}@example.com"}) for i in range(3))
        bad = Record("bad", {"email": "not-an-email"})
        up = d.write(Batch("s", "profiles", Operation.UPSERT, (rich, bad) + plain))
        ids = {r.key: r.destination_id for r in up}
        d.write(Batch("s", "profiles", Operation.UPDATE, (Record("q0", {"email": "q0@example.com", "title": "x"}),
                                                          Record("q1", {"title": "y"}, destination_id=ids["q1"]))))
        d.write(Batch("m", "Y6nRLr", Operation.ADD_MEMBER, (Record("p1", {}, destination_id=ids["p1"]),
                                                           Record("n", {"email": "n@example.com"}))))
        d.write(Batch("m", "Y6nRLr", Operation.REMOVE_MEMBER, (Record("p1", {}, destination_id=ids["p1"]),)))
        d.write(Batch("s", "profiles", Operation.DELETE, (
            Record("q2", {}, destination_id=ids["q2"]), Record("e", {"email": "q0@example.com"}),
            Record("ph", {"phone_number": "+14155550123"}))))
        # Error answers, for their shape.
        requests.get(f"{sb.url}/api/profiles", headers={"revision": DEFAULT_REVISION}, timeout=5)
        sb.throttle_rps = 0.001
        sb._bucket = 0.0
        requests.get(f"{sb.url}/api/profiles", headers={"revision": DEFAULT_REVISION}, timeout=5)
        yield sb.seen


def sent(traffic, method, fragment):
    out = [(json.loads(b) if b else None, s, a) for m, p, b, s, a, _ in traffic if m == method and fragment in p]
    assert out, f"no {method} {fragment} was sent"
    return out


def test_headers_carry_the_sdk_revision_and_the_klaviyo_api_key(traffic):
    assert DEFAULT_REVISION == KlaviyoAPI._REVISION
    for _m, _p, _b, status, _a, headers in traffic:
        if status in (401, 429):
            continue
        assert headers["revision"] == KlaviyoAPI._REVISION
        assert headers["authorization"] == f"Klaviyo-API-Key {KEY}"


def test_profile_import_job_bodies(traffic):
    bodies = sent(traffic, "POST", "/api/profile-bulk-import-jobs")
    for body, status, answer in bodies:
        q = same_after_parse(models.ProfileImportJobCreateQuery, body)
        assert q.data.type.value == "profile-bulk-import-job"
        assert status == 202
        assert models.PostProfileImportJobResponse.from_dict(answer).data.attributes.status == "queued"
    first = bodies[0][0]["data"]["attributes"]["profiles"]["data"][0]
    assert first["attributes"]["email"] == "ann@example.com"  # normalised
    assert first["attributes"]["last_name"] is None  # null clears the field at Klaviyo
    assert first["attributes"]["location"] == {"city": "Oslo", "country": "NO", "zip": "1234", "latitude": 59.9}
    assert first["attributes"]["properties"] == {"lead_score": 7.5, "signup": "2026-01-02",
                                                 "seen_at": "2026-01-02T03:04:00", "tags": ["a", "b"], "vip": True}
    # UPDATE sends the profile id it found or was given.
    update = bodies[1][0]["data"]["attributes"]["profiles"]["data"]
    assert all(p.get("id") for p in update)


def test_list_member_bodies(traffic):
    for body, status, _ in sent(traffic, "POST", "/relationships/profiles"):
        same_after_parse(models.ListMembersAddQuery, body)
        assert status == 204
    for body, status, _ in sent(traffic, "DELETE", "/relationships/profiles"):
        same_after_parse(models.ListMembersDeleteQuery, body)
        assert status == 204


def test_deletion_job_bodies_have_exactly_one_identifier(traffic):
    bodies = sent(traffic, "POST", "/api/data-privacy-deletion-jobs")
    kinds = []
    for body, status, _ in bodies:
        q = same_after_parse(models.DataPrivacyCreateDeletionJobQuery, body)
        prof = q.data.attributes.profile.data
        given = [k for k, v in (("id", prof.id), ("email", prof.attributes.email),
                                ("phone_number", prof.attributes.phone_number)) if v]
        assert len(given) == 1 and status == 202
        kinds += given
    assert kinds == ["id", "email", "phone_number"]


def test_sandbox_answers_parse_with_the_sdk_models(traffic):
    for _b, status, answer in sent(traffic, "GET", "/api/profile-bulk-import-jobs/"):
        if status != 200:
            continue
        doc = answer["data"]
        if isinstance(doc, dict):
            job = models.GetProfileImportJobResponseCompoundDocument.from_dict(answer)
            assert job.data.attributes.status in ("queued", "processing", "complete")
    errors = [a for _b, s, a in sent(traffic, "GET", "/import-errors") if a["data"]]
    assert errors
    for answer in errors:
        coll = models.GetImportErrorResponseCollection.from_dict(answer)
        assert coll.data[0].attributes.source.pointer.startswith("/data/attributes/profiles/data/")
    for _b, _s, answer in sent(traffic, "GET", "/profiles"):
        if _s == 200:
            models.GetProfileResponseCollection.from_dict(answer)
    codes = {}
    for _m, _p, _b, status, answer, _h in traffic:
        if status >= 400:
            err = models.GetAccounts4XXResponse.from_dict(answer)
            codes[status] = err.errors[0].code
    assert codes[401] == "not_authenticated" and codes[429] == "throttled"
