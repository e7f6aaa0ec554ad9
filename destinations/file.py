"""File destination: each batch becomes one file in an outbox folder, for tools that
import files. Written atomically (temp file, fsync, rename, fsync the folder), so a
record is acknowledged only once its file is durably in place.

Layout: <folder>/<sync>/<UTC timestamp>-<operation>-<seq>.<jsonl|csv|parquet>
Columns: key, operation, destination_id, idempotency_key, then the mapped fields.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from destinations.base import (
    Batch,
    Capabilities,
    DestinationError,
    Operation,
    RecordResult,
    ResultStatus,
)
from destinations.http import redact
from destinations.registry import DestinationConfig

FORMATS = ("jsonl", "csv", "parquet")
META_COLUMNS = ("key", "operation", "destination_id", "idempotency_key")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class FileDestination:
    def __init__(self, folder: str | os.PathLike[str], fmt: str = "jsonl", *, name: str = "file"):
        if fmt not in FORMATS:
            raise ValueError(f"file destination {name}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.name = name
        self.folder = Path(folder)
        self.fmt = fmt
        self.capabilities = Capabilities(
            operations=frozenset(Operation) - {Operation.DELETE_PERSON}, max_batch_size=10_000, max_requests_per_second=None, max_concurrency=1
        )
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def write(self, batch: Batch) -> list[RecordResult]:
        rows = [
            {
                "key": r.key,
                "operation": batch.operation.value,
                "destination_id": r.destination_id,
                "idempotency_key": r.idempotency_key,
                **_check_fields(self.name, r.fields),
            }
            for r in batch.records
        ]
        if not rows:
            return []
        with self._lock:
            seq = next(self._seq)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        sync_dir = self.folder / _safe(batch.sync)
        final = sync_dir / f"{stamp}-{batch.operation.value}-{seq:06d}.{self.fmt}"
        try:
            sync_dir.mkdir(parents=True, exist_ok=True)
            _atomic_write(final, lambda fh: _WRITERS[self.fmt](rows, fh))
        except OSError as exc:
            raise DestinationError(
                f"file {self.name}: could not write {final.name} in {sync_dir}: {redact(exc.strerror or exc)}",
                retryable=True,
            ) from None
        return [RecordResult(r.key, ResultStatus.OK) for r in batch.records]

    def close(self) -> None:
        pass


def _safe(name: str) -> str:
    cleaned = _SAFE_NAME.sub("_", name).strip("._")
    return cleaned or "sync"


def _check_fields(dest: str, fields: Any) -> dict[str, Any]:
    clash = [k for k in fields if k in META_COLUMNS]
    if clash:
        raise DestinationError(
            f"file {dest}: field name(s) {clash} clash with the file's own columns {list(META_COLUMNS)}; "
            "rename them in the sync's fields mapping",
            retryable=False,
        )
    return dict(fields)


def _atomic_write(final: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if final.exists():  # never overwrite an earlier batch
            raise FileExistsError(17, "outbox file already exists", str(final))
        os.replace(tmp, final)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash
    finally:
        os.close(dir_fd)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def _write_jsonl(rows: list[dict[str, Any]], fh) -> None:
    for row in rows:
        fh.write(json.dumps(row, default=_json_default, ensure_ascii=False).encode() + b"\n")


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    cols = dict.fromkeys(META_COLUMNS)
    for row in rows:
        cols.update(dict.fromkeys(row))
    return list(cols)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple | set | frozenset):
        return json.dumps(value, default=_json_default, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _write_csv(rows: list[dict[str, Any]], fh) -> None:
    text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
    writer = csv.DictWriter(text, fieldnames=_columns(rows))
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    text.flush()
    text.detach()


def _write_parquet(rows: list[dict[str, Any]], fh) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = _columns(rows)
    try:
        table = pa.Table.from_pylist(rows, schema=None)
        table = table.select(cols)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # Mixed types in one field: write every field as text rather than fail the batch.
        table = pa.Table.from_pylist(
            [{k: (None if row.get(k) is None else str(_cell(row.get(k)))) for k in cols} for row in rows],
            schema=pa.schema([(c, pa.string()) for c in cols]),
        )
    pq.write_table(table, fh)


_WRITERS = {"jsonl": _write_jsonl, "csv": _write_csv, "parquet": _write_parquet}


class Config(DestinationConfig):
    type: Literal["file"]
    folder: str = Field(min_length=1, description="outbox folder; relative paths are relative to destinations.yml")
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"


def from_config(name: str, config: Config, *, where: Path, env) -> FileDestination:
    folder = Path(os.path.expanduser(config.folder))
    if not folder.is_absolute():
        folder = where.resolve().parent / folder
    return FileDestination(folder, config.format, name=name)
