"""`outflow generate`: build a fresh world (people, their records, ~180 days of history) into the warehouse."""

from __future__ import annotations

import time
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

from . import contacts as contacts_mod
from .events import simulate
from .people import DAY, HISTORY_DAYS, build_people
from .window import Window
from .writer import TRUTH, Warehouse

# Columns of generator_truth.people that only helped build the world.
SCRATCH = ("template_pick", "email_style", "personal_domain_pick", "work_style", "house_key", "house_jitter",
           "house_base", "n_companies", "company_idx", "company_stem", "company_tld", "company_country")


def epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


def generate_world(path: Path, profiles: int, seed: int, start_date: date) -> tuple[Counter, float]:
    began = time.perf_counter()
    start_ts = epoch(start_date)
    window = Window(start_ts - HISTORY_DAYS * DAY, start_ts, 0)
    people = build_people(seed, profiles, start_ts)
    records = contacts_mod.membership(people, seed, 0)
    contacts = contacts_mod.build_contacts(
        people, records, seed=seed, day=0, start_ts=start_ts, next_ids={"crm": 1, "web_form": 1, "shop": 1}
    )
    people = people.join(contacts_mod.person_links(contacts), on="person_id", how="left").drop(SCRATCH)
    rows: Counter = Counter()
    with Warehouse(path) as wh:
        # No single transaction: DuckDB would hold the whole world in memory until COMMIT.
        # The runs row is dropped first and written last, so a broken run never looks like a world.
        wh.run(f"DROP TABLE IF EXISTS {TRUTH}.runs")
        wh.reset_raw()
        rows["crm_contacts"] = wh.append("crm_contacts", contacts)
        people, event_rows, conv = simulate(wh, people, window, seed, profiles, new_grants_since=None)
        rows.update(event_rows)
        write_truth(wh, people, contacts, conv, replace=True)
        wh.replace_truth(
            "runs",
            pl.DataFrame(
                {"seed": [seed], "profiles": [profiles], "start_date": [start_date], "last_day": [0],
                 "next_crm_id": [_next_id(contacts, "crm")], "next_web_form_id": [_next_id(contacts, "web_form")],
                 "next_shop_id": [_next_id(contacts, "shop")], "next_person_id": [profiles + 1]}
            ),
        )
    return rows, time.perf_counter() - began


def _next_id(contacts: pl.DataFrame, system: str) -> int:
    return int((contacts["source_system"] == system).sum()) + 1


def write_truth(wh: Warehouse, people: pl.DataFrame, contacts: pl.DataFrame, conv: pl.DataFrame, *, replace: bool) -> None:
    cp = contacts.select("source_system", "contact_id", "person_id")
    wh.replace_truth("people", people.sort("person_id"))
    if replace:
        wh.replace_truth("contact_people", cp)
        wh.replace_truth("conversions", conv)
    else:
        wh.append_truth("contact_people", cp)
        wh.append_truth("conversions", conv)
