"""Scale benchmark for the dbt build: generate N profiles, then time `dbt build`.

Prints seconds and peak memory of the build (dbt runs Splink in-process, so its RSS
is the build's) and the identity figures; writes bench/results/build.json. Not in CI.

    .venv/bin/python bench/build_bench.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RESULTS = REPO_ROOT / "bench" / "results" / "build.json"
START_DATE = "2026-01-01"


# Runs a command in its own wrapper process, so the peak RSS reported is that command's.
WRAPPER = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of one command."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAPPER, *args], cwd=REPO_ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return time.perf_counter() - started, int(out.stdout.strip().splitlines()[-1]) / 1024


def measure(size: int, tmp: Path) -> dict:
    warehouse = tmp / f"w{size}.duckdb"
    env = {**os.environ, "OUTFLOW_WAREHOUSE": str(warehouse), "DBT_TARGET_PATH": str(tmp / f"target{size}")}
    generate_s, _ = run([str(BIN / "outflow"), "generate", "--profiles", str(size), "--start-date", START_DATE], env)
    build_s, peak_mb = run([str(BIN / "dbt"), "build", "--quiet", "--profiles-dir", "dbt_project",
                            "--vars", f"{{outflow_as_of: '{START_DATE}'}}"], env)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        contacts, profiles = con.execute(
            "select (select count(*) from identity_map), (select count(*) from profiles)").fetchall()[0]
        merged, pairs = con.execute(
            """with c as (select t.person_id, i.profile_id, i.source_system || i.contact_id as k
                          from identity_map i join generator_truth.contact_people t using (source_system, contact_id))
               select count(*) filter (where a.profile_id = b.profile_id), count(*)
               from c a join c b on a.person_id = b.person_id and a.k < b.k""").fetchall()[0]
        false_merges = con.execute(
            """select count(*) from (select i.profile_id from identity_map i
               join generator_truth.contact_people t using (source_system, contact_id)
               group by 1 having count(distinct t.person_id) > 1)""").fetchall()[0][0]
    return {"profiles": size, "contacts": contacts, "resolved_profiles": profiles,
            "generate_seconds": round(generate_s, 1), "build_seconds": round(build_s, 1),
            "build_peak_rss_mb": round(peak_mb), "same_person_pairs_merged": merged,
            "same_person_pairs": pairs, "profiles_merging_two_people": false_merges}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in parser.parse_args().sizes:
            r = measure(size, Path(tmp))
            results.append(r)
            print(f"{size:>9,} profiles ({r['contacts']:,} contacts): generate {r['generate_seconds']}s, "
                  f"dbt build {r['build_seconds']}s, peak RSS {r['build_peak_rss_mb']:,} MB, "
                  f"pairs merged {r['same_person_pairs_merged']:,}/{r['same_person_pairs']:,}, "
                  f"false merges {r['profiles_merging_two_people']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
