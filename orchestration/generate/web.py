"""raw.web_events: sessions of page views with a marketing/checkout funnel, anonymous until identified."""

from __future__ import annotations

import numpy as np
import polars as pl

from . import vocab
from .people import DAY, hex_ids
from .rng import stream
from .window import Window, active_span, draw_times

SESSION_RATE = {"active": 0.03, "vip": 0.07, "lapsed": 0.035, "new": 0.2, "abandoner": 0.06, "dormant": 0.0}
EVENT_TYPES = ("page_view", "form_submit", "add_to_cart", "checkout_start", "signup")
# path kinds: 0 home, 1 blog, 2 product, 3 pricing, 4 demo, 5 cart, 6 checkout
PV, FORM, CART, CHECKOUT, SIGNUP = range(5)
ANONYMOUS_VISITORS_PER_PROFILE_DAY = 1 / 180


def _url(kind: pl.Expr, slug: pl.Expr) -> pl.Expr:
    blog = pl.lit(None, dtype=pl.String)
    product = pl.lit(None, dtype=pl.String)
    for i, s in enumerate(vocab.BLOG_SLUGS):
        blog = pl.when(slug % len(vocab.BLOG_SLUGS) == i).then(pl.lit(f"/blog/{s}")).otherwise(blog)
    for i, s in enumerate(vocab.PRODUCT_SLUGS):
        product = pl.when(slug % len(vocab.PRODUCT_SLUGS) == i).then(pl.lit(f"/product/{s}")).otherwise(product)
    path = (
        pl.when(kind == 0).then(pl.lit("/")).when(kind == 1).then(blog).when(kind == 2).then(product)
        .when(kind == 3).then(pl.lit("/pricing")).when(kind == 4).then(pl.lit("/demo"))
        .when(kind == 5).then(pl.lit("/cart")).otherwise(pl.lit("/checkout"))
    )
    # Some trackers keep the query string.
    tagged = pl.concat_str([path, pl.lit("?utm_source=newsletter&utm_medium=email")])
    return pl.concat_str([pl.lit(vocab.SITE), pl.when(slug % 23 == 0).then(tagged).otherwise(path)])


def _events(rows: list[tuple[np.ndarray, np.ndarray, int | np.ndarray, int | np.ndarray]]) -> tuple[np.ndarray, ...]:
    idx = np.concatenate([r[0] for r in rows])
    ts = np.concatenate([r[1] for r in rows])
    etype = np.concatenate([np.broadcast_to(np.asarray(r[2], dtype=np.int8), r[0].shape) for r in rows])
    kind = np.concatenate([np.broadcast_to(np.asarray(r[3], dtype=np.int8), r[0].shape) for r in rows])
    return idx, ts, etype, kind


