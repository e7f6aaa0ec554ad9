"""End-to-end scale benchmark: `make bench [SIZE=1000000]`.

One run, in a scratch folder (a fresh warehouse):

  day 1  generate SIZE profiles with their events -> full `dbt build`
         -> contact sync (Salesforce sandbox, upsert) -> audience sync (Meta sandbox, membership)
  day 2  `outflow generate --day 1` (one more day of events, contacts and edits)
         -> incremental `dbt build` -> both syncs again

Each step runs in its own process tree (`python -c WRAPPER ...`), so its peak RSS is its own:
the largest resident set of any process in that tree (dbt runs Splink in-process, so the
build's peak is dbt's). A sync step is split in two figures: its plan (a dry run: model
summary, plan table, counts) beside a bare DuckDB EXCEPT over the same columns, measured in
the same process against the model as it was at the previous sync; and its apply (plan +
send + state commits). The sandboxes run in processes of their own on ephemeral loopback
ports, without limits, and the destinations with their client-side rate limits lifted.

Prints a table and writes bench/results/<UTC date>.json (with `uptime` before and after,
so figures taken on a busy machine can be judged). Not part of `make test`.

    .venv/bin/python bench/scale_bench.py [--size 1000000] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

BIN = Path(sys.executable).parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
START_DATE = date(2026, 1, 1)
SEED = 42
EVENT_MODELS = ("stg_web__events", "stg_esp__email_events", "stg_shop__orders",
                "int_web_events__attributed", "int_email_events__attributed", "int_orders__attributed")
# dbt's advice: unit tests belong to development and CI, not to production builds (they check
# the SQL, not the data, and cost the same at any size); `make test` runs them.
DBT_BUILD_FLAGS = ("--exclude-resource-type", "unit_test")
RAW_TABLES = ("crm_contacts", "web_events", "email_events", "orders", "consent_events", "deletion_requests",
              "conversions")

# Runs argv[2:] as a child; writes the child tree's peak RSS (KiB, the largest process) and its
# CPU seconds (user + system, every process of the tree) to argv[1].
WRAPPER = (
    "import resource, subprocess, sys; r = subprocess.run(sys.argv[2:]); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "open(sys.argv[1], 'w').write(f'{u.ru_maxrss} {u.ru_utime + u.ru_stime}'); "
    "sys.exit(r.returncode)"
)

# ---- the two syncs (defined here, not as exposures: the bench wants every profile with an email)

SALESFORCE_TOKEN = "bench-salesforce-token-0123456789"
META_TOKEN = "bench-meta-token-0123456789"
CAMPAIGN = "701000000000001AAA"
AUDIENCE = "23850000000000001"


def sync_specs() -> dict[str, Any]:
    from orchestration.sync.spec import SyncSpec

    where = "email is not null"
    return {
        "contacts": SyncSpec(
            name="bench_contacts", model="profiles", model_table="profiles", destination="salesforce_bench",
            object="Contact", mode="upsert", channel="crm", primary_key="profile_id", match_on={"Email": "email"},
            fields={"FirstName": "first_name", "LastName": "coalesce(last_name, 'Unknown')", "Title": "job_title",
                    "Lead_Score__c": "lead_score", "Lead_Grade__c": "lead_grade"},
            where=where),
        "audience": SyncSpec(
            name="bench_audience", model="profiles", model_table="profiles", destination="meta_bench",
            object=AUDIENCE, mode="membership", channel="ads",
            # The benchmark sizes the engine, not the consent rule: every profile with an email.
            consent_override={"reason": "scale benchmark: every profile with an email"}, primary_key="profile_id", match_on={"email": "email"},
            fields={"first_name": "first_name", "last_name": "last_name", "country": "country_code"},
            where=where, guardrails={"max_remove_share": 0.5}),
    }


def destination(which: str, url: str):
    """The destination through its module's Config, pointed at the sandbox, rate limits lifted."""
    env = {"BENCH_SALESFORCE_TOKEN": SALESFORCE_TOKEN, "BENCH_META_TOKEN": META_TOKEN}
    where = Path("bench/scale_bench.py")
    if which == "contacts":
        from destinations import salesforce as mod

        cfg = mod.Config.model_validate({
            "type": "salesforce", "instance_url": url, "access_token_env": "BENCH_SALESFORCE_TOKEN",
            "object": "Contact", "external_id_field": "Outflow_Id__c", "requests_per_second": 100, "burst": 200})
        return mod.from_config("salesforce_bench", cfg, where=where, env=env)
    from destinations import meta as mod

    cfg = mod.Config.model_validate({"type": "meta", "base_url": url, "access_token_env": "BENCH_META_TOKEN",
                                     "requests_per_second": 50, "burst": 50})
    return mod.from_config("meta_bench", cfg, where=where, env=env)


