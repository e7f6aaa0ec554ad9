"""Shared by the destination tests: deliver records through faults the way the sync engine
does over several runs, re-sending whatever was not acknowledged."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from destinations.base import Batch, DestinationError, Operation, Record, ResultStatus


def resend_until_acknowledged(
    destination, target: str, operation: Operation, pending: Mapping[str, Record], *,
    batch_size: int, workers: int = 4, max_rounds: int = 30,
) -> tuple[dict[str, str | None], int]:
    """Each round is a later sync run re-sending what was not acknowledged, in batches on
    `workers` threads. A rejection or a non-retryable batch error fails the test; so do
    records still unacknowledged after `max_rounds`. Returns (key -> destination id, rounds)."""
    pending = dict(pending)
    acked: dict[str, str | None] = {}
    rounds = 0

    def send(part):
        try:
            return destination.write(Batch("s", target, operation, tuple(part)))
        except DestinationError as exc:
            assert exc.retryable
            return []

    while pending and rounds < max_rounds:
        rounds += 1
        todo = list(pending.values())
        with ThreadPoolExecutor(workers) as pool:
            for results in pool.map(send, [todo[i:i + batch_size] for i in range(0, len(todo), batch_size)]):
                for r in results:
                    assert r.status is not ResultStatus.REJECTED, r
                    if r.status is ResultStatus.OK:
                        acked[r.key] = r.destination_id
                        pending.pop(r.key)
    assert not pending, f"{len(pending)} records never acknowledged after {rounds} rounds"
    return acked, rounds
