"""Every request the HubSpot connector sends, and every answer the sandbox gives, checked
against hubspot-api-client's generated models with client-side validation on.

A body is parsed into the request model (required fields and enums checked), then
serialised back: it must come out identical, so no field is unknown to the model.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

hubspot = pytest.importorskip("hubspot", reason="hubspot-api-client is a test dependency")
from hubspot.crm import contacts as hs_contacts  # noqa: E402
from hubspot.crm import lists as hs_lists  # noqa: E402

from destinations.base import Batch, Operation, Record  # noqa: E402
from destinations.hubspot import HubSpotDestination, error_reason, gdpr_body, read_body, upsert_body  # noqa: E402
from destinations.sandbox.hubspot import HubSpotSandbox  # noqa: E402

TOKEN = "pat-contract-token"
LIST = "555"
# (method, path suffix) -> (request model or None for a JSON array of ids, {status: response model})
CONTRACT = {
    ("POST", "/crm/v3/objects/contacts/batch/upsert"): (
        "BatchInputSimplePublicObjectBatchInputUpsert",
        {200: "BatchResponseSimplePublicUpsertObject", 207: "BatchResponseSimplePublicUpsertObjectWithErrors"}),
    ("POST", "/crm/v3/objects/contacts/batch/read"): (
        "BatchReadInputSimplePublicObjectId",
        {200: "BatchResponseSimplePublicObject", 207: "BatchResponseSimplePublicObjectWithErrors"}),
    ("POST", "/crm/v3/objects/contacts/gdpr-delete"): ("PublicGdprDeleteInput", {204: None}),
    ("PUT", f"/crm/v3/lists/{LIST}/memberships/add"): (None, {200: "MembershipsUpdateResponse"}),
    ("PUT", f"/crm/v3/lists/{LIST}/memberships/remove"): (None, {200: "MembershipsUpdateResponse"}),
}


def client(module):
    cfg = module.Configuration()
    cfg.client_side_validation = True
    return module.ApiClient(configuration=cfg)


CONTACTS, LISTS = client(hs_contacts), client(hs_lists)


def parse(api, data, model):
    return api.deserialize(SimpleNamespace(data=json.dumps(data)), model)


def check_request(body, model):
    if model is None:  # membership add/remove: request_body is list[str]
        assert isinstance(body, list) and all(isinstance(i, str) and i.isdigit() for i in body)
        return
    parsed = parse(CONTACTS, body, model)
    assert CONTACTS.sanitize_for_serialization(parsed) == body, f"{model}: fields the model does not know"


def check_response(path, status, data, model):
    api = LISTS if "/lists/" in path else CONTACTS
    if model is None:
        assert data in (b"", None)
        return
    parsed = parse(api, data, model)
    # Round trip (datetimes aside): nothing in the answer is foreign to the model.
    again = api.sanitize_for_serialization(parsed)
    assert set(again) == set(data), f"{model}: {set(data) ^ set(again)}"


class RecordingSandbox(HubSpotSandbox):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.exchanges = []

    def dispatch(self, request):
        response = super().dispatch(request)
        with self.lock:
            self.exchanges.append((request.method, request.path, request.json(), response))
        return response


def test_models_really_validate():
    """Validation is on: a missing required field is refused, so the checks below bite."""
    with pytest.raises(ValueError, match="`id`, must not be `None`"):
        parse(CONTACTS, {"inputs": [{"idProperty": "email", "properties": {}}]},
              "BatchInputSimplePublicObjectBatchInputUpsert")
    with pytest.raises(ValueError, match="`object_id`"):
        parse(CONTACTS, {"idProperty": "email"}, "PublicGdprDeleteInput")
    with pytest.raises(ValueError, match="status"):
        parse(CONTACTS, {"status": "DONE", "results": [], "startedAt": "2024-01-01T00:00:00Z",
                         "completedAt": "2024-01-01T00:00:00Z"}, "BatchResponseSimplePublicObject")
    # The documented example body, built from the models themselves.
    cfg = CONTACTS.configuration
    model = hs_contacts.BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[hs_contacts.SimplePublicObjectBatchInputUpsert(
            id_property="email", id="a@b.com", properties={"firstname": "A"}, object_write_trace_id="0",
            local_vars_configuration=cfg)], local_vars_configuration=cfg)
    expected = CONTACTS.sanitize_for_serialization(model)
    assert upsert_body([Record("k", {"email": " A@B.com", "firstname": "A"})]) == {
        "inputs": [{**expected["inputs"][0], "properties": {"email": "a@b.com", "firstname": "A"}}]}


def test_body_builders_match_the_models():
    check_request(upsert_body([Record("k", {"email": "x@y.io", "n": 3, "ok": True, "none": None})]),
                  "BatchInputSimplePublicObjectBatchInputUpsert")
    assert upsert_body([Record("k", {"email": "x@y.io", "n": 3, "ok": True, "none": None})])["inputs"][0][
        "properties"] == {"email": "x@y.io", "n": "3", "ok": "true", "none": ""}  # values are strings
    check_request(read_body(["x@y.io", "z@y.io"]), "BatchReadInputSimplePublicObjectId")
    check_request(gdpr_body("123"), "PublicGdprDeleteInput")
    check_request(gdpr_body("x@y.io", id_property="email"), "PublicGdprDeleteInput")


@pytest.mark.parametrize("invalid_email", ["207", "400"])
def test_every_request_and_answer_of_a_full_session_fits_the_models(invalid_email):
    with RecordingSandbox(token=TOKEN, lists=[LIST], invalid_email=invalid_email) as sb:
        d = HubSpotDestination(TOKEN, base_url=sb.url, backoff_base=0.01, requests_per_second=500, burst=50)
        people = tuple(Record(f"p{i}", {"email": f"u{i}@example.com", "firstname": f"F{i}", "score": i})
                       for i in range(5))
        ids = {r.key: r.destination_id for r in d.write(Batch("s", "contacts", Operation.UPSERT, people))}
        d.write(Batch("s", "contacts", Operation.UPSERT,
                      people[:2] + (Record("bad", {"email": "bad@nowhere"}),)))
        d.write(Batch("s", "contacts", Operation.UPDATE,
                      (Record("p0", {"email": "u0@example.com", "score": 9}), Record("g", {"email": "g@example.com"}))))
        d.write(Batch("s", LIST, Operation.ADD_MEMBER,
                      (Record("p0", {}, destination_id=ids["p0"]), Record("p1", {"email": "u1@example.com"}),
                       Record("p9", {"email": "nobody@example.com"}))))
        d.write(Batch("s", LIST, Operation.REMOVE_MEMBER, (Record("p0", {}, destination_id=ids["p0"]),)))
        d.write(Batch("s", "contacts", Operation.DELETE,
                      (Record("p2", {}, destination_id=ids["p2"]), Record("p3", {"email": "u3@example.com"}))))
        seen = set()
        for method, path, body, response in sb.exchanges:
            request_model, answers = CONTRACT[(method, path)]
            check_request(body, request_model)
            if response.status in answers:
                check_response(path, response.status, response.body, answers[response.status])
            else:  # an error: HubSpot's Error model (category, correlationId, message)
                parse(CONTACTS, response.body, "Error")
                assert error_reason(response.body) in ("VALIDATION_ERROR/INVALID_EMAIL",)
            seen.add((method, path, response.status))
        statuses = {(p.rsplit("/", 1)[-1], s) for _, p, s in seen}
        assert {("upsert", 200), ("read", 207), ("gdpr-delete", 204), ("add", 200), ("remove", 200)} <= statuses
        assert ("upsert", 207 if invalid_email == "207" else 400) in statuses


def test_error_answers_fit_the_error_model():
    with RecordingSandbox(token=TOKEN) as sb:
        import requests

        r = requests.post(f"{sb.url}/crm/v3/objects/contacts/batch/upsert", json={"inputs": []}, timeout=5)
        assert r.status_code == 401
        err = parse(CONTACTS, r.json(), "Error")
        assert err.category == "INVALID_AUTHENTICATION"
        r = requests.put(f"{sb.url}/crm/v3/lists/1/memberships/add", json=["1"], timeout=5,
                         headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 404 and parse(LISTS, r.json(), "Error").category == "OBJECT_NOT_FOUND"


def test_throttle_answer_is_hubspots():
    with HubSpotSandbox(token=TOKEN, throttle_rps=1) as sb:
        import requests

        hdrs = {"Authorization": f"Bearer {TOKEN}"}
        answers = [requests.post(f"{sb.url}/crm/v3/objects/contacts/batch/read", timeout=5, headers=hdrs,
                                 json=read_body(["a@b.io"])) for _ in range(3)]
        limited = [a for a in answers if a.status_code == 429]
        assert limited
        body = limited[0].json()
        assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert limited[0].headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert int(limited[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"]) >= 1000