class SandboxProcess:
    """A sandbox in a process of its own, as the real tool is another machine: its request
    handling does not compete with the sync for this interpreter's lock."""

    def __init__(self, factory, *args, **kwargs):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._here, there = ctx.Pipe()
        self._proc = ctx.Process(target=self._serve, args=(factory, args, kwargs, there), daemon=True)
        self._proc.start()
        self.url = self._here.recv()

    @staticmethod
    def _serve(factory, args, kwargs, conn) -> None:
        box = factory(*args, **kwargs)
        with box:
            conn.send(box.url)
            conn.recv()  # "stop"

    def stop(self) -> None:
        try:
            self._here.send("stop")
        except OSError:
            pass
        self._proc.join(timeout=30)
        if self._proc.is_alive():
            self._proc.kill()


def start_sandboxes() -> dict[str, Any]:
    from destinations.sandbox.meta import MetaSandbox
    from destinations.sandbox.salesforce import SalesforceSandbox

    return {"contacts": SandboxProcess(SalesforceSandbox, token=SALESFORCE_TOKEN, campaigns=[CAMPAIGN], port=0),
            "audience": SandboxProcess(MetaSandbox, token=META_TOKEN, audiences=[AUDIENCE], port=0)}


def cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---- one sync step, in its own process (`scale_bench.py sync-step ...`)

def _except_columns(spec) -> str:
    cols = [f"CAST({spec.primary_key} AS VARCHAR) AS _key"]
    cols += [f"{sql} AS f_{i}" for i, sql in enumerate(spec.sent_fields().values())]
    return ", ".join(cols)


def sync_step(which: str, url: str, warehouse: Path) -> dict[str, Any]:
    """Plan (dry run) beside a bare EXCEPT, then a real run; keeps the model's rows as the
    next run's EXCEPT baseline."""
    import duckdb

    from orchestration.sync.apply import MEMORY_LIMIT, run_sync

    spec = sync_specs()[which]
    snapshot = f"bench_snapshot.{spec.name}"
    cols = _except_columns(spec)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("CREATE SCHEMA IF NOT EXISTS bench_snapshot")
        con.execute(f"CREATE TABLE IF NOT EXISTS {snapshot} AS SELECT {cols} FROM main.{spec.model_table} WHERE false")
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")  # the engine's, so both run under the same cap
        t = time.perf_counter()
        con.execute(f"CREATE OR REPLACE TEMP TABLE bench_except AS SELECT {cols} FROM main.{spec.model_table} "
                    f"WHERE {spec.where} EXCEPT SELECT * FROM {snapshot}")
        except_rows = con.execute("SELECT count(*) FROM bench_except").fetchall()[0][0]
        except_s = time.perf_counter() - t
    dest = destination(which, url)
    try:
        t, c = time.perf_counter(), cpu_seconds()
        plan = run_sync(spec, dest, warehouse, dry_run=True)
        plan_s, plan_cpu = time.perf_counter() - t, cpu_seconds() - c
        t, c = time.perf_counter(), cpu_seconds()
        run = run_sync(spec, dest, warehouse)
        apply_s, apply_cpu = time.perf_counter() - t, cpu_seconds() - c
    finally:
        dest.close()
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"CREATE OR REPLACE TABLE {snapshot} AS SELECT {cols} FROM main.{spec.model_table} WHERE {spec.where}")
    return {
        "sync": spec.name, "mode": spec.mode.value, "model_rows": plan.model_rows, "planned": plan.planned_total,
        "plan_seconds": round(plan_s, 3), "except_seconds": round(except_s, 3), "except_rows": except_rows,
        "apply_seconds": round(apply_s, 3), "sent": run.sent, "status": run.status,
        # CPU seconds of this process (all its threads): on a busy machine, the work done
        # as opposed to the time waited for a core
        "plan_cpu_seconds": round(plan_cpu, 2), "apply_cpu_seconds": round(apply_cpu, 2),
        "succeeded": run.succeeded, "failed": run.failed, "rejected": run.rejected,
    }


# ---- sync memory against the model size (`scale_bench.py memory --rows 1000000 10000000`)

