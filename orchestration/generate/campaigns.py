"""raw.email_events: newsletters every third day to consenting subscribers, with realistic outcomes."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl

from .people import DAY
from .rng import stream
from .window import Window

CAMPAIGN_EVERY_DAYS = 3
SEND_HOUR = 10
AUDIENCE_SHARE = 0.3
EVENT_TYPES = ("sent", "delivered", "open", "click", "bounce", "unsubscribe", "spam_report")
SENT, DELIVERED, OPEN, CLICK, BOUNCE, UNSUB, SPAM = range(7)
NEVER = 2**40


def campaign_days(window: Window) -> list[int]:
    """Epoch days (days since 1970-01-01) inside the window on which a campaign goes out."""
    first = -(-window.start // DAY)
    return [d for d in range(first, window.end // DAY + 1) if d % CAMPAIGN_EVERY_DAYS == 0 and window.start <= d * DAY + SEND_HOUR * 3600 < window.end]


def campaign_id(epoch_day: int) -> str:
    return "cmp-" + datetime.fromtimestamp(epoch_day * DAY, tz=timezone.utc).strftime("%Y%m%d")


def email_events(people: pl.DataFrame, window: Window, seed: int, chunk: int) -> tuple[pl.DataFrame, np.ndarray]:
    """Events for one chunk of people, and their updated `suppressed_at` (unsubscribe, spam, hard bounce)."""
    rng = stream(seed, f"email:{chunk}", window.day)
    n = len(people)
    has_email = people["esp_email"].is_not_null().to_numpy()
    consent = people["email_consent"].to_numpy()
    since = people["esp_since"].fill_null(NEVER).to_numpy()
    deleted = people["deleted_at"].fill_null(NEVER).to_numpy()
    dead = people["mailbox_dead"].to_numpy()
    open_rate = people["open_rate"].to_numpy() * np.where((people["archetype"] == "lapsed").to_numpy(), 0.3, 1.0)
    click_rate = np.clip(0.12 * np.exp(0.4 * people["intent"].to_numpy()), 0, 0.5)
    unsub_rate = np.where((people["archetype"] == "lapsed").to_numpy(), 0.006, 0.0025)
    suppressed = people["suppressed_at"].fill_null(NEVER).to_numpy().copy()
    parts = []
    for day in campaign_days(window):
        send = day * DAY + SEND_HOUR * 3600
        eligible = has_email & consent & (since <= send) & (suppressed > send) & (deleted > send)
        who = np.flatnonzero(eligible & (rng.random(n) < AUDIENCE_SHARE))
        k = len(who)
        sent_ts = send + rng.integers(0, 3600, k)
        bounce = dead[who] | (rng.random(k) < 0.025)
        deliv = ~bounce
        deliv_ts = sent_ts + rng.integers(1, 90, k)
        opened = deliv & (rng.random(k) < open_rate[who])
        open_ts = deliv_ts + rng.exponential(6 * 3600, k).astype(np.int64)
        again = opened & (rng.random(k) < 0.25)
        again_ts = open_ts + rng.exponential(12 * 3600, k).astype(np.int64)
        clicked = opened & (rng.random(k) < click_rate[who])
        click_ts = open_ts + rng.integers(5, 300, k)
        unsub = deliv & (rng.random(k) < unsub_rate[who])
        unsub_ts = np.where(opened, open_ts, deliv_ts) + rng.integers(10, 600, k)
        spam = deliv & ~unsub & (rng.random(k) < 0.0004)
        spam_ts = deliv_ts + rng.integers(60, 7200, k)
        rows = [
            (who, sent_ts, SENT), (who[deliv], deliv_ts[deliv], DELIVERED), (who[bounce], deliv_ts[bounce], BOUNCE),
            (who[opened], open_ts[opened], OPEN), (who[again], again_ts[again], OPEN),
            (who[clicked], click_ts[clicked], CLICK), (who[unsub], unsub_ts[unsub], UNSUB), (who[spam], spam_ts[spam], SPAM),
        ]
        parts.append(
            pl.DataFrame(
                {
                    "i": np.concatenate([r[0] for r in rows]),
                    "ts": np.concatenate([r[1] for r in rows]),
                    "etype": np.concatenate([np.full(len(r[0]), r[2], dtype=np.int8) for r in rows]),
                    "campaign_id": campaign_id(day),
                }
            )
        )
        hard = dead[who] & bounce
        stop = np.minimum(np.where(unsub, unsub_ts, NEVER), np.where(spam, spam_ts, NEVER))
        stop = np.minimum(stop, np.where(hard, deliv_ts, NEVER))
        suppressed[who] = np.minimum(suppressed[who], stop)
    if not parts:
        return _empty(), suppressed
    ev = pl.concat(parts).join(
        people.select(pl.int_range(pl.len()).alias("i"), "person_id", "esp_email"), on="i", how="left"
    ).sort("ts", "person_id", "etype")
    return (
        ev.select(
            "person_id", "ts", email="esp_email", campaign_id="campaign_id",
            event_type=pl.col("etype").replace_strict(dict(enumerate(EVENT_TYPES)), return_dtype=pl.String),
        ),
        suppressed,
    )


def _empty() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"person_id": pl.Int64, "ts": pl.Int64, "email": pl.String, "campaign_id": pl.String, "event_type": pl.String}
    )
