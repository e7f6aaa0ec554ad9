"""`outflow score-file` on small generated lead lists: bad input, the leakage guard, outputs.

Each list is written as a real CSV and scored through the command's entry point.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from orchestration.cli import main

ROWS = 600


def leads(seed: int = 3) -> list[dict]:
    """Leads whose conversion depends on visits and source, with created/converted times."""
    rng = np.random.default_rng(seed)
    out = []
    start = datetime(2025, 1, 1)
    for i in range(ROWS):
        visits = int(rng.poisson(4))
        source = ["Google", "google ", "Referral", "Organic", "Chat"][i % 5]
        logit = -2.0 + 0.35 * visits + (1.0 if source.strip().lower() == "referral" else 0.0)
        converted = bool(rng.random() < 1 / (1 + np.exp(-logit)))
        created = start + timedelta(days=float(rng.uniform(0, 300)))
        converted_at = created + timedelta(days=float(rng.uniform(1, 10))) if converted else None
        out.append({
            "lead_id": f"L{i:04d}",
            "visits": "" if i % 17 == 0 else visits,  # some missing numbers
            "source": source if i % 23 else "",  # some missing categories
            "created_at": created.strftime("%Y-%m-%d %H:%M:%S"),
            "converted_at": converted_at.strftime("%Y-%m-%d %H:%M:%S") if converted_at else "",
            # Recorded any time within 30 days of creation: often after the conversion.
            "last_contacted_at": (created + timedelta(days=float(rng.uniform(0, 30)))).strftime("%Y-%m-%d %H:%M:%S"),
            "converted": "Yes" if converted else "No",
        })
    return out


def write(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def score(path: Path, tmp_path: Path, *args: str) -> tuple[int, dict | None]:
    report = tmp_path / "report.json"
    code = main(["score-file", str(path), "--out", str(tmp_path / "scores.csv"), "--report", str(report), *args])
    return code, json.loads(report.read_text()) if code == 0 else None


CLEAN = ("--label", "converted", "--id", "lead_id", "--exclude", "converted_at", "last_contacted_at")


def test_scores_every_lead_and_reports_both_aucs(tmp_path):
    path = write(tmp_path / "leads.csv", leads(), delimiter=";")
    code, report = score(path, tmp_path, *CLEAN)
    assert code == 0
    assert report["positive_value"] == "yes"
    assert report["features"] == {"numeric": ["visits"], "categorical": ["source"], "datetime": ["created_at"]}
    assert report["auc"] > 0.7 and report["baseline_auc"] > 0.7
    assert report["n_train"] + report["n_test"] == ROWS
    scores = list(csv.DictReader((tmp_path / "scores.csv").open()))
    assert len(scores) == ROWS and {s["split"] for s in scores} == {"train", "test"}
    assert sorted(int(s["predicted_rank"]) for s in scores)[0] == 1
    assert all(0 <= float(s["predicted_conversion"]) <= 1 for s in scores)
    # `Google` and `google ` are one category once trimmed and case-folded.
    assert report["single_column_auc"]["source"] > 0.5


def test_same_seed_same_scores_and_time_split_holds_out_the_latest(tmp_path):
    path = write(tmp_path / "leads.csv", leads())
    _, first = score(path, tmp_path, *CLEAN, "--seed", "5")
    first_scores = (tmp_path / "scores.csv").read_text()
    _, second = score(path, tmp_path, *CLEAN, "--seed", "5")
    assert first == second and (tmp_path / "scores.csv").read_text() == first_scores

    code, by_time = score(path, tmp_path, "--label", "converted", "--id", "lead_id", "--time", "created_at",
                          "--exclude", "converted_at", "last_contacted_at")
    assert code == 0 and by_time["split"].startswith("time (created_at")
    rows = {r["lead_id"]: r["created_at"] for r in leads()}
    split = {s["lead_id"]: s["split"] for s in csv.DictReader((tmp_path / "scores.csv").open())}
    assert max(rows[i] for i, s in split.items() if s == "train") <= min(rows[i] for i, s in split.items() if s == "test")


def test_column_equal_to_the_label_is_refused(tmp_path, capsys):
    rows = [{**r, "status": "won" if r["converted"] == "Yes" else "lost"} for r in leads()]
    code, _ = score(write(tmp_path / "leads.csv", rows), tmp_path, *CLEAN)
    assert code == 3
    err = capsys.readouterr().err
    assert "'status' alone predicts the label" in err and "--exclude" in err


def test_near_perfect_function_of_the_label_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = [{**r, "stage_points": (90 if r["converted"] == "Yes" else 10) + int(rng.integers(0, 5))
             if rng.random() > 0.002 else 50} for r in leads()]
    code, _ = score(write(tmp_path / "leads.csv", rows), tmp_path, *CLEAN)
    assert code == 3 and "'stage_points' alone predicts the label" in capsys.readouterr().err


def test_column_recorded_after_the_outcome_is_refused(tmp_path, capsys):
    path = write(tmp_path / "leads.csv", leads())
    code, _ = score(path, tmp_path, "--label", "converted", "--id", "lead_id", "--outcome-time", "converted_at")
    assert code == 3
    err = capsys.readouterr().err
    assert "'last_contacted_at' is recorded after the outcome" in err
    assert "created_at" not in err  # created before the conversion on every row: allowed

    # The outcome time itself is never a feature, and without the late column the file scores.
    code, report = score(path, tmp_path, "--label", "converted", "--id", "lead_id", "--outcome-time", "converted_at",
                         "--exclude", "last_contacted_at")
    assert code == 0 and report["dropped_columns"]["converted_at"] == "the outcome time"


@pytest.mark.parametrize(
    "change, args, message",
    [
        (None, ("--label", "won"), "--label column 'won' is not in the file"),
        (None, ("--label", "converted", "--exclude", "Tags"), "--exclude column 'Tags' is not in the file"),
        (None, ("--label", "converted", "--id", "nope"), "--id column 'nope' is not in the file"),
        (lambda r, i: {**r, "converted": ["Yes", "No", "Maybe"][i % 3]}, ("--label", "converted"),
         "label column 'converted' must be binary"),
        (lambda r, i: {**r, "converted": "No"}, ("--label", "converted"), "label column 'converted' has a single class"),
        (lambda r, i: {**r, "converted": "gold" if i % 2 else "silver"}, ("--label", "converted"),
         "say which one means converted with --positive"),
        (lambda r, i: {**r, "lead_id": "same"}, ("--label", "converted", "--id", "lead_id"),
         "--id column 'lead_id' has duplicate values"),
        (None, ("--label", "converted", "--time", "source"), "--time column 'source' is not a date/time column"),
    ],
)
def test_bad_input_is_named_and_exits_2(tmp_path, capsys, change, args, message):
    rows = leads()
    if change:
        rows = [change(r, i) for i, r in enumerate(rows)]
    code, _ = score(write(tmp_path / "leads.csv", rows), tmp_path, *args)
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "scores.csv").exists()


@pytest.mark.parametrize("content, message", [("", "is empty"), ("lead_id,converted\n", "has a header but no rows")])
def test_empty_file_exits_2(tmp_path, capsys, content, message):
    path = tmp_path / "leads.csv"
    path.write_text(content)
    assert score(path, tmp_path, "--label", "converted")[0] == 2
    assert message in capsys.readouterr().err


def test_missing_file_exits_2(tmp_path, capsys):
    assert score(tmp_path / "absent.csv", tmp_path, "--label", "converted")[0] == 2
    assert "absent.csv: no such file" in capsys.readouterr().err


def test_undeclared_conversion_time_is_refused_as_a_feature(tmp_path, capsys):
    # Only converted leads have a conversion time: its presence alone is the label.
    code, _ = score(write(tmp_path / "leads.csv", leads()), tmp_path,
                    "--label", "converted", "--id", "lead_id", "--exclude", "last_contacted_at")
    assert code == 3 and "'converted_at' alone predicts the label" in capsys.readouterr().err


def test_warehouse_snapshots_with_a_future_event_are_refused():
    import polars as pl

    from orchestration.scoring import LeakageError
    from orchestration.scoring.warehouse import check_features_precede_cutoff

    snapshots = pl.DataFrame({
        "profile_id": ["p1", "p2"],
        "cutoff_at": [datetime(2025, 12, 1)] * 2,
        "last_event_at": [datetime(2025, 11, 30), datetime(2025, 12, 1)],
    })
    with pytest.raises(LeakageError, match=r"'last_event_at' is at or after 'cutoff_at' on 1 snapshot row\(s\) \(e.g. profile p2"):
        check_features_precede_cutoff(snapshots)
    check_features_precede_cutoff(snapshots.head(1))
