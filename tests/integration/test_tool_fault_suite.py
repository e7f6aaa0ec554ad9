"""The sync engine's fault suite against every tool sandbox: the model changes, the tool fails
records and whole requests and drops connections, sync processes die after a write (SIGKILL, or
an exception) before the engine sees the answer. Once the faults stop, a few more runs leave the
tool's state equal to the model: every person in it once, with the model's values, and nobody
else (upserts never delete, so a CRM may keep people who left the model, but only those)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from destinations.identifiers import sha256_hex
from destinations.registry import build_destination
from destinations.sandbox.server import SandboxServer
from orchestration.sync.apply import run_sync
from orchestration.sync.spec import SyncSpec
from tests.integration.people_model import rows, set_model
from tests.integration.sync_fakes import DiesAfterWrite

REPO = Path(__file__).resolve().parents[2]
SECRET = "fault-suite-secret-0123456789"


def _once(values: list[str]) -> dict[str, int]:
    return {v: c for v, c in Counter(values).items() if c > 1}


# ---- each tool: how the sandbox starts, how destinations.yml names it, what it holds


def _webhook():
    from destinations.sandbox.webhook_receiver import WebhookReceiver
    return WebhookReceiver(SECRET)


def _webhook_held(sb) -> tuple[dict[str, str], dict]:
    with sb.lock:  # the receiver keys records by the sync's primary key; match_on fields ride along
        stored = list(sb.state.records.get("people", {}).values())
    return {r["fields"]["email"]: r["fields"].get("first_name") for r in stored}, {}


def _hubspot():
    from destinations.sandbox.hubspot import HubSpotSandbox
    return HubSpotSandbox(token=SECRET)


def _hubspot_held(sb) -> tuple[dict[str, str], dict]:
    with sb.lock:
        props = [c["properties"] for c in sb.contacts.values()]
    return {p["email"]: p.get("firstname") for p in props}, _once([p["email"] for p in props])


def _salesforce():
    from destinations.sandbox.salesforce import SalesforceSandbox
    return SalesforceSandbox(token=SECRET)


def _salesforce_held(sb) -> tuple[dict[str, str], dict]:
    with sb.lock:
        stored = list(sb.records.values())
    return {r["Email"]: r.get("FirstName") for r in stored}, _once([r["Email"] for r in stored])


def _mailchimp():
    from destinations.sandbox.mailchimp import MailchimpSandbox
    return MailchimpSandbox(api_key=f"{SECRET}-us19", lists={"list0001": ["seg1"]})


def _mailchimp_held(sb) -> tuple[dict[str, str], dict]:
    with sb.lock:  # members are keyed by subscriber hash: a repeat cannot be stored twice
        aud = sb.lists["list0001"]
        return {aud.members[h]["email_address"]: "" for h in aud.segments["seg1"]}, {}


def _klaviyo():
    from destinations.sandbox.klaviyo import KlaviyoSandbox
    return KlaviyoSandbox(SECRET, lists=("Y6nRLr",))


def _klaviyo_held(sb) -> tuple[dict[str, str], dict]:
    sb.settle()
    with sb.lock:
        members = [sb.profiles[i]["email"] for i in sb.lists.get("Y6nRLr", ()) if i in sb.profiles]
        profiles = [p.get("email") for p in sb.profiles.values()]
    return dict.fromkeys(members, ""), _once(profiles)


def _meta():
    from destinations.sandbox.meta import MetaSandbox
    return MetaSandbox(token=SECRET, audiences=["23850000000000001"])


def _meta_held(sb) -> tuple[dict[str, str], dict]:
    hashes = [m.get("EMAIL") for m in sb.members("23850000000000001")]
    return dict.fromkeys(hashes, ""), _once(hashes)


def _google_ads():
    from destinations.sandbox.google_ads import GoogleAdsSandbox
    return GoogleAdsSandbox(access_token=SECRET, developer_token=SECRET, user_lists=["5550001"])


def _google_ads_held(sb) -> tuple[dict[str, str], dict]:
    return dict.fromkeys(sb.hashed_emails("5550001"), ""), {}  # a set of identifiers


@dataclass(frozen=True)
class Tool:
    mode: str
    object: str
    fields: dict[str, str]
    sandbox: Callable[[], SandboxServer]
    config: Callable[[str], dict[str, Any]]  # sandbox url -> destinations.yml entry
    held: Callable[[SandboxServer], tuple[dict[str, str], dict]]  # -> ({identity: first name}, repeats)
    hashed: bool = False  # the tool holds SHA-256 of the email, not the email
    match_on: str = "email"


QUICK = {"max_retries": 0}  # every fault reaches the engine, whose next run retries it
TOOLS: dict[str, Tool] = {
    "webhook": Tool("upsert", "people", {"first_name": "first_name"}, _webhook,
                    lambda url: {"type": "webhook", "url": url, "secret_env": "T_SECRET", **QUICK},
                    _webhook_held),
    "hubspot": Tool("upsert", "contacts", {"firstname": "first_name"}, _hubspot,
                    lambda url: {"type": "hubspot", "token_env": "T_SECRET", "base_url": url, **QUICK},
                    _hubspot_held),
    "salesforce": Tool("upsert", "Contact", {"FirstName": "first_name", "LastName": "'Person'"}, _salesforce,
                       lambda url: {"type": "salesforce", "access_token_env": "T_SECRET", "instance_url": url,
                                    "object": "Contact", "external_id_field": "Outflow_Id__c",
                                    "bulk_poll_interval": 0.01, **QUICK},
                       _salesforce_held, match_on="Email"),
    "mailchimp": Tool("membership", "seg1", {"FNAME": "first_name"}, _mailchimp,
                      lambda url: {"type": "mailchimp", "api_key_env": "T_MAILCHIMP", "base_url": f"{url}/3.0",
                                   "list_id": "list0001", **QUICK},
                      _mailchimp_held),
    "klaviyo": Tool("membership", "Y6nRLr", {"first_name": "first_name"}, _klaviyo,
                    lambda url: {"type": "klaviyo", "api_key_env": "T_SECRET", "base_url": url,
                                 "poll_interval": 0.01, **QUICK},
                    _klaviyo_held),
    "meta": Tool("membership", "23850000000000001", {"first_name": "first_name"}, _meta,
                 lambda url: {"type": "meta", "access_token_env": "T_SECRET", "base_url": url, **QUICK},
                 _meta_held, hashed=True),
    "google_ads": Tool("membership", "5550001", {"first_name": "first_name"}, _google_ads,
                       lambda url: {"type": "google_ads", "customer_id": "1234567890", "access_token_env": "T_SECRET",
                                    "developer_token_env": "T_SECRET", "base_url": url, "poll_interval": 0.01,
                                    **QUICK},
                       _google_ads_held, hashed=True),
}

ENV = {"T_SECRET": SECRET, "T_MAILCHIMP": f"{SECRET}-us19"}

DIE_SCRIPT = """
import json, sys
from destinations.registry import build_destination
from orchestration.sync.apply import run_sync
from orchestration.sync.spec import SyncSpec
from tests.integration.sync_fakes import DiesAfterWrite
spec, warehouse, destinations, die_at = SyncSpec.model_validate_json(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
run_sync(spec, DiesAfterWrite(build_destination("tool", destinations), die_at, kill=True), warehouse, force=True)
"""


def _run_killed(spec: SyncSpec, warehouse: Path, destinations: Path, die_at: int) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", DIE_SCRIPT, spec.model_dump_json(), str(warehouse), str(destinations), str(die_at)],
        cwd=REPO, env={**os.environ, **ENV, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, -9), proc.stderr[-2000:]  # it may finish before its die_at-th write
    return proc.returncode


SEEDS = range(int(os.environ.get("OUTFLOW_FAULT_SUITE_SEEDS", "1")))  # more locally: e.g. 10


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", sorted(TOOLS))
def test_faults_and_killed_runs_converge_to_the_model(tmp_path, name, seed):
    tool = TOOLS[name]
    rng = random.Random(f"fault-suite-{name}" + (f"-{seed}" if seed else ""))
    warehouse = tmp_path / "outflow.duckdb"
    model = {r["profile_id"]: r for r in rows(60)}
    set_model(warehouse, list(model.values()))
    spec = SyncSpec(name=f"people_to_{name}", model="people", model_table="people", destination="tool",
                    object=tool.object, mode=tool.mode, primary_key="profile_id", channel="crm",
                    match_on={tool.match_on: "email"}, fields=tool.fields, where="consent = 'granted'",
                    max_attempts=100, batch_size=12, guardrails={"max_remove_share": 1.0})
    ever = dict(model)  # everyone who was ever in the model
    kills = 0
    with tool.sandbox() as sb:
        if seed:
            sb._rng.seed(f"{name}-{seed}")  # other fault rolls than the default seed's
        destinations = tmp_path / "destinations.yml"
        destinations.write_text(yaml.safe_dump({"tool": tool.config(sb.url)}))
        for step in range(4):
            if step:  # the model moves: people leave, change, withdraw consent, arrive
                for key in rng.sample(sorted(model), k=8):
                    roll = rng.random()
                    if roll < 0.3:
                        del model[key]
                    elif roll < 0.5:
                        model[key] = {**model[key], "consent": "revoked"}
                    else:
                        model[key] = {**model[key], "first_name": f"N{rng.randint(0, 99)}", "consent": "granted"}
                for row in rows(6, start=100 + 10 * step):
                    model[row["profile_id"]] = row
                set_model(warehouse, list(model.values()))
                ever.update(model)
            sb.error_share, sb.drop_connection_share = 0.3, 0.15
            die_at = rng.randint(1, 4)
            if step % 2 == 0:  # a real kill: the process is gone, its run still says running
                kills += _run_killed(spec, warehouse, destinations, die_at) == -9
            else:
                dest = DiesAfterWrite(build_destination("tool", destinations, env=ENV), die_at, kill=False)
                try:
                    run_sync(spec, dest, warehouse, force=True)
                except RuntimeError:
                    pass
        sb.error_share, sb.drop_connection_share = 0.0, 0.0
        for _ in range(3):
            run_sync(spec, build_destination("tool", destinations, env=ENV), warehouse, force=True)
        final = run_sync(spec, build_destination("tool", destinations, env=ENV), warehouse)
        held, repeats = tool.held(sb)
    assert kills >= 1, "no run was killed: the suite would not test what it claims"
    assert final.planned == {}, final.planned
    assert not repeats, f"{name} holds {len(repeats)} people more than once"

    def identity(row: dict) -> str:
        return sha256_hex(row["email"]) if tool.hashed else row["email"]

    granted = {identity(r): r["first_name"] for r in model.values() if r["consent"] == "granted"}
    if tool.mode == "membership":
        extra = {r["profile_id"] for r in ever.values() if identity(r) in set(held) - set(granted)}
        with duckdb.connect(str(warehouse), read_only=True) as con:  # why, when it fails
            why = con.execute("SELECT record_key, status, last_operation, destination_id IS NOT NULL, last_error "
                              "FROM outflow.outflow.sync_state WHERE record_key IN (SELECT unnest(?))",
                              [sorted(extra)]).fetchall()
        assert set(held) == set(granted), why
    else:  # upsert: everyone in the model with the model's values; others only people who were in it
        assert {k: held.get(k) for k in granted} == granted
        assert set(held) <= {identity(r) for r in ever.values()}
    # Not vacuous: the tool failed records or requests along the way, and the engine saw it.
    with duckdb.connect(str(warehouse), read_only=True) as con:
        failed = con.execute("SELECT count(*) FROM outflow.outflow.sync_changelog WHERE status <> 'ok'").fetchall()[0][0]
    assert failed > 0, (sb.requests_seen, dict(sb.refused))
