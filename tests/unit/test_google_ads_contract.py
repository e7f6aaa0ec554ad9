"""Every request body the Google Ads connector sends, and every answer the sandbox gives, parsed
with google-ads 34.0.0's proto-plus messages (v26, the newest version it ships) with
ignore_unknown_fields=False: a field the API does not know fails the test. Plus known-answer hashing.
"""

from __future__ import annotations

import hashlib
import json

import pytest

pytest.importorskip("google.ads.googleads", reason="google-ads is a test dependency")
from google.ads.googleads.v26.errors.types.errors import GoogleAdsFailure  # noqa: E402
from google.ads.googleads.v26.services.types.google_ads_service import (  # noqa: E402
    SearchGoogleAdsRequest,
    SearchGoogleAdsResponse,
)
from google.ads.googleads.v26.services.types.offline_user_data_job_service import (  # noqa: E402
    AddOfflineUserDataJobOperationsRequest,
    AddOfflineUserDataJobOperationsResponse,
    CreateOfflineUserDataJobRequest,
    CreateOfflineUserDataJobResponse,
    RunOfflineUserDataJobRequest,
)
from google.longrunning import operations_pb2  # noqa: E402
from google.protobuf import json_format  # noqa: E402

from destinations import google_ads as ga  # noqa: E402
from destinations.base import Batch, Operation, Record, ResultStatus  # noqa: E402
from destinations.sandbox.google_ads import GoogleAdsSandbox  # noqa: E402

CID, LIST = "1234567890", "555"
REQUESTS = {":create": CreateOfflineUserDataJobRequest, ":addOperations": AddOfflineUserDataJobOperationsRequest,
            ":run": RunOfflineUserDataJobRequest, "googleAds:search": SearchGoogleAdsRequest}
RESPONSES = {":create": CreateOfflineUserDataJobResponse, ":addOperations": AddOfflineUserDataJobOperationsResponse,
             "googleAds:search": SearchGoogleAdsResponse}


def strict(message, data):
    return message.from_json(json.dumps(data), ignore_unknown_fields=False)


class RecordingSandbox(GoogleAdsSandbox):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.exchanges = []

    def dispatch(self, request):
        response = super().dispatch(request)
        with self.lock:
            self.exchanges.append((request.path, request.headers, request.json(), response))
        return response


def kind(path):
    return next(k for k in REQUESTS if path.endswith(k))


def check_failure_status(status):
    """A google.rpc.Status whose details are GoogleAdsFailure (the @type names it); the REST error
    envelope adds the canonical code's name as `status`."""
    assert set(status) <= {"code", "message", "details", "status"}
    for detail in status["details"]:
        assert detail["@type"] == "type.googleapis.com/google.ads.googleads.v26.errors.GoogleAdsFailure"
        strict(GoogleAdsFailure, {k: v for k, v in detail.items() if k != "@type"})


