"""Contract checks of the Mailchimp connector against schemas we did not write.

`mailchimp-marketing` (the official client) has no body models: its ListsApi methods take
dicts. So the checks are:
1. Every body the connector sends validates against JSON Schemas transcribed from the
   models Mailchimp's spec names in the ListsApi docstrings (`batch_list_members`:
   MembersToSubscribeUnsubscribeTofromAListInBatch of AddListMembers;
   `batch_segment_members`: MembersToAddremoveTofromAStaticSegment; `update_list_member`:
   AddListMembers3), with the spec's 500-item limits and status enum, and no other keys.
2. The official client, pointed at our sandbox, makes each call the connector makes: the
   same method and path (so connector and sandbox both follow the library's paths), and
   it reads the sandbox's answers.
3. The subscriber hash: a known answer from Mailchimp's own guide.
"""

from __future__ import annotations

import hashlib
import re

import jsonschema
import mailchimp_marketing
import pytest
from mailchimp_marketing.api_client import ApiClientError

from destinations.base import Batch, Operation, Record, ResultStatus
from destinations.mailchimp import (
    MailchimpDestination,
    base_url_from_key,
    classify,
    merge_fields,
    segment_body,
    subscribe_body,
    subscriber_hash,
)
from destinations.sandbox.mailchimp import MailchimpSandbox

KEY = "0123456789abcdef0123456789abcdef-us19"
LIST, SEG = "aud0001", "4242"

_MEMBER = {  # AddListMembers (batch member)
    "type": "object",
    "required": ["email_address", "status"],
    "additionalProperties": False,
    "properties": {
        "email_address": {"type": "string"},
        "email_type": {"type": "string", "enum": ["html", "text"]},
        "status": {"type": "string", "enum": ["subscribed", "unsubscribed", "cleaned", "pending", "transactional"]},
        "merge_fields": {"type": "object"},
        "interests": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "language": {"type": "string"},
        "vip": {"type": "boolean"},
        "location": {"type": "object"},
        "ip_signup": {"type": "string"},
        "timestamp_signup": {"type": "string"},
        "ip_opt": {"type": "string"},
        "timestamp_opt": {"type": "string"},
    },
}
BATCH_SUBSCRIBE = {  # MembersToSubscribeUnsubscribeTofromAListInBatch
    "type": "object",
    "required": ["members"],
    "additionalProperties": False,
    "properties": {
        "members": {"type": "array", "maxItems": 500, "items": _MEMBER},
        "update_existing": {"type": "boolean"},
        "sync_tags": {"type": "boolean"},
    },
}
SEGMENT_BATCH = {  # MembersToAddremoveTofromAStaticSegment
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        "members_to_add": {"type": "array", "maxItems": 500, "items": {"type": "string"}},
        "members_to_remove": {"type": "array", "maxItems": 500, "items": {"type": "string"}},
    },
}
UPDATE_MEMBER = {  # AddListMembers3 (PATCH a member)
    "type": "object",
    "additionalProperties": False,
    "properties": {**_MEMBER["properties"], "marketing_permissions": {"type": "array"}},
}
# (method, path regex) -> schema of the body; None = no body
ENDPOINTS = {
    ("POST", r"/3\.0/lists/[^/]+"): BATCH_SUBSCRIBE,
    ("POST", r"/3\.0/lists/[^/]+/segments/[^/]+"): SEGMENT_BATCH,
    ("PATCH", r"/3\.0/lists/[^/]+/members/[0-9a-f]{32}"): UPDATE_MEMBER,
    ("POST", r"/3\.0/lists/[^/]+/members/[0-9a-f]{32}/actions/delete-permanent"): None,
    ("DELETE", r"/3\.0/lists/[^/]+/members/[0-9a-f]{32}"): None,
    ("DELETE", r"/3\.0/lists/[^/]+/segments/[^/]+/members/[0-9a-f]{32}"): None,
}


def endpoint(method: str, path: str):
    for (m, pattern), schema in ENDPOINTS.items():
        if m == method and re.fullmatch(pattern, path):
            return (m, pattern), schema
    raise AssertionError(f"the connector called an endpoint outside the contract: {method} {path}")


def test_subscriber_hash_known_answer():
    # Mailchimp's guide "Manage subscribers with the Mailchimp API": this address hashes to this id.
    assert subscriber_hash("Urist.McVankab@freddiesjokes.com") == "62eeb292278cc15f5817cb78f7790b08"
    assert subscriber_hash("  URIST.MCVANKAB@FREDDIESJOKES.COM ") == "62eeb292278cc15f5817cb78f7790b08"
    assert subscriber_hash("a@b.co") == hashlib.md5(b"a@b.co").hexdigest()


def test_data_centre_from_key():
    assert base_url_from_key("abc123-us19") == "https://us19.api.mailchimp.com/3.0"
    assert base_url_from_key("abc123-us1") == "https://us1.api.mailchimp.com/3.0"
    assert base_url_from_key("abc123") is None


def test_builders_validate_against_the_spec_shapes():
    body = subscribe_body([("a@example.com", merge_fields({"email": "a@example.com", "fname": "A", "x": None}, "email")),
                           ("b@example.com", {})])
    jsonschema.validate(body, BATCH_SUBSCRIBE)
    assert body["members"][0] == {"email_address": "a@example.com", "status": "subscribed",
                                  "merge_fields": {"FNAME": "A", "X": ""}}
    assert body["update_existing"] is True
    jsonschema.validate(segment_body(add=["a@example.com"]), SEGMENT_BATCH)
    jsonschema.validate(segment_body(remove=["a@example.com"]), SEGMENT_BATCH)
    with pytest.raises(jsonschema.ValidationError):  # the schemas do bite
        jsonschema.validate({"members": [{"email_address": "a@b.co", "status": "subscribed", "status_if_new": "x"}]},
                            BATCH_SUBSCRIBE)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(segment_body(add=[f"{i}@b.co" for i in range(501)]), SEGMENT_BATCH)


