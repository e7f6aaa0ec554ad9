"""The predictive lead score in the warehouse: train on earlier snapshots, judge on the latest
complete label window, score every profile as of now.

Called by the dbt Python models int_lead_scores__model (training + model card) and
int_lead_scores__predicted (scores). Rows come from int_lead_scores__snapshots.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from orchestration.scoring.errors import LeakageError, ScoringInputError
from orchestration.scoring.frame import ColumnPlan, model_frame, plan_columns
from orchestration.scoring.model import SCORE_THREADS, evaluate, one_thread, predict_in_chunks, thread_limits

# Columns of the snapshots that say which row it is, not what was known.
KEYS = ("snapshot_kind", "cutoff_at", "profile_id", "converted", "last_event_at")


@dataclass(frozen=True)
class LeadModelSettings:
    seed: int = 42
    cv_folds: int = 3
    min_converted: int = 10
    label_window_days: int = 30
    # A uniform sample of at most this many training rows is fitted (every row is still
    # scored and the held-out window judged in full): at a million profiles the training
    # windows hold millions of rows, and past a few hundred thousand a model of a dozen
    # features gains little but time (docs/lead_scoring.md).
    max_training_rows: int = 100_000


CARD_SCHEMA = pa.schema([
    ("status", pa.string()),
    ("status_reason", pa.string()),
    ("seed", pa.int64()),
    ("label_window_days", pa.int64()),
    ("train_cutoffs", pa.list_(pa.timestamp("us"))),
    ("test_cutoff", pa.timestamp("us")),
    ("fit_id", pa.string()),
    ("fitted_as_of", pa.timestamp("us")),
    ("model", pa.string()),
    ("features", pa.list_(pa.string())),
    ("categorical_features", pa.list_(pa.string())),
    ("n_train", pa.int64()),
    ("n_train_converted", pa.int64()),
    ("n_test", pa.int64()),
    ("n_test_converted", pa.int64()),
    ("base_rate", pa.float64()),
    ("auc", pa.float64()),
    ("baseline_auc", pa.float64()),
    ("brier", pa.float64()),
    ("baseline_brier", pa.float64()),
    ("log_loss", pa.float64()),
    ("cv_auc", pa.list_(pa.struct([("model", pa.string()), ("auc", pa.float64())]))),
    ("calibration", pa.list_(pa.struct([
        ("bin", pa.int64()), ("lower", pa.float64()), ("upper", pa.float64()), ("leads", pa.int64()),
        ("mean_predicted", pa.float64()), ("observed_rate", pa.float64())]))),
    ("top_contributions", pa.list_(pa.struct([
        ("feature", pa.string()), ("auc_drop", pa.float64()), ("std", pa.float64())]))),
    ("model_pickle", pa.binary()),
])

PREDICTION_SCHEMA = pa.schema([
    ("profile_id", pa.string()),
    ("predicted_conversion", pa.float64()),
    ("predicted_rank", pa.int64()),
])


def check_features_precede_cutoff(snapshots: pl.DataFrame) -> None:
    """Refuse snapshots whose features used anything from the cutoff on (the future of that row)."""
    late = snapshots.filter(pl.col("last_event_at") >= pl.col("cutoff_at"))
    if late.height:
        example = late.row(0, named=True)
        raise LeakageError(
            f"leakage: column 'last_event_at' is at or after 'cutoff_at' on {late.height} snapshot row(s) "
            f"(e.g. profile {example['profile_id']} at cutoff {example['cutoff_at']}): features must only use "
            f"events with occurred_at < cutoff_at"
        )


def _cutoffs(snapshots: pl.DataFrame, kind: str) -> list:
    return sorted(snapshots.filter(pl.col("snapshot_kind") == kind)["cutoff_at"].unique().to_list())


def _card(status: str, reason: str, settings: LeadModelSettings, snapshots: pl.DataFrame, fit: dict,
          **fields) -> pa.Table:
    test = _cutoffs(snapshots, "test")
    row = {name: None for name in CARD_SCHEMA.names} | {
        "status": status, "status_reason": reason, "seed": settings.seed,
        "label_window_days": settings.label_window_days, "train_cutoffs": _cutoffs(snapshots, "train"),
        "test_cutoff": test[0] if test else None,
        # The as_of the cutoffs were taken from: the held-out cutoff is one label window before it.
        "fitted_as_of": test[0] + timedelta(days=settings.label_window_days) if test else None,
    } | fit | fields
    return pa.Table.from_pylist([row], schema=CARD_SCHEMA)


@one_thread
def train_lead_model(snapshots: pl.DataFrame, settings: LeadModelSettings, *, fit_id: str | None = None,
                     fitted_as_of: datetime | None = None) -> pa.Table:
    """One model-card row. status 'trained' carries the pickled model; otherwise the reason there is none.
    fit_id / fitted_as_of: the fit of int_lead_scores__refit_schedule the snapshots were taken for
    (fitted_as_of defaults to the held-out cutoff plus one label window)."""
    fit = {"fit_id": fit_id} | ({"fitted_as_of": fitted_as_of} if fitted_as_of is not None else {})
    card = functools.partial(_card, settings=settings, snapshots=snapshots, fit=fit)
    check_features_precede_cutoff(snapshots)
    labelled = snapshots.filter(pl.col("snapshot_kind").is_in(["train", "test"]))
    converted = {kind: int(labelled.filter((pl.col("snapshot_kind") == kind) & pl.col("converted")).height)
                 for kind in ("train", "test")}
    if sum(converted.values()) == 0:
        return card("no_conversions", "no conversion falls in any label window (raw.conversions is empty "
                    "or too recent): predicted_conversion is null")
    if min(converted.values()) < settings.min_converted:
        return card("too_few_conversions", f"{converted['train']} converted leads in the training windows and "
                    f"{converted['test']} in the held-out window; {settings.min_converted} of each are needed "
                    "(var outflow_lead_model_min_converted): predicted_conversion is null")
    # The warehouse returns rows in any order; the sample, folds and early stopping depend on it.
    labelled = labelled.sort("cutoff_at", "profile_id")
    available = labelled.filter(pl.col("snapshot_kind") == "train").height
    if available > settings.max_training_rows:
        # Uniform, so the base rate and the calibration of the probabilities are kept.
        labelled = pl.concat([
            labelled.filter(pl.col("snapshot_kind") == "train").sample(n=settings.max_training_rows,
                                                                        seed=settings.seed),
            labelled.filter(pl.col("snapshot_kind") == "test")])
    sampled = (f"; fitted on a uniform sample of {settings.max_training_rows:,} of the {available:,} training rows "
               "(var outflow_lead_model_max_training_rows)" if available > settings.max_training_rows else "")
    labelled = labelled.with_columns(pl.col("converted").cast(pl.Int8)).sort("cutoff_at", "profile_id")
    plan = plan_columns(labelled.drop("snapshot_kind", "cutoff_at", "last_event_at"), "converted", "profile_id")
    features = model_frame(labelled, plan)
    y = labelled["converted"].to_numpy().astype(np.int8)
    kinds = labelled["snapshot_kind"].to_numpy()
    try:
        result = evaluate(features, y, plan.numeric, plan.categorical, np.flatnonzero(kinds == "train"),
                          np.flatnonzero(kinds == "test"), datetime_columns=plan.datetime, seed=settings.seed,
                          folds=settings.cv_folds, groups=labelled["profile_id"].to_numpy())
    except LeakageError:
        raise
    except ScoringInputError as exc:
        return card("not_trained", str(exc))
    return card(
        "trained", f"{result.model} chosen by {settings.cv_folds}-fold cross-validation on the training windows "
        f"(folds grouped by profile){sampled}",
        model=result.model, features=plan.features, categorical_features=plan.categorical,
        n_train=result.n_train, n_train_converted=result.n_train_positive,
        n_test=result.n_test, n_test_converted=result.n_test_positive, base_rate=result.base_rate,
        auc=result.auc, baseline_auc=result.baseline_auc, brier=result.brier, baseline_brier=result.baseline_brier,
        log_loss=result.log_loss, cv_auc=[{"model": k, "auc": v} for k, v in result.cv_auc.items()],
        calibration=result.calibration, top_contributions=result.contributions,
        model_pickle=pickle.dumps({"estimator": result.estimator, "plan": plan}),
    )


@thread_limits(SCORE_THREADS)
def score_profiles(card: pa.Table, snapshot: pa.Table | pl.DataFrame) -> pa.Table:
    """Probability and rank (1 = most likely) for every profile of the score snapshot; null without a model."""
    rows = snapshot if isinstance(snapshot, pl.DataFrame) else pl.from_arrow(snapshot)
    rows = rows.filter(pl.col("snapshot_kind") == "score")
    blob = card.column("model_pickle")[0].as_py() if card.num_rows else None
    if blob is None or rows.height == 0:
        return pa.table({"profile_id": rows["profile_id"].to_arrow(),
                         "predicted_conversion": pa.nulls(rows.height, pa.float64()),
                         "predicted_rank": pa.nulls(rows.height, pa.int64())}, schema=PREDICTION_SCHEMA)
    saved = pickle.loads(blob)  # written by train_lead_model in this warehouse, same pinned scikit-learn
    plan: ColumnPlan = saved["plan"]
    probability = predict_in_chunks(saved["estimator"], model_frame(rows, plan))
    scored = rows.select(
        "profile_id",
        predicted_conversion=pl.Series(np.round(probability, 6)),
        # Ranked on the unrounded probability: rounding must not make ties.
        predicted_rank=pl.Series(probability).rank(method="min", descending=True).cast(pl.Int64))
    return scored.to_arrow().cast(PREDICTION_SCHEMA)
