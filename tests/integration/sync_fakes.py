"""Destinations for the sync engine tests: small real implementations of the protocol
whose behaviour a test scripts (per-record failures, rejections, whole-batch errors,
a crash after the write but before the answer). Used only where a real tool is not
the point."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections import Counter
from pathlib import Path

from destinations.base import (
    Batch,
    Capabilities,
    DestinationError,
    Operation,
    RecordResult,
    ResultStatus,
)

ALL_OPS = frozenset(Operation)


class FakeDestination:
    """Keeps the tool's state in dicts. Inserts are deduplicated by idempotency key, as a
    tool honouring `Idempotency-Key` does; `creations` counts real creations per key."""

    name = "fake"

    def __init__(self, max_batch_size: int = 100, max_concurrency: int = 1, operations=ALL_OPS):
        self.capabilities = Capabilities(operations=frozenset(operations), max_batch_size=max_batch_size,
                                         max_concurrency=max_concurrency)
        self.records: dict[str, dict] = {}
        self.members: dict[str, dict] = {}
        self.creations: Counter[str] = Counter()
        self.seen_idempotency: dict[str, RecordResult] = {}
        self.batches: list[Batch] = []
        # scripts
        self.fail_times: Counter[str] = Counter()  # key -> how many more writes answer retryable
        self.reject_when = None  # callable(fields) -> reason or None
        self.fail_batches: set[int] = set()  # write numbers (1-based) that raise DestinationError(retryable)
        self.fatal_batches: set[int] = set()  # ... that raise DestinationError(retryable=False)
        self.crash_after_write: int | None = None  # write number that applies, then raises RuntimeError
        self._lock = threading.Lock()

    @property
    def writes(self) -> int:
        return len(self.batches)

    def sent_keys(self, op: Operation | None = None) -> list[str]:
        return [r.key for b in self.batches if op in (None, b.operation) for r in b.records]

    def write(self, batch: Batch) -> list[RecordResult]:
        with self._lock:
            self.batches.append(batch)
            n = len(self.batches)
            if n in self.fail_batches:
                raise DestinationError("503 service unavailable", retryable=True)
            if n in self.fatal_batches:
                raise DestinationError("401 bad credentials", retryable=False)
            results = [self._one(batch.operation, r) for r in batch.records]
            if self.crash_after_write == n:
                raise RuntimeError("connection lost after the write")
            return results

    def _one(self, op: Operation, r) -> RecordResult:
        if self.fail_times[r.key] > 0:
            self.fail_times[r.key] -= 1
            return RecordResult(r.key, ResultStatus.RETRYABLE, error="500 internal error")
        if self.reject_when and op not in (Operation.DELETE, Operation.REMOVE_MEMBER):
            reason = self.reject_when(r.fields)
            if reason:
                return RecordResult(r.key, ResultStatus.REJECTED, error=reason)
        dest_id = f"id-{r.key}"
        if op is Operation.INSERT:
            if r.idempotency_key in self.seen_idempotency:
                return self.seen_idempotency[r.idempotency_key]
            self.records[r.key] = dict(r.fields)
            self.creations[r.key] += 1
            res = RecordResult(r.key, ResultStatus.OK, destination_id=dest_id)
            self.seen_idempotency[r.idempotency_key] = res
            return res
        if op is Operation.UPSERT:
            if r.key not in self.records:
                self.creations[r.key] += 1
            self.records[r.key] = dict(r.fields)
        elif op is Operation.UPDATE:
            if r.key not in self.records:
                return RecordResult(r.key, ResultStatus.REJECTED, error="404 not found")
            self.records[r.key] = dict(r.fields)
        elif op is Operation.DELETE:
            self.records.pop(r.key, None)
        elif op is Operation.ADD_MEMBER:
            self.members[r.key] = dict(r.fields)
        elif op is Operation.REMOVE_MEMBER:
            self.members.pop(r.key, None)
        elif op is Operation.DELETE_PERSON:
            self.records.pop(r.key, None)
            self.members.pop(r.key, None)
        return RecordResult(r.key, ResultStatus.OK, destination_id=dest_id)

    def close(self) -> None:
        pass


class LedgerDestination(FakeDestination):
    """Persists what the 'tool' applied to a JSONL ledger (fsync'd), so the tool's state
    survives the sync process being SIGKILLed. `kill_at_write` kills the process right
    after that write is durable and before the engine sees the answer."""

    def __init__(self, ledger: Path, kill_at_write: int | None = None, **kw):
        super().__init__(**kw)
        self.ledger = Path(ledger)
        self.kill_at_write = kill_at_write
        self._ledger_lock = threading.Lock()
        self._ledger_writes = 0
        if self.ledger.exists():
            for line in self.ledger.read_text().splitlines():
                e = json.loads(line)
                if e["op"] == "insert":
                    self.seen_idempotency[e["idem"]] = RecordResult(e["key"], ResultStatus.OK, f"id-{e['key']}")
                    self.creations[e["key"]] += 1
                    self.records[e["key"]] = e["fields"]

    def write(self, batch: Batch) -> list[RecordResult]:
        results = super().write(batch)
        with self._ledger_lock:
            self._ledger_writes += 1
            n = self._ledger_writes
            self._append(batch, results)
        if self.kill_at_write == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return results

    def _append(self, batch: Batch, results: list[RecordResult]) -> None:
        with self.ledger.open("a") as f:
            for r, res in zip(batch.records, results):
                if res.status is ResultStatus.OK:
                    f.write(json.dumps({"op": batch.operation.value, "key": r.key, "idem": r.idempotency_key,
                                        "fields": dict(r.fields)}) + "\n")
            f.flush()
            os.fsync(f.fileno())


class DiesAfterWrite:
    """Wraps a real destination: after its `die_at`th write reached the tool, the sync process
    dies before the engine sees the answer — SIGKILL (`kill=True`) or an exception."""

    def __init__(self, inner, die_at: int, *, kill: bool):
        self.inner, self.die_at, self.kill = inner, die_at, kill
        self.name, self.capabilities = inner.name, inner.capabilities
        self._writes = 0
        self._lock = threading.Lock()

    def write(self, batch: Batch) -> list[RecordResult]:
        try:
            return self.inner.write(batch)
        finally:  # a write that failed may still have reached the tool: it counts too
            with self._lock:
                self._writes += 1
                dies = self._writes == self.die_at
            if dies and self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            if dies:
                raise RuntimeError("the sync process died after the write")

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str):  # optional parts of the protocol (prepare) are the tool's
        return getattr(self.inner, name)
