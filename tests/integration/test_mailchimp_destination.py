"""Mailchimp destination end to end against its sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import threading

import pytest
import requests

from destinations.base import Batch, DestinationError, Operation, Record, ResultStatus
from destinations.mailchimp import MailchimpDestination, subscriber_hash
from destinations.registry import RegistryError, build_destination
from destinations.sandbox.mailchimp import MailchimpSandbox

LIST, SEG = "aud0001", "4242"
KEY = "0123456789abcdef0123456789abcdef-us19"


def people(n: int, start: int = 0) -> list[Record]:
    return [Record(f"p{i:05d}", {"email": f"person{i}@example.com", "fname": f"F{i}", "score": i})
            for i in range(start, start + n)]


def fast(sb: MailchimpSandbox, **kw) -> MailchimpDestination:
    kw.setdefault("backoff_base", 0.01)
    kw.setdefault("backoff_cap", 0.05)
    return MailchimpDestination(KEY, base_url=sb.api_url, **kw)


@pytest.fixture
def sandbox():
    with MailchimpSandbox(api_key=KEY, lists={LIST: [SEG]}) as sb:
        yield sb


def statuses(results):
    return {r.key: r.status for r in results}


def test_upsert_subscribes_updates_and_maps_per_record_errors(sandbox):
    dest = fast(sandbox)
    recs = people(4) + [Record("bad", {"email": "not-an-email"}), Record("none", {"email": None}),
                        Record("dup", {"email": "PERSON1@example.com", "fname": "Dup"})]
    res = {r.key: r for r in dest.write(Batch("s", LIST, Operation.UPSERT, recs))}
    assert all(res[f"p{i:05d}"].status is ResultStatus.OK for i in range(4))
    assert res["p00001"].destination_id == subscriber_hash("person1@example.com")
    assert res["bad"].status is ResultStatus.REJECTED and res["bad"].error == "ERROR_GENERIC: INVALID_EMAIL"
    assert res["none"].status is ResultStatus.REJECTED and res["none"].error.startswith("MISSING_EMAIL")
    # the same email twice goes in two calls, both acknowledged by the one member
    assert res["dup"].status is ResultStatus.OK and res["dup"].destination_id == res["p00001"].destination_id
    assert sandbox.emails(LIST) == {f"person{i}@example.com" for i in range(4)}
    m = sandbox.member(LIST, "person2@example.com")
    assert m["status"] == "subscribed" and m["merge_fields"] == {"FNAME": "F2", "SCORE": 2}
    # a second run updates in place: no duplicates
    again = dest.write(Batch("s", LIST, Operation.UPSERT, [Record("p00002", {"email": "person2@example.com", "fname": "New"})]))
    assert again[0].status is ResultStatus.OK
    assert sandbox.member(LIST, "person2@example.com")["merge_fields"]["FNAME"] == "New"
    assert len(sandbox.lists[LIST].members) == 4
    # someone who unsubscribed in Mailchimp is not re-subscribed
    sandbox.set_status(LIST, "person3@example.com", "unsubscribed")
    back = dest.write(Batch("s", LIST, Operation.UPSERT, [Record("p00003", {"email": "person3@example.com"})]))
    assert back[0].status is ResultStatus.REJECTED and back[0].error == "ERROR_GENERIC: COMPLIANCE_STATE"
    assert sandbox.member(LIST, "person3@example.com")["status"] == "unsubscribed"
    for r in list(res.values()) + back:
        assert "@" not in (r.error or "")


def test_update_only_touches_existing_members(sandbox):
    dest = fast(sandbox)
    dest.write(Batch("s", LIST, Operation.UPSERT, people(2)))
    res = dest.write(Batch("s", LIST, Operation.UPDATE, [
        Record("p00000", {"email": "person0@example.com", "lname": "Lovelace"}),
        Record("ghost", {"email": "ghost@example.com", "lname": "X"}),
        Record("p00001", {"lname": "ById"}, destination_id=subscriber_hash("person1@example.com")),
    ]))
    assert statuses(res) == {"p00000": ResultStatus.OK, "ghost": ResultStatus.REJECTED, "p00001": ResultStatus.OK}
    assert sandbox.member(LIST, "ghost@example.com") is None
    assert sandbox.member(LIST, "person0@example.com")["merge_fields"]["LNAME"] == "Lovelace"
    assert sandbox.member(LIST, "person1@example.com")["merge_fields"]["LNAME"] == "ById"


def test_delete_is_permanent_and_idempotent(sandbox):
    dest = fast(sandbox)
    ok = dest.write(Batch("s", LIST, Operation.UPSERT, people(3)))
    # the engine sends removals with the tool id only
    gone = [Record(r.key, {}, destination_id=r.destination_id) for r in ok[:2]]
    assert statuses(dest.write(Batch("s", LIST, Operation.DELETE, gone))) == {"p00000": ResultStatus.OK, "p00001": ResultStatus.OK}
    assert sandbox.emails(LIST) == {"person2@example.com"}
    # a repeat (lost acknowledgement) finds nothing and is still OK
    assert {r.status for r in dest.write(Batch("s", LIST, Operation.DELETE, gone))} == {ResultStatus.OK}
    # Mailchimp will not re-import a permanently deleted email
    back = dest.write(Batch("s", LIST, Operation.UPSERT, people(1)))
    assert back[0].status is ResultStatus.REJECTED and back[0].error == "ERROR_GENERIC: FORGOTTEN_EMAIL"
    assert statuses(dest.write(Batch("s", LIST, Operation.DELETE, [Record("x", {})]))) == {"x": ResultStatus.REJECTED}


def test_archive_delete_mode_allows_coming_back(sandbox):
    dest = fast(sandbox, delete_mode="archive")
    ok = dest.write(Batch("s", LIST, Operation.UPSERT, people(1)))
    dest.write(Batch("s", LIST, Operation.DELETE, [Record("p00000", {}, destination_id=ok[0].destination_id)]))
    assert sandbox.member(LIST, "person0@example.com")["status"] == "archived"
    assert dest.write(Batch("s", LIST, Operation.UPSERT, people(1)))[0].status is ResultStatus.OK
    assert sandbox.emails(LIST) == {"person0@example.com"}


def test_a_privacy_deletion_is_permanent_even_in_archive_mode(sandbox):
    dest = fast(sandbox, delete_mode="archive")
    dest.write(Batch("s", LIST, Operation.UPSERT, people(2)))
    gone = dest.write(Batch("s", LIST, Operation.DELETE_PERSON, [Record("p00000", {"email": "Person0@Example.com"})]))
    assert [r.status for r in gone] == [ResultStatus.OK]
    assert sandbox.member(LIST, "person0@example.com") is None  # not merely archived
    assert sandbox.emails(LIST) == {"person1@example.com"}


def test_membership_add_and_remove(sandbox):
    dest = fast(sandbox)
    recs = people(5) + [Record("bad", {"email": "nope@"})]
    added = {r.key: r for r in dest.write(Batch("m", f"{LIST}/{SEG}", Operation.ADD_MEMBER, recs))}
    assert added["bad"].status is ResultStatus.REJECTED and added["bad"].error == "ERROR_GENERIC: INVALID_EMAIL"
    assert sandbox.segment_emails(LIST, SEG) == {f"person{i}@example.com" for i in range(5)}
    # adding again is harmless
    assert {r.status for r in dest.write(Batch("m", f"{LIST}/{SEG}", Operation.ADD_MEMBER, people(2)))} == {ResultStatus.OK}
    # removal as the engine sends it (tool id only): one call per member
    by_id = [Record(k, {}, destination_id=added[k].destination_id) for k in ("p00000", "p00001")]
    assert {r.status for r in dest.write(Batch("m", f"{LIST}/{SEG}", Operation.REMOVE_MEMBER, by_id))} == {ResultStatus.OK}
    # removal with the email uses the batch array; a repeat of either is OK
    by_email = people(3)[2:]
    assert {r.status for r in dest.write(Batch("m", f"{LIST}/{SEG}", Operation.REMOVE_MEMBER, by_email))} == {ResultStatus.OK}
    assert {r.status for r in dest.write(Batch("m", f"{LIST}/{SEG}", Operation.REMOVE_MEMBER, by_id + by_email))} == {ResultStatus.OK}
    assert sandbox.segment_emails(LIST, SEG) == {"person3@example.com", "person4@example.com"}
    # removing from the segment keeps the audience member
    assert "person0@example.com" in sandbox.emails(LIST)


def test_target_forms_and_configured_list(sandbox):
    dest = fast(sandbox, list_id=LIST)
    assert dest.write(Batch("m", SEG, Operation.ADD_MEMBER, people(1)))[0].status is ResultStatus.OK
    assert dest.write(Batch("u", LIST, Operation.UPSERT, people(1, 1)))[0].status is ResultStatus.OK
    assert sandbox.segment_emails(LIST, SEG) == {"person0@example.com"}
    plain = fast(sandbox)
    with pytest.raises(DestinationError, match="membership needs a static segment") as info:
        plain.write(Batch("m", LIST, Operation.ADD_MEMBER, people(1)))
    assert not info.value.retryable
    with pytest.raises(DestinationError, match="audience or segment does not exist"):
        plain.write(Batch("u", "nolist", Operation.UPSERT, people(1)))
    with pytest.raises(DestinationError, match="not supported"):
        plain.write(Batch("i", LIST, Operation.INSERT, people(1)))


def test_batch_limits(sandbox):
    dest = fast(sandbox)
    res = dest.write(Batch("s", LIST, Operation.UPSERT, people(1100)))
    assert {r.status for r in res} == {ResultStatus.OK} and len(res) == 1100
    calls = [len(b["members"]) for m, p, b in sandbox.journal if p == f"/3.0/lists/{LIST}"]
    assert calls == [500, 500, 100]
    assert dest.capabilities.max_batch_size == 500 and dest.capabilities.max_concurrency <= 10
    auth = ("anystring", KEY)
    too_many = {"members": [{"email_address": f"x{i}@example.com", "status": "subscribed"} for i in range(501)]}
    r = requests.post(f"{sandbox.api_url}/lists/{LIST}", json=too_many, auth=auth, timeout=5)
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["title"] == "Invalid Resource" and set(r.json()) >= {"type", "title", "status", "detail", "instance"}
    r = requests.post(f"{sandbox.api_url}/lists/{LIST}/segments/{SEG}",
                      json={"members_to_add": [f"x{i}@example.com" for i in range(501)]}, auth=auth, timeout=5)
    assert r.status_code == 400 and "at most 500 items" in r.json()["detail"]


def test_auth_failure_names_the_env_var_and_hides_the_key(sandbox, tmp_path):
    cfg = tmp_path / "destinations.yml"
    cfg.write_text(f"mc:\n  type: mailchimp\n  api_key_env: MC_KEY\n  base_url: {sandbox.api_url}\n")
    wrong = "ffffffffffffffffffffffffffffffff-us19"
    dest = build_destination("mc", cfg, env={"MC_KEY": wrong})
    with pytest.raises(DestinationError) as info:
        dest.write(Batch("s", LIST, Operation.UPSERT, people(2)))
    assert not info.value.retryable
    assert "MC_KEY" in str(info.value) and "401" in str(info.value) and wrong not in str(info.value)
    assert sandbox.refused["unauthorized"] == 1
    with pytest.raises(DestinationError, match="MC_KEY"):
        dest.write(Batch("s", LIST, Operation.DELETE, [Record("a", {}, destination_id="abc")]))
    ok = build_destination("mc", cfg, env={"MC_KEY": KEY})
    assert ok.write(Batch("s", LIST, Operation.UPSERT, people(1)))[0].status is ResultStatus.OK


def test_config_derives_the_data_centre(tmp_path):
    cfg = tmp_path / "destinations.yml"
    cfg.write_text("mc: {type: mailchimp, api_key_env: MC_KEY}\n")
    assert build_destination("mc", cfg, env={"MC_KEY": KEY}).base_url == "https://us19.api.mailchimp.com/3.0"
    with pytest.raises(RegistryError, match="key 'api_key_env': the key in MC_KEY does not end in -<dc>") as info:
        build_destination("mc", cfg, env={"MC_KEY": "nodatacentre"})
    assert "nodatacentre" not in str(info.value)
    with pytest.raises(RegistryError, match="environment variable MC_KEY is not set"):
        build_destination("mc", cfg, env={})
    cfg.write_text("mc: {type: mailchimp, api_key_env: MC_KEY, max_concurrency: 11}\n")
    with pytest.raises(RegistryError, match="key 'max_concurrency'"):
        build_destination("mc", cfg, env={"MC_KEY": KEY})


def test_throttling_slows_down_and_loses_nothing():
    # 3 connections allowed, 8 writers at once: Mailchimp's 429 for simultaneous connections.
    with MailchimpSandbox(api_key=KEY, lists={LIST: [SEG]}, max_connections=3, latency_s=0.02) as sb:
        dest = fast(sb, max_retries=12)
        out, errors = [], []

        def run(i):
            try:
                out.extend(dest.write(Batch("s", LIST, Operation.UPSERT, people(50, i * 50))))
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(out) == 400 and {r.status for r in out} == {ResultStatus.OK}
        assert sb.refused["throttled"] > 0 and dest.client.stats["throttled"] == sb.refused["throttled"]
        assert len(sb.emails(LIST)) == 400


def test_faults_are_retryable_and_converge_without_duplicates():
    knobs = {"error_share": 0.15, "drop_connection_share": 0.1, "seed": 3}
    with MailchimpSandbox(api_key=KEY, lists={LIST: [SEG]}, **knobs) as sb:
        dest = fast(sb, max_retries=2, read_timeout=2.0)
        model = people(300)
        ids: dict[str, str] = {}
        saw_retryable = False
        for op, target, records in (
            (Operation.UPSERT, LIST, model),
            (Operation.ADD_MEMBER, f"{LIST}/{SEG}", model[:200]),
        ):
            pending = list(records)
            for _ in range(30):
                if not pending:
                    break
                try:
                    results = dest.write(Batch("f", target, op, pending))
                except DestinationError as exc:
                    assert exc.retryable
                    saw_retryable = True
                    continue
                assert all(r.status is not ResultStatus.REJECTED for r in results), results
                done = {r.key for r in results if r.status is ResultStatus.OK}
                saw_retryable |= len(done) < len(pending)
                ids.update({r.key: r.destination_id for r in results if r.status is ResultStatus.OK})
                pending = [r for r in pending if r.key not in done]
            assert not pending
        removals = [Record(k, {}, destination_id=ids[k]) for k in sorted(ids)[:50]]
        for op, target in ((Operation.REMOVE_MEMBER, f"{LIST}/{SEG}"), (Operation.DELETE, LIST)):
            pending = list(removals)
            for _ in range(30):
                if not pending:
                    break
                done = {r.key for r in dest.write(Batch("f", target, op, pending)) if r.status is ResultStatus.OK}
                pending = [r for r in pending if r.key not in done]
            assert not pending
        assert saw_retryable
        gone = {f"person{int(r.key[1:])}@example.com" for r in removals}
        assert sb.emails(LIST) == {r.fields["email"] for r in model} - gone
        assert len(sb.lists[LIST].members) == 250  # nothing duplicated
        assert sb.segment_emails(LIST, SEG) == {r.fields["email"] for r in model[:200]} - gone
