"""What every destination is: its capabilities, the records it takes, the results it gives.

The sync engine hands a destination one batch of records of one operation and gets
back exactly one result per record. A destination knows nothing of the warehouse;
the engine knows nothing of any one tool.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class Operation(str, enum.Enum):
    UPSERT = "upsert"  # create or update, matched on the sync's match keys
    UPDATE = "update"  # update an existing record only
    INSERT = "insert"  # create only; carries an idempotency key
    DELETE = "delete"  # delete what this sync created (mirror mode)
    ADD_MEMBER = "add_member"  # add to a list or audience (membership mode)
    REMOVE_MEMBER = "remove_member"  # remove from a list or audience
    # Erase the person from the tool (a privacy deletion request), whichever sync or
    # source put them there: fields carry the identifiers ("email"), key the profile id.
    DELETE_PERSON = "delete_person"


class ResultStatus(str, enum.Enum):
    OK = "ok"  # the destination acknowledged this record
    RETRYABLE = "retryable"  # not written; try again on a later run
    REJECTED = "rejected"  # refused for a permanent reason; retried only when the record changes


@dataclass(frozen=True)
class Capabilities:
    operations: frozenset[Operation]
    max_batch_size: int
    # Documented rate limit of the tool, in requests per second (None = unlimited).
    max_requests_per_second: float | None = None
    max_concurrency: int = 1
    async_jobs: bool = False


@dataclass(frozen=True)
class Record:
    """One record of a batch. `key` is the sync's primary key value (never PII by
    contract: a profile_id or similar); `fields` are the mapped values to send."""

    key: str
    fields: Mapping[str, Any]
    destination_id: str | None = None  # the tool's id, when an earlier write returned one
    # Stable per (sync, key, operation): lets a tool (or our receiver) drop a repeat
    # of a write whose acknowledgement was lost, so an insert is never made twice.
    idempotency_key: str | None = None


@dataclass(frozen=True)
class RecordResult:
    key: str
    status: ResultStatus
    destination_id: str | None = None
    # Why it failed, without PII (no emails or phones): error code and message.
    error: str | None = None


@dataclass(frozen=True)
class Batch:
    sync: str
    target: str  # the object, list or audience the sync writes to
    operation: Operation
    records: Sequence[Record] = field(default_factory=tuple)


class DestinationError(Exception):
    """The whole batch failed. `retryable` says whether a later run may succeed."""

    def __init__(self, message: str, *, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Destination(Protocol):
    name: str
    capabilities: Capabilities

    def write(self, batch: Batch) -> list[RecordResult]:
        """Send one batch; return exactly one result per record (any order).

        Raises DestinationError only when no per-record answer can be had.
        """
        ...

    def close(self) -> None: ...


# Optional, for tools a sync adds members to and later removes them from:
#
#     def prepare(self, batch: Batch) -> list[RecordResult]
#
# The id the tool will know each new record by, asked before the add is sent (OK results
# carry it as destination_id; others fail the record for this run). The engine keeps it
# with the record's pending mark, so a record whose add reached the tool but whose answer
# was lost (a killed run) can still be removed: removals carry no fields, only that id.
# Hash-keyed tools compute it locally; tools with their own ids may create the person
# (not the membership) to learn it.


def check_results(batch: Batch, results: Sequence[RecordResult]) -> list[RecordResult]:
    """One result per record of the batch, no more, no less: a destination that answers
    otherwise is broken, and its answer must not advance any state."""
    sent = [r.key for r in batch.records]
    got = [r.key for r in results]
    if sorted(sent) != sorted(got):
        missing = len(set(sent) - set(got))
        extra = len(set(got) - set(sent))
        raise DestinationError(
            f"{batch.sync}: destination answered {len(got)} results for {len(sent)} records "
            f"({missing} missing, {extra} unknown or duplicated)",
            retryable=True,
        )
    return list(results)


class PreparedMemo:
    """What a destination's `prepare` derived from a record's fields (normalised, hashed
    identifiers), kept for the `write` of the same record that follows, so the work is
    done once. A hit needs the same sync, key and equal fields; anything else (a miss,
    an entry dropped at the cap) is derived again. Safe across the engine's threads:
    single dict operations only."""

    def __init__(self, limit: int):
        self.limit = limit
        self._items: dict[tuple[str, str], tuple[Mapping[str, Any], Any]] = {}

    def put(self, sync: str, record: Record, value: Any) -> None:
        if len(self._items) >= self.limit:  # writes that never came (an aborted run)
            self._items.clear()
        self._items[(sync, record.key)] = (record.fields, value)

    def take(self, sync: str, record: Record) -> Any | None:
        hit = self._items.pop((sync, record.key), None)
        return hit[1] if hit is not None and hit[0] == record.fields else None
