"""HubSpotDestination against the HubSpot sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from destinations.base import Batch, Destination, DestinationError, Operation, Record, ResultStatus
from destinations.hubspot import Config, HubSpotDestination, from_config
from destinations.registry import RegistryError, build_destination
from destinations.sandbox.hubspot import HubSpotSandbox
from tests.integration.delivery import resend_until_acknowledged

TOKEN = "pat-na1-test-0123456789abcdef"
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "read_timeout": 5.0, "requests_per_second": 500.0, "burst": 50}
LIST = "4242"


def recs(n, start=0, **extra):
    return tuple(Record(f"p{i:05d}", {"email": f"User{i}@Example.com", "firstname": f"F{i}", "score": i, **extra})
                 for i in range(start, start + n))


def dest(sandbox, **kw):
    return HubSpotDestination(kw.pop("token", TOKEN), base_url=sandbox.url, token_env="HUBSPOT_TOKEN",
                              **{**FAST, **kw})


@pytest.fixture
def sandbox():
    with HubSpotSandbox(token=TOKEN, lists=[LIST]) as sb:
        yield sb


def by_key(results):
    return {r.key: r for r in results}


def test_upsert_creates_then_updates_by_email_with_ids(sandbox):
    d = dest(sandbox)
    assert isinstance(d, Destination)
    assert d.capabilities.max_batch_size == 100 and d.capabilities.operations == frozenset(
        {Operation.UPSERT, Operation.UPDATE, Operation.DELETE, Operation.DELETE_PERSON, Operation.ADD_MEMBER,
         Operation.REMOVE_MEMBER})
    res = by_key(d.write(Batch("s", "contacts", Operation.UPSERT, recs(5))))
    assert all(r.status is ResultStatus.OK for r in res.values())
    c3 = sandbox.contact_by_email("user3@example.com")
    assert c3["properties"] == {"email": "user3@example.com", "firstname": "F3", "score": "3"}
    assert res["p00003"].destination_id == c3["id"]
    again = by_key(d.write(Batch("s", "contacts", Operation.UPSERT,
                                 (Record("p00003", {"email": "user3@example.com", "firstname": "New", "score": None}),))))
    assert again["p00003"].destination_id == c3["id"] and sandbox.creations == 5
    assert sandbox.contact_by_email("user3@example.com")["properties"]["firstname"] == "New"
    assert sandbox.contact_by_email("user3@example.com")["properties"]["score"] == ""  # None clears
    d.close()


def test_results_map_by_trace_not_order_and_missing_email_is_rejected(sandbox, monkeypatch):
    # HubSpot does not keep input order: reverse the sandbox's results.
    original = sandbox._batch_response
    monkeypatch.setattr(sandbox, "_batch_response",
                        lambda results, errors, started: original(results[::-1], errors, started))
    d = dest(sandbox)
    batch = recs(6) + (Record("nomail", {"firstname": "x"}),)
    res = by_key(d.write(Batch("s", "contacts", Operation.UPSERT, batch)))
    for i in range(6):
        assert res[f"p{i:05d}"].destination_id == sandbox.contact_by_email(f"user{i}@example.com")["id"]
    assert res["nomail"].status is ResultStatus.REJECTED and res["nomail"].error.startswith("MISSING_EMAIL")


@pytest.mark.parametrize("mode", ["207", "400"])
def test_invalid_email_is_rejected_alone_without_pii(mode):
    with HubSpotSandbox(token=TOKEN, invalid_email=mode) as sb:
        d = dest(sb)
        batch = recs(10) + (Record("bad", {"email": "jane.doe@nowhere", "firstname": "J"}),)
        res = by_key(d.write(Batch("s", "contacts", Operation.UPSERT, batch)))
        assert res["bad"].status is ResultStatus.REJECTED
        assert "INVALID_EMAIL" in res["bad"].error and "jane" not in res["bad"].error
        assert "nowhere" not in res["bad"].error
        assert sum(r.status is ResultStatus.OK for r in res.values()) == 10
        assert len(sb.contacts) == 10
        if mode == "400":
            assert sb.refused["invalid_email"] >= 1  # whole batch refused, then bisected


def test_duplicate_emails_in_one_batch_go_in_separate_calls(sandbox):
    d = dest(sandbox)
    batch = (Record("a", {"email": "same@example.com", "firstname": "First"}),
             Record("b", {"email": "SAME@example.com ", "firstname": "Second"}), *recs(3))
    res = by_key(d.write(Batch("s", "contacts", Operation.UPSERT, batch)))
    assert all(r.status is ResultStatus.OK for r in res.values())
    assert res["a"].destination_id == res["b"].destination_id
    assert sandbox.contact_by_email("same@example.com")["properties"]["firstname"] == "Second"
    assert sandbox.refused["duplicate_ids"] == 0


def test_update_never_creates(sandbox):
    d = dest(sandbox)
    d.write(Batch("s", "contacts", Operation.UPSERT, recs(2)))
    batch = (Record("p00000", {"email": "user0@example.com", "firstname": "Upd"}),
             Record("ghost", {"email": "ghost@example.com", "firstname": "G"}))
    res = by_key(d.write(Batch("s", "contacts", Operation.UPDATE, batch)))
    assert res["p00000"].status is ResultStatus.OK
    assert res["ghost"].status is ResultStatus.REJECTED and res["ghost"].error.startswith("OBJECT_NOT_FOUND")
    assert "ghost@" not in res["ghost"].error
    assert sandbox.contact_by_email("ghost@example.com") is None
    assert sandbox.contact_by_email("user0@example.com")["properties"]["firstname"] == "Upd"


def test_membership_add_remove_with_ids_and_by_email(sandbox):
    d = dest(sandbox)
    ids = {r.key: r.destination_id for r in d.write(Batch("s", "contacts", Operation.UPSERT, recs(4)))}
    # Two with ids from the upsert, one resolved by email, one unknown to HubSpot.
    batch = (Record("p00000", {"email": "user0@example.com"}, destination_id=ids["p00000"]),
             Record("p00001", {"email": "user1@example.com"}, destination_id=ids["p00001"]),
             Record("p00002", {"email": "USER2@example.com"}),
             Record("nobody", {"email": "nobody@example.com"}))
    res = by_key(d.write(Batch("s", LIST, Operation.ADD_MEMBER, batch)))
    assert [res[k].status for k in ("p00000", "p00001", "p00002")] == [ResultStatus.OK] * 3
    assert res["p00002"].destination_id == ids["p00002"]
    assert res["nobody"].status is ResultStatus.RETRYABLE and "CONTACT_NOT_FOUND" in res["nobody"].error
    assert sandbox.members(LIST) == {ids["p00000"], ids["p00001"], ids["p00002"]}
    # Adding again is a no-op that still answers OK.
    again = d.write(Batch("s", LIST, Operation.ADD_MEMBER, batch[:1]))
    assert again[0].status is ResultStatus.OK
    # Removal as the engine sends it: ids only, no fields.
    rm = d.write(Batch("s", LIST, Operation.REMOVE_MEMBER, (Record("p00001", {}, destination_id=ids["p00001"]),
                                                             Record("x", {}, destination_id="999999"))))
    assert all(r.status is ResultStatus.OK for r in rm)
    assert sandbox.member_emails(LIST) == {"user0@example.com", "user2@example.com"}


def test_membership_errors_name_the_list(sandbox):
    d = dest(sandbox)
    one = (Record("k", {}, destination_id="101"),)
    with pytest.raises(DestinationError, match="no list 777") as info:
        d.write(Batch("s", "777", Operation.ADD_MEMBER, one))
    assert not info.value.retryable
    with pytest.raises(DestinationError, match="not a HubSpot list id"):
        d.write(Batch("s", "vip list", Operation.ADD_MEMBER, one))
    sandbox.create_list("888", processing_type="DYNAMIC")
    with pytest.raises(DestinationError, match="MANUAL or SNAPSHOT"):
        d.write(Batch("s", "888", Operation.ADD_MEMBER, one))


def test_gdpr_delete_by_id_and_by_email(sandbox):
    d = dest(sandbox)
    ids = {r.key: r.destination_id for r in d.write(Batch("s", "contacts", Operation.UPSERT, recs(3)))}
    d.write(Batch("s", LIST, Operation.ADD_MEMBER, tuple(Record(k, {}, destination_id=v) for k, v in ids.items())))
    batch = (Record("p00000", {}, destination_id=ids["p00000"]),
             Record("p00001", {"email": "user1@example.com"}),
             Record("gone", {}, destination_id="999999"),
             Record("unknown", {"email": "never@example.com"}),
             Record("nothing", {}))
    res = by_key(d.write(Batch("s", "contacts", Operation.DELETE, batch)))
    assert [res[k].status for k in ("p00000", "p00001", "gone", "unknown")] == [ResultStatus.OK] * 4
    assert res["nothing"].status is ResultStatus.REJECTED
    assert set(sandbox.emails) == {"user2@example.com"} and sandbox.members(LIST) == {ids["p00002"]}
    assert sandbox.blocklist == {"never@example.com"}  # HubSpot blocklists an unknown email


def test_batch_limit_is_enforced_and_respected():
    with HubSpotSandbox(token=TOKEN) as sb:
        d = dest(sb)
        res = d.write(Batch("s", "contacts", Operation.UPSERT, recs(250)))
        assert len(res) == 250 and all(r.status is ResultStatus.OK for r in res)
        assert sb.refused["batch_too_large"] == 0 and len(sb.contacts) == 250
    # A sandbox with a lower limit refuses with HubSpot's 400; the client bisects, nothing is lost.
    with HubSpotSandbox(token=TOKEN, max_inputs=30) as sb:
        d = dest(sb)
        res = d.write(Batch("s", "contacts", Operation.UPSERT, recs(100)))
        assert all(r.status is ResultStatus.OK for r in res) and len(sb.contacts) == 100
        assert sb.refused["batch_too_large"] >= 1
    with pytest.raises(ValueError, match="max_batch_size"):
        HubSpotDestination(TOKEN, max_batch_size=101)


def test_auth_failure_names_the_env_var_and_hides_the_token(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    d = dest(sandbox, token="pat-na1-WRONG-secret-value")
    with pytest.raises(DestinationError) as info:
        d.write(Batch("s", "contacts", Operation.UPSERT, recs(2)))
    msg = str(info.value)
    assert not info.value.retryable and "HUBSPOT_TOKEN" in msg and "401" in msg
    assert "WRONG" not in msg and "WRONG" not in caplog.text and "user0" not in caplog.text.lower()
    assert sandbox.refused["unauthorized"] == 1 and not sandbox.contacts


def test_throttling_slows_down_and_loses_nothing():
    with HubSpotSandbox(token=TOKEN, throttle_rps=20) as sb:
        d = dest(sb, max_batch_size=10, max_retries=10)
        batches = [Batch("s", "contacts", Operation.UPSERT, recs(10, start=i * 10)) for i in range(30)]
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            results = [r for res in pool.map(d.write, batches) for r in res]
        elapsed = time.monotonic() - t0
        assert len(results) == 300 and all(r.status is ResultStatus.OK for r in results)
        assert sb.refused["throttled"] > 0 and d.client.stats["throttled"] == sb.refused["throttled"]
        assert len(sb.contacts) == 300 and sb.creations == 300
        assert elapsed >= 0.4  # 30 requests at 20/s after a burst of 20


@pytest.mark.parametrize("operation", [Operation.UPSERT, Operation.ADD_MEMBER, Operation.DELETE])
def test_faults_are_retryable_and_nothing_is_lost_or_duplicated(operation):
    n = 300
    with HubSpotSandbox(token=TOKEN, lists=[LIST], error_share=0.2, drop_connection_share=0.2, seed=7) as sb:
        d = dest(sb, max_retries=2)
        base = recs(n)
        ids: dict[str, str] = {}
        if operation is not Operation.UPSERT:  # seed the contacts without faults
            sb.error_share, sb.drop_connection_share = 0.0, 0.0
            ids = {r.key: r.destination_id for r in d.write(Batch("s", "contacts", Operation.UPSERT, base[:100]))}
            ids |= {r.key: r.destination_id for r in d.write(Batch("s", "contacts", Operation.UPSERT, base[100:200]))}
            ids |= {r.key: r.destination_id for r in d.write(Batch("s", "contacts", Operation.UPSERT, base[200:]))}
            sb.error_share, sb.drop_connection_share = 0.2, 0.2
        target = LIST if operation is Operation.ADD_MEMBER else "contacts"
        pending = {r.key: (r if operation is Operation.UPSERT else Record(r.key, r.fields, destination_id=ids[r.key]))
                   for r in base}
        acked, rounds = resend_until_acknowledged(d, target, operation, pending, batch_size=100, workers=4, max_rounds=25)
        faults = sb.refused["record_error"] + sb.refused["server_error"] + d.client.stats["connection_errors"]
        assert faults > 0  # the faults did happen
        assert rounds > 1 or operation is not Operation.UPSERT  # per-record errors wait for a later run
        if operation is Operation.UPSERT:
            assert sb.creations == n and len(sb.contacts) == n  # nobody created twice
            assert acked == {f"p{i:05d}": sb.emails[f"user{i}@example.com"] for i in range(n)}
        elif operation is Operation.ADD_MEMBER:
            assert sb.members(LIST) == set(ids.values())
        else:
            assert not sb.contacts and not sb.emails


def test_registry_builds_it_with_the_token_from_env(tmp_path, sandbox):
    p = tmp_path / "destinations.yml"
    p.write_text("hs:\n  type: hubspot\n  token_env: HS_TOKEN\n  base_url_env: HS_URL\n  max_concurrency: 3\n")
    with pytest.raises(RegistryError, match="'hs', key 'token_env': environment variable HS_TOKEN is not set"):
        build_destination("hs", p, env={})
    d = build_destination("hs", p, env={"HS_TOKEN": TOKEN, "HS_URL": sandbox.url})
    assert isinstance(d, HubSpotDestination) and d.base_url == sandbox.url
    assert d.capabilities.max_concurrency == 3 and d.capabilities.max_requests_per_second == 10.0
    (p.parent / "bad.yml").write_text("hs: {type: hubspot, token_env: X, max_batch_size: 500}\n")
    with pytest.raises(RegistryError, match="'hs', key 'max_batch_size'"):
        build_destination("hs", p.parent / "bad.yml", env={"X": "y"})
    (p.parent / "leak.yml").write_text("hs: {type: hubspot, token: pat-abc}\n")
    with pytest.raises(RegistryError, match="secrets never go"):
        build_destination("hs", p.parent / "leak.yml", env={})
    assert Config.model_validate({"type": "hubspot", "token_env": "T"}).base_url == "https://api.hubapi.com"
    assert from_config("x", Config(type="hubspot", token_env="T"), where=p, env={"T": "t"}).name == "x"
