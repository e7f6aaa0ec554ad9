"""`make bench` is not part of `make test`, so its own pieces are checked here at a toy
size: the sync definitions it uses still validate against the engine, and the sync
memory step runs end to end (seed a model and state, plan, apply)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench" / "scale_bench.py"


def _bench_module():
    spec = importlib.util.spec_from_file_location("scale_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_sync_definitions_validate():
    specs = _bench_module().sync_specs()
    assert specs["contacts"].channel.value == "crm"
    assert specs["audience"].mode.value == "membership"
    assert specs["audience"].consent_override is not None


def test_memory_step_runs_on_a_small_model(tmp_path):
    env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"}
    for step in ("memory-seed", "memory-step"):
        proc = subprocess.run([sys.executable, str(BENCH), step, "5000", str(tmp_path)], cwd=REPO_ROOT,
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["model_rows"] == 5000
    # memory_seed changes 2% of the rows (by hash bucket): only those are sent
    assert 0 < out["sent"] == out["planned"] < 5000 * 0.05
    assert out["peak_rss_mb"] > 0
