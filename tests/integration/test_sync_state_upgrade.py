"""State written before the h2 hash (v1: md5 hex) keeps its meaning: a run sends only
what changed, translates the hashes of unchanged records once, and sets aside the ones it
cannot check; and a run's state writes no longer pile up in memory until it ends."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from destinations.base import Capabilities, Operation, RecordResult, ResultStatus
from orchestration.sync import apply
from orchestration.sync import state as st
from orchestration.sync.apply import run_sync
from orchestration.sync.plan import HASH_PREFIX, LEGACY_MARK, legacy_python_hash, render_plan
from orchestration.sync.spec import SyncSpec
from tests.integration.people_model import people_warehouse, rows, set_model
from tests.integration.sync_fakes import FakeDestination

STATE = "outflow.outflow.sync_state"


def spec(mode: str = "upsert", **kw) -> SyncSpec:
    return SyncSpec(**{**dict(name=f"people_{mode}", model="people", model_table="people", destination="fake",
                              object="contacts", mode=mode, primary_key="profile_id", match_on={"email": "email"},
                              fields={"first": "first_name", "score": "score * 10"}, channel="crm"), **kw})


def hashes(warehouse: Path, sync: str) -> dict[str, str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return dict(con.execute(f"SELECT record_key, fields_hash FROM {STATE} WHERE sync = ?", [sync]).fetchall())


def to_v1(warehouse: Path, s: SyncSpec, model: list[dict]) -> None:
    """Rewrite the sync's state as a release before h2 left it: the md5 hash of each
    record's mapped values, the fields_hash a synced record had then."""
    by_key = {r["profile_id"]: r for r in model}
    with duckdb.connect(str(warehouse)) as con:
        for key, in con.execute(f"SELECT record_key FROM {STATE} WHERE sync = ?", [s.name]).fetchall():
            r = by_key[key]
            con.execute(f"UPDATE {STATE} SET fields_hash = ? WHERE sync = ? AND record_key = ?",
                        [legacy_python_hash(s, [r["email"], r["first_name"], r["score"] * 10]), s.name, key])


@pytest.fixture
def wh(tmp_path) -> Path:
    return people_warehouse(tmp_path, 200)


def test_v1_hashes_compare_as_before_and_are_translated_once(wh):
    s, dest = spec("upsert"), FakeDestination()
    first = run_sync(s, dest, wh)
    assert first.sent == 200 and all(h.startswith(HASH_PREFIX) for h in hashes(wh, s.name).values())
    to_v1(wh, s, rows(200))
    v1 = hashes(wh, s.name)
    # Day 2: 3 records change, 5 leave the model (upsert keeps their state), 2 are new.
    model = rows(195) + rows(2, start=900)
    for r in model[:3]:
        r["first_name"] = "Changed"
    set_model(wh, model)

    dry = run_sync(s, dest, wh, dry_run=True)
    assert dry.actions == {"change": 3, "add": 2}  # the v1 hashes of the same data match
    assert hashes(wh, s.name) == v1  # a dry run writes nothing

    run = run_sync(s, dest, wh)
    assert run.actions == {"change": 3, "add": 2} and len(dest.sent_keys()) == 205
    assert sorted(dest.sent_keys()[200:]) == ["p00000", "p00001", "p00002", "p00900", "p00901"]
    after = hashes(wh, s.name)
    gone = {f"p{i:05d}" for i in range(195, 200)}
    # unchanged and sent records hold h2 hashes; those the run could not check (not in
    # the model) keep their v1 hash behind the mark
    assert {k for k, h in after.items() if h.startswith(LEGACY_MARK)} == gone
    assert all(after[k] == LEGACY_MARK + v1[k] for k in gone)
    assert all(h.startswith(HASH_PREFIX) for k, h in after.items() if k not in gone)
    with duckdb.connect(str(wh)) as con:  # the h2 hash is the plan's own
        planned = dict(con.execute(f"SELECT _key, _hash FROM ({render_plan(s, catalog='outflow')})").fetchall())
    assert all(after[k] == planned[k] for k in planned)

    assert run_sync(s, dest, wh).planned_total == 0  # nothing left to send, no md5 left to compute
    # A set-aside record back in the model with the same data is sent once (the
    # documented cost of the upgrade), then never again.
    set_model(wh, model + rows(1, start=195))
    assert run_sync(s, dest, wh).actions == {"change": 1}
    assert run_sync(s, dest, wh).planned_total == 0


