"""KlaviyoDestination against the Klaviyo sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from destinations.base import Batch, Destination, DestinationError, Operation, Record, ResultStatus
from destinations.klaviyo import KlaviyoDestination
from destinations.registry import build_destination
from destinations.sandbox.klaviyo import KlaviyoSandbox

KEY = "pk_test_0123456789abcdef"
LIST = "Y6nRLr"
FAST = {"requests_per_second": None, "deletion_requests_per_second": None, "poll_interval": 0.005,
        "backoff_base": 0.005, "backoff_cap": 0.02, "read_timeout": 5.0, "max_retries": 8}


def people(n, start=0, **extra):
    return tuple(Record(f"p{i:05d}", {"email": f"User{i}@Example.com", "first_name": f"N{i}", "score": i, **extra})
                 for i in range(start, start + n))


def dest(sb, **kw):
    return KlaviyoDestination(kw.pop("key", KEY), base_url=sb.url, api_key_env="KLAVIYO_API_KEY", **{**FAST, **kw})


def statuses(results):
    return Counter(r.status for r in results)


@pytest.fixture
def sandbox():
    with KlaviyoSandbox(KEY) as sb:
        yield sb


def test_every_operation_end_to_end(sandbox):
    d = dest(sandbox)
    assert isinstance(d, Destination)
    caps = d.capabilities
    assert caps.max_batch_size == 1000 and caps.async_jobs and Operation.INSERT not in caps.operations
    # UPSERT through a bulk import job: every record gets its profile id.
    res = d.write(Batch("s", "profiles", Operation.UPSERT, people(150)))
    assert statuses(res) == {ResultStatus.OK: 150}
    ids = {r.key: r.destination_id for r in res}
    assert len(set(ids.values())) == 150 and len(sandbox.profiles) == 150
    p3 = sandbox.profile_by_email("user3@example.com")
    assert ids["p00003"] == p3["id"] and p3["first_name"] == "N3" and p3["properties"] == {"score": 3}
    job = next(iter(sandbox.jobs.values()))
    assert job["status"] == "complete" and job["polls"] == 2  # queued -> processing -> complete
    assert sandbox.revisions_seen == {"2026-10-15"}
    # Re-upsert changes fields, never duplicates.
    res = d.write(Batch("s", "profiles", Operation.UPSERT,
                        (Record("p00003", {"email": "user3@example.com", "first_name": "Neo", "city": "Oslo"}),)))
    assert res[0].destination_id == ids["p00003"] and len(sandbox.profiles) == 150
    assert sandbox.profiles[ids["p00003"]]["first_name"] == "Neo"
    assert sandbox.profiles[ids["p00003"]]["location"] == {"city": "Oslo"}
    # UPDATE touches existing profiles only (by id, or by a lookup on email).
    res = d.write(Batch("s", "profiles", Operation.UPDATE, (
        Record("p00001", {"email": "user1@example.com", "first_name": "Upd"}, destination_id=ids["p00001"]),
        Record("p00002", {"email": "USER2@example.com", "first_name": "Upd2"}),
        Record("ghost", {"email": "ghost@example.com", "first_name": "G"}),
    )))
    by = {r.key: r for r in res}
    assert by["p00001"].status is by["p00002"].status is ResultStatus.OK
    assert by["p00002"].destination_id == ids["p00002"]
    assert by["ghost"].status is ResultStatus.REJECTED and by["ghost"].error.startswith("PROFILE_NOT_FOUND")
    assert sandbox.profile_by_email("ghost@example.com") is None
    assert sandbox.profiles[ids["p00002"]]["first_name"] == "Upd2"
    # ADD_MEMBER with known ids, and a new person imported first; REMOVE_MEMBER as the engine sends it.
    members = tuple(Record(k, {}, destination_id=v) for k, v in list(ids.items())[:20])
    res = d.write(Batch("m", LIST, Operation.ADD_MEMBER, members + (Record("new", {"email": "new@example.com"}),)))
    assert statuses(res) == {ResultStatus.OK: 21}
    new_id = next(r.destination_id for r in res if r.key == "new")
    assert sandbox.members(LIST) == set(list(ids.values())[:20]) | {new_id}
    res = d.write(Batch("m", LIST, Operation.REMOVE_MEMBER, members[:5] + (Record("new", {}, destination_id=new_id),)))
    assert statuses(res) == {ResultStatus.OK: 6}
    assert sandbox.members(LIST) == set(list(ids.values())[5:20])
    # DELETE: one data-privacy deletion job per profile, by id.
    res = d.write(Batch("s", "profiles", Operation.DELETE, members[:3]))
    assert statuses(res) == {ResultStatus.OK: 3}
    assert sandbox.deletions == [{"id": ids[f"p{i:05d}"]} for i in range(3)]
    assert len(sandbox.profiles) == 148 and not sandbox.members(LIST) & {ids["p00000"]}
    assert sum(sandbox.refused.values()) == 0
    d.close()


def test_per_record_errors_are_rejected_with_codes_and_no_pii(sandbox):
    d = dest(sandbox)
    recs = people(5) + (
        Record("bad-email", {"email": "jane.doe@@example", "first_name": "J"}),
        Record("bad-phone", {"phone_number": "12", "first_name": "P"}),
        Record("no-id", {"first_name": "Nobody"}),
    )
    res = {r.key: r for r in d.write(Batch("s", "profiles", Operation.UPSERT, recs))}
    assert {k for k, r in res.items() if r.status is ResultStatus.OK} == {f"p{i:05d}" for i in range(5)}
    assert res["bad-email"].status is ResultStatus.REJECTED and res["bad-email"].error.startswith("INVALID_EMAIL")
    assert res["bad-phone"].error.startswith("INVALID_PHONE")
    assert res["no-id"].error.startswith("MISSING_IDENTIFIER")
    for r in res.values():
        assert "@" not in (r.error or "") and "jane" not in (r.error or "")
    # ADD_MEMBER of a record that cannot be imported is rejected; the rest are added.
    res = d.write(Batch("m", LIST, Operation.ADD_MEMBER,
                        (Record("bad", {"email": "nope"}), Record("ok", {"email": "ok@example.com"}))))
    by = {r.key: r for r in res}
    assert by["bad"].status is ResultStatus.REJECTED and by["ok"].status is ResultStatus.OK
    assert sandbox.member_emails(LIST) == {"ok@example.com"}
    # A stale profile id (profile deleted) is isolated by split-batch retry; the others are added.
    gone = Record("gone", {}, destination_id="01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    res = {r.key: r for r in d.write(Batch("m", LIST, Operation.ADD_MEMBER,
                                           (gone, Record("ok", {}, destination_id=by["ok"].destination_id))))}
    assert res["gone"].status is ResultStatus.REJECTED and res["gone"].error.startswith("INVALID_PROFILE_ID")
    assert res["ok"].status is ResultStatus.OK
    # A removal without any id or identifier cannot be done.
    res = d.write(Batch("m", LIST, Operation.REMOVE_MEMBER, (Record("x", {}),)))
    assert res[0].status is ResultStatus.REJECTED and res[0].error.startswith("MISSING_PROFILE_ID")


def test_throttling_slows_down_and_loses_nothing():
    with KlaviyoSandbox(KEY, throttle_rps=10) as sb:
        d = dest(sb, max_retries=20)
        batches = [Batch("s", "profiles", Operation.UPSERT, people(20, start=i * 20)) for i in range(8)]
        with ThreadPoolExecutor(4) as pool:
            results = [r for rs in pool.map(d.write, batches) for r in rs]
        assert statuses(results) == {ResultStatus.OK: 160}
        assert sb.refused["throttled"] > 0 and d.client.stats["throttled"] > 0
        assert len(sb.profiles) == 160
        members = tuple(Record(r.key, {}, destination_id=r.destination_id) for r in results)
        res = d.write(Batch("m", LIST, Operation.ADD_MEMBER, members))
        assert statuses(res) == {ResultStatus.OK: 160} and len(sb.members(LIST)) == 160


def test_ratelimit_remaining_zero_pauses_the_limiter(sandbox):
    d = KlaviyoDestination(KEY, base_url=sandbox.url, requests_per_second=1000, poll_interval=0.005)
    hook = d.client.is_throttled
    resp = requests.Response()
    resp.status_code, resp.headers["RateLimit-Remaining"], resp.headers["RateLimit-Reset"] = 200, "0", "0.3"
    assert hook(resp) is False
    t0 = time.monotonic()
    d.limiter.acquire()
    assert time.monotonic() - t0 >= 0.25
    # A JSON:API 'throttled' error in another status counts as throttling too.
    resp = requests.Response()
    resp.status_code, resp.headers["Content-Type"] = 503, "application/vnd.api+json"
    resp._content = b'{"errors":[{"id":"1","code":"throttled","title":"t","detail":"d"}]}'
    assert hook(resp) is True


def test_faults_retry_to_the_exact_state_without_duplicates():
    with KlaviyoSandbox(KEY, error_share=0.25, drop_connection_share=0.15, seed=11, job_polls=3) as sb:
        d = dest(sb, max_retries=1, read_timeout=2.0)
        pending = {r.key: r for r in people(120)}
        ids: dict[str, str] = {}
        for _ in range(60):  # the engine's later runs: re-send what is not acknowledged
            if not pending:
                break
            try:
                res = d.write(Batch("s", "profiles", Operation.UPSERT, tuple(pending.values())[:20]))
            except DestinationError as exc:
                assert exc.retryable
                continue
            for r in res:
                assert r.status is not ResultStatus.REJECTED
                if r.status is ResultStatus.OK:
                    ids[r.key] = r.destination_id
                    pending.pop(r.key)
        assert not pending and len(ids) == 120
        sb.settle()
        assert len(sb.profiles) == 120  # repeated jobs upserted, never duplicated
        assert {p["email"] for p in sb.profiles.values()} == {f"user{i}@example.com" for i in range(120)}
        want = set(list(ids.values())[:60])
        todo = {k: Record(k, {}, destination_id=v) for k, v in list(ids.items())[:60]}
        for _ in range(60):
            if not todo:
                break
            try:
                res = d.write(Batch("m", LIST, Operation.ADD_MEMBER, tuple(todo.values())[:10]))
            except DestinationError as exc:
                assert exc.retryable
                continue
            for r in res:
                if r.status is ResultStatus.OK:
                    todo.pop(r.key)
        assert not todo and sb.members(LIST) == want
        assert sb.refused["error"] > 0 and d.client.stats["connection_errors"] > 0


def test_auth_failure_names_the_env_var_and_hides_the_key(sandbox):
    d = dest(sandbox, key="pk_wrong_secret_value")
    with pytest.raises(DestinationError) as err:
        d.write(Batch("s", "profiles", Operation.UPSERT, people(2)))
    msg = str(err.value)
    assert not err.value.retryable and "KLAVIYO_API_KEY" in msg and "pk_wrong_secret_value" not in msg
    assert "401" in msg and "authentication_failed" in msg
    assert sandbox.refused["unauthorized"] == 1 and not sandbox.profiles


def test_sandbox_refuses_what_klaviyo_refuses(sandbox):
    base = {"Authorization": f"Klaviyo-API-Key {KEY}", "Content-Type": "application/vnd.api+json"}
    url = f"{sandbox.url}/api/lists/{LIST}/relationships/profiles"
    r = requests.post(url, json={"data": []}, headers=base, timeout=5)
    assert r.status_code == 400 and "revision" in r.json()["errors"][0]["detail"]
    hdr = {**base, "revision": "2026-10-15"}
    r = requests.post(url, json={"data": [{"type": "profile", "id": f"x{i}"} for i in range(1001)]},
                      headers=hdr, timeout=5)
    assert r.status_code == 400 and "1000" in r.json()["errors"][0]["detail"]
    r = requests.post(url, json={"data": []}, headers={"revision": "2026-10-15"}, timeout=5)
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "not_authenticated"
    body = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [
        {"type": "profile", "attributes": {"email": f"a{i}@example.com"}} for i in range(10_001)]}}}}
    r = requests.post(f"{sandbox.url}/api/profile-bulk-import-jobs", json=body, headers=hdr, timeout=10)
    assert r.status_code == 400 and "10000" in r.json()["errors"][0]["detail"]
    prof = {"type": "profile", "id": "01X", "attributes": {"email": "a@example.com"}}
    r = requests.post(f"{sandbox.url}/api/data-privacy-deletion-jobs", headers=hdr, timeout=5, json={
        "data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": prof}}}})
    assert r.status_code == 400 and "Exactly one" in r.json()["errors"][0]["detail"]


def test_batches_split_at_the_list_limit(sandbox):
    d = dest(sandbox)
    res = d.write(Batch("s", "profiles", Operation.UPSERT, people(2500)))
    assert statuses(res) == {ResultStatus.OK: 2500} and len(sandbox.jobs) == 3
    assert max(j["total_count"] for j in sandbox.jobs.values()) == 1000
    members = tuple(Record(r.key, {}, destination_id=r.destination_id) for r in res)
    res = d.write(Batch("m", LIST, Operation.ADD_MEMBER, members))
    assert statuses(res) == {ResultStatus.OK: 2500} and len(sandbox.members(LIST)) == 2500
    assert sum(sandbox.refused.values()) == 0


def test_unknown_list_and_slow_jobs():
    with KlaviyoSandbox(KEY, auto_create_lists=False, job_polls=1000) as sb:
        d = dest(sb, job_timeout=0.2)
        with pytest.raises(DestinationError) as err:
            d.write(Batch("s", "profiles", Operation.UPSERT, people(3)))
        assert err.value.retryable and "not complete" in str(err.value)
        with pytest.raises(DestinationError) as err:
            d.write(Batch("m", "NoSuch", Operation.ADD_MEMBER, (Record("a", {}, destination_id="01A"),)))
        assert not err.value.retryable and "404" in str(err.value)


def test_registry_builds_a_klaviyo_destination(tmp_path, sandbox):
    p = tmp_path / "destinations.yml"
    p.write_text("kl:\n  type: klaviyo\n  api_key_env: KLAVIYO_API_KEY\n  base_url_env: KLAVIYO_BASE_URL\n"
                 "  poll_interval: 0.01\n")
    d = build_destination("kl", p, env={"KLAVIYO_API_KEY": KEY, "KLAVIYO_BASE_URL": sandbox.url})
    assert isinstance(d, KlaviyoDestination) and d.base_url == sandbox.url
    assert d.capabilities.max_requests_per_second == 2.5
    res = d.write(Batch("s", "profiles", Operation.UPSERT, people(2)))
    assert statuses(res) == {ResultStatus.OK: 2}
    with pytest.raises(ValueError, match="KLAVIYO_API_KEY"):
        build_destination("kl", p, env={})
