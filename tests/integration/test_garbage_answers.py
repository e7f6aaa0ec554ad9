"""A tool's garbage answer (not JSON, cut short, the wrong shape, an HTML error page)
fails that batch's records with a clear reason, and a later send delivers every one:
for every destination, against its sandbox over real HTTP."""

from __future__ import annotations

import logging

import pytest

from destinations.base import Batch, DestinationError, Operation, Record, ResultStatus
from destinations.registry import build_destination
from destinations.sandbox.server import GARBAGE
from tests.integration.sandboxes import ENV, SECRETS, Sandboxes

# sandbox -> (destination entry, target, operation, field names)
TARGETS = {
    "webhook": ("webhook_sandbox", "contacts", Operation.UPSERT, {"email": "email", "first_name": "first_name"}),
    "hubspot": ("hubspot_sandbox", "contacts", Operation.UPSERT, {"email": "email", "firstname": "first_name"}),
    "salesforce": ("salesforce_sandbox", "Contact", Operation.UPSERT,
                   {"Email": "email", "FirstName": "first_name", "LastName": "last_name"}),
    "mailchimp": ("mailchimp_sandbox", "seg1", Operation.ADD_MEMBER, {"email": "email", "FNAME": "first_name"}),
    "klaviyo": ("klaviyo_sandbox", "Y6nRLr", Operation.ADD_MEMBER, {"email": "email", "first_name": "first_name"}),
    "meta": ("meta_sandbox", "23850000000000001", Operation.ADD_MEMBER, {"email": "email", "first_name": "first_name"}),
    "google_ads": ("google_ads_sandbox", "5550001", Operation.ADD_MEMBER, {"email": "email"}),
}


def people(n: int) -> dict[str, dict[str, str]]:
    return {f"p{i:04d}": {"email": f"garbage.person{i}@example.com", "first_name": f"Ann{i}", "last_name": f"Lee{i}"}
            for i in range(n)}


def acknowledged_in_tool(sandboxes: Sandboxes, name: str, target: str, emails: set[str]) -> set[str]:
    """Which of `emails` the tool now holds (its own inspection API)."""
    from destinations.identifiers import sha256_hex

    sb = sandboxes[name]
    if name == "webhook":
        held = {r["fields"]["email"] for r in sb.state.records.get(target, {}).values()}
    elif name == "hubspot":
        held = {e for e in emails if sb.contact_by_email(e)}
    elif name == "salesforce":
        held = {r.get("Email") for r in sb.records.values()}
    elif name == "mailchimp":
        held = sb.segment_emails("list0001", target)
    elif name == "klaviyo":
        held = sb.member_emails(target)
    elif name == "meta":
        hashes = sb.member_hashes(target)
        return {e for e in emails if sha256_hex(e) in hashes}
    else:
        hashes = sb.hashed_emails(target)
        return {e for e in emails if sha256_hex(e) in hashes}
    return emails & held


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory):
    sbs = Sandboxes(tmp_path_factory.mktemp("garbage"))
    yield sbs
    sbs.stop()


@pytest.mark.parametrize("kind", sorted(GARBAGE))
@pytest.mark.parametrize("name", sorted(TARGETS))
def test_garbage_fails_the_batch_clearly_and_a_later_send_delivers_everything(sandboxes, name, kind, caplog):
    entry, target, op, mapping = TARGETS[name]
    rows = {f"{kind}-{k}": v for k, v in people(6).items()}
    rows = {k: {**v, "email": v["email"].replace("@", f".{kind}.{name}@")} for k, v in rows.items()}
    records = tuple(Record(k, {dest: v[src] for dest, src in mapping.items()}) for k, v in rows.items())
    destination = build_destination(entry, sandboxes.config, env=ENV)
    sandbox = sandboxes[name]
    sandbox.garbage_share, sandbox.garbage_kinds = 1.0, (kind,)
    try:
        with caplog.at_level(logging.DEBUG):
            try:
                results = destination.write(Batch("garbage", target, op, records))
            except DestinationError as exc:  # no per-record answer could be had
                assert exc.retryable, exc
                reasons = [str(exc)]
                results = []
            else:
                assert sorted(r.key for r in results) == sorted(rows)
                assert all(r.status is not ResultStatus.OK for r in results), \
                    f"{name}: a garbage answer was taken as success"
                reasons = [r.error for r in results]
        assert all(reasons) and all(len(r) < 2_000 for r in reasons), reasons
        shown = " ".join(reasons) + caplog.text
        assert not any(s in shown for s in SECRETS)
        assert not any(v["email"] in shown for v in rows.values())
    finally:
        sandbox.garbage_share = 0.0
    # The next run re-sends what was not acknowledged: nothing is lost.
    again = {r.key: r for r in destination.write(Batch("garbage", target, op, records))}
    assert {k: r.status for k, r in again.items()} == {k: ResultStatus.OK for k in rows}, \
        {k: r.error for k, r in again.items() if r.status is not ResultStatus.OK}
    emails = {v["email"] for v in rows.values()}
    if name == "klaviyo":
        sandbox.settle()
    assert acknowledged_in_tool(sandboxes, name, target, emails) == emails
    destination.close()