def test_reasons_hold_codes_never_the_message():
    msg = "someone@example.com looks fake or invalid, please enter a real email address."
    assert classify("ERROR_GENERIC", msg) == (ResultStatus.REJECTED, "ERROR_GENERIC: INVALID_EMAIL")
    assert classify("ERROR_CONTACT_EXISTS", "someone@example.com is already a list member.")[1] == \
        "ERROR_CONTACT_EXISTS: CONTACT_EXISTS"
    status, reason = classify("ERROR_GENERIC", "someone@example.com has signed up to a lot of lists very recently")
    assert status is ResultStatus.RETRYABLE and "@" not in reason
    assert classify("ERROR_GENERIC", "Your merge fields were invalid.", "BIRTHDAY")[1] == "ERROR_GENERIC: MERGE_FIELD BIRTHDAY"
    assert classify("x@y.com", "???")[1] == "X_Y_COM: OTHER"  # even a junk code is reduced to a token


@pytest.fixture
def sandbox():
    with MailchimpSandbox(api_key=KEY, lists={LIST: [SEG]}) as sb:
        yield sb


def drive_connector(sandbox) -> None:
    dest = MailchimpDestination(KEY, base_url=sandbox.api_url)
    ids = {r.key: r.destination_id for r in dest.write(Batch("c", LIST, Operation.UPSERT, [
        Record("a", {"email": "a@example.com", "fname": "A", "age": 3}),
        Record("b", {"email": "b@example.com", "fname": None}),
        Record("c", {"email": "c@example.com"}),
    ]))}
    dest.write(Batch("c", LIST, Operation.UPDATE, [Record("a", {"email": "a@example.com", "lname": "L"})]))
    dest.write(Batch("c", f"{LIST}/{SEG}", Operation.ADD_MEMBER, [Record("a", {"email": "a@example.com"}),
                                                                  Record("b", {"email": "b@example.com"})]))
    dest.write(Batch("c", f"{LIST}/{SEG}", Operation.REMOVE_MEMBER, [Record("a", {"email": "a@example.com"})]))
    dest.write(Batch("c", f"{LIST}/{SEG}", Operation.REMOVE_MEMBER, [Record("b", {}, destination_id=ids["b"])]))
    dest.write(Batch("c", LIST, Operation.DELETE, [Record("c", {}, destination_id=ids["c"])]))
    MailchimpDestination(KEY, base_url=sandbox.api_url, delete_mode="archive").write(
        Batch("c", LIST, Operation.DELETE, [Record("b", {}, destination_id=ids["b"])]))


def test_every_body_the_connector_sends_fits_the_spec(sandbox):
    drive_connector(sandbox)
    seen = set()
    for method, path, body in sandbox.journal:
        ep, schema = endpoint(method, path)
        seen.add(ep)
        if schema is None:
            assert body is None, f"{method} {path} takes no body"
        else:
            jsonschema.validate(body, schema)
    assert seen == set(ENDPOINTS), "every endpoint of the contract is exercised"


def test_official_client_makes_the_same_calls_against_the_sandbox(sandbox):
    drive_connector(sandbox)
    ours = {endpoint(m, p)[0] for m, p, _ in sandbox.journal}
    sandbox.journal.clear()

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": KEY, "server": "us19"})
    client.api_client.host = sandbox.api_url  # instead of https://server.api.mailchimp.com/3.0
    lists = client.lists
    out = lists.batch_list_members(LIST, subscribe_body([("d@example.com", {"FNAME": "D"}),
                                                         ("e@example.com", {}), ("bad", {})]))
    assert out["total_created"] == 2 and out["error_count"] == 1
    assert out["errors"][0]["error_code"] == "ERROR_GENERIC" and out["new_members"][0]["email_address"] == "d@example.com"
    h = subscriber_hash("d@example.com")
    assert lists.update_list_member(LIST, h, {"merge_fields": {"LNAME": "Z"}})["merge_fields"]["LNAME"] == "Z"
    seg = lists.batch_segment_members(segment_body(add=["d@example.com", "e@example.com"]), LIST, SEG)
    assert seg["total_added"] == 2 and {m["id"] for m in seg["members_added"]} >= {h}
    assert lists.batch_segment_members(segment_body(remove=["e@example.com"]), LIST, SEG)["total_removed"] == 1
    lists.remove_segment_member(LIST, SEG, h)
    lists.delete_list_member(LIST, subscriber_hash("e@example.com"))
    lists.delete_list_member_permanent(LIST, h)
    assert sandbox.member(LIST, "d@example.com") is None
    theirs = {endpoint(m, p)[0] for m, p, _ in sandbox.journal}
    assert theirs == ours == set(ENDPOINTS)

    # the library sees the sandbox's errors as Mailchimp's: problem documents
    with pytest.raises(ApiClientError) as info:
        lists.delete_list_member_permanent(LIST, h)
    assert info.value.status_code == 404 and '"title":"Resource Not Found"' in info.value.text
    wrong = mailchimp_marketing.Client()
    wrong.set_config({"api_key": "bad-us19"})
    wrong.api_client.host = sandbox.api_url
    with pytest.raises(ApiClientError) as info:
        wrong.lists.batch_list_members(LIST, subscribe_body([("f@example.com", {})]))
    assert info.value.status_code == 401 and "API Key Invalid" in info.value.text