def memory_step(rows: int, work: Path) -> dict[str, Any]:
    """Peak RSS of one membership sync over a synthetic `rows`-row model, in this process.

    memory_seed (another process) left the model and a state as if a first run had synced
    every row, then changed a share of the rows; the sync runs: its plan covers the whole
    model and state, its apply
    sends the changes to a destination that answers OK at once (10,000 records per call,
    like Meta). The seeding keeps a 10M-row run to minutes; the first-run memory at 1M
    (every record sent) is the main benchmark's audience step."""
    import resource

    from destinations.base import Capabilities, Operation, RecordResult, ResultStatus
    from orchestration.sync.apply import run_sync

    class Instant:
        name = "instant"
        capabilities = Capabilities(operations=frozenset(Operation), max_batch_size=10_000, max_concurrency=2)

        def write(self, batch):
            return [RecordResult(r.key, ResultStatus.OK) for r in batch.records]

        def close(self):
            pass

    warehouse = work / f"memory_{rows}.duckdb"
    spec = sync_specs()["audience"]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    plan = run_sync(spec, Instant(), warehouse, dry_run=True)
    plan_s = time.perf_counter() - t
    t = time.perf_counter()
    run = run_sync(spec, Instant(), warehouse)
    apply_s = time.perf_counter() - t
    warehouse.unlink()
    return {"model_rows": rows, "state_rows": rows, "planned": plan.planned_total, "plan_seconds": round(plan_s, 2),
            "sent": run.sent, "apply_seconds": round(apply_s, 1),
            "apply_records_per_second": round(run.sent / apply_s) if apply_s else None,
            "peak_rss_mb_before_runs": round(base),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def memory_seed(rows: int, work: Path, changed_share: float = 0.02) -> None:
    """The synthetic model and its state for memory_step, in a process of its own (so the
    seeding's memory is not the sync's): every row synced (one SQL statement over the plan
    itself, so the hashes are the engine's own), then `changed_share` of the rows changed."""
    import duckdb

    from orchestration.sync import state as st
    from orchestration.sync.plan import render_plan

    warehouse = work / f"memory_{rows}.duckdb"
    spec = sync_specs()["audience"]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(f"""CREATE TABLE main.profiles AS SELECT 'p_' || substr(md5(i::VARCHAR), 1, 16) AS profile_id,
            'person' || i || '@example.com' AS email, 'First' || (i % 5000) AS first_name,
            'Last' || (i % 7919) AS last_name, ['US', 'GB', 'DE', 'FR'][1 + i % 4] AS country_code,
            'Engineer' AS job_title, i % 100 AS lead_score, 'B' AS lead_grade FROM range({rows}) t(i)""")
        # The contact rule and deletion requests as dbt builds them (tables): everyone contactable.
        con.execute("""CREATE TABLE main.contactable_profiles AS SELECT profile_id, c.channel, true AS is_contactable,
            'opted_in' AS reason, false AS is_deletion_requested FROM main.profiles
            CROSS JOIN (VALUES ('email'), ('sms'), ('ads'), ('crm')) AS c(channel)""")
        con.execute("CREATE TABLE main.deletion_requests "
                    "(request_id VARCHAR, email VARCHAR, profile_id VARCHAR, requested_at TIMESTAMP)")
        st.ensure_tables(con)
        catalog = con.execute("SELECT current_database()").fetchall()[0][0]
        con.execute(f"""INSERT INTO {st.table(con, 'sync_state')} (sync, record_key, fields_hash, status, attempts,
            first_synced_at, last_synced_at, last_attempt_at, last_operation, run_id)
            SELECT '{spec.name}', _key, _hash, 'synced', 0, now()::TIMESTAMP, now()::TIMESTAMP, now()::TIMESTAMP,
                   'add_member', 'seeded' FROM ({render_plan(spec, 'duckdb', catalog=catalog)})""")
        con.execute(f"UPDATE main.profiles SET last_name = last_name || 'x' "
                    f"WHERE hash(profile_id) % 1000 < {int(changed_share * 1000)}")
        con.execute("CHECKPOINT")


def memory(sizes: list[int]) -> None:
    out = []
    with tempfile.TemporaryDirectory(prefix="outflow-bench-memory-") as tmp:
        for n in sizes:
            for step in ("memory-seed", "memory-step"):
                proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), step, str(n), tmp],
                                      cwd=REPO_ROOT, capture_output=True, text=True,
                                      env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
                if proc.returncode != 0:
                    break
            if proc.returncode != 0:
                raise SystemExit(f"memory step {n} failed:\n{proc.stderr[-3000:]}")
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(out[-1]), flush=True)
    if len(out) > 1:
        growth = out[-1]["peak_rss_mb"] / out[0]["peak_rss_mb"] - 1
        print(f"peak RSS {out[0]['peak_rss_mb']:,} MB at {out[0]['model_rows']:,} rows, {out[-1]['peak_rss_mb']:,} MB at "
              f"{out[-1]['model_rows']:,} rows: {growth:+.1%}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{datetime.now(timezone.utc):%Y-%m-%d}-sync-memory.json"
    path.write_text(json.dumps({"uptime": uptime(), "runs": out}, indent=2) + "\n")
    print(f"wrote {path.relative_to(REPO_ROOT)}")


# ---- the driver

def run_step(name: str, argv: list[str], env: dict[str, str], log: Path) -> dict[str, Any]:
    """Wall seconds, peak RSS of the step's process tree, and what it printed last (JSON, if any)."""
    rss_file = log.with_suffix(".rss")
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-c", WRAPPER, str(rss_file), *argv], cwd=REPO_ROOT, env=env,
                              stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        tail = log.read_text().splitlines()[-30:]
        raise SystemExit(f"step {name} failed (exit {proc.returncode}); last lines of {log}:\n" + "\n".join(tail))
    printed = None
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
    if lines:
        printed = json.loads(lines[-1])
    maxrss, cpu = rss_file.read_text().split()
    return {"step": name, "seconds": round(seconds, 2), "peak_rss_mb": round(int(maxrss) / 1024),
            "cpu_seconds": round(float(cpu), 1), "printed": printed}


def table_rows(warehouse: Path, schema: str, tables) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {schema}.{t}").fetchall()[0][0] for t in tables}


def built_rows(warehouse: Path) -> int:
    """Rows in every table of schema main (what the build wrote)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return int(con.execute("SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables() "
                               "WHERE schema_name = 'main' AND database_name = current_database()").fetchall()[0][0])


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def bench(size: int, work: Path) -> dict[str, Any]:
    warehouse = work / "outflow.duckdb"
    env = {**os.environ, "OUTFLOW_WAREHOUSE": str(warehouse), "DBT_TARGET_PATH": str(work / "target"),
           "DBT_PROFILES_DIR": str(REPO_ROOT / "dbt_project"), "PYTHONPATH": str(REPO_ROOT)}
    steps: list[dict[str, Any]] = []

    def add(day: int, name: str, argv: list[str], rows_in: int | None = None, out: Any = None) -> dict[str, Any]:
        s = run_step(f"day{day}_{name}", argv, env, work / f"day{day}_{name}.log")
        s["day"] = day
        s["rows_in"], s["rows_out"] = rows_in, out
        steps.append(s)
        print(f"  day {day} {name}: {s['seconds']} s, {s['peak_rss_mb']:,} MB", flush=True)
        return s

    boxes = start_sandboxes()
    try:
        for day in (1, 2):
            as_of = START_DATE + timedelta(days=day - 1)
            before = table_rows(warehouse, "raw", RAW_TABLES) if day == 2 else dict.fromkeys(RAW_TABLES, 0)
            gen = ([str(BIN / "outflow"), "generate", "--profiles", str(size), "--seed", str(SEED),
                    "--start-date", START_DATE.isoformat()] if day == 1
                   else [str(BIN / "outflow"), "generate", "--day", "1"])
            s = add(day, "generate", gen)
            after = table_rows(warehouse, "raw", RAW_TABLES)
            new_raw = sum(after.values()) - sum(before.values())
            s["rows_in"], s["rows_out"], s["raw_tables"] = (size if day == 1 else None), new_raw, after
            # as_of by environment, as a daily job would: a changed --vars re-parses the whole project.
            env["OUTFLOW_AS_OF"] = as_of.isoformat()
            s = add(day, "dbt_build", [str(BIN / "dbt"), "build", "--quiet", *DBT_BUILD_FLAGS], rows_in=new_raw)
            s["rows_out"] = built_rows(warehouse)
            s["event_model_rows"] = table_rows(warehouse, "main", EVENT_MODELS)
            s["dbt_models"] = dbt_timings(work / "target" / "run_results.json")
            for which in ("contacts", "audience"):
                s = add(day, f"sync_{which}", [sys.executable, str(Path(__file__).resolve()), "sync-step", which,
                                               boxes[which].url, str(warehouse)])
                p = s.pop("printed")
                s.update(rows_in=p["model_rows"], rows_out=p["sent"], sync=p)
    finally:
        for box in boxes.values():
            box.stop()
    return {"steps": steps}


def dbt_timings(run_results: Path, top: int = 12) -> list[dict[str, Any]]:
    """The slowest nodes of a dbt run (its run_results.json)."""
    if not run_results.exists():
        return []
    res = json.loads(run_results.read_text())["results"]
    rows = sorted(res, key=lambda r: r.get("execution_time") or 0, reverse=True)[:top]
    return [{"node": r["unique_id"], "seconds": round(r.get("execution_time") or 0, 2)} for r in rows]


def per_second(n: int | None, seconds: float) -> int | None:
    return round(n / seconds) if n and seconds else None


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure of the table: syncs split into plan and apply."""
    out = []
    for s in report["steps"]:
        if "sync" in s:
            p = s["sync"]
            out.append({"step": f"day {s['day']} {s['step'].split('_', 1)[1]} plan", "seconds": p["plan_seconds"],
                        "cpu_seconds": p.get("plan_cpu_seconds"), "peak_rss_mb": None, "rows_in": p["model_rows"], "rows_out": p["planned"],
                        "per_s": per_second(p["model_rows"], p["plan_seconds"]),
                        "note": f"EXCEPT {p['except_seconds']} s ({p['except_rows']:,} rows); "
                                f"plan/EXCEPT {p['plan_seconds'] / max(p['except_seconds'], 1e-9):.2f}x"})
            apply_only = max(p["apply_seconds"], 1e-9)
            out.append({"step": f"day {s['day']} {s['step'].split('_', 1)[1]} apply", "seconds": p["apply_seconds"],
                        "cpu_seconds": p.get("apply_cpu_seconds"), "peak_rss_mb": s["peak_rss_mb"], "rows_in": p["planned"], "rows_out": p["sent"],
                        "per_s": per_second(p["sent"], apply_only),
                        "note": f"{p['status']}; whole step {s['seconds']} s"})
        else:
            out.append({"step": f"day {s['day']} {s['step'].split('_', 1)[1]}", "seconds": s["seconds"],
                        "cpu_seconds": s.get("cpu_seconds"), "peak_rss_mb": s["peak_rss_mb"], "rows_in": s["rows_in"], "rows_out": s["rows_out"],
                        "per_s": per_second(s["rows_in"] or s["rows_out"], s["seconds"]), "note": ""})
    return out


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"outflow scale bench: {report['size']:,} profiles ({report['date']})")
    for col in ("step", "wall s", "CPU s", "peak RSS MB", "rows in", "rows out", "rows/s", "note"):
        t.add_column(col, justify="left" if col in ("step", "note") else "right")
    fmt = lambda v: "" if v is None else f"{v:,}"  # noqa: E731
    for r in report["table"]:
        t.add_row(r["step"], f"{r['seconds']:.2f}", fmt(r.get("cpu_seconds")), fmt(r["peak_rss_mb"]), fmt(r["rows_in"]), fmt(r["rows_out"]),
                  fmt(r["per_s"]), r["note"])
    console = Console()
    console = console if console.is_terminal else Console(width=200)
    console.print(t)
    console.print(f"load before: {report['uptime_before']}\nload after:  {report['uptime_after']}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "memory-seed":
        memory_seed(int(sys.argv[2]), Path(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "memory-step":
        print(json.dumps(memory_step(int(sys.argv[2]), Path(sys.argv[3]))), flush=True)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "memory":
        rows = [int(a) for a in sys.argv[2:] if a.isdigit()] or [1_000_000, 10_000_000]
        memory(rows)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "sync-step":
        which, url, warehouse = sys.argv[2], sys.argv[3], Path(sys.argv[4])
        print(json.dumps(sync_step(which, url, warehouse)), flush=True)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000, help="profiles to generate (default 1,000,000)")
    ap.add_argument("--workdir", help="scratch folder (default: a temporary one, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (warehouse, logs)")
    args = ap.parse_args()
    if args.size < 1000:
        raise SystemExit("--size: give at least 1000 profiles")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="outflow-bench-"))
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"--workdir {work} is not empty: give a new or empty folder")
    work.mkdir(parents=True, exist_ok=True)
    print(f"scale bench: {args.size:,} profiles in {work}", flush=True)
    report: dict[str, Any] = {
        "size": args.size, "seed": SEED, "start_date": START_DATE.isoformat(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "uptime_before": uptime(),
    }
    try:
        report.update(bench(args.size, work))
    finally:
        if not (args.keep or args.workdir):
            shutil.rmtree(work, ignore_errors=True)
    report["uptime_after"] = uptime()
    report["table"] = summary_rows(report)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{report['date']}.json"
    # One file per day; a run of another size the same day is kept beside this one.
    runs = json.loads(out.read_text()).get("runs", {}) if out.exists() else {}
    runs[str(args.size)] = report
    out.write_text(json.dumps({"runs": runs}, indent=2, default=str) + "\n")
    print_table(report)
    print(f"wrote {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
