"""Scale benchmark for `outflow generate`: 100k and 1M profiles into a temp DuckDB file.

Each size runs in its own process so peak RSS is that run's own. Prints seconds and
peak memory; writes bench/results/generate.json. Not part of CI.

    .venv/bin/python bench/generate_bench.py [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "generate.json"
CHILD = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from orchestration.generate import generate_world
t = time.perf_counter()
rows, _ = generate_world(Path(sys.argv[1]), int(sys.argv[2]), 42, date(2026, 1, 1))
print(json.dumps({"seconds": round(time.perf_counter() - t, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "rows": dict(rows)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    sizes = parser.parse_args().sizes
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            path = Path(tmp) / f"w{size}.duckdb"
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(size)], check=True, capture_output=True, text=True)
            result = {"profiles": size, **json.loads(out.stdout.strip().splitlines()[-1]),
                      "file_mb": round(path.stat().st_size / 2**20)}
            results.append(result)
            print(f"{size:>9,} profiles: {result['seconds']:>7.1f}s  peak RSS {result['peak_rss_mb']:,} MB  "
                  f"file {result['file_mb']:,} MB  rows {sum(result['rows'].values()):,}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
