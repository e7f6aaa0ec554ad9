"""The slice of time one generation step covers, and each person's active part of it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .people import DAY


@dataclass(frozen=True)
class Window:
    start: int  # epoch seconds, inclusive
    end: int  # epoch seconds, exclusive
    day: int  # 0 = the initial history, D >= 1 = the D-th day step

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY


def active_span(people: pl.DataFrame, window: Window, not_before: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per person, [lo, hi) = window ∩ activity (∩ after `not_before`, ∩ before deletion); hi <= lo means none."""
    lo = np.maximum(people["act_start"].to_numpy(), window.start)
    if not_before is not None:
        nb = people[not_before].fill_null(2**40).to_numpy()
        lo = np.maximum(lo, nb)
    hi = np.minimum(people["act_end"].to_numpy(), window.end)
    if "deleted_at" in people.columns:
        hi = np.minimum(hi, people["deleted_at"].fill_null(2**40).to_numpy())
    return lo, hi


def draw_times(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, rate_per_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts over each person's span; returns (row index per event, epoch seconds)."""
    span = np.clip(hi - lo, 0, None)
    counts = rng.poisson(np.clip(rate_per_day, 0, None) * span / DAY)
    idx = np.repeat(np.arange(len(lo)), counts)
    ts = lo[idx] + (rng.random(len(idx)) * span[idx]).astype(np.int64)
    return idx, ts
