"""SalesforceDestination against the Salesforce sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from destinations.base import Batch, Destination, DestinationError, Operation, Record, ResultStatus
from destinations.registry import RegistryError, build_destination
from destinations.salesforce import Config, SalesforceDestination, from_config
from destinations.sandbox.salesforce import SalesforceSandbox
from tests.integration.delivery import resend_until_acknowledged

TOKEN = "00Dxx0000000001!AQ0AQSecretSessionValue"
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "read_timeout": 5.0, "requests_per_second": 500.0,
        "burst": 50, "bulk_poll_interval": 0.01}
CAMPAIGN = "701Dn0000000099AAA"
EXT = "Outflow_Id__c"


def recs(n, start=0, **extra):
    return tuple(Record(f"p{i:05d}", {"Email": f"user{i}@example.com", "FirstName": f"F{i}", "LastName": f"L{i}",
                                      **extra}) for i in range(start, start + n))


def dest(sandbox, **kw):
    return SalesforceDestination(kw.pop("token", TOKEN), instance_url=sandbox.url,
                                 access_token_env="SF_ACCESS_TOKEN", **{**FAST, **kw})


@pytest.fixture
def sandbox():
    with SalesforceSandbox(token=TOKEN, campaigns=[CAMPAIGN]) as sb:
        yield sb


def by_key(results):
    return {r.key: r for r in results}


def upsert(d, records):
    return {r.key: r.destination_id for r in d.write(Batch("s", "Contact", Operation.UPSERT, tuple(records)))}


def test_upsert_creates_then_updates_by_external_id(sandbox):
    d = dest(sandbox)
    assert isinstance(d, Destination)
    assert d.capabilities.max_batch_size == 200 and d.capabilities.max_concurrency == 4
    assert d.capabilities.operations == frozenset({Operation.UPSERT, Operation.UPDATE, Operation.DELETE,
                                                   Operation.DELETE_PERSON, Operation.ADD_MEMBER,
                                                   Operation.REMOVE_MEMBER})
    res = by_key(d.write(Batch("s", "Contact", Operation.UPSERT, recs(5))))
    assert all(r.status is ResultStatus.OK for r in res.values())
    c3 = sandbox.by_external_id("p00003")  # the sync's key is the external id
    assert c3["Email"] == "user3@example.com" and c3["LastName"] == "L3" and res["p00003"].destination_id == c3["Id"]
    assert c3["Id"].startswith("003") and len(c3["Id"]) == 18
    again = by_key(d.write(Batch("s", "Contact", Operation.UPSERT,
                                 (Record("p00003", {"FirstName": "New", "Title": None}),))))
    assert again["p00003"].destination_id == c3["Id"] and sandbox.creations == 5
    assert sandbox.by_external_id("p00003")["FirstName"] == "New"
    assert sandbox.by_external_id("p00003")["Title"] is None  # None clears
    d.close()


def test_mapped_external_id_wins_over_the_key_and_leads_work():
    with SalesforceSandbox(token=TOKEN, external_id_fields=["Ext__c"]) as sb:
        d = dest(sb, sobject="Lead", external_id_field="Ext__c")
        res = d.write(Batch("s", "Lead", Operation.UPSERT,
                            (Record("k1", {"Ext__c": "X-1", "LastName": "A", "Company": "Acme"}),
                             Record("k2", {"LastName": "B"}))))
        ok, bad = by_key(res)["k1"], by_key(res)["k2"]
        assert ok.status is ResultStatus.OK and ok.destination_id.startswith("00Q")
        assert sb.by_external_id("X-1", "Ext__c")["Company"] == "Acme"
        assert bad.status is ResultStatus.REJECTED and bad.error == "REQUIRED_FIELD_MISSING"


def test_per_record_errors_are_rejected_alone_with_codes_not_pii(sandbox):
    d = dest(sandbox)
    batch = recs(10) + (Record("bad", {"Email": "jane.doe@nowhere", "LastName": "Doe"}),
                        Record("nolast", {"Email": "ok@example.com"}))
    res = by_key(d.write(Batch("s", "Contact", Operation.UPSERT, batch)))
    assert res["bad"].status is ResultStatus.REJECTED and res["bad"].error == "INVALID_EMAIL_ADDRESS"
    assert res["nolast"].status is ResultStatus.REJECTED and res["nolast"].error == "REQUIRED_FIELD_MISSING"
    assert sum(r.status is ResultStatus.OK for r in res.values()) == 10 and len(sandbox.records) == 10


def test_duplicate_keys_in_one_batch_go_in_separate_calls_last_wins(sandbox):
    d = dest(sandbox)
    batch = (Record("a", {"LastName": "First"}), *recs(2), Record("a", {"LastName": "Second"}))
    res = d.write(Batch("s", "Contact", Operation.UPSERT, batch))
    assert len(res) == 4 and all(r.status is ResultStatus.OK for r in res)
    assert sandbox.by_external_id("a")["LastName"] == "Second" and sandbox.creations == 3


def test_update_never_creates(sandbox):
    d = dest(sandbox)
    upsert(d, recs(2))
    res = by_key(d.write(Batch("s", "Contact", Operation.UPDATE,
                               (Record("p00000", {"FirstName": "Upd"}), Record("ghost", {"LastName": "G"})))))
    assert res["p00000"].status is ResultStatus.OK
    assert res["ghost"].status is ResultStatus.REJECTED and res["ghost"].error.startswith("NOT_FOUND")
    assert sandbox.by_external_id("ghost") is None and sandbox.by_external_id("p00000")["FirstName"] == "Upd"


def test_campaign_membership_add_is_idempotent_and_remove_uses_member_ids(sandbox):
    d = dest(sandbox, campaign_member_status="Responded")
    ids = upsert(d, recs(4))
    batch = tuple(Record(f"p{i:05d}", {}) for i in range(3)) + (Record("nobody", {}),)
    res = by_key(d.write(Batch("s", CAMPAIGN, Operation.ADD_MEMBER, batch)))
    assert [res[f"p{i:05d}"].status for i in range(3)] == [ResultStatus.OK] * 3
    assert res["nobody"].status is ResultStatus.RETRYABLE and res["nobody"].error.startswith("CONTACT_NOT_FOUND")
    assert sandbox.campaign_people(CAMPAIGN) == {ids["p00000"], ids["p00001"], ids["p00002"]}
    member_ids = {k: res[k].destination_id for k in ("p00000", "p00001", "p00002")}
    assert all(m.startswith("00v") for m in member_ids.values())
    assert {m["Status"] for m in sandbox.members.values()} == {"Responded"}
    # A repeat (e.g. the answer was lost) finds the existing members: no duplicates, same ids.
    again = by_key(d.write(Batch("s", CAMPAIGN, Operation.ADD_MEMBER, batch[:2])))
    assert {k: again[k].destination_id for k in again} == {k: member_ids[k] for k in again}
    assert len(sandbox.members) == 3
    rm = d.write(Batch("s", CAMPAIGN, Operation.REMOVE_MEMBER,
                       (Record("p00001", {}, destination_id=member_ids["p00001"]),
                        Record("gone", {}, destination_id="00vDn0000000777AAA"), Record("never", {}))))
    assert all(r.status is ResultStatus.OK for r in rm)
    assert sandbox.campaign_people(CAMPAIGN) == {ids["p00000"], ids["p00002"]}
    assert sandbox.by_external_id("p00001") is not None  # the contact itself stays


def test_membership_errors_name_the_campaign(sandbox):
    d = dest(sandbox)
    upsert(d, recs(1))
    with pytest.raises(DestinationError, match="no campaign 701Dn0000000000ZZZ") as info:
        d.write(Batch("s", "701Dn0000000000ZZZ", Operation.ADD_MEMBER, (Record("p00000", {}),)))
    assert not info.value.retryable
    with pytest.raises(DestinationError, match="not a Salesforce Campaign Id"):
        d.write(Batch("s", "vip list", Operation.ADD_MEMBER, (Record("p00000", {}),)))


def test_delete_by_stored_id_or_external_id(sandbox):
    d = dest(sandbox)
    ids = upsert(d, recs(4))
    d.write(Batch("s", CAMPAIGN, Operation.ADD_MEMBER, (Record("p00000", {}),)))
    batch = (Record("p00000", {}, destination_id=ids["p00000"]), Record("p00001", {}),
             Record("gone", {}, destination_id="003Dn0000000777AAA"), Record("unknown", {}))
    res = by_key(d.write(Batch("s", "Contact", Operation.DELETE, batch)))
    assert all(r.status is ResultStatus.OK for r in res.values())
    assert {r["Id"] for r in sandbox.records.values()} == {ids["p00002"], ids["p00003"]}
    assert not sandbox.members  # deleting a contact deletes its campaign memberships
    again = d.write(Batch("s", "Contact", Operation.DELETE, batch[:1]))  # ENTITY_IS_DELETED = done
    assert again[0].status is ResultStatus.OK


def test_batch_limit_is_enforced_and_respected():
    with SalesforceSandbox(token=TOKEN) as sb:
        d = dest(sb, max_batch_size=500, bulk_threshold=10_000)
        res = d.write(Batch("s", "Contact", Operation.UPSERT, recs(450)))
        assert len(res) == 450 and all(r.status is ResultStatus.OK for r in res)
        assert sb.refused["batch_too_large"] == 0 and len(sb.records) == 450
    # A sandbox with a lower limit refuses with Salesforce's 400; the client bisects, nothing is lost.
    with SalesforceSandbox(token=TOKEN, max_records=30) as sb:
        d = dest(sb)
        res = d.write(Batch("s", "Contact", Operation.UPSERT, recs(100)))
        assert all(r.status is ResultStatus.OK for r in res) and len(sb.records) == 100
        assert sb.refused["batch_too_large"] >= 1
    with pytest.raises(ValueError, match="max_batch_size"):
        SalesforceDestination(TOKEN, instance_url="https://x.my.salesforce.com", max_batch_size=10_001)


def test_bulk_api_2_upsert_maps_results_back_by_external_id():
    with SalesforceSandbox(token=TOKEN, bulk_polls_in_progress=2) as sb:
        d = dest(sb, max_batch_size=5_000, bulk_threshold=50)
        assert d.capabilities.async_jobs
        pre = upsert(d, recs(10))  # below the threshold: Collections
        assert not sb.bulk_job_ids()
        batch = recs(60) + (Record("bad", {"Email": "x@nowhere", "LastName": "Z"}),
                            Record("nolast", {"FirstName": "N", "Title": None}))
        res = by_key(d.write(Batch("s", "Contact", Operation.UPSERT, batch)))
        assert len(sb.bulk_job_ids()) == 1 and sb.jobs[sb.bulk_job_ids()[0]]["state"] == "JobComplete"
        assert all(res[f"p{i:05d}"].status is ResultStatus.OK for i in range(60))
        assert res["p00003"].destination_id == pre["p00003"]  # updated, not created again
        assert res["p00055"].destination_id == sb.by_external_id("p00055")["Id"]
        assert res["bad"].status is ResultStatus.REJECTED and res["bad"].error == "INVALID_EMAIL_ADDRESS"
        assert res["nolast"].status is ResultStatus.REJECTED and res["nolast"].error == "REQUIRED_FIELD_MISSING"
        assert sb.creations == 60
        # `bulk: true` sends even a small batch as a job
        d2 = dest(sb, bulk=True)
        assert d2.write(Batch("s", "Contact", Operation.UPSERT, recs(1, start=100)))[0].status is ResultStatus.OK
        assert len(sb.bulk_job_ids()) == 2


def test_bulk_job_that_never_finishes_leaves_records_retryable():
    with SalesforceSandbox(token=TOKEN, bulk_polls_in_progress=10_000) as sb:
        d = dest(sb, bulk=True, bulk_timeout=0.1)
        res = d.write(Batch("s", "Contact", Operation.UPSERT, recs(3)))
        assert all(r.status is ResultStatus.RETRYABLE and r.error.startswith("BULK_JOB_RUNNING") for r in res)


def test_expired_session_names_the_env_var_and_hides_the_token(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    d = dest(sandbox, token="00Dxx!WRONG-secret-value")
    with pytest.raises(DestinationError) as info:
        d.write(Batch("s", "Contact", Operation.UPSERT, recs(2)))
    msg = str(info.value)
    assert not info.value.retryable and "SF_ACCESS_TOKEN" in msg and "INVALID_SESSION_ID" in msg
    assert "WRONG" not in msg and "WRONG" not in caplog.text and "user0" not in caplog.text
    assert sandbox.refused["unauthorized"] == 1 and not sandbox.records


def test_request_limit_exceeded_403_is_throttling_that_slows_down_and_loses_nothing():
    with SalesforceSandbox(token=TOKEN, throttle_rps=20) as sb:
        d = dest(sb, max_retries=12, backoff_cap=0.3)
        batches = [Batch("s", "Contact", Operation.UPSERT, recs(10, start=i * 10)) for i in range(30)]
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            results = [r for res in pool.map(d.write, batches) for r in res]
        elapsed = time.monotonic() - t0
        assert len(results) == 300 and all(r.status is ResultStatus.OK for r in results)
        assert sb.refused["throttled"] > 0 and d.client.stats["throttled"] == sb.refused["throttled"]
        assert len(sb.records) == 300 and sb.creations == 300
        assert elapsed >= 0.4  # 30 requests at 20/s after a burst of 20


@pytest.mark.parametrize(("operation", "bulk"), [(Operation.UPSERT, False), (Operation.UPSERT, True),
                                               (Operation.ADD_MEMBER, False), (Operation.DELETE, False)])
def test_faults_are_retryable_and_nothing_is_lost_or_duplicated(operation, bulk):
    n = 300
    with SalesforceSandbox(token=TOKEN, campaigns=[CAMPAIGN], error_share=0.2, drop_connection_share=0.2,
                           seed=7) as sb:
        d = dest(sb, max_retries=2, bulk=bulk)
        base = recs(n)
        ids: dict[str, str] = {}
        if operation is not Operation.UPSERT:  # seed the contacts without faults
            sb.error_share, sb.drop_connection_share = 0.0, 0.0
            ids = upsert(d, base[:200]) | upsert(d, base[200:])
            sb.error_share, sb.drop_connection_share = 0.2, 0.2
        target = CAMPAIGN if operation is Operation.ADD_MEMBER else "Contact"
        pending = {r.key: (Record(r.key, r.fields, destination_id=ids[r.key]) if operation is Operation.DELETE
                           else r) for r in base}
        acked, rounds = resend_until_acknowledged(d, target, operation, pending, batch_size=100, workers=4, max_rounds=30)
        faults = sb.refused["record_error"] + sb.refused["server_error"] + d.client.stats["connection_errors"]
        assert faults > 0 and rounds > 1
        assert bool(sb.bulk_job_ids()) is bulk
        if operation is Operation.UPSERT:
            assert sb.creations == n and len(sb.records) == n  # nobody created twice
            assert acked == {f"p{i:05d}": sb.by_external_id(f"p{i:05d}")["Id"] for i in range(n)}
        elif operation is Operation.ADD_MEMBER:
            assert len(sb.members) == n and sb.campaign_people(CAMPAIGN) == set(ids.values())
            assert set(acked.values()) == set(sb.members)  # every stored id names a real member
        else:
            assert not sb.records


def test_registry_builds_it_from_env(tmp_path, sandbox):
    p = tmp_path / "destinations.yml"
    p.write_text("sf:\n  type: salesforce\n  access_token_env: SF_TOKEN\n  instance_url_env: SF_URL\n"
                 "  object: Lead\n  external_id_field: Ext__c\n  max_concurrency: 3\n")
    with pytest.raises(RegistryError, match="'sf', key 'access_token_env': environment variable SF_TOKEN"):
        build_destination("sf", p, env={})
    d = build_destination("sf", p, env={"SF_TOKEN": TOKEN, "SF_URL": sandbox.url})
    assert isinstance(d, SalesforceDestination) and d.base_url == f"{sandbox.url}/services/data/v62.0"
    assert d.sobject == "Lead" and d.external_id_field == "Ext__c" and d.capabilities.max_concurrency == 3
    for bad, key in (("object: Account", "object"), ("max_batch_size: 20000", "max_batch_size"),
                     ("external_id_field: 'a b'", "external_id_field"), ("access_token: abc", "access_token")):
        (tmp_path / "bad.yml").write_text(f"sf:\n  type: salesforce\n  access_token_env: T\n  instance_url: "
                                          f"https://x.my.salesforce.com\n  {bad}\n")
        with pytest.raises(RegistryError, match=f"'sf', key '{key}'"):
            build_destination("sf", tmp_path / "bad.yml", env={"T": "t"})
    (tmp_path / "nourl.yml").write_text("sf: {type: salesforce, access_token_env: T}\n")
    with pytest.raises(RegistryError, match="instance_url"):
        build_destination("sf", tmp_path / "nourl.yml", env={"T": "t"})
    cfg = Config(type="salesforce", access_token_env="T", instance_url="https://x.my.salesforce.com")
    assert from_config("x", cfg, where=p, env={"T": "t"}).name == "x"
