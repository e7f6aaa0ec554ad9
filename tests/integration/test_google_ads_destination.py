"""Google Ads Customer Match destination against its sandbox over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from destinations.base import Batch, DestinationError, Operation, Record, ResultStatus
from destinations.google_ads import Config, GoogleAdsDestination, from_config
from destinations.identifiers import sha256_hex
from destinations.registry import RegistryError, build_destination
from destinations.sandbox.google_ads import GoogleAdsSandbox
from tests.integration.delivery import resend_until_acknowledged

CID, LIST = "1234567890", "42"
TOKEN, DEV = "ya29.sandbox-token", "dev-sandbox-token"


def dest(sb, token=TOKEN, dev=DEV, **kw):
    kw.setdefault("requests_per_second", None)
    return GoogleAdsDestination(token, dev, CID, base_url=sb.url, poll_interval=0.005, poll_interval_cap=0.02,
                                backoff_base=0.01, backoff_cap=0.05, access_token_env="GADS_TOKEN",
                                developer_token_env="GADS_DEV", **kw)


def recs(n, start=0):
    return tuple(Record(f"p{i:05d}", {"email": f"User{i}@Example.com"}) for i in range(start, start + n))


def email_hash(i):
    return sha256_hex(f"user{i}@example.com")


def by_key(results):
    return {r.key: r for r in results}


@pytest.fixture
def sandbox():
    with GoogleAdsSandbox(customer_id=CID, access_token=TOKEN, developer_token=DEV, user_lists=[LIST]) as sb:
        yield sb


def test_add_then_remove_with_the_ids_the_engine_keeps(sandbox):
    d = dest(sandbox)
    batch = recs(5) + (Record("full", {"email": "f@example.com", "phone": "+44 20 7946 0958", "first_name": "Ann",
                                       "last_name": "Lee", "country_code": "GB", "postal_code": "SW1A 1AA"}),)
    res = by_key(d.write(Batch("s", LIST, Operation.ADD_MEMBER, batch)))
    assert all(r.status is ResultStatus.OK for r in res.values())
    assert sandbox.hashed_emails(LIST) == {email_hash(i) for i in range(5)} | {sha256_hex("f@example.com")}
    assert ("hashedPhoneNumber", sha256_hex("+442079460958")) in sandbox.members(LIST)
    assert ("addressInfo", (sha256_hex("ann"), sha256_hex("lee"), "GB", "SW1A 1AA")) in sandbox.members(LIST)
    assert "f@example.com" not in res["full"].destination_id  # hashes only
    # The engine sends removals with no fields: the destination_id carries the identifiers.
    rm = d.write(Batch("s", LIST, Operation.REMOVE_MEMBER, (Record("p00001", {}, res["p00001"].destination_id),
                                                             Record("full", {}, res["full"].destination_id))))
    assert all(r.status is ResultStatus.OK for r in rm)
    assert sandbox.members(LIST) == {("hashedEmail", email_hash(i)) for i in (0, 2, 3, 4)}
    # By fields works too, and target may be the full resource name.
    d.write(Batch("s", f"customers/{CID}/userLists/{LIST}", Operation.REMOVE_MEMBER, (Record("p00000", {"email": "USER0@example.com"}),)))
    assert sandbox.hashed_emails(LIST) == {email_hash(i) for i in (2, 3, 4)}
    assert sandbox.applied_jobs == 3


def test_per_record_errors_are_rejected_with_google_codes_and_no_pii(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    d = dest(sandbox)
    batch = recs(4) + (Record("badhash", {"hashed_email": "abc123"}),
                       Record("badphone", {"phone": "12"}), Record("nothing", {"firstname": "Only"}))
    res = by_key(d.write(Batch("s", LIST, Operation.ADD_MEMBER, batch)))
    assert res["badhash"].status is ResultStatus.REJECTED
    assert res["badhash"].error == "INVALID_SHA256_FORMAT (offlineUserDataJobError)"
    assert res["badphone"].error.startswith("INVALID_PHONE") and res["nothing"].error.startswith("MISSING_USER_IDENTIFIER")
    assert sum(r.status is ResultStatus.OK for r in res.values()) == 4
    assert sandbox.hashed_emails(LIST) == {email_hash(i) for i in range(4)}
    assert sandbox.refused["operation_error"] == 1
    assert "user0" not in caplog.text.lower() and "abc123" not in caplog.text


def test_unsupported_operations_and_bad_lists(sandbox):
    d = dest(sandbox)
    with pytest.raises(DestinationError, match="ADD_MEMBER and REMOVE_MEMBER only") as info:
        d.write(Batch("s", LIST, Operation.UPSERT, recs(1)))
    assert not info.value.retryable
    with pytest.raises(DestinationError, match="INVALID_USER_LIST_ID") as info:
        d.write(Batch("s", "777", Operation.ADD_MEMBER, recs(1)))
    assert not info.value.retryable
    with pytest.raises(DestinationError, match="user list id of customer"):
        d.write(Batch("s", "customers/999/userLists/42", Operation.ADD_MEMBER, recs(1)))


def test_failed_job_is_retryable(sandbox):
    sandbox.fail_jobs = True
    res = dest(sandbox).write(Batch("s", LIST, Operation.ADD_MEMBER, recs(3)))
    assert all(r.status is ResultStatus.RETRYABLE and r.error.startswith("JOB_FAILED") for r in res)


def test_identifier_limit_per_request_is_enforced_and_respected():
    with GoogleAdsSandbox(customer_id=CID, user_lists=[LIST], max_identifiers=40) as sb:
        # The sandbox refuses >40 identifiers with TOO_MANY_USER_IDENTIFIERS; the connector bisects.
        d = dest(sb)
        res = d.write(Batch("s", LIST, Operation.ADD_MEMBER, recs(100)))
        assert all(r.status is ResultStatus.OK for r in res) and len(sb.hashed_emails(LIST)) == 100
        assert sb.refused["too_many_identifiers"] >= 1 and sb.applied_jobs == 1
        # Configured at the limit, no request is refused.
        refused = sb.refused["too_many_identifiers"]
        d2 = dest(sb, max_identifiers_per_request=40)
        res = d2.write(Batch("s", LIST, Operation.ADD_MEMBER, recs(100, start=100)))
        assert all(r.status is ResultStatus.OK for r in res)
        assert sb.refused["too_many_identifiers"] == refused and len(sb.hashed_emails(LIST)) == 200
    with GoogleAdsSandbox(customer_id=CID, user_lists=[LIST]) as sb:  # 21 identifiers for one user
        body = GoogleAdsDestination.operations_body("create", [[{"hashedEmail": "a" * 64}] * 21])
        assert sb._check_user(body["operations"][0]["create"])[0] == "TOO_MANY_USER_IDENTIFIERS"
    with pytest.raises(ValueError, match="max_batch_size"):
        GoogleAdsDestination(TOKEN, DEV, CID, max_batch_size=1_000_001)
    with pytest.raises(ValueError, match="users_per_request"):
        GoogleAdsDestination(TOKEN, DEV, CID, users_per_request=100_001)


def test_one_job_takes_several_add_operations_calls_and_runs_once():
    with GoogleAdsSandbox(customer_id=CID, user_lists=[LIST]) as sb:
        d = dest(sb, users_per_request=30)
        res = d.write(Batch("s", LIST, Operation.ADD_MEMBER, recs(100)))
        assert all(r.status is ResultStatus.OK for r in res) and len(sb.hashed_emails(LIST)) == 100
        assert len(sb.jobs) == 1 and sb.applied_jobs == 1
        assert len(next(iter(sb.jobs.values()))["operations"]) == 100
        assert sb.requests_seen - sb.polls_seen == 1 + 4 + 1  # create, 4 x addOperations (30+30+30+10), run


def test_concurrent_writes_fill_jobs_in_parallel_but_run_one_at_a_time_per_list():
    # Google asks that a user list is not modified by concurrent jobs: with 4 writes in flight, jobs
    # are created and filled at once, but :run is serialised per list (the sandbox records the most
    # jobs ever RUNNING on one list).
    with GoogleAdsSandbox(customer_id=CID, user_lists=[LIST, "43"], polls_to_finish=4) as sb:
        d = dest(sb, max_concurrency=4)
        batches = [Batch("s", lst, Operation.ADD_MEMBER, recs(50, start=50 * i))
                   for i, lst in enumerate([LIST] * 6 + ["43"] * 2)]
        with ThreadPoolExecutor(4) as pool:
            results = [r for rs in pool.map(d.write, batches) for r in rs]
        assert all(r.status is ResultStatus.OK for r in results)
        assert sb.hashed_emails(LIST) == {email_hash(i) for i in range(300)}
        assert sb.hashed_emails("43") == {email_hash(i) for i in range(300, 400)}
        assert sb.applied_jobs == 8 and sb.max_running_per_list == 1


@pytest.mark.parametrize("case", ["token", "developer_token", "missing_developer_token"])
def test_auth_failure_names_the_env_vars_and_hides_secrets(sandbox, caplog, case):
    caplog.set_level(logging.DEBUG)
    token, dev = {"token": ("ya29.WRONG-secret", DEV), "developer_token": (TOKEN, "WRONG-dev-secret"),
                  "missing_developer_token": (TOKEN, DEV)}[case]
    d = dest(sandbox, token=token, dev=dev)
    if case == "missing_developer_token":
        del d.client.session.headers["developer-token"]
    with pytest.raises(DestinationError) as info:
        d.write(Batch("s", LIST, Operation.ADD_MEMBER, recs(2)))
    msg = str(info.value)
    assert not info.value.retryable and "GADS_TOKEN" in msg and "GADS_DEV" in msg
    assert "WRONG" not in msg and "WRONG" not in caplog.text and "user0" not in caplog.text.lower()
    assert sandbox.refused["unauthorized"] == 1 and not sandbox.jobs


def test_throttling_slows_down_and_loses_nothing():
    # Runs are serialised per list, so the load comes from jobs on several lists at once.
    lists = [str(40 + i) for i in range(4)]
    with GoogleAdsSandbox(customer_id=CID, user_lists=lists, throttle_rps=20) as sb:
        d = dest(sb, max_retries=10, retry_after_cap=0.2, max_concurrency=4)
        waits = []
        d.client._sleep = lambda s: (waits.append(s), time.sleep(s))
        batches = [Batch("s", lists[i % 4], Operation.ADD_MEMBER, recs(5, start=i * 5)) for i in range(20)]
        with ThreadPoolExecutor(4) as pool:
            results = [r for res in pool.map(d.write, batches) for r in res]
        assert len(results) == 100 and all(r.status is ResultStatus.OK for r in results)
        assert sb.refused["throttled"] > 0 and d.client.stats["throttled"] == sb.refused["throttled"]
        assert sum(len(sb.hashed_emails(x)) for x in lists) == 100
        assert 0.2 in waits  # retryDelay "1s" from the body, capped by retry_after_cap


@pytest.mark.parametrize("operation", [Operation.ADD_MEMBER, Operation.REMOVE_MEMBER])
def test_faults_are_retryable_and_nothing_is_lost_or_duplicated(operation):
    n = 200
    with GoogleAdsSandbox(customer_id=CID, user_lists=[LIST], seed=3) as sb:
        d = dest(sb, max_retries=2)
        base = recs(n)
        ids = {}
        if operation is Operation.REMOVE_MEMBER:
            ids = {r.key: r.destination_id for r in d.write(Batch("s", LIST, Operation.ADD_MEMBER, base))}
            base = tuple(Record(r.key, {}, ids[r.key]) for r in base)
        sb.error_share, sb.drop_connection_share = 0.15, 0.15
        pending = {r.key: r for r in base}
        acked, rounds = resend_until_acknowledged(d, LIST, operation, pending, batch_size=50, workers=2, max_rounds=30)
        assert sb.refused["server_error"] + d.client.stats["connection_errors"] > 0
        expected = {email_hash(i) for i in range(n)} if operation is Operation.ADD_MEMBER else set()
        assert sb.hashed_emails(LIST) == expected


def test_registry_builds_it_from_env(tmp_path, sandbox):
    p = tmp_path / "destinations.yml"
    p.write_text("ga:\n  type: google_ads\n  customer_id: 123-456-7890\n  login_customer_id: '1112223333'\n"
                 "  access_token_env: GA_TOKEN\n  developer_token_env: GA_DEV\n  base_url_env: GA_URL\n")
    with pytest.raises(RegistryError, match="'ga', key 'access_token_env': environment variable GA_TOKEN"):
        build_destination("ga", p, env={"GA_DEV": DEV})
    d = build_destination("ga", p, env={"GA_TOKEN": TOKEN, "GA_DEV": DEV, "GA_URL": sandbox.url})
    assert isinstance(d, GoogleAdsDestination) and d.customer_id == CID
    assert d.capabilities.async_jobs and d.capabilities.max_batch_size == 100_000
    assert d.capabilities.operations == {Operation.ADD_MEMBER, Operation.REMOVE_MEMBER}
    assert d.client.session.headers["login-customer-id"] == "1112223333"
    (p.parent / "bad.yml").write_text("ga: {type: google_ads, customer_id: abc, access_token_env: A, "
                                      "developer_token_env: B}\n")
    with pytest.raises(RegistryError, match="'ga', key 'customer_id'"):
        build_destination("ga", p.parent / "bad.yml", env={"A": "a", "B": "b"})
    cfg = Config(type="google_ads", customer_id="1234567890", access_token_env="A", developer_token_env="B")
    assert from_config("x", cfg, where=p, env={"A": "a", "B": "b"}).name == "x"
