"""raw.orders: purchases by shop customers, heavier for VIPs, stopping for lapsed customers."""

from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .rng import stream
from .window import Window, active_span, draw_times

ORDER_RATE = {"active": 0.0025, "vip": 0.035, "lapsed": 0.008, "new": 0.01, "abandoner": 0.002, "dormant": 0.0}
STATUSES = ("completed", "refunded", "cancelled", "pending")
PENDING_SECONDS = 3 * 86_400


def build_orders(people: pl.DataFrame, window: Window, seed: int) -> pl.DataFrame:
    """Contract columns plus person_id and ts (epoch seconds) for linking web funnel events."""
    rng = stream(seed, "orders", window.day)
    shop = people.filter(pl.col("in_shop") & pl.col("shop_contact_id").is_not_null())
    lo, hi = active_span(shop, window, not_before="shop_created")
    if window.day == 0:
        # Cart abandoners have not bought in the last week (their recent cart is planted by web.py).
        abandoner = (shop["archetype"] == "abandoner").to_numpy()
        hi = np.where(abandoner, np.minimum(hi, window.end - 8 * 86_400), hi)
    base = shop["archetype"].replace_strict(ORDER_RATE, return_dtype=pl.Float64).to_numpy()
    rate = base * np.exp(0.3 * shop["intent"].to_numpy())
    idx, ts = draw_times(rng, lo, hi, rate)
    n = len(idx)
    sub = shop[idx]
    vip = (sub["archetype"] == "vip").to_numpy()
    amount = np.round(np.exp(rng.normal(np.log(60), 0.8, n)) * np.where(vip, 2.5, 1.0) + 5, 2)
    currency = sub["country"].replace_strict(vocab.CURRENCY, return_dtype=pl.String).to_numpy().astype(object)
    other = rng.random(n)
    currency = np.where(other < 0.04, np.array(["USD", "EUR", "GBP"], dtype=object)[rng.integers(0, 3, n)], currency)
    currency = np.where((other > 0.97), np.char.lower(currency.astype(str)).astype(object), currency)
    status = np.array(STATUSES)[rng.choice(4, n, p=[0.86, 0.05, 0.05, 0.04])]
    status = np.where((status == "pending") & (ts < window.end - PENDING_SECONDS), "completed", status)
    guest = rng.random(n) < 0.07
    no_email = rng.random(n) < 0.08
    df = sub.select("person_id", "shop_contact_id", "shop_email", "esp_email").with_columns(
        ts=pl.Series(ts, dtype=pl.Int64),
        amount=pl.Series(amount),
        currency=pl.Series(currency.astype(str)),
        status=pl.Series(status.astype(str)),
        _guest=pl.Series(guest),
        _no_email=pl.Series(no_email),
    )
    df = df.with_columns(
        contact_id=pl.when(~pl.col("_guest")).then("shop_contact_id"),
        # Guests always leave an address; known customers sometimes do not.
        email=pl.when(pl.col("_guest")).then(pl.coalesce("shop_email", "esp_email"))
        .when(~pl.col("_no_email")).then("shop_email"),
    )
    df = df.sort("ts", "person_id", "amount").with_row_index("seq")
    return df.with_columns(
        order_id=pl.format("ord-{}-{}", pl.lit(f"{window.day:03d}"), pl.col("seq").cast(pl.String).str.zfill(8)),
        ordered_at=pl.from_epoch("ts", time_unit="s"),
    ).select("order_id", "contact_id", "email", "amount", "currency", "status", "ordered_at", "person_id", "ts")
