"""Every request the Salesforce connector sends, and every answer the sandbox gives, checked
against the shapes of the Salesforce REST API and Bulk API 2.0 developer guides.

No official Salesforce client is installed (simple-salesforce has no models anyway), so the
schemas below are written from the docs (see ../shared/reference/destination_apis.md §3.2):
- sObject Collections upsert: PATCH /composite/sobjects/{SObject}/{ExternalIdField}, body
  {allOrNone, records[<= 200, each with attributes.type of the URI's object, no Id]}; 200 with
  UpsertResult{id, success, errors[{statusCode, message, fields}], created} in input order.
  (resources-composite-sobjects-collections-upsert)
- Create: POST /composite/sobjects, same body; SaveResult{id, success, errors}.
- Delete: DELETE /composite/sobjects?ids=<= 200 comma-separated&allOrNone=false; DeleteResult.
  (resources-composite-sobjects-collections-delete)
- Errors of a whole request: a JSON array of {message, errorCode, fields?} (errorcodes.htm).
- Bulk API 2.0 ingest: job create body, JobInfo states, successfulResults (sf__Id, sf__Created)
  and failedResults (sf__Id, sf__Error) CSV columns (get_job_successful_results,
  get_job_failed_results); enums as simple-salesforce's bulk2 module lists them.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema comes with dbt-core")

from destinations.base import Batch, Operation, Record  # noqa: E402
from destinations.salesforce import (  # noqa: E402
    SalesforceDestination,
    _sf_reason,
    error_code,
    record_reason,
    salesforce_throttled,
    soql_quote,
)
from destinations.sandbox.salesforce import SalesforceSandbox  # noqa: E402

TOKEN = "00Dcontract!token"
CAMPAIGN = "701Dn0000000042AAA"
SFID = {"type": "string", "pattern": "^[A-Za-z0-9]{18}$"}
CODE = {"type": "string", "pattern": "^[A-Z][A-Z0-9_]+$"}
ERROR = {"type": "object", "required": ["statusCode", "message", "fields"], "additionalProperties": False,
         "properties": {"statusCode": CODE, "message": {"type": "string"},
                        "fields": {"type": "array", "items": {"type": "string"}}}}
SAVE_RESULT = {"type": "object", "required": ["id", "success", "errors"], "additionalProperties": False,
               "properties": {"id": {"anyOf": [SFID, {"type": "null"}]}, "success": {"type": "boolean"},
                              "errors": {"type": "array", "items": ERROR}}}
UPSERT_RESULT = {**SAVE_RESULT, "required": ["id", "success", "errors", "created"],
                 "properties": {**SAVE_RESULT["properties"], "created": {"type": "boolean"}}}
WHOLE_ERROR = {"type": "array", "minItems": 1, "items": {
    "type": "object", "required": ["message", "errorCode"], "additionalProperties": False,
    "properties": {"message": {"type": "string"}, "errorCode": CODE,
                   "fields": {"type": "array", "items": {"type": "string"}}}}}


def collection(record_schema):
    return {"type": "object", "required": ["allOrNone", "records"], "additionalProperties": False,
            "properties": {"allOrNone": {"const": False},  # outflow wants per-record results
                           "records": {"type": "array", "minItems": 1, "maxItems": 200, "items": record_schema}}}


def sobject(type_name, required=()):
    return {"type": "object", "required": ["attributes", *required],
            "properties": {"attributes": {"type": "object", "required": ["type"],
                                          "properties": {"type": {"const": type_name}}},
                           "Id": False, "id": False}}


UPSERT_BODY = collection(sobject("Contact", ["Outflow_Id__c"]))
MEMBER_BODY = collection({**sobject("CampaignMember", ["CampaignId"]), "oneOf": [
    {"required": ["ContactId"], "not": {"required": ["LeadId"]}},
    {"required": ["LeadId"], "not": {"required": ["ContactId"]}}]})
JOB_BODY = {"type": "object", "required": ["object", "operation", "externalIdFieldName"], "additionalProperties": False,
            "properties": {"object": {"enum": ["Contact", "Lead"]},
                           "operation": {"enum": ["insert", "delete", "hardDelete", "update", "upsert"]},
                           "externalIdFieldName": {"type": "string"}, "contentType": {"const": "CSV"},
                           "lineEnding": {"enum": ["LF", "CRLF"]},
                           "columnDelimiter": {"enum": ["BACKQUOTE", "CARET", "COMMA", "PIPE", "SEMICOLON", "TAB"]}}}
JOB_STATE = {"type": "object", "required": ["state"], "additionalProperties": False,
             "properties": {"state": {"enum": ["UploadComplete", "Aborted"]}}}
JOB_INFO = {"type": "object", "required": ["id", "state", "object", "operation", "contentType", "apiVersion"],
            "properties": {"id": SFID, "state": {"enum": ["Open", "UploadComplete", "InProgress", "JobComplete",
                                                          "Failed", "Aborted"]},
                           "operation": {"const": "upsert"}, "contentType": {"const": "CSV"},
                           "apiVersion": {"type": "number"},
                           "numberRecordsProcessed": {"type": "integer"}, "numberRecordsFailed": {"type": "integer"}}}
QUERY_RESULT = {"type": "object", "required": ["totalSize", "done", "records"], "properties": {
    "totalSize": {"type": "integer"}, "done": {"type": "boolean"}, "nextRecordsUrl": {"type": "string"},
    "records": {"type": "array", "items": {"type": "object", "required": ["attributes", "Id"],
                                           "properties": {"Id": SFID}}}}}
V = r"/services/data/v62\.0"
# (method, path regex) -> (request body schema or a marker, {status: answer schema})
CONTRACT = [
    ("PATCH", V + r"/composite/sobjects/Contact/Outflow_Id__c", UPSERT_BODY,
     {200: {"type": "array", "items": UPSERT_RESULT}, 400: WHOLE_ERROR}),
    ("POST", V + r"/composite/sobjects", MEMBER_BODY, {200: {"type": "array", "items": SAVE_RESULT}}),
    ("DELETE", V + r"/composite/sobjects", "ids", {200: {"type": "array", "items": SAVE_RESULT}}),
    ("GET", V + r"/query", "soql", {200: QUERY_RESULT}),
    ("POST", V + r"/jobs/ingest", JOB_BODY, {200: JOB_INFO}),
    ("PUT", V + r"/jobs/ingest/\w{18}/batches", "csv", {201: None}),
    ("PATCH", V + r"/jobs/ingest/\w{18}", JOB_STATE, {200: JOB_INFO}),
    ("GET", V + r"/jobs/ingest/\w{18}", None, {200: JOB_INFO}),
    ("GET", V + r"/jobs/ingest/\w{18}/successfulResults", None, {200: ["sf__Id", "sf__Created"]}),
    ("GET", V + r"/jobs/ingest/\w{18}/failedResults", None, {200: ["sf__Id", "sf__Error"]}),
]
SOQL = re.compile(r"^SELECT Id, (\w+) FROM (Contact|Lead|CampaignMember) WHERE .+ IN \('.*'\)$")


class RecordingSandbox(SalesforceSandbox):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.exchanges = []

    def dispatch(self, request):
        response = super().dispatch(request)
        with self.lock:
            self.exchanges.append((request, response))
        return response


def check_exchange(request, response):
    for method, pattern, body_schema, answers in CONTRACT:
        if method == request.method and re.fullmatch(pattern, request.path):
            break
    else:
        raise AssertionError(f"not in the contract: {request.method} {request.path}")
    if isinstance(body_schema, dict):
        jsonschema.validate(request.json(), body_schema)
    elif body_schema == "ids":
        q = request.query
        ids = q["ids"][0].split(",")
        assert q["allOrNone"] == ["false"] and 1 <= len(ids) <= 200
        assert all(re.fullmatch(r"[A-Za-z0-9]{18}", i) for i in ids) and not request.body
    elif body_schema == "soql":
        assert SOQL.match(request.query["q"][0]), request.query["q"][0]
    elif body_schema == "csv":
        assert request.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(request.body.decode())))
        assert rows[0][0] == "Outflow_Id__c" and all(len(r) == len(rows[0]) for r in rows)
    else:
        assert not request.body
    assert response.status in answers, (request.method, request.path, response.status, response.body)
    answer = answers[response.status]
    if isinstance(answer, dict):
        jsonschema.validate(response.body, answer)
    elif isinstance(answer, list):
        header = next(csv.reader(io.StringIO(response.body.decode())))
        assert header[:2] == answer and "Outflow_Id__c" in header
        assert response.headers.get("Content-Type", "text/csv") == "text/csv"
    return method, pattern, response.status


def test_schemas_really_validate():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"allOrNone": False, "records": [{"Outflow_Id__c": "a"}]}, UPSERT_BODY)  # no attributes
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"allOrNone": False, "records": [
            {"attributes": {"type": "Contact"}, "Outflow_Id__c": "a", "Id": "003"}]}, UPSERT_BODY)  # Id is set
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"allOrNone": False, "records": [{"attributes": {"type": "Contact"},
                                                               "Outflow_Id__c": str(i)} for i in range(201)]},
                            UPSERT_BODY)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"allOrNone": False, "records": [{"attributes": {"type": "CampaignMember"},
                                                               "CampaignId": CAMPAIGN}]}, MEMBER_BODY)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([{"id": None, "success": False, "errors": [{"statusCode": "X_Y", "message": "m"}],
                              "created": False}], {"type": "array", "items": UPSERT_RESULT})  # no fields
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**SalesforceDestination(TOKEN, instance_url="https://x").bulk_job_body(),
                             "lineEnding": "CR"}, JOB_BODY)


def test_body_builders_match_the_documented_shapes():
    d = SalesforceDestination(TOKEN, instance_url="https://acme.my.salesforce.com", campaign_member_status="Sent")
    assert d.base_url == "https://acme.my.salesforce.com/services/data/v62.0"
    body = d.upsert_body([Record("p1", {"Email": "a@b.io", "LastName": "A", "Id": "x", "N": 3, "Ok": True,
                                        "Gone": None})])
    # The docs' example: {"allOrNone": false, "records": [{"attributes": {"type": "Account"}, "Name": ..,
    # "MyExtId__c": ..}]}
    assert body == {"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, "Email": "a@b.io",
                                                     "LastName": "A", "N": 3, "Ok": True, "Gone": None,
                                                     "Outflow_Id__c": "p1"}]}
    jsonschema.validate(body, UPSERT_BODY)
    members = d.member_body(CAMPAIGN, ["003Dn0000000001AAA"], "ContactId")
    assert members["records"][0] == {"attributes": {"type": "CampaignMember"}, "CampaignId": CAMPAIGN,
                                     "ContactId": "003Dn0000000001AAA", "Status": "Sent"}
    jsonschema.validate(members, MEMBER_BODY)
    jsonschema.validate(d.bulk_job_body(), JOB_BODY)
    text = d.bulk_csv([Record("p1", {"LastName": "O'Neil, Jr", "Title": None}), Record("p2", {"Email": "e@x.io"})])
    assert text.decode() == 'Outflow_Id__c,LastName,Title,Email\np1,"O\'Neil, Jr",#N/A,\np2,,,e@x.io\n'


def test_known_answers_for_codes_and_quoting():
    assert soql_quote("a'b\\c") == "'a\\'b\\\\c'"
    assert _sf_reason("INVALID_EMAIL_ADDRESS:Email: invalid email address: x@y:Email --") == "INVALID_EMAIL_ADDRESS"
    assert _sf_reason("something odd") == "UNKNOWN_ERROR"
    assert error_code([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]) \
        == "INVALID_SESSION_ID"
    assert record_reason({"errors": [{"statusCode": "DUPLICATE_VALUE", "message": "dup a@b.io", "fields": []}]}) \
        == "DUPLICATE_VALUE"

    class R:
        def __init__(self, status, body):
            self.status_code, self._body = status, body

        def json(self):
            return self._body

    assert salesforce_throttled(R(403, [{"message": "TotalRequests Limit exceeded.",
                                         "errorCode": "REQUEST_LIMIT_EXCEEDED"}])) is True
    assert not salesforce_throttled(R(403, [{"message": "no", "errorCode": "INSUFFICIENT_ACCESS"}]))
    assert not salesforce_throttled(R(400, [{"message": "x", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]))


def test_every_request_and_answer_of_a_full_session_fits_the_docs():
    with RecordingSandbox(token=TOKEN, campaigns=[CAMPAIGN], max_records=150) as sb:
        d = SalesforceDestination(TOKEN, instance_url=sb.url, backoff_base=0.01, requests_per_second=500, burst=50,
                                  max_batch_size=1000, bulk_threshold=300, bulk_poll_interval=0.01)
        people = tuple(Record(f"p{i}", {"Email": f"u{i}@example.com", "LastName": f"L{i}", "Score__c": i})
                       for i in range(200))
        ids = {r.key: r.destination_id for r in d.write(Batch("s", "Contact", Operation.UPSERT, people))}  # 400, split
        d.write(Batch("s", "Contact", Operation.UPSERT, people[:2] + (Record("bad", {"Email": "bad@nowhere"}),)))
        d.write(Batch("s", "Contact", Operation.UPDATE, (Record("p0", {"Score__c": 9}), Record("ghost", {}))))
        added = d.write(Batch("s", CAMPAIGN, Operation.ADD_MEMBER, (Record("p0", {}), Record("p1", {}))))
        d.write(Batch("s", CAMPAIGN, Operation.REMOVE_MEMBER, (Record("p0", {}, destination_id=added[0].destination_id),)))
        d.write(Batch("s", "Contact", Operation.DELETE, (Record("p2", {}, destination_id=ids["p2"]), Record("p3", {}))))
        more = tuple(Record(f"b{i}", {"Email": f"b{i}@example.com", "LastName": "B"}) for i in range(300))
        d.write(Batch("s", "Contact", Operation.UPSERT, more + (Record("bad2", {"LastName": "X", "Email": "x@y"}),)))
        seen = {check_exchange(req, resp) for req, resp in sb.exchanges}
        covered = {(m, p) for m, p, _ in seen}
        assert covered == {(m, p) for m, p, _, _ in CONTRACT}, {(m, p) for m, p, _, _ in CONTRACT} - covered
        assert any(s == 400 for _, _, s in seen)  # the batch-limit answer was checked too


def test_error_answers_fit_the_error_envelope():
    import requests

    with SalesforceSandbox(token=TOKEN, throttle_rps=1) as sb:
        base = f"{sb.url}/services/data/v62.0"
        r = requests.get(f"{base}/query", params={"q": "SELECT Id, X__c FROM Contact WHERE X__c IN ('a')"}, timeout=5)
        assert r.status_code == 401 and r.json()[0]["errorCode"] == "INVALID_SESSION_ID"
        jsonschema.validate(r.json(), WHOLE_ERROR)
        answers = [requests.get(f"{base}/query", params={"q": "x"}, headers={"Authorization": f"Bearer {TOKEN}"},
                                timeout=5) for _ in range(3)]
        limited = [a for a in answers if a.status_code == 403]
        assert limited and limited[0].json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        jsonschema.validate(limited[0].json(), WHOLE_ERROR)
        assert "429" not in {str(a.status_code) for a in answers}
        assert re.fullmatch(r"api-usage=\d+/\d+", answers[0].headers["Sforce-Limit-Info"])
        r = requests.delete(f"{base}/nothing/here", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        jsonschema.validate(r.json(), WHOLE_ERROR)
