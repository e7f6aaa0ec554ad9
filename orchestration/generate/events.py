"""Every event table for one window (the initial history or one day), written in a fixed order."""

from __future__ import annotations

from collections import Counter

import numpy as np
import polars as pl

from . import campaigns, consent, conversions, orders, web
from .window import Window
from .writer import Warehouse, with_ids

CHUNK = 50_000  # people per chunk: bounds memory; fixed so output never depends on the machine


def simulate(wh: Warehouse, people: pl.DataFrame, window: Window, seed: int, n_profiles: int, new_grants_since: int | None) -> tuple[pl.DataFrame, Counter, pl.DataFrame]:
    """Write the window's events; return people with updated state, rows per table, truth conversions.

    `new_grants_since`: None writes every opt-in people ever gave (initial history);
    an epoch second writes only opt-ins from then on (a day step).
    """
    rows: Counter = Counter()
    asked = consent.deletions(people, window, seed)
    rows["deletion_requests"] += wh.append("deletion_requests", asked)
    people = people.join(asked.select("person_id", _del="ts"), on="person_id", how="left").with_columns(
        deleted_at=pl.coalesce("deleted_at", "_del")
    ).drop("_del")

    all_orders = orders.build_orders(people, window, seed)
    rows["orders"] += wh.append("orders", all_orders)

    hooks, suppressed = [], []
    web_offset = email_offset = 0
    for chunk, start in enumerate(range(0, len(people), CHUNK)):
        part = people.slice(start, CHUNK)
        ids = part["person_id"]
        mine = all_orders.filter(pl.col("person_id").is_between(ids.min(), ids.max()))
        wev = with_ids(_stamped(web.person_events(part, mine, window, seed, chunk)), "event_id", "we", window.day, web_offset)
        web_offset += wh.append("web_events", wev)
        eev, sup = campaigns.email_events(part, window, seed, chunk)
        eev = with_ids(_stamped(eev), "event_id", "ee", window.day, email_offset)
        email_offset += wh.append("email_events", eev)
        hooks.append(eev.filter(pl.col("event_type").is_in(["unsubscribe", "spam_report"])))
        suppressed.append(sup)
    anon = with_ids(_stamped(web.anonymous_events(n_profiles, window, seed)), "event_id", "we", window.day, web_offset)
    web_offset += wh.append("web_events", anon)
    rows["web_events"] += web_offset
    rows["email_events"] += email_offset
    people = people.with_columns(
        suppressed_at=pl.Series(np.concatenate(suppressed) if suppressed else np.array([], dtype=np.int64)).replace(2**40, None)
    )

    grants = consent.grants(people, seed, window.day, since=new_grants_since)
    revoked = consent.revocations(people, pl.concat(hooks) if hooks else campaigns._empty(), window, seed)
    rows["consent_events"] += wh.append("consent_events", consent.finish(pl.concat([grants, revoked])))

    conv = conversions.build_conversions(people, window, seed)
    rows["conversions"] += wh.append("conversions", conv)
    return people, rows, conv.select("person_id", "converted_at", "contact_id").with_columns(day=pl.lit(window.day))


def _stamped(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(occurred_at=pl.from_epoch("ts", time_unit="s"))
