"""`outflow score-file`: the warehouse's lead-scoring method on a lead list a team brings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from orchestration.scoring.errors import ScoringInputError
from orchestration.scoring.frame import binary_label, model_frame, parse_datetime, plan_columns, read_leads_csv
from orchestration.scoring.model import Evaluation, evaluate, predict_in_chunks, stratified_split, time_split

ROW_NUMBER = "row_number"


@dataclass
class ScoreFileRequest:
    path: Path
    label: str
    id_column: str | None = None
    exclude: tuple[str, ...] = ()
    time_column: str | None = None
    outcome_time_column: str | None = None
    positive: str | None = None
    test_share: float = 0.25
    seed: int = 42


def _days(frame: pl.DataFrame, column: str, flag: str) -> np.ndarray:
    parsed = parse_datetime(frame[column])
    if parsed is None:
        raise ScoringInputError(f"{flag} column {column!r} is not a date/time column (expected e.g. 2024-05-31 or 2024-05-31T12:00:00)")
    return (parsed.dt.epoch("s").cast(pl.Float64) / 86_400).fill_null(np.nan).to_numpy().astype(float)


def score_file(request: ScoreFileRequest) -> tuple[pl.DataFrame, dict, Evaluation]:
    """Scores for every labelled lead (id, probability, rank, split) and the metrics report."""
    frame = read_leads_csv(request.path)
    plan = plan_columns(frame, request.label, request.id_column, list(request.exclude),
                        request.time_column, request.outcome_time_column)
    y_all, labelled, positive = binary_label(frame[request.label], request.positive)
    ids = (frame[request.id_column].cast(pl.String) if request.id_column
           else pl.Series(ROW_NUMBER, np.arange(1, frame.height + 1)))
    frame, y, ids = frame.filter(pl.Series(labelled)), y_all[labelled], ids.filter(pl.Series(labelled))
    if request.id_column and ids.is_duplicated().any():
        raise ScoringInputError(f"--id column {request.id_column!r} has duplicate values (e.g. {ids.filter(ids.is_duplicated())[0]!r}): ids must be unique")
    if int(y.sum()) < 10 or int(len(y) - y.sum()) < 10:
        raise ScoringInputError(f"label column {request.label!r} has {int(y.sum())} converted and {int(len(y) - y.sum())} "
                                f"other leads: at least 10 of each are needed to train and evaluate")
    features = model_frame(frame, plan)
    outcome_days = (_days(frame, request.outcome_time_column, "--outcome-time")
                    if request.outcome_time_column else None)
    if request.time_column:
        train, test = time_split(_days(frame, request.time_column, "--time"), y, request.test_share, request.time_column)
        split_by = f"time ({request.time_column}: latest {request.test_share:.0%} held out)"
    else:
        train, test = stratified_split(y, request.test_share, request.seed)
        split_by = f"stratified random ({request.test_share:.0%} held out, seed {request.seed})"
    result = evaluate(features, y, plan.numeric, plan.categorical, train, test,
                      datetime_columns=plan.datetime, outcome_days=outcome_days, seed=request.seed)
    probability = predict_in_chunks(result.estimator, features)
    split = np.full(len(y), "train", dtype=object)
    split[test] = "test"
    scores = pl.DataFrame({
        request.id_column or ROW_NUMBER: ids,
        "predicted_conversion": np.round(probability, 6),
        "predicted_rank": pl.Series(probability).rank(method="min", descending=True).cast(pl.Int64),
        "split": split.tolist(),
        "converted": y.astype(int),
    })
    report = {
        "file": str(request.path),
        "label": request.label,
        "positive_value": positive,
        "id": request.id_column or f"{ROW_NUMBER} (1 = first data line)",
        "rows": int(labelled.size),
        "rows_without_label": int((~labelled).sum()),
        "split": split_by,
        "seed": request.seed,
        "features": {"numeric": plan.numeric, "categorical": plan.categorical, "datetime": plan.datetime},
        "dropped_columns": plan.dropped,
        **result.report(),
        "auc_minus_baseline": round(result.auc - result.baseline_auc, 4),
    }
    return scores, report, result


def write_outputs(scores: pl.DataFrame, report: dict, out: Path | None, report_path: Path | None) -> None:
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        scores.write_csv(out)
    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
