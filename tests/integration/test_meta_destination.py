"""MetaAudienceDestination against the Meta sandbox, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from destinations.base import Batch, Destination, DestinationError, Operation, Record, ResultStatus
from destinations.meta import Config, MetaAudienceDestination, from_config, users_body
from destinations.registry import RegistryError, build_destination
from destinations.sandbox.meta import MetaSandbox
from tests.integration.delivery import resend_until_acknowledged

TOKEN = "EAAB-test-token-0123456789abcdef"
AUD = "23850000000000001"
FAST = {"backoff_base": 0.01, "backoff_cap": 0.05, "read_timeout": 10.0, "requests_per_second": 500.0, "burst": 50}
HEX = re.compile(r"^[0-9a-f]{64}$")


def sha(s):
    return hashlib.sha256(s.encode()).hexdigest()


def recs(n, start=0):
    return tuple(Record(f"p{i:05d}", {"email": f"User{i}@Example.com", "phone": f"+1 650 555 {i % 10000:04d}",
                                      "first_name": f"Ann{chr(97 + i % 26)}", "country": "US", "zip": "94043"})
                 for i in range(start, start + n))


def dest(sandbox, **kw):
    return MetaAudienceDestination(kw.pop("token", TOKEN), base_url=sandbox.url, access_token_env="META_TOKEN",
                                   **{**FAST, **kw})


@pytest.fixture
def sandbox():
    with MetaSandbox(token=TOKEN, audiences=[AUD]) as sb:
        yield sb


def by_key(results):
    return {r.key: r for r in results}


def test_add_then_remove_members_by_hashed_identifiers(sandbox):
    d = dest(sandbox)
    assert isinstance(d, Destination)
    assert d.capabilities.operations == frozenset({Operation.ADD_MEMBER, Operation.REMOVE_MEMBER})
    assert d.capabilities.max_batch_size == 10_000
    res = d.write(Batch("s", AUD, Operation.ADD_MEMBER, recs(5)))
    assert len(res) == 5 and all(r.status is ResultStatus.OK for r in res)
    assert sandbox.member_hashes(AUD) == {sha(f"user{i}@example.com") for i in range(5)}
    member = next(m for m in sandbox.members(AUD) if m["EMAIL"] == sha("user1@example.com"))
    assert member == {"EMAIL": sha("user1@example.com"), "PHONE": sha("16505550001"), "FN": sha("annb"),
                      "COUNTRY": sha("us"), "ZIP": sha("94043")}
    assert sandbox.calls[-1]["schema"] == ["EMAIL", "PHONE", "FN", "ZIP", "COUNTRY"]
    again = d.write(Batch("s", AUD, Operation.ADD_MEMBER, recs(2)))  # re-adding is harmless
    assert all(r.status is ResultStatus.OK for r in again) and len(sandbox.members(AUD)) == 5
    # Removal as the engine sends it: the same mapped identifier fields.
    rm = d.write(Batch("s", AUD, Operation.REMOVE_MEMBER, recs(2, start=1)))
    assert all(r.status is ResultStatus.OK for r in rm)
    assert sandbox.calls[-1]["method"] == "DELETE"
    assert sandbox.member_hashes(AUD) == {sha(f"user{i}@example.com") for i in (0, 3, 4)}
    d.close()


def test_a_removal_without_fields_removes_what_the_add_stored(sandbox):
    """The engine removes a person who left the model with no fields, only the id the
    add returned: that id is the hashed row, never a raw value."""
    d = dest(sandbox)
    added = by_key(d.write(Batch("s", AUD, Operation.ADD_MEMBER, recs(3))))
    stored = json.loads(added["p00001"].destination_id)
    assert stored["EMAIL"] == sha("user1@example.com") and all(HEX.match(v) for v in stored.values())
    gone = [Record("p00001", {}, destination_id=added["p00001"].destination_id),
            Record("p00002", {}, destination_id="not json"), Record("p00009", {})]
    res = by_key(d.write(Batch("s", AUD, Operation.REMOVE_MEMBER, tuple(gone))))
    assert res["p00001"].status is ResultStatus.OK
    assert {k: res[k].error.split(":")[0] for k in ("p00002", "p00009")} == {
        "p00002": "MISSING_IDENTIFIER", "p00009": "MISSING_IDENTIFIER"}
    assert sandbox.member_hashes(AUD) == {sha("user0@example.com"), sha("user2@example.com")}
    d.close()


def test_no_raw_identifier_leaves_the_process(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    d = dest(sandbox)
    raw = (Record("a", {"email": "jane.doe@private.example", "phone": "+44 20 7946 0958", "first_name": "Jane",
                        "last_name": "Doe", "city": "London", "zip": "SW1A 1AA", "country": "GB",
                        "date_of_birth": "1980-02-03", "gender": "female", "state": "England"}),
           Record("b", {"email": "bob@elsewhere.example", "last_name": "O'Neil"}))
    assert all(r.status is ResultStatus.OK for r in d.write(Batch("s", AUD, Operation.ADD_MEMBER, raw)))
    d.write(Batch("s", AUD, Operation.REMOVE_MEMBER, raw[1:]))
    assert sandbox.values_seen and all(HEX.match(v) for v in sandbox.values_seen)
    wire = b"".join(sandbox.bodies).decode().lower()
    for needle in ("jane", "doe", "private.example", "7946", "london", "sw1a", "1980", "o'neil", "bob@"):
        assert needle not in wire and needle not in caplog.text.lower()


def test_missing_identifier_is_rejected_locally_and_not_sent(sandbox):
    d = dest(sandbox)
    batch = recs(2) + (Record("empty", {"email": "not-an-email", "phone": "12"}),
                       Record("country_only", {"country": "US"}),
                       Record("name_only", {"first_name": "Zed", "last_name": "Zulu"}))
    res = by_key(d.write(Batch("s", AUD, Operation.ADD_MEMBER, batch)))
    for key in ("empty", "country_only"):
        assert res[key].status is ResultStatus.REJECTED and res[key].error.startswith("MISSING_IDENTIFIER")
        assert "not-an-email" not in res[key].error
    assert res["name_only"].status is ResultStatus.OK and res["p00000"].status is ResultStatus.OK
    assert sandbox.calls[-1]["rows"] == 3  # the two rejected rows never left
    # A batch with nothing usable makes no call at all.
    calls = len(sandbox.calls)
    only_bad = d.write(Batch("s", AUD, Operation.ADD_MEMBER, (Record("x", {"email": ""}),)))
    assert only_bad[0].status is ResultStatus.REJECTED and len(sandbox.calls) == calls


def test_invalid_entry_samples_map_to_the_row_they_quote():
    bad = sha("user2@example.com")
    with MetaSandbox(token=TOKEN, audiences=[AUD], invalid_hashes=[bad]) as sb:
        res = by_key(dest(sb).write(Batch("s", AUD, Operation.ADD_MEMBER, recs(4))))
        assert res["p00002"].status is ResultStatus.REJECTED and res["p00002"].error.startswith("META_INVALID_ENTRY")
        assert bad not in res["p00002"].error
        assert [res[f"p{i:05d}"].status for i in (0, 1, 3)] == [ResultStatus.OK] * 3
        assert sb.member_hashes(AUD) == {sha(f"user{i}@example.com") for i in (0, 1, 3)}


def test_one_session_per_write_across_its_requests(sandbox):
    d = dest(sandbox, rows_per_request=4)
    res = d.write(Batch("s", AUD, Operation.ADD_MEMBER, recs(10) + (Record("none", {}),)))
    assert len(res) == 11 and sum(r.status is ResultStatus.OK for r in res) == 10
    sessions = [c["session"] for c in sandbox.calls]
    assert [c["rows"] for c in sandbox.calls] == [4, 4, 2]
    assert len({s["session_id"] for s in sessions}) == 1
    assert [s["batch_seq"] for s in sessions] == [1, 2, 3]
    assert [s["last_batch_flag"] for s in sessions] == [False, False, True]
    assert {s["estimated_num_total"] for s in sessions} == {10}
    sid = str(sessions[0]["session_id"])
    assert sandbox.sessions[sid]["closed"] and sandbox.sessions[sid]["num_received"] == 10
    d.write(Batch("s", AUD, Operation.REMOVE_MEMBER, recs(3)))
    assert sandbox.calls[-1]["session"]["session_id"] != sessions[0]["session_id"]  # a new write, a new session


def test_row_limit_and_sandbox_shape_checks(sandbox):
    # The sandbox refuses what Meta refuses, in Graph's error shape.
    url = f"{sandbox.url}/v26.0/{AUD}/users"
    hdr = {"Authorization": f"Bearer {TOKEN}"}
    row = [sha("a@b.co")]
    too_many = requests.post(url, json={"payload": {"schema": ["EMAIL"], "data": [row] * 10_001}}, headers=hdr)
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == 100
    assert set(too_many.json()["error"]) >= {"message", "type", "code", "fbtrace_id"}
    width = requests.post(url, json={"payload": {"schema": ["EMAIL", "PHONE"], "data": [row]}}, headers=hdr)
    assert width.status_code == 400 and width.json()["error"]["code"] == 100
    schema = requests.post(url, json={"payload": {"schema": ["EMAIL", "SHOE_SIZE"], "data": [row + [""]]}},
                           headers=hdr)
    assert schema.status_code == 400
    # Graph's form encoding and access_token parameter are accepted too.
    form = requests.post(url, data={"payload": json.dumps({"schema": ["EMAIL"], "data": [row]}),
                                    "access_token": TOKEN})
    assert form.status_code == 200 and set(form.json()) == {
        "audience_id", "session_id", "num_received", "num_invalid_entries", "invalid_entry_samples"}
    exactly = requests.post(url, json=users_body([{"EMAIL": sha(f"{i}@x.co")} for i in range(10_000)], None),
                            headers=hdr)
    assert exactly.status_code == 200 and exactly.json()["num_received"] == 10_000
    with pytest.raises(ValueError, match="rows_per_request"):
        MetaAudienceDestination(TOKEN, rows_per_request=10_001)


def test_whole_batch_invalid_parameter_is_bisected_to_the_bad_rows():
    with MetaSandbox(token=TOKEN, audiences=[AUD], max_rows=3) as sb:  # a sandbox refusing > 3 rows
        res = dest(sb).write(Batch("s", AUD, Operation.ADD_MEMBER, recs(10)))
        assert all(r.status is ResultStatus.OK for r in res) and len(sb.members(AUD)) == 10
        assert sb.refused["too_many_rows"] >= 1
        assert all(c["session"] is None for c in sb.calls)  # bisected parts go without a session


def test_unknown_audience_and_bad_target_are_not_retryable(sandbox):
    d = dest(sandbox)
    with pytest.raises(DestinationError, match="audience 999 does not exist") as info:
        d.write(Batch("s", "999", Operation.ADD_MEMBER, recs(1)))
    assert not info.value.retryable and sandbox.refused["unknown_audience"] == 1
    with pytest.raises(DestinationError, match="not a Meta custom audience id"):
        d.write(Batch("s", "vip list", Operation.ADD_MEMBER, recs(1)))
    with pytest.raises(DestinationError, match="not supported"):
        d.write(Batch("s", AUD, Operation.UPSERT, recs(1)))


def test_auth_failure_names_the_env_var_and_hides_the_token(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    d = dest(sandbox, token="EAAB-WRONG-secret-value")
    with pytest.raises(DestinationError) as info:
        d.write(Batch("s", AUD, Operation.ADD_MEMBER, recs(2)))
    msg = str(info.value)
    assert not info.value.retryable and "META_TOKEN" in msg and "META_190" in msg
    assert "WRONG" not in msg and "WRONG" not in caplog.text and "user0" not in caplog.text.lower()
    assert sandbox.refused["unauthorized"] == 1 and not sandbox.members(AUD)


@pytest.mark.parametrize("code", [80003, 17])
def test_throttling_codes_slow_down_and_lose_nothing(code):
    with MetaSandbox(token=TOKEN, audiences=[AUD], throttle_rps=20, throttle_code=code) as sb:
        d = dest(sb, max_retries=10)
        batches = [Batch("s", AUD, Operation.ADD_MEMBER, recs(10, start=i * 10)) for i in range(30)]
        t0 = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            results = [r for res in pool.map(d.write, batches) for r in res]
        elapsed = time.monotonic() - t0
        assert len(results) == 300 and all(r.status is ResultStatus.OK for r in results)
        assert sb.refused["throttled"] > 0 and d.client.stats["throttled"] == sb.refused["throttled"]
        assert len(sb.members(AUD)) == 300
        assert elapsed >= 0.4  # 30 requests at 20/s after a burst of 20


@pytest.mark.parametrize("operation", [Operation.ADD_MEMBER, Operation.REMOVE_MEMBER])
def test_faults_are_retryable_and_nothing_is_lost_or_duplicated(operation):
    n = 300
    with MetaSandbox(token=TOKEN, audiences=[AUD], error_share=0.3, drop_connection_share=0.2, seed=7) as sb:
        d = dest(sb, max_retries=1)
        base = recs(n)
        if operation is Operation.REMOVE_MEMBER:  # seed the audience without faults
            sb.error_share, sb.drop_connection_share = 0.0, 0.0
            d.write(Batch("s", AUD, Operation.ADD_MEMBER, base + recs(50, start=n)))
            sb.error_share, sb.drop_connection_share = 0.3, 0.2
        pending = {r.key: r for r in base}
        acked, rounds = resend_until_acknowledged(d, AUD, operation, pending, batch_size=30, workers=4, max_rounds=25)
        assert sb.refused["server_error"] + d.client.stats["connection_errors"] > 0
        members = sb.members(AUD)
        if operation is Operation.ADD_MEMBER:
            assert len(members) == n  # nobody added twice
            assert {m["EMAIL"] for m in members} == {sha(f"user{i}@example.com") for i in range(n)}
        else:
            assert {m["EMAIL"] for m in members} == {sha(f"user{i}@example.com") for i in range(n, n + 50)}


def test_registry_builds_it_with_the_token_from_env(tmp_path, sandbox):
    p = tmp_path / "destinations.yml"
    p.write_text("fb:\n  type: meta\n  access_token_env: META_TOKEN\n  base_url_env: META_URL\n"
                 "  requests_per_second: 50\n  burst: 10\n")
    with pytest.raises(RegistryError, match="'fb', key 'access_token_env': environment variable META_TOKEN is not"):
        build_destination("fb", p, env={})
    d = build_destination("fb", p, env={"META_TOKEN": TOKEN, "META_URL": sandbox.url})
    assert isinstance(d, MetaAudienceDestination) and d.base_url == f"{sandbox.url}/v26.0"
    assert d.write(Batch("s", AUD, Operation.ADD_MEMBER, recs(1)))[0].status is ResultStatus.OK
    (p.parent / "bad.yml").write_text("fb: {type: meta, access_token_env: X, rows_per_request: 20000}\n")
    with pytest.raises(RegistryError, match="'fb', key 'rows_per_request'"):
        build_destination("fb", p.parent / "bad.yml", env={"X": "y"})
    (p.parent / "leak.yml").write_text("fb: {type: meta, access_token: EAAB123}\n")
    with pytest.raises(RegistryError, match="secrets never go"):
        build_destination("fb", p.parent / "leak.yml", env={})
    cfg = Config(type="meta", access_token_env="T")
    assert cfg.base_url == "https://graph.facebook.com" and cfg.api_version == "v26.0"
    assert from_config("x", cfg, where=p, env={"T": "t"}).name == "x"


def test_throttle_hook_reads_meta_codes_and_the_buc_header():
    from destinations.meta import meta_throttled

    def resp(status, body, headers=None):
        r = requests.Response()
        r.status_code, r._content = status, json.dumps(body).encode()
        r.headers.update(headers or {})
        return r

    usage = {"123": [{"type": "custom_audience", "call_count": 100, "estimated_time_to_regain_access": 2}]}
    buc = {"X-Business-Use-Case-Usage": json.dumps(usage)}
    assert meta_throttled(resp(400, {"error": {"code": 80003}}, buc)) == 120.0  # minutes -> seconds
    for code in (4, 17, 613, 80003, 80004):
        assert meta_throttled(resp(400, {"error": {"code": code, "type": "OAuthException"}})) is True
    for code in (100, 190, 2650):
        assert meta_throttled(resp(400, {"error": {"code": code}})) is None
    assert meta_throttled(resp(200, {"num_received": 1})) is None
