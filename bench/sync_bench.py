"""Scale benchmark for the sync engine: N model rows to an in-process no-op destination.

Each size and mode (upsert; mirror, which also writes a pre-send `pending` mark per new
record) runs in its own process (so peak RSS is its own): a first run (all adds),
a second run with no change (plans and sends nothing), and a run where 10% of rows
changed. Records/s covers plan + send + per-batch state commits; the destination costs
nothing, so this is the engine's own ceiling. Writes bench/results/sync.json. Not in CI.

    .venv/bin/python bench/sync_bench.py [--sizes 200000 1000000] [--modes upsert mirror]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results" / "sync.json"


def one_size(n: int, mode: str = "upsert") -> dict:
    import duckdb

    from destinations.base import Capabilities, Operation, RecordResult, ResultStatus
    from orchestration.sync.apply import run_sync
    from orchestration.sync.spec import SyncSpec

    class NoOp:
        name = "noop"
        capabilities = Capabilities(operations=frozenset(Operation), max_batch_size=1000, max_concurrency=4)

        def write(self, batch):
            return [RecordResult(r.key, ResultStatus.OK, destination_id=r.key) for r in batch.records]

        def close(self):
            pass

    with tempfile.TemporaryDirectory() as tmp:
        wh = Path(tmp) / "outflow.duckdb"
        with duckdb.connect(str(wh)) as con:
            con.execute(f"""CREATE TABLE main.profiles AS SELECT 'p' || lpad(i::VARCHAR, 8, '0') AS profile_id,
                'person' || i || '@example.com' AS email, 'Name' || (i % 5000) AS first_name,
                (i * 7) % 100 AS score, 'granted' AS consent FROM range({n}) t(i)""")
            # the contact rule every plan joins (the dbt mart in a real warehouse): all contactable on crm
            con.execute("""CREATE TABLE main.contactable_profiles AS SELECT profile_id, 'crm' AS channel,
                true AS is_contactable, 'no_deletion_request' AS reason, false AS is_deletion_requested FROM main.profiles""")
            con.execute("CREATE TABLE main.deletion_requests (request_id VARCHAR, email VARCHAR, profile_id VARCHAR, "
                        "requested_at TIMESTAMP)")
        spec = SyncSpec(name="bench", model="profiles", model_table="profiles", destination="noop",
                        object="contacts", mode=mode, primary_key="profile_id", match_on={"email": "email"},
                        fields={"first": "first_name", "score": "round(score * 1.5, 1)"},
                        where="consent = 'granted'", batch_size=1000, channel="crm")
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        first = run_sync(spec, NoOp(), wh)
        rss_after_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        second = run_sync(spec, NoOp(), wh)
        noop_seconds = time.perf_counter() - t
        with duckdb.connect(str(wh)) as con:
            con.execute("UPDATE main.profiles SET score = score + 1 WHERE hash(profile_id) % 10 = 0")
        third = run_sync(spec, NoOp(), wh)
        assert sum(first.succeeded.values()) == n and second.sent == 0, (first, second)
        return {
            "mode": mode,
            "model_rows": n,
            "first_run_seconds": round(first.duration_seconds, 1),
            "first_run_records_per_second": round(first.records_per_second),
            "unchanged_run_seconds": round(noop_seconds, 2),
            "changed_rows": third.sent,
            "changed_run_seconds": round(third.duration_seconds, 1),
            "changed_run_records_per_second": round(third.records_per_second),
            "peak_rss_mb_before_runs": round(rss_before),
            "peak_rss_mb": round(max(rss_after_first, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)),
        }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    p.add_argument("--modes", nargs="+", default=["upsert", "mirror"])
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.modes[0])))
        return
    results = []
    for n in args.sizes:
        for mode in args.modes:
            out = subprocess.run([sys.executable, __file__, "--one", str(n), "--modes", mode], cwd=REPO_ROOT,
                                 check=True, capture_output=True, text=True, env={"PYTHONPATH": str(REPO_ROOT)})
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
