"""raw.consent_events and raw.deletion_requests."""

from __future__ import annotations

import numpy as np
import polars as pl

from . import dirty
from .rng import stream
from .window import Window

GRANT_SOURCES = ("web_form", "checkout", "crm_import", "double_opt_in")
PREFERENCE_REVOKE_PER_DAY = 0.04 / 180
DELETION_SHARE_HISTORY = 0.004  # of people over the 180-day history
DELETION_PER_DAY = 0.001  # of people per day step (high, so small samples show some)
CONSENT_COLUMNS = ("email", "phone", "channel", "status", "source", "occurred_at")


def grants(people: pl.DataFrame, seed: int, day: int, since: int | None = None) -> pl.DataFrame:
    """Opt-ins at the moment each person's address (or phone) became known; `since` keeps only newer ones."""
    rng = stream(seed, "consent:grants", day)
    n = len(people)
    p = people.with_columns(
        _src=pl.Series(np.array(GRANT_SOURCES)[rng.integers(0, len(GRANT_SOURCES), n)]),
        _delay=pl.Series(rng.integers(0, 900, n)),
        _with_email=pl.Series(rng.random(n) < 0.5),
    )
    at = pl.col("esp_since") + pl.col("_delay")
    email = p.filter(pl.col("email_consent") & pl.col("esp_email").is_not_null()).select(
        "person_id", ts=at, email="esp_email", phone=pl.lit(None, dtype=pl.String), channel=pl.lit("email"), source="_src"
    )
    ads = p.filter(pl.col("ads_consent") & pl.col("esp_email").is_not_null()).select(
        "person_id", ts=at + 5, email="esp_email", phone=pl.lit(None, dtype=pl.String), channel=pl.lit("ads"), source="_src"
    )
    sms = p.filter(pl.col("sms_consent") & pl.col("consent_phone").is_not_null()).select(
        "person_id",
        ts=pl.coalesce("esp_since", "first_created") + pl.col("_delay") + 10,
        email=pl.when("_with_email").then("esp_email"),
        phone="consent_phone",
        channel=pl.lit("sms"),
        source="_src",
    )
    out = pl.concat([email, ads, sms]).with_columns(status=pl.lit("granted"))
    if since is not None:
        out = out.filter(pl.col("ts") >= since)
    return out


def revocations(people: pl.DataFrame, email_events: pl.DataFrame, window: Window, seed: int) -> pl.DataFrame:
    """Unsubscribes and spam reports (ESP webhook) plus preference-centre opt-outs for sms and ads."""
    rng = stream(seed, "consent:revocations", window.day)
    hooks = email_events.filter(pl.col("event_type").is_in(["unsubscribe", "spam_report"])).select(
        "person_id", ts=pl.col("ts") + 30, email="email", phone=pl.lit(None, dtype=pl.String),
        channel=pl.lit("email"), source=pl.lit("esp_webhook"),
    )
    n = len(people)
    share = PREFERENCE_REVOKE_PER_DAY * window.days
    u = rng.random(n)
    when = window.start + (rng.random(n) * (window.end - window.start)).astype(np.int64)
    p = people.with_columns(_u=pl.Series(u), _ts=pl.Series(when))
    after = pl.col("_ts") > pl.coalesce("esp_since", "first_created") + 3600
    sms = p.filter(pl.col("sms_consent") & pl.col("consent_phone").is_not_null() & (pl.col("_u") < share) & after).select(
        "person_id", ts="_ts", email=pl.lit(None, dtype=pl.String), phone="consent_phone", channel=pl.lit("sms"),
        source=pl.lit("preference_center"),
    )
    ads = p.filter(pl.col("ads_consent") & pl.col("esp_email").is_not_null() & (pl.col("_u") > 1 - share) & after).select(
        "person_id", ts="_ts", email="esp_email", phone=pl.lit(None, dtype=pl.String), channel=pl.lit("ads"),
        source=pl.lit("preference_center"),
    )
    return pl.concat([hooks, sms, ads]).with_columns(status=pl.lit("revoked"))


def finish(events: pl.DataFrame) -> pl.DataFrame:
    return events.sort("ts", "person_id", "channel", "status").with_columns(
        occurred_at=pl.from_epoch("ts", time_unit="s")
    ).select(*CONSENT_COLUMNS, "person_id")


def deletions(people: pl.DataFrame, window: Window, seed: int) -> pl.DataFrame:
    """A few people ask to be forgotten; their address as they typed it (case/spaces vary)."""
    rng = stream(seed, "deletions", window.day)
    n = len(people)
    p = people.with_columns(
        _u=pl.Series(rng.random(n)),
        _ts=pl.Series(window.start + (rng.random(n) * (window.end - window.start)).astype(np.int64)),
        _case=pl.Series(rng.random(n)),
        _space=pl.Series(rng.random(n)),
    )
    chosen = p.filter(
        pl.col("esp_email").is_not_null() & pl.col("deleted_at").is_null() & (pl.col("_u") < (DELETION_SHARE_HISTORY if window.day == 0 else DELETION_PER_DAY * window.days))
        & (pl.col("_ts") > pl.col("esp_since"))
    )
    return chosen.sort("_ts", "person_id").select(
        "person_id",
        ts="_ts",
        email=dirty.email_variant(pl.col("esp_email").str.to_lowercase(), pl.col("_case"), pl.col("_space")),
        requested_at=pl.from_epoch("_ts", time_unit="s"),
    )
