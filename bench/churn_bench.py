"""Cost of the churn model (orchestration/churn.py) as the customer base grows: the CDNOW
summary's 2,357 customers repeated k times (same distribution, k times the rows), fitted
(BG/NBD + Gamma-Gamma) and scored. Prints seconds and peak RSS per size; writes
bench/results/churn.json. Needs ../shared/data. Not in CI.

    .venv/bin/python bench/churn_bench.py [--repeats 1 10 100]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import pandas as pd

from orchestration.churn import ChurnSettings, fit, score

REPO_ROOT = Path(__file__).resolve().parent.parent
SUMMARY = REPO_ROOT.parent / "shared" / "data" / "cdnow_lifetimes" / "cdnow_customers_summary_with_transactions.csv"
RESULTS = REPO_ROOT / "bench" / "results" / "churn.json"


def customers(repeats: int) -> pd.DataFrame:
    d = pd.read_csv(SUMMARY)
    base = pd.DataFrame({"frequency": d["x"], "recency_days": (d["t_x"] * 7).round(),
                         "t_days": (d["T"] * 7).round(), "monetary_usd": d["zbar"]})
    rfm = pd.concat([base] * repeats, ignore_index=True)
    rfm["profile_id"] = [f"p{i}" for i in range(len(rfm))]
    return rfm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 10, 100])
    args = parser.parse_args()
    results = []
    for k in args.repeats:
        rfm = customers(k)
        started = time.perf_counter()
        fitted = fit(rfm, ChurnSettings())
        fit_s = time.perf_counter() - started
        started = time.perf_counter()
        score(rfm, fitted, ChurnSettings())
        score_s = time.perf_counter() - started
        row = {"customers": len(rfm), "status": fitted.loc[0, "status"], "fit_seconds": round(fit_s, 2),
               "score_seconds": round(score_s, 2),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        results.append(row)
        print(f"{row['customers']:>9,} customers  fit {fit_s:6.1f} s  score {score_s:5.1f} s  "
              f"peak RSS {row['peak_rss_mb']} MB  ({row['status']})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