def test_v1_hash_of_a_rejected_record_waits_for_its_data_to_change(wh):
    s, dest = spec("upsert"), FakeDestination()
    dest.reject_when = lambda fields: "bad name" if fields["first"] == "Name7" else None
    run_sync(s, dest, wh)
    to_v1(wh, s, rows(200))
    assert run_sync(s, dest, wh).planned_total == 0  # rejected, same data (v1): not asked again
    model = rows(200)
    model[7]["first_name"] = "Name7b"
    set_model(wh, model)
    r = run_sync(s, dest, wh)
    assert r.actions == {"change": 1} and r.succeeded == {"upsert": 1}


def test_a_refused_plan_with_duplicate_keys_leaves_v1_hashes_as_they_are(wh):
    s, dest = spec("upsert"), FakeDestination()
    run_sync(s, dest, wh)
    to_v1(wh, s, rows(200))
    v1 = hashes(wh, s.name)
    set_model(wh, rows(200) + [{**rows(1)[0], "first_name": "Twin"}])
    r = run_sync(s, dest, wh)
    assert r.status == "refused" and "1 duplicate primary key" in r.error
    assert hashes(wh, s.name) == v1 and dest.writes == 2  # the first run's two batches only


class Instant:
    """Answers every record OK at once, 200 per call (Salesforce's collection size)."""

    name = "instant"
    capabilities = Capabilities(operations=frozenset(Operation), max_batch_size=200, max_concurrency=1)

    def write(self, batch):
        return [RecordResult(r.key, ResultStatus.OK, destination_id=f"003{r.key}") for r in batch.records]


def warehouse(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).mkdir()
    return tmp_path / name / "outflow.duckdb"


def upsert_every_record(wh: Path, n: int) -> tuple[SyncSpec, int]:
    """A synced state of n records, then every record changed (one more upsert each);
    the run, sending 200 per call; returns the most memory held_by_commits during it."""
    s = spec("upsert", fields={"score": "score"})
    with duckdb.connect(str(wh)) as con:
        con.execute(f"CREATE TABLE main.people AS SELECT 'p' || i AS profile_id, 'e' || i || '@example.com' AS email, "
                    f"0 AS score FROM range({n}) t(i)")
        allow_everyone(con)
        con.execute(f"INSERT INTO {STATE} (sync, record_key, fields_hash, status, attempts, first_synced_at, "
                    f"destination_id, idempotency_key, run_id) SELECT '{s.name}', _key, _hash, 'synced', 0, "
                    f"now()::TIMESTAMP, '003' || _key, md5(_key), md5(_key) FROM ({render_plan(s, catalog='outflow')})")
        con.execute("UPDATE main.people SET score = 1")
    held: list[int] = []
    monitor: list = []

    def watch(sent: int, total: int) -> None:
        if not monitor:  # the same database instance as the run's (DuckDB shares it per file in a process)
            monitor.append(duckdb.connect(str(wh)))
        held.append(st.held_by_commits(monitor[0]))

    try:
        r = run_sync(s, Instant(), wh, progress=watch)
    finally:
        for m in monitor:
            m.close()
    assert r.status == "succeeded" and r.sent == n
    with duckdb.connect(str(wh), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM {STATE} WHERE status = 'synced' AND run_id = ?",
                           [r.run_id]).fetchall() == [(n,)]
    return s, max(held)


def test_memory_held_by_a_runs_state_writes_does_not_grow_with_the_records_sent(tmp_path, monkeypatch):
    """The 1M bench's day-2 contacts sync (183,067 upserts at 200 per call into a 1M-row
    state) ran out of DuckDB memory under a 160 MB apply cap: what each batch's commit
    changed in sync_state stayed in memory, unevictable, until the run ended (~0.7 KB per
    upserted record); it is also what made a sync's peak RSS grow from 1M to 10M rows.
    The run now checkpoints once what its commits hold reaches CHECKPOINT_HELD_BYTES:
    that stays about the same however many records it sends."""
    monkeypatch.setattr(apply, "CHECKPOINT_HELD_BYTES", 2 * 2**20)
    monkeypatch.setattr(apply, "CHECKPOINT_CHECK_ROWS", 1_000)
    _, small = upsert_every_record(warehouse(tmp_path, "small"), 10_000)
    _, large = upsert_every_record(warehouse(tmp_path, "large"), 60_000)
    # as before: no checkpoint until the run ends
    monkeypatch.setattr(apply, "CHECKPOINT_HELD_BYTES", 2**62)
    monkeypatch.setattr(apply, "CHECKPOINT_EVERY_ROWS", 10 ** 9)
    _, unchecked = upsert_every_record(warehouse(tmp_path, "unchecked"), 60_000)
    assert large < 1.5 * small  # flat: 6x the records
    assert unchecked > 4 * large  # the growth the checkpoints stop (the scenario still shows it)


def allow_everyone(con) -> None:
    from tests.contact_rule import allow_everyone as allow

    allow(con)
