"""A durable, append-only spool of received consent events (JSONL, one event a line).

The receiver appends and fsyncs before it answers 2xx, so an acknowledged event
survives a crash. The drain claims the spool by renaming `incoming.jsonl` to a batch
file (new events go to a fresh `incoming.jsonl`), loads it, and deletes it only after
the warehouse committed; a batch left by a failed drain is loaded again next time
(the drain is idempotent). The files hold raw emails: they are 0600 and live only
until drained. An flock on `.lock` orders the receiver's appends against the claim
across processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestration.webhooks.events import ConsentEvent

INCOMING = "incoming.jsonl"
BATCH_GLOB = "batch-*.jsonl"


@dataclass(frozen=True)
class Pending:
    files: int
    bytes: int
    fingerprint: str  # changes whenever the spool's content does


class Spool:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self._thread_lock = threading.Lock()

    @property
    def incoming(self) -> Path:
        return self.folder / INCOMING

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._thread_lock:
            fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def append(self, events: Sequence[ConsentEvent]) -> None:
        """Write and fsync; raises OSError when the events are not durable."""
        if not events:
            return
        data = "".join(json.dumps(e.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n" for e in events)
        with self._locked():
            created = not self.incoming.exists()
            fd = os.open(self.incoming, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data.encode())
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.folder)

    def claim(self) -> list[Path]:
        """Every batch file to load, oldest first (incoming becomes a new batch)."""
        with self._locked():
            if self.incoming.exists() and self.incoming.stat().st_size > 0:
                os.rename(self.incoming, self.folder / f"batch-{time.time_ns():020d}.jsonl")
                _fsync_dir(self.folder)
            return sorted(self.folder.glob(BATCH_GLOB))

    def release(self, batch: Path) -> None:
        """The batch is in the warehouse: delete it (and the raw emails in it)."""
        batch.unlink(missing_ok=True)
        _fsync_dir(self.folder)

    def pending(self) -> Pending:
        if not self.folder.is_dir():
            return Pending(0, 0, "")
        parts, total, files = [], 0, 0
        for path in sorted([*self.folder.glob(BATCH_GLOB), self.incoming]):
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if st.st_size:
                files += 1
                total += st.st_size
                parts.append(f"{path.name}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")
        return Pending(files, total, hashlib.sha256("|".join(parts).encode()).hexdigest()[:16] if parts else "")


def read_batch(path: Path) -> tuple[list[ConsentEvent], int]:
    """The events of a batch file and the number of unreadable lines (a torn last line
    from a crash mid-write was never acknowledged, so the tool sends it again)."""
    events, bad = [], 0
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                events.append(ConsentEvent.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                bad += 1
    return events, bad


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
