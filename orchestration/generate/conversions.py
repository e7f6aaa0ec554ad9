"""raw.conversions drawn from each person's planted propensity (fit + behaviour)."""

from __future__ import annotations

import numpy as np
import polars as pl

from .people import HISTORY_DAYS
from .rng import stream
from .window import Window, active_span


def build_conversions(people: pl.DataFrame, window: Window, seed: int) -> pl.DataFrame:
    rng = stream(seed, "conversions", window.day)
    known = people.with_columns(_known=pl.min_horizontal("identified_at", "esp_since"))
    lo, hi = active_span(known, window, not_before="_known")
    span_days = np.clip(hi - lo, 0, None) / 86_400
    # propensity = P(convert within the 180-day history); spread evenly over days.
    p = 1 - (1 - known["propensity"].to_numpy()) ** (span_days / HISTORY_DAYS)
    hit = np.flatnonzero((span_days > 0) & (rng.random(len(known)) < p))
    ts = lo[hit] + (rng.random(len(hit)) * (hi[hit] - lo[hit])).astype(np.int64)
    sub = known[hit].with_columns(ts=pl.Series(ts, dtype=pl.Int64), _v=pl.Series(rng.normal(0, 0.6, len(hit))))
    size = pl.col("employee_count").fill_null(5).cast(pl.Float64)
    return sub.select(
        "person_id",
        "ts",
        contact_id=pl.coalesce("web_contact_id", "shop_contact_id"),
        email=pl.when(pl.col("_v") > -0.9).then("esp_email"),
        converted_at=pl.from_epoch("ts", time_unit="s"),
        value=((200 + 30 * size.log1p() ** 2) * pl.col("_v").exp()).round(2),
    ).filter(pl.col("contact_id").is_not_null() | pl.col("email").is_not_null()).sort("ts", "person_id")
