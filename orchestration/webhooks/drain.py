"""Load the spool into raw.consent_events, idempotently.

Each event's deterministic id goes into the ledger `outflow.webhook_events` in the
same transaction as its raw.consent_events row, and an id already in the ledger is
skipped: a replayed or re-drained event changes nothing. raw.consent_events keeps the
raw contract's columns (email, phone, channel, status, source, occurred_at), so
loaders and the generator that write it are unaffected. The ledger holds no email.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from orchestration.sync.state import table, utcnow
from orchestration.webhooks.spool import Spool, read_batch

LEDGER = "webhook_events"
_LEDGER_DDL = """
create table if not exists {ledger} (
    event_id varchar primary key,
    tool varchar not null,
    kind varchar not null,
    source varchar not null,
    occurred_at timestamp not null,
    drained_at timestamp not null
)"""
# The raw contract's table as the on-run-start hook would create it (all varchar).
_RAW_DDL = """
create table if not exists raw.consent_events (
    email varchar, phone varchar, channel varchar, status varchar, source varchar, occurred_at varchar
)"""


@dataclass
class DrainResult:
    batches: int = 0
    events: int = 0
    inserted: int = 0
    duplicates: int = 0
    unreadable_lines: int = 0

    def as_metadata(self) -> dict[str, int]:
        return dict(self.__dict__)


def drain(spool: Spool, warehouse: Path) -> DrainResult:
    """Load every claimed batch; each batch commits (then is deleted) on its own."""
    result = DrainResult()
    batches = spool.claim()
    if not batches:
        return result
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema if not exists raw")
        con.execute(_RAW_DDL)
        con.execute(f'create schema if not exists "{_catalog(con)}".outflow')
        ledger = table(con, LEDGER)
        con.execute(_LEDGER_DDL.format(ledger=ledger))
        for batch in batches:
            events, bad = read_batch(batch)
            inserted = _load(con, ledger, events)
            spool.release(batch)
            result.batches += 1
            result.events += len(events)
            result.inserted += inserted
            result.duplicates += len(events) - inserted
            result.unreadable_lines += bad
    return result


def _catalog(con: duckdb.DuckDBPyConnection) -> str:
    return con.execute("select current_database()").fetchall()[0][0]


def _load(con: duckdb.DuckDBPyConnection, ledger: str, events) -> int:
    if not events:
        return 0
    now = utcnow()
    frame = pa.table({
        "event_id": [e.event_id for e in events],
        "tool": [e.tool for e in events],
        "kind": [e.kind for e in events],
        "source": [e.source for e in events],
        "email": [e.email for e in events],
        "channel": [e.channel for e in events],
        "status": [e.status for e in events],
        "occurred_at": pa.array([e.occurred_at for e in events], pa.timestamp("us")),
        "seq": list(range(len(events))),
    })
    con.register("_webhook_batch", frame)
    try:
        con.execute("begin transaction")
        # New ids only, first occurrence within the batch, in arrival order.
        con.execute(f"""
            create or replace temp table _webhook_new as
            select * exclude (rn) from (
                select b.*, row_number() over (partition by b.event_id order by b.seq) as rn
                from _webhook_batch as b
                where not exists (select 1 from {ledger} as l where l.event_id = b.event_id)
            ) where rn = 1
        """)
        con.execute("""
            insert into raw.consent_events (email, phone, channel, status, source, occurred_at)
            select email, null, channel, status, source, occurred_at from _webhook_new order by seq
        """)
        con.execute(
            f"insert into {ledger} select event_id, tool, kind, source, occurred_at, ? from _webhook_new order by seq",
            [now],
        )
        inserted = con.execute("select count(*) from _webhook_new").fetchall()[0][0]
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        con.unregister("_webhook_batch")
        con.execute("drop table if exists _webhook_new")
    return inserted