def person_events(people: pl.DataFrame, orders: pl.DataFrame, window: Window, seed: int, chunk: int) -> pl.DataFrame:
    """Web events of one chunk of people (orders: this chunk's orders, for the checkout funnel)."""
    rng = stream(seed, f"web:{chunk}", window.day)
    n = len(people)
    intent = people["intent"].to_numpy()
    arche = people["archetype"]
    lo, hi = active_span(people, window)
    rate = arche.replace_strict(SESSION_RATE, return_dtype=pl.Float64).to_numpy() * np.exp(0.5 * intent)
    s_idx, s_ts = draw_times(rng, lo, hi, rate)
    n_sess = len(s_idx)
    pages = rng.geometric(0.4, n_sess)
    p_sess = np.repeat(np.arange(n_sess), pages)
    p_idx = s_idx[p_sess]
    within = np.arange(len(p_sess)) - np.repeat(np.cumsum(pages) - pages, pages)
    p_ts = s_ts[p_sess] + within * 75 + rng.integers(0, 60, len(p_sess))
    u = rng.random(len(p_sess))
    p_pricing = np.clip(0.05 * np.exp(0.5 * intent), 0, 0.3)[p_idx]
    p_demo = np.clip(0.02 * np.exp(0.6 * intent), 0, 0.2)[p_idx]
    rest = rng.choice(3, len(p_sess), p=[0.3, 0.35, 0.35])
    p_kind = np.where(u < p_pricing, 3, np.where(u < p_pricing + p_demo, 4, rest))
    hot = np.bincount(p_sess, weights=(p_kind >= 3), minlength=n_sess) > 0
    s_end = s_ts + pages * 75
    # Form fills: more likely after a pricing or demo page in the same session.
    form = rng.random(n_sess) < np.clip(0.04 * np.exp(0.5 * intent[s_idx]) + 0.2 * hot, 0, 0.7)
    in_shop = people["in_shop"].to_numpy()
    cart = in_shop[s_idx] & (rng.random(n_sess) < 0.008)
    checkout = cart & (rng.random(n_sess) < 0.35)
    rows = [
        (p_idx, p_ts, PV, p_kind),
        (s_idx[form], s_end[form] + 30, FORM, 4),
        (s_idx[cart], s_end[cart] + 40, CART, 2),
        (s_idx[checkout], s_end[checkout] + 100, CHECKOUT, 6),
    ]
    # Most orders were placed on the site: cart and checkout just before the order.
    if len(orders):
        o_idx = people.select(pl.int_range(pl.len()).alias("i"), "person_id").join(
            orders.select("person_id", "ts"), on="person_id", how="inner", maintain_order="right"
        )
        web_made = rng.random(len(o_idx)) < 0.6
        oi = o_idx["i"].to_numpy()[web_made]
        ots = o_idx["ts"].to_numpy()[web_made]
        rows += [
            (oi, ots - rng.integers(300, 1800, len(oi)), CART, 2),
            (oi, ots - rng.integers(60, 300, len(oi)), CHECKOUT, 6),
            (oi, ots - rng.integers(30, 60, len(oi)), PV, 6),
        ]
    # Cart abandoners: a recent cart (sometimes a checkout) and no order after it.
    if window.day == 0:
        ab = np.flatnonzero((arche == "abandoner").to_numpy())
        a_ts = window.end - rng.integers(3600, 7 * DAY, len(ab))
        go = rng.random(len(ab)) < 0.5
        rows += [(ab, a_ts, CART, 2), (ab[go], a_ts[go] + 120, CHECKOUT, 6)]
    # Sign-ups: the web_form record's creation moment.
    wc = people["web_created"].fill_null(-1).to_numpy()
    su = np.flatnonzero((wc >= window.start) & (wc < window.end))
    rows.append((su, wc[su], SIGNUP, 0))
    idx, ts, etype, kind = _events(rows)
    m = len(idx)
    ev = pl.DataFrame({"i": idx, "ts": ts, "etype": etype, "kind": kind, "slug": rng.integers(0, 1000, m), "carry": rng.random(m)})
    ref = people.select(
        pl.int_range(pl.len()).alias("i"), "person_id", "anon_id", "identified_at", "web_contact_id", "web_email",
        "web_created", "shop_contact_id", "shop_email", "shop_created",
    )
    ev = ev.join(ref, on="i", how="left").sort("ts", "person_id", "etype", "slug")
    use_web = pl.col("web_created").is_not_null() & (pl.col("web_created") <= pl.col("ts"))
    known = (pl.col("identified_at") <= pl.col("ts")) | (pl.col("etype") == SIGNUP)
    contact = pl.when(known).then(pl.when(use_web).then("web_contact_id").otherwise("shop_contact_id"))
    email = pl.when(known).then(pl.when(use_web).then("web_email").otherwise("shop_email"))
    ev = ev.with_columns(contact_id=contact, email=email)
    email_only = pl.col("email").is_not_null() & (pl.col("carry") < 0.03)
    return ev.select(
        "person_id",
        "ts",
        contact_id=pl.when(email_only).then(None).otherwise("contact_id"),
        anonymous_id=pl.when(email_only).then(None).otherwise("anon_id"),
        email=pl.when(pl.col("carry").is_between(0.03, 0.08)).then(None).otherwise("email"),
        event_type=pl.col("etype").replace_strict(dict(enumerate(EVENT_TYPES)), return_dtype=pl.String),
        page_url=_url(pl.col("kind"), pl.col("slug")),
    )


def anonymous_events(n_profiles: int, window: Window, seed: int) -> pl.DataFrame:
    """Visitors who never identify: a few page views each."""
    rng = stream(seed, "web:anonymous", window.day)
    visitors = int(n_profiles * ANONYMOUS_VISITORS_PER_PROFILE_DAY * window.days)
    ids = hex_ids(rng, visitors)
    views = rng.geometric(0.5, visitors)
    v = np.repeat(np.arange(visitors), views)
    start = window.start + (rng.random(visitors) * (window.end - window.start - 3600)).astype(np.int64)
    within = np.arange(len(v)) - np.repeat(np.cumsum(views) - views, views)
    kind = rng.choice(5, len(v), p=[0.35, 0.35, 0.2, 0.07, 0.03])
    return pl.DataFrame({"ts": start[v] + within * 60, "anonymous_id": ids[v], "kind": kind, "slug": rng.integers(0, 1000, len(v))}).select(
        pl.lit(None, dtype=pl.Int64).alias("person_id"),
        "ts",
        pl.lit(None, dtype=pl.String).alias("contact_id"),
        "anonymous_id",
        pl.lit(None, dtype=pl.String).alias("email"),
        pl.lit("page_view").alias("event_type"),
        page_url=_url(pl.col("kind"), pl.col("slug")),
    ).sort("ts", "anonymous_id", "page_url")
