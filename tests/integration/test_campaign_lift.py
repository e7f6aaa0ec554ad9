"""Holdout and lift end to end: a membership sync of the generated world with a holdout,
written to a real file destination; then conversions with a planted effect (synced members
convert more often than held-out ones) and a dbt build of campaign_lift, whose interval
must hold the planted effect."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import duckdb
import pytest

from destinations.file import FileDestination
from orchestration.sync.apply import run_sync
from orchestration.sync.plan import in_holdout
from orchestration.sync.spec import SyncSpec
from orchestration.sync.state import utcnow
from tests.conftest import dbt, query

pytestmark = pytest.mark.slow

SYNCED_RATE, HOLDOUT_RATE = 0.24, 0.14  # planted: +0.10
# Syncs declare a consent channel once the consent work (issue 5) lands; before, the key is unknown.
CHANNEL = {"channel": "email"} if "channel" in SyncSpec.model_fields else {}


def audience_spec(share: float = 0.25, salt: str | None = None) -> SyncSpec:
    return SyncSpec(name="newsletter_test", model="profiles", model_table="profiles", destination="outbox",
                    object="newsletter", mode="membership", primary_key="profile_id", match_on={"email": "email"},
                    where="email is not null and not is_deletion_requested",
                    holdout={"share": share, **({"salt": salt} if salt else {})},
                    guardrails={"max_remove_share": 0.0}, **CHANNEL)


def sent_keys(folder) -> set[str]:
    keys = set()
    for f in folder.rglob("*.jsonl"):
        keys |= {json.loads(line)["key"] for line in f.read_text().splitlines()}
    return keys


def test_holdout_stays_out_and_lift_recovers_a_planted_effect(warehouse_copy, tmp_path):
    spec = audience_spec()
    outbox = tmp_path / "outbox"
    report = run_sync(spec, FileDestination(outbox), warehouse_copy)
    assert report.status == "succeeded"
    held = {k for (k,) in query(warehouse_copy, "select record_key from outflow.outflow.sync_holdout")}
    synced = sent_keys(outbox)
    audience = synced | held  # what the sync read: its where, and the consent rule where there is one
    eligible = {k for (k,) in query(warehouse_copy, "select profile_id from main.profiles where email is not null "
                                                    "and not is_deletion_requested")}
    assert len(audience) == report.model_rows > 1000 and audience <= eligible
    assert not synced & held and held == {k for k in audience if in_holdout(spec, k)}
    assert report.holdout_assigned == len(held) and abs(len(held) / len(audience) - 0.25) < 0.02

    # Run again, and with a smaller share and a new salt: nothing recorded as held out is
    # ever added, nothing synced is taken away, and the holdout table does not change.
    again = run_sync(spec, FileDestination(outbox), warehouse_copy)
    assert again.planned == {} and again.holdout_assigned == 0
    moved = run_sync(audience_spec(share=0.05, salt="other"), FileDestination(outbox), warehouse_copy)
    assert moved.planned == {} and moved.holdout_assigned == 0
    assert sent_keys(outbox) == synced
    assert {k for (k,) in query(warehouse_copy, "select record_key from outflow.outflow.sync_holdout")} == held

    # Plant the effect: each member converts with its arm's rate, an hour after the run.
    rng = random.Random(11)
    contact_of = dict(query(warehouse_copy, "select profile_id, min(contact_id) from main.identity_map group by 1"))
    at = utcnow() + timedelta(hours=1)
    rows = [(contact_of[k], at, 100.0) for k in sorted(audience)
            if rng.random() < (HOLDOUT_RATE if k in held else SYNCED_RATE)]
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("delete from raw.conversions")  # the generator's history predates the sync
        con.executemany("insert into raw.conversions (contact_id, converted_at, value) values (?, ?, ?)", rows)
    as_of = (at + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    dbt(["build", "-s", "int_conversions__attributed", "campaign_lift", "--vars", f"{{outflow_as_of: '{as_of}'}}"],
        warehouse_copy, tmp_path / "target")

    (row,) = query(warehouse_copy, """select synced_members, holdout_members, synced_rate, holdout_rate, lift,
                                             lift_ci_low, lift_ci_high, lift_wald_ci_low, lift_wald_ci_high,
                                             relative_lift, is_significant
                                      from main.campaign_lift where sync = 'newsletter_test'""")
    n_synced, n_held, synced_rate, held_rate, lift, low, high, wald_low, wald_high, relative, significant = row
    assert (n_synced, n_held) == (len(synced), len(held))
    assert abs(synced_rate - SYNCED_RATE) < 0.03 and abs(held_rate - HOLDOUT_RATE) < 0.03
    assert low < SYNCED_RATE - HOLDOUT_RATE < high  # the planted effect is inside its interval
    assert low > 0 and significant  # and the interval tells it apart from no effect
    assert wald_low < lift < wald_high and high - low < 0.1
    assert relative == pytest.approx(lift / held_rate)


def test_campaign_lift_without_an_effect_is_not_significant(warehouse_copy, tmp_path):
    """The control: the same rate in both arms gives an interval around 0."""
    spec = audience_spec(share=0.3)
    run_sync(spec, FileDestination(tmp_path / "outbox"), warehouse_copy)
    rng = random.Random(5)
    contact_of = dict(query(warehouse_copy, "select profile_id, min(contact_id) from main.identity_map group by 1"))
    at = utcnow() + timedelta(hours=1)
    members = [k for (k,) in query(warehouse_copy, "select record_key from outflow.outflow.sync_state "
                                                   "union all select record_key from outflow.outflow.sync_holdout")]
    rows = [(contact_of[k], at, 1.0) for k in sorted(members) if rng.random() < 0.2]
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("delete from raw.conversions")
        con.executemany("insert into raw.conversions (contact_id, converted_at, value) values (?, ?, ?)", rows)
    as_of = (at + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    dbt(["build", "-s", "int_conversions__attributed", "campaign_lift", "--vars", f"{{outflow_as_of: '{as_of}'}}"],
        warehouse_copy, tmp_path / "target")
    (low, high, significant), = query(warehouse_copy, "select lift_ci_low, lift_ci_high, is_significant "
                                                     "from main.campaign_lift")
    assert low < 0 < high and not significant
