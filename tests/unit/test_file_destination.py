"""File destination: one file per batch, atomic, readable back in every format."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from destinations.base import Batch, Destination, DestinationError, Operation, Record, ResultStatus
from destinations.file import FileDestination


def batch(op=Operation.UPSERT, n=3, sync="crm_contacts"):
    recs = tuple(
        Record(f"p{i}", {"email": f"u{i}@example.com", "score": i * 10, "tags": ["a", "b"] if i == 1 else None},
               destination_id=f"d{i}" if i else None, idempotency_key=f"ik{i}")
        for i in range(n)
    )
    return Batch(sync, "contacts", op, recs)


def read_back(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".csv":
        with path.open(newline="") as fh:
            return list(csv.DictReader(fh))
    return pq.read_table(path).to_pylist()


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_writes_one_file_per_batch_with_all_columns(tmp_path, fmt):
    dest = FileDestination(tmp_path, fmt)
    assert isinstance(dest, Destination)
    res = dest.write(batch())
    assert [r.status for r in res] == [ResultStatus.OK] * 3 and [r.key for r in res] == ["p0", "p1", "p2"]
    dest.write(batch(Operation.DELETE, 2))
    files = sorted((tmp_path / "crm_contacts").iterdir())
    assert len(files) == 2 and all(f.suffix == f".{fmt}" for f in files)
    assert "-upsert-" in files[0].name or "-upsert-" in files[1].name
    up = next(f for f in files if "-upsert-" in f.name)
    rows = read_back(up)
    assert [r["key"] for r in rows] == ["p0", "p1", "p2"]
    assert list(rows[0])[:4] == ["key", "operation", "destination_id", "idempotency_key"]
    assert {"email", "score", "tags"} <= set(rows[0])
    assert rows[1]["operation"] == "upsert" and rows[1]["idempotency_key"] == "ik1"
    assert str(rows[2]["score"]) == "20"
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".*"))


def test_file_names_sort_in_write_order_and_never_collide(tmp_path):
    dest = FileDestination(tmp_path, "jsonl")
    for _ in range(20):
        dest.write(batch(n=1))
    names = [p.name for p in (tmp_path / "crm_contacts").iterdir()]
    assert len(set(names)) == 20
    seqs = [n.split("-")[2].split(".")[0] for n in sorted(names)]
    assert seqs == sorted(seqs)


def test_sync_name_cannot_escape_the_folder(tmp_path):
    dest = FileDestination(tmp_path / "out", "jsonl")
    dest.write(batch(sync="../../etc"))
    written = list((tmp_path / "out").rglob("*.jsonl"))
    assert len(written) == 1 and (tmp_path / "out") in written[0].parents
    assert not list(tmp_path.glob("etc*"))


def test_io_error_is_retryable_and_leaves_no_file(tmp_path):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the folder should be")
    dest = FileDestination(blocker, "jsonl")
    with pytest.raises(DestinationError) as info:
        dest.write(batch())
    assert info.value.retryable and "could not write" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_folder_is_retryable(tmp_path):
    (tmp_path / "crm_contacts").mkdir()
    os.chmod(tmp_path / "crm_contacts", 0o500)
    try:
        with pytest.raises(DestinationError) as info:
            FileDestination(tmp_path, "csv").write(batch())
        assert info.value.retryable
    finally:
        os.chmod(tmp_path / "crm_contacts", 0o700)


def test_failed_write_removes_its_temp_file(tmp_path, monkeypatch):
    dest = FileDestination(tmp_path, "jsonl")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(DestinationError, match="No space left") as info:
        dest.write(batch())
    assert info.value.retryable
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # no half file, no temp


def test_field_clashing_with_a_column_is_a_clear_error(tmp_path):
    b = Batch("s", "t", Operation.UPSERT, (Record("k", {"key": "x"}),))
    with pytest.raises(DestinationError, match="clash") as info:
        FileDestination(tmp_path).write(b)
    assert not info.value.retryable


def test_parquet_with_mixed_types_falls_back_to_text(tmp_path):
    b = Batch("s", "t", Operation.UPSERT, (Record("a", {"v": 1}), Record("b", {"v": "x"})))
    FileDestination(tmp_path, "parquet").write(b)
    rows = pq.read_table(next(tmp_path.rglob("*.parquet"))).to_pylist()
    assert [r["v"] for r in rows] == ["1", "x"]


def test_capabilities_and_bad_format(tmp_path):
    caps = FileDestination(tmp_path).capabilities
    assert caps.operations == frozenset(Operation) - {Operation.DELETE_PERSON} and caps.max_batch_size == 10_000
    assert caps.max_concurrency == 1 and caps.max_requests_per_second is None
    with pytest.raises(ValueError, match="jsonl, csv, parquet"):
        FileDestination(tmp_path, "xml")
    assert FileDestination(tmp_path).write(Batch("s", "t", Operation.UPSERT, ())) == []
