"""Select, fit and evaluate the conversion model; the same code for the warehouse and score-file.

Three candidates are compared by cross-validated AUC on the training rows only:
gradient boosting (HistGradientBoostingClassifier, native missing values and
categories), a logistic regression, and their average. The winner is fitted on all
training rows and judged once on the held-out rows, beside a plain logistic
regression (one-hot + standardised) fitted on the same rows and columns.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from orchestration.scoring.errors import ScoringInputError
from orchestration.scoring.frame import MIN_CATEGORY_COUNT
from orchestration.scoring.leakage import check_leakage

CALIBRATION_BINS = 10
TOP_CONTRIBUTIONS = 10


def stratified_split(y: np.ndarray, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row positions for training and held-out rows, both with the label's class balance."""
    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=test_share, stratify=y, random_state=seed)
    return np.sort(train), np.sort(test)


def time_split(times: np.ndarray, y: np.ndarray, test_share: float, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The earliest leads train, the latest (test_share of rows) are held out; rows without a time train."""
    order = np.argsort(np.where(np.isnan(times), -np.inf, times), kind="stable")
    cut = int(round(len(order) * (1 - test_share)))
    train, test = np.sort(order[:cut]), np.sort(order[cut:])
    for name, idx in (("training", train), ("held-out", test)):
        if len(set(y[idx])) < 2:
            raise ScoringInputError(
                f"the {name} period by --time {column!r} has a single class: too few conversions to split by time"
            )
    return train, test


def _boosting(numeric: list[str], categorical: list[str], seed: int) -> Pipeline:
    encode = ColumnTransformer(
        [("numbers", "passthrough", numeric),
         ("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                       min_frequency=MIN_CATEGORY_COUNT, max_categories=200), categorical)],
        verbose_feature_names_out=False,
    )
    model = HistGradientBoostingClassifier(
        learning_rate=0.05, max_iter=400, max_leaf_nodes=15, min_samples_leaf=30, l2_regularization=1.0,
        early_stopping=True, validation_fraction=0.15, n_iter_no_change=30,
        categorical_features=[False] * len(numeric) + [True] * len(categorical), random_state=seed,
    )
    return make_pipeline(encode, model)


def _logistic(numeric: list[str], categorical: list[str], *, plain: bool) -> Pipeline:
    """plain: the textbook baseline (median-imputed standardised numbers, one-hot categories).
    Otherwise missing-value indicators are added and rare categories pooled."""
    numbers = make_pipeline(SimpleImputer(strategy="median", add_indicator=not plain), StandardScaler())
    onehot = (OneHotEncoder(handle_unknown="ignore") if plain
              else OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5))
    encode = ColumnTransformer([("numbers", numbers, numeric), ("categories", onehot, categorical)])
    return make_pipeline(encode, LogisticRegression(max_iter=5000))


CANDIDATES = ("gradient_boosting", "logistic_regression", "average_of_both")


def candidate(name: str, numeric: list[str], categorical: list[str], seed: int):
    if name == "gradient_boosting":
        return _boosting(numeric, categorical, seed)
    if name == "logistic_regression":
        return _logistic(numeric, categorical, plain=False)
    return VotingClassifier(
        [("boosting", _boosting(numeric, categorical, seed)),
         ("logistic", _logistic(numeric, categorical, plain=False))], voting="soft")


def baseline(numeric: list[str], categorical: list[str]) -> Pipeline:
    return _logistic(numeric, categorical, plain=True)


def reliability_bins(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> list[dict]:
    """Predicted against observed conversion rate in `bins` equal-count groups of leads ordered by
    prediction (deciles): with rare conversions, equal-width bins would put nearly everyone in one."""
    order = np.argsort(p, kind="stable")
    out = []
    for number, members in enumerate(np.array_split(order, min(bins, len(p))), start=1):
        out.append({"bin": number, "lower": round(float(p[members].min()), 4),
                    "upper": round(float(p[members].max()), 4), "leads": int(members.size),
                    "mean_predicted": round(float(p[members].mean()), 4),
                    "observed_rate": round(float(y[members].mean()), 4)})
    return out


@dataclass
class Evaluation:
    """What the held-out period says about the fitted model; `estimator` scores new leads."""

    model: str
    auc: float
    baseline_auc: float
    brier: float
    baseline_brier: float
    log_loss: float
    base_rate: float
    n_train: int
    n_train_positive: int
    n_test: int
    n_test_positive: int
    cv_auc: dict[str, float]
    single_column_auc: dict[str, float]
    calibration: list[dict]
    contributions: list[dict]
    estimator: object = field(repr=False)

    def report(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "estimator"}


def one_thread(function):
    """Run on one thread: on a shared machine OpenMP's thread per core makes boosting 20x slower."""
    return thread_limits(1)(function)


# Scoring with boosting splits the rows among OpenMP threads, each row scored whole by one
# thread (so the result does not depend on how many): large chunks, which scale, unlike the
# small steps of a fit. At a million profiles 2 threads nearly halve it. BLAS stays on one
# thread: the logistic half's products got slower with two.
SCORE_THREADS = {"openmp": max(1, min(4, os.cpu_count() or 1)), "blas": 1}


def thread_limits(limits: int | dict[str, int]):
    """Run with OpenMP and BLAS limited to `limits` threads (a number, or one per API)."""

    def decorate(function):
        @functools.wraps(function)
        def wrapped(*args, **kwargs):
            with threadpool_limits(limits=limits):
                return function(*args, **kwargs)

        return wrapped

    return decorate


# Rows scored per call: each row is scored on its own, so the result is the same, while the
# transformers' arrays stay small enough to be reused from one chunk to the next. Scoring
# 1M rows in one call built 1M-row arrays in fresh memory: 7.4 s against 4.4 s, 2.2 GB
# against 1.8 GB peak.
SCORE_CHUNK_ROWS = 50_000


def predict_in_chunks(estimator, frame) -> np.ndarray:
    """P(converted) for every row of `frame`, SCORE_CHUNK_ROWS at a time."""
    if len(frame) == 0:
        return np.empty(0)
    return np.concatenate([estimator.predict_proba(frame.iloc[start:start + SCORE_CHUNK_ROWS])[:, 1]
                           for start in range(0, len(frame), SCORE_CHUNK_ROWS)])


def cross_validated_auc(
    x: pd.DataFrame, y: np.ndarray, numeric: list[str], categorical: list[str], folds: int, seed: int,
    groups: np.ndarray | None = None,
) -> dict[str, float]:
    """Mean held-out-fold AUC of each candidate. The average is scored from the same two fits per
    fold as its parts, so comparing three candidates costs two. With `groups` (e.g. the profile of
    each snapshot row) a group never sits on both sides of a fold: a model that memorises a
    person must not be rewarded for recognising them."""
    n_splits = min(folds, int(np.bincount(y).min()))
    if groups is None:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    scores: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    for fit_idx, check_idx in splitter.split(x, y, groups):
        x_fit, x_check, y_check = x.iloc[fit_idx], x.iloc[check_idx], y[check_idx]
        p_boost = _boosting(numeric, categorical, seed).fit(x_fit, y[fit_idx]).predict_proba(x_check)[:, 1]
        p_logit = _logistic(numeric, categorical, plain=False).fit(x_fit, y[fit_idx]).predict_proba(x_check)[:, 1]
        for name, p in zip(CANDIDATES, (p_boost, p_logit, (p_boost + p_logit) / 2)):
            scores[name].append(roc_auc_score(y_check, p))
    return {name: round(float(np.mean(values)), 4) for name, values in scores.items()}


@one_thread
def evaluate(
    features: pd.DataFrame,
    y: np.ndarray,
    numeric: list[str],
    categorical: list[str],
    train: np.ndarray,
    test: np.ndarray,
    *,
    datetime_columns: list[str] = (),
    outcome_days: np.ndarray | None = None,
    seed: int = 42,
    folds: int = 5,
    groups: np.ndarray | None = None,
    contribution_repeats: int = 3,
    max_contribution_rows: int = 25_000,
) -> Evaluation:
    """Leakage check, model selection and fit on `train`; metrics on `test` (row positions)."""
    numeric = list(numeric) + list(datetime_columns)
    x_train, y_train = features.iloc[train], y[train]
    x_test, y_test = features.iloc[test], y[test]
    for name, labels in (("training", y_train), ("held-out", y_test)):
        if len(set(labels)) < 2:
            raise ScoringInputError(f"the {name} rows have a single class: too few conversions to evaluate")
    single = check_leakage(
        x_train, y_train, list(datetime_columns),
        outcome_days=None if outcome_days is None else outcome_days[train], seed=seed,
    )
    cv_auc = cross_validated_auc(x_train, y_train, numeric, categorical, folds, seed,
                                 None if groups is None else groups[train])
    chosen = max(cv_auc, key=cv_auc.get)
    model = candidate(chosen, numeric, categorical, seed).fit(x_train, y_train)
    plain = baseline(numeric, categorical).fit(x_train, y_train)
    p, p_plain = model.predict_proba(x_test)[:, 1], plain.predict_proba(x_test)[:, 1]
    # Permutation importance predicts the held-out rows once per feature and repeat: on a
    # seeded, class-stratified sample of them when there are more than max_contribution_rows.
    x_imp, y_imp = x_test, y_test
    if len(y_test) > max_contribution_rows:
        keep, _ = stratified_split(y_test, 1 - max_contribution_rows / len(y_test), seed)
        x_imp, y_imp = x_test.iloc[keep], y_test[keep]
    importance = permutation_importance(
        model, x_imp, y_imp, scoring="roc_auc", n_repeats=contribution_repeats, random_state=seed
    )
    ranked = sorted(zip(features.columns, importance.importances_mean, importance.importances_std),
                    key=lambda item: -item[1])[:TOP_CONTRIBUTIONS]
    return Evaluation(
        model=chosen,
        auc=round(float(roc_auc_score(y_test, p)), 4),
        baseline_auc=round(float(roc_auc_score(y_test, p_plain)), 4),
        brier=round(float(brier_score_loss(y_test, p)), 4),
        baseline_brier=round(float(brier_score_loss(y_test, p_plain)), 4),
        log_loss=round(float(log_loss(y_test, p)), 4),
        base_rate=round(float(y_test.mean()), 4),
        n_train=len(train), n_train_positive=int(y_train.sum()),
        n_test=len(test), n_test_positive=int(y_test.sum()),
        cv_auc=cv_auc,
        single_column_auc=single,
        calibration=reliability_bins(y_test, p),
        contributions=[{"feature": f, "auc_drop": round(float(m), 4), "std": round(float(s), 4)} for f, m, s in ranked],
        estimator=model,
    )
