"""No raw email, phone or configured secret appears anywhere outflow writes for people to
read: Python logging at DEBUG, dbt's debug logs, every CLI output (text and --json), every
Dagster event (and the files under DAGSTER_HOME), the sync tables and every error message,
with faults forced (per-record errors and garbage answers from the tools).

The demo flow runs on the hostile world (tests/integration/hostile_world.py): every
declared sync against the sandboxes on free ports, through the CLI and through Dagster.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.sync import state as st
from tests.conftest import VENV_BIN, run_cmd
from tests.integration.sandboxes import ENV, SECRETS, Sandboxes

pytestmark = pytest.mark.slow

# Syncs materialised through Dagster too (a file, a webhook, a CRM and an ad platform).
DAGSTER_SYNCS = ("lead_scores_file", "crm_contacts", "hubspot_contacts", "meta_customers_audience")


# ---------------------------------------------------------------- the scanner

def pii_needles(warehouse: Path) -> set[str]:
    """Every raw email and phone of the data, as written and as staging normalises them."""
    sql = """
        select email from raw.crm_contacts union select phone from raw.crm_contacts
        union select email from raw.web_events union select email from raw.email_events
        union select email from raw.orders union select email from raw.consent_events
        union select phone from raw.consent_events union select email from raw.deletion_requests
        union select email from raw.conversions
        union select email from main.profiles union select phone_e164 from main.profiles
    """
    with duckdb.connect(str(warehouse), read_only=True) as con:
        values = {v for (v,) in con.execute(sql).fetchall() if v}
    needles = set()
    for v in values:
        for form in (v, v.strip(), v.strip().lower()):
            if len(form) >= 7:  # shorter fragments ("+1 20") are not identifying
                needles.add(form.lower())
    return needles


def secret_needles() -> set[str]:
    """The configured secrets, and the forms they travel in (Mailchimp's Basic auth)."""
    out = set(SECRETS)
    for s in SECRETS:
        out.add(base64.b64encode(f"anystring:{s}".encode()).decode())
    return out


def leaks(text: str, needles: set[str]) -> list[str]:
    lowered = text.lower()
    return sorted(n for n in needles if n.lower() in lowered)


def context_of(text: str, needle: str, width: int = 120) -> str:
    i = text.lower().find(needle.lower())
    return text[max(0, i - width): i + len(needle) + width].replace(needle, "<<HERE>>")


# ---------------------------------------------------------------- the run

@pytest.fixture(scope="module")
def demo(hostile_world, tmp_path_factory):
    """Runs the demo flow once with faults; returns (where -> text, warehouse)."""
    root = tmp_path_factory.mktemp("no_leaks")
    warehouse = root / "outflow.duckdb"
    shutil.copy(hostile_world.warehouse, warehouse)
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    sandboxes = Sandboxes(root)
    env = {**ENV, "OUTFLOW_DESTINATIONS": str(sandboxes.config), "OUTFLOW_LOG_LEVEL": "DEBUG",
           "DAGSTER_HOME": str(dagster_home)}
    texts: dict[str, str] = {"dbt build (stdout, --debug)": hostile_world.dbt_output}
    for log in hostile_world.dbt_log_dir.rglob("*"):
        if log.is_file():
            texts[f"dbt log {log.name}"] = log.read_text(errors="replace")

    def outflow(*args: str):
        proc = run_cmd([str(VENV_BIN / "outflow"), *args], warehouse, check=False, **env)
        texts[f"outflow {' '.join(args)} (exit {proc.returncode}) stdout"] = proc.stdout
        texts[f"outflow {' '.join(args)} (exit {proc.returncode}) stderr"] = proc.stderr
        return proc

    try:
        outflow("syncs")
        names = [s["name"] for s in json.loads(outflow("syncs", "--json").stdout)["syncs"]]
        assert len(names) >= 9, names
        for i, name in enumerate(names):
            if i < 2:  # the text form renders the same report
                outflow("plan", name)
            outflow("plan", name, "--json")
        # Faults on the first sends: per-record errors, then garbage answers, then clean.
        for sandbox in sandboxes.running.values():
            sandbox.error_share = 0.3
        for name in names:
            outflow("run", name)
        for sandbox in sandboxes.running.values():
            sandbox.error_share = 0.0
        sandboxes.garbage(1.0)
        garbage_runs = [json.loads(outflow("run", name, "--json").stdout) for name in names]
        sandboxes.garbage(0.0)
        clean_runs = [json.loads(outflow("run", name, "--json").stdout) for name in names]
        with duckdb.connect(str(warehouse), read_only=True) as con:  # before Dagster adds its own faults
            states = dict(con.execute(f"select status, count(*) from {st.table(con, 'sync_state')} "
                                      "group by all").fetchall())
        for name in names[:2]:
            outflow("status", name)
            outflow("status", name, "--json")
        outflow("status")
        outflow("status", "--json")
        texts["dagster"] = _dagster_runs(warehouse, sandboxes, env, dagster_home)
        for path in dagster_home.rglob("*"):
            if path.is_file() and path.suffix not in (".db", ".sqlite"):
                texts[f"DAGSTER_HOME file {path.relative_to(dagster_home)}"] = path.read_text(errors="replace")
        with duckdb.connect(str(warehouse), read_only=True) as con:
            for table in ("sync_changelog", "sync_runs", "sync_state"):
                cur = con.execute(f"select * from {st.table(con, table)}")
                cols = [d[0] for d in cur.description]
                rows = cur.fetchall()
                texts[f"outflow.{table}"] = "\n".join(json.dumps(dict(zip(cols, r, strict=True)), default=str)
                                                      for r in rows)
                texts[f"outflow.{table} row count"] = str(len(rows))
    finally:
        sandboxes.stop()
    # The faults really happened, and what failed was retried and delivered (nothing lost).
    assert sum(sum(r["failed"].values()) for r in garbage_runs) > 0
    assert {r["status"] for r in clean_runs} <= {"succeeded", "partial"}, clean_runs
    assert states.get("failed", 0) == 0 and states.get("pending", 0) == 0, states
    assert states.get("synced", 0) > 1_000, states
    return texts, warehouse




def _dagster_runs(warehouse: Path, sandboxes: Sandboxes, env: dict, dagster_home: Path) -> str:
    """Materialise a few sync assets (one with per-record faults) in a persistent instance,
    with Python logging captured at DEBUG; returns every event and log line as text."""
    from dagster._serdes import serialize_value

    from orchestration.definitions import defs

    mp = pytest.MonkeyPatch()
    records: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: records.append(handler.format(record))  # type: ignore[method-assign]
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        for key, value in {**env, "OUTFLOW_WAREHOUSE": str(warehouse)}.items():
            mp.setenv(key, value)
        instance = dg.DagsterInstance.get()
        out = []
        for i, name in enumerate(DAGSTER_SYNCS):
            for sandbox in sandboxes.running.values():
                sandbox.error_share = 0.3 if i % 2 else 0.0
            asset = defs.resolve_assets_def(dg.AssetKey(["syncs", name]))
            result = dg.materialize([asset], instance=instance, raise_on_error=False,
                                    run_config={"ops": {asset.op.name: {"config": {"full_resync": True}}}})
            entries = instance.all_logs(result.run_id)
            assert entries, name
            assert any(e.dagster_event and e.dagster_event.event_type_value == "ASSET_MATERIALIZATION"
                       for e in entries) or not result.success, name
            out.extend(serialize_value(e) for e in entries)
        # A run whose secret is missing fails naming the variable, never showing a value.
        mp.delenv("OUTFLOW_HUBSPOT_TOKEN")
        try:
            dg.materialize([defs.resolve_assets_def(dg.AssetKey(["syncs", "hubspot_contacts"]))], instance=instance)
        except dg.DagsterInvalidConfigError as exc:
            assert "OUTFLOW_HUBSPOT_TOKEN" in str(exc)
            out.append(str(exc))
        else:
            raise AssertionError("a run without its secret started")
    finally:
        for sandbox in sandboxes.running.values():
            sandbox.error_share = 0.0
        mp.undo()
        root.removeHandler(handler)
        root.setLevel(old_level)
    return "\n".join(out) + "\n" + "\n".join(records)


# ---------------------------------------------------------------- the tests

def test_the_scanner_finds_what_it_looks_for(demo):
    texts, warehouse = demo
    needles = pii_needles(warehouse)
    email = next(n for n in sorted(needles) if "@" in n and n == n.strip())
    phone = next(n for n in sorted(needles) if n.startswith("+") and "@" not in n)
    assert email in leaks(f"INFO outflow: sent to {email.upper()} ok", needles)
    assert phone in leaks(f"error for {phone}", needles)
    assert leaks("INFO outflow: sent to [email] ok", needles) == []
    assert SECRETS[0] in leaks(f"Authorization: Bearer {SECRETS[0]}", secret_needles())
    assert len(needles) > 500  # the raw data's emails and phones, not an empty list
    # The run produced what the scan reads (a scan of nothing would pass).
    assert sum(len(t) for t in texts.values()) > 1_000_000
    assert any("DEBUG" in t for k, t in texts.items() if k.startswith("outflow run"))
    assert "ASSET_MATERIALIZATION" in texts["dagster"] and "DEBUG" in texts["dagster"]
    assert int(texts["outflow.sync_changelog row count"]) > 1_000
    assert any("retryable" in t or "failed" in t for k, t in texts.items() if k == "outflow.sync_changelog")


def test_no_raw_email_or_phone_appears_anywhere(demo):
    texts, warehouse = demo
    needles = pii_needles(warehouse)
    found = {where: leaks(text, needles) for where, text in texts.items()}
    found = {where: hits for where, hits in found.items() if hits}
    detail = [f"{where}: {len(hits)} e.g. ...{context_of(texts[where], hits[0])}..." for where, hits in found.items()]
    assert not found, "PII found:\n" + "\n".join(detail[:20])


def test_no_secret_appears_anywhere(demo):
    texts, _ = demo
    needles = secret_needles()
    found = {where: leaks(text, needles) for where, text in texts.items()}
    found = {where: hits for where, hits in found.items() if hits}
    assert not found, "secrets found:\n" + "\n".join(
        f"{where}: ...{context_of(texts[where], hits[0])}..." for where, hits in found.items())
