"""Refuse features that give the outcome away.

Two kinds: a column that alone predicts the label almost perfectly (the label itself
under another name, or a field sales fills in after the deal), and a date/time
recorded after the outcome happened. Both are checked on training rows only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from orchestration.scoring.errors import LeakageError

# One column alone ranking converted above non-converted leads this well is not a signal, it is the answer.
SINGLE_COLUMN_AUC_LIMIT = 0.99


def single_column_auc(values: pd.Series, y: np.ndarray, seed: int) -> float:
    """How well this column alone separates the classes (0.5 = not at all, 1 = perfectly).

    Numbers rank as they are (missing lowest). Categories are replaced by the
    conversion rate of their category in the other folds, so a column with a distinct
    value on every row scores 0.5, not a memorised 1.0.
    """
    if not pd.api.types.is_numeric_dtype(values):
        encoded = np.full(len(values), y.mean())
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        for fit_idx, apply_idx in folds.split(values, y):
            rates = pd.Series(y[fit_idx]).groupby(values.iloc[fit_idx].to_numpy()).mean()
            encoded[apply_idx] = values.iloc[apply_idx].map(rates).fillna(y[fit_idx].mean()).to_numpy()
    else:
        numbers = values.to_numpy(dtype=float)
        finite = numbers[~np.isnan(numbers)]
        encoded = np.where(np.isnan(numbers), (finite.min() - 1) if finite.size else 0.0, numbers)
    auc = roc_auc_score(y, encoded)
    return max(auc, 1 - auc)


def recorded_after_outcome(values: pd.Series, outcome_days: np.ndarray) -> int:
    """Rows whose date/time lies after their own outcome time (both in days since 1970)."""
    numbers = values.to_numpy(dtype=float)
    both = ~np.isnan(numbers) & ~np.isnan(outcome_days)
    return int((numbers[both] > outcome_days[both]).sum())


def check_leakage(
    features: pd.DataFrame,
    y: np.ndarray,
    datetime_columns: list[str],
    *,
    outcome_days: np.ndarray | None = None,
    seed: int = 42,
) -> dict[str, float]:
    """Raise LeakageError naming every leaking column; else return each column's single-column AUC."""
    problems: list[str] = []
    aucs: dict[str, float] = {}
    for column in features.columns:
        aucs[column] = round(single_column_auc(features[column], y, seed), 4)
        if aucs[column] > SINGLE_COLUMN_AUC_LIMIT:
            problems.append(
                f"column {column!r} alone predicts the label (AUC {aucs[column]:.3f} > {SINGLE_COLUMN_AUC_LIMIT}): "
                f"it is the label or is filled in from the outcome"
            )
        if outcome_days is not None and column in datetime_columns:
            late = recorded_after_outcome(features[column], outcome_days)
            if late:
                problems.append(f"column {column!r} is recorded after the outcome on {late} converted row(s)")
    if problems:
        raise LeakageError("leakage: " + "; ".join(problems) + ". Drop it with --exclude (or fix the data) and rerun")
    return aucs
