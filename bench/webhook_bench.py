"""Webhook destination benchmark: N records through WebhookDestination to the sandbox
receiver over real HTTP on 127.0.0.1, batches of 500, 4 concurrent batches.

Scenarios:
- unthrottled: records per second;
- throttled, client limiter at the allowed rate (as a destination declares it);
- throttled, client unaware of the rate (no limiter; only 429 + Retry-After slow it).
For the throttled runs: achieved share of the allowed request rate and records lost
(records sent again on later "runs" until acknowledged, like the engine; lost must be 0).
Writes bench/results/webhook.json. Not in CI.

    .venv/bin/python bench/webhook_bench.py [--records 100000] [--throttle-rps 20]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from destinations.base import Batch, DestinationError, Operation, Record, ResultStatus  # noqa: E402
from destinations.sandbox.webhook_receiver import WebhookReceiver  # noqa: E402
from destinations.webhook import WebhookDestination  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "webhook.json"
SECRET = "bench-secret-0123456789"
BATCH = 500
CONCURRENCY = 4


def records(n: int) -> list[Record]:
    return [
        Record(f"p{i:08d}", {"email": f"user{i}@example.com", "first_name": "Ada", "score": i % 100,
                             "grade": "A", "segment": "high_intent"})
        for i in range(n)
    ]


def run(n: int, *, throttle_rps: float | None, client_rps: float | None) -> dict:
    recs = records(n)
    with WebhookReceiver(SECRET, max_batch_size=BATCH, throttle_rps=throttle_rps) as rc:
        dest = WebhookDestination(rc.url, SECRET, max_batch_size=BATCH, requests_per_second=client_rps,
                                  max_concurrency=CONCURRENCY, max_retries=10, retry_after_cap=5.0)
        pending = {r.key: r for r in recs}
        rounds = 0
        t0 = time.perf_counter()
        while pending and rounds < 10:
            rounds += 1
            todo = list(pending.values())
            batches = [Batch("bench", "contacts", Operation.UPSERT, tuple(todo[i:i + BATCH]))
                       for i in range(0, len(todo), BATCH)]

            def send(b: Batch) -> list:
                try:
                    return dest.write(b)
                except DestinationError:
                    return []

            with ThreadPoolExecutor(CONCURRENCY) as pool:
                for results in pool.map(send, batches):
                    for r in results:
                        if r.status is ResultStatus.OK:
                            pending.pop(r.key, None)
        elapsed = time.perf_counter() - t0
        stored = len(rc.state.records.get("contacts", {}))
        out = {
            "records": n,
            "seconds": round(elapsed, 3),
            "records_per_second": round(n / elapsed),
            "rounds": rounds,
            "requests_accepted": rc.accepted_requests,
            "requests_throttled": rc.refused["throttled"],
            "records_lost": n - stored,
            "unacknowledged": len(pending),
        }
        if throttle_rps:
            achieved = rc.accepted_requests / elapsed
            out.update(allowed_requests_per_second=throttle_rps,
                       achieved_requests_per_second=round(achieved, 2),
                       achieved_share=round(achieved / throttle_rps, 3),
                       allowed_records_per_second=throttle_rps * BATCH,
                       # The receiver's bucket starts full (one second's worth), so a
                       # client that uses it can slightly exceed a share of 1.0.
                       receiver_initial_burst_requests=max(1, int(throttle_rps)))
        dest.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--throttle-rps", type=float, default=20.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    report = {
        "batch_size": BATCH,
        "concurrency": CONCURRENCY,
        "python": platform.python_version(),
        "unthrottled": run(args.records, throttle_rps=None, client_rps=None),
        "throttled_client_at_rate": run(args.records, throttle_rps=args.throttle_rps, client_rps=args.throttle_rps),
        "throttled_client_unaware": run(args.records, throttle_rps=args.throttle_rps, client_rps=None),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