def test_every_request_and_answer_parses_with_the_official_messages():
    records = (
        Record("a", {"email": " Jane.Doe@Example.COM ", "phone": "(650) 253-0000", "first_name": " Mary  Ann ",
                     "last_name": "O'Brien", "country_code": "us", "postal_code": "94043"}),
        Record("b", {"email": "b@example.com"}),
        Record("c", {"hashed_email": "not-a-hash"}),
    )
    with RecordingSandbox(customer_id=CID, user_lists=[LIST]) as sb:
        d = ga.GoogleAdsDestination("ya29.sandbox-token", "dev-sandbox-token", CID, base_url=sb.url,
                                    login_customer_id="111-222-3333", poll_interval=0.01)
        added = {r.key: r for r in d.write(Batch("s", LIST, Operation.ADD_MEMBER, records))}
        assert added["c"].status is ResultStatus.REJECTED
        d.write(Batch("s", LIST, Operation.REMOVE_MEMBER, (Record("a", {}, destination_id=added["a"].destination_id),)))
        seen = set()
        for path, headers, body, response in sb.exchanges:
            assert path.startswith(f"/{ga.API_VERSION}/customers/{CID}/")
            assert headers["login-customer-id"] == "1112223333" and headers["developer-token"]
            k = kind(path)
            seen.add(k)
            parsed = strict(REQUESTS[k], body)  # path parameters (customer_id, resource_name) are not in the body
            if k == ":addOperations":
                assert parsed.enable_partial_failure is True
                assert all(len(op.create.user_identifiers or op.remove.user_identifiers) <= 20
                           for op in parsed.operations)
            if k == ":create":
                meta = parsed.job.customer_match_user_list_metadata
                assert meta.user_list == f"customers/{CID}/userLists/{LIST}"
                assert meta.consent.ad_user_data.name == "GRANTED" and meta.consent.ad_personalization.name == "GRANTED"
                assert parsed.job.type_.name == "CUSTOMER_MATCH_USER_LIST"
            assert response.status == 200
            if k == ":run":
                json_format.Parse(json.dumps(response.body), operations_pb2.Operation())
            else:
                answer = dict(response.body)
                pfe = answer.pop("partialFailureError", None)
                if pfe:
                    check_failure_status(pfe)
                    answer["partialFailureError"] = {"code": pfe["code"], "message": pfe["message"]}
                strict(RESPONSES[k], answer)
        assert seen == set(REQUESTS)


def test_the_sandbox_error_answers_parse_as_google_ads_failures():
    with GoogleAdsSandbox(customer_id=CID, user_lists=[LIST], max_identifiers=2) as sb:
        answers = [sb.throttled(7), sb.authenticate(_req({})), sb.authenticate(_req({"authorization":
                                                                                      "Bearer ya29.sandbox-token"}))]
        for response in answers:
            err = response.body["error"]
            assert err["status"] in ("RESOURCE_EXHAUSTED", "UNAUTHENTICATED", "INVALID_ARGUMENT")
            check_failure_status(err)
        quota = answers[0].body["error"]["details"][0]["errors"][0]
        assert ga.retry_delay(answers[0].body) == 7.0 and quota["errorCode"] == {"quotaError": "RESOURCE_EXHAUSTED"}
        assert ga.status_codes(answers[2].body) == ["DEVELOPER_TOKEN_PARAMETER_MISSING"]


def _req(headers):
    from destinations.sandbox.server import Request
    return Request("POST", "/", {}, headers, b"")


def test_an_unknown_field_fails_the_contract_check():
    body = ga.GoogleAdsDestination.operations_body("create", [[{"hashedEmail": "0" * 64}]])
    strict(AddOfflineUserDataJobOperationsRequest, body)
    body["operations"][0]["create"]["userIdentifiers"][0]["hashed_mail"] = "x"
    with pytest.raises(Exception):
        strict(AddOfflineUserDataJobOperationsRequest, body)


# ---- known answers (sha256 hex of the normalised value, computed independently of the connector)

def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_known_answer_hashes():
    ids, problem = ga.user_identifiers(Record("k", {
        "email": "  John.Smith@Example.COM ", "phone": "650-253-0000", "first_name": "  John   Paul ",
        "last_name": "O'Neil-Smith.", "country_code": "us", "postal_code": " 94043 "}))
    assert problem is None
    assert ids[0]["hashedEmail"] == sha("john.smith@example.com")
    # Fixed known answers (so a change in normalisation or hashing is caught, not mirrored).
    assert sha("test@example.com") == "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"
    assert ga.user_identifiers(Record("k", {"email": "TEST@example.com "}))[0] == [
        {"hashedEmail": "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"}]
    assert ids[1] == {"hashedPhoneNumber": sha("+16502530000")}
    assert ids[2] == {"addressInfo": {"hashedFirstName": sha("john paul"), "hashedLastName": sha("oneilsmith"),
                                      "countryCode": "US", "postalCode": "94043"}}
    # Country and postal code go unhashed; the address needs all four parts.
    assert ga.user_identifiers(Record("k", {"first_name": "A", "last_name": "B", "country_code": "US"}))[0] == []
    assert ga.user_identifiers(Record("k", {"phone": "12"}))[1].startswith("INVALID_PHONE")
