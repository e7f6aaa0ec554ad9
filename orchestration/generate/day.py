"""`outflow generate --day D`: move an existing world on by one day.

Days apply in order: day D needs day D-1 (day 0 is the initial world). Re-applying a
day that is already applied is refused (the warehouse would otherwise hold that
day's events twice). Day D covers [start_date + D-1 days, start_date + D days).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from . import contacts as contacts_mod
from . import people as people_mod
from .events import simulate
from .people import DAY, build_people
from .rng import stream
from .window import Window
from .world import SCRATCH, epoch, write_truth
from .writer import RAW, TRUTH, Warehouse

NEW_PEOPLE_PER_DAY = 0.002  # share of --profiles signing up each day
NEW_RECORD_PER_DAY = 0.001  # existing people showing up in one more system
CHANGED_CRM_ROWS_PER_DAY = 0.004


class DayError(Exception):
    """The warehouse is not in a state where this day can be applied."""


def read_run(wh: Warehouse) -> dict:
    if not wh.has_table(TRUTH, "runs"):
        raise DayError("no generated world in this warehouse: run `outflow generate --profiles N` first")
    return wh.read(f"SELECT * FROM {TRUTH}.runs").row(0, named=True)


def apply_day(path: Path, day: int) -> tuple[Counter, float, dict]:
    began = time.perf_counter()
    if not path.exists():
        raise DayError(f"no warehouse at {path}: run `outflow generate --profiles N` first")
    with Warehouse(path) as wh:
        run = read_run(wh)
        if day <= run["last_day"]:
            raise DayError(f"day {day} is already applied (last applied day is {run['last_day']}); days apply once, in order")
        if day != run["last_day"] + 1:
            raise DayError(f"day {day - 1} has not been applied yet (last applied day is {run['last_day']}); apply days in order")
        seed, profiles = int(run["seed"]), int(run["profiles"])
        start_ts = epoch(run["start_date"] if isinstance(run["start_date"], date) else date.fromisoformat(str(run["start_date"])))
        window = Window(start_ts + (day - 1) * DAY, start_ts + day * DAY, day)
        people = wh.read(f"SELECT * FROM {TRUTH}.people ORDER BY person_id")
        rows: Counter = Counter()
        wh.run("BEGIN")

        newcomers, new_contacts, next_ids = _newcomers(wh, people, run, seed, day, start_ts, window)
        joiners, joiner_contacts, next_ids = _new_records(people, seed, day, start_ts, window, next_ids)
        contacts = pl.concat([c for c in (new_contacts, joiner_contacts) if len(c)]) if len(new_contacts) + len(joiner_contacts) else _empty_contacts()
        if len(contacts):
            rows["crm_contacts"] += wh.append("crm_contacts", contacts)
        people = _merge_links(people, joiners, joiner_contacts)
        if len(newcomers):
            people = pl.concat([people, newcomers.select(people.columns)], how="vertical_relaxed").sort("person_id")
        rows["crm_contacts (updated)"] += _change_attributes(wh, seed, day, window)

        people, event_rows, conv = simulate(wh, people, window, seed, profiles, new_grants_since=window.start)
        rows.update(event_rows)
        write_truth(wh, people, contacts, conv, replace=False)
        wh.run(
            f"UPDATE {TRUTH}.runs SET last_day = ?, next_crm_id = ?, next_web_form_id = ?, next_shop_id = ?, next_person_id = ?",
            [day, next_ids["crm"], next_ids["web_form"], next_ids["shop"], int(people["person_id"].max()) + 1],
        )
        wh.run("COMMIT")
    return rows, time.perf_counter() - began, run


def _newcomers(wh, people, run, seed, day, start_ts, window):
    n_new = int(stream(seed, "newcomers", day).poisson(run["profiles"] * NEW_PEOPLE_PER_DAY))
    next_ids = {"crm": int(run["next_crm_id"]), "web_form": int(run["next_web_form_id"]), "shop": int(run["next_shop_id"])}
    if n_new == 0:
        return people.clear(), _empty_contacts(), next_ids
    taken_emails = pl.concat([people["personal_email"], people["work_email"].drop_nulls()])
    fresh = build_people(
        seed, n_new, start_ts, day=day, first_person_id=int(run["next_person_id"]), archetype="new",
        created_window=(window.start, window.end), taken_emails=taken_emails,
        taken_addresses=people.select("country", "city", "street_address"),
        taken_phones=people["phone_national"].to_numpy().astype(str),
    )
    records = contacts_mod.membership(fresh, seed, day)
    contacts = contacts_mod.build_contacts(
        fresh, records, seed=seed, day=day, start_ts=start_ts, next_ids=next_ids, created_window=(window.start, window.end)
    )
    fresh = fresh.join(contacts_mod.person_links(contacts), on="person_id", how="left").drop(SCRATCH)
    return fresh, contacts, _advance(next_ids, contacts)


def _new_records(people, seed, day, start_ts, window, next_ids):
    """Some existing people appear in a system they were not in yet (same personal email)."""
    rng = stream(seed, "new_records", day)
    alive = (people["n_systems"] < 3) & people["deleted_at"].is_null() & pl.Series(rng.random(len(people)) < NEW_RECORD_PER_DAY)
    chosen = people.filter(alive)
    if not len(chosen):
        return chosen, _empty_contacts(), next_ids
    system = (
        pl.when(~pl.col("in_shop")).then(pl.lit("shop")).when(~pl.col("in_web_form")).then(pl.lit("web_form")).otherwise(pl.lit("crm"))
    )
    chosen = chosen.with_columns(
        _system=system, link=pl.when(pl.col("link") == "single").then(pl.lit("email")).otherwise("link")
    )
    records = chosen.select("person_id", source_system="_system", dup=pl.lit(0))
    contacts = contacts_mod.build_contacts(
        chosen, records, seed=seed, day=day, start_ts=start_ts, next_ids=next_ids,
        created_window=(window.start, window.end),
    )
    # The new record is the person's latest, so it is never their "first" (j = 0) record.
    return chosen, contacts, _advance(next_ids, contacts)


def _merge_links(people, joiners, contacts):
    if not len(joiners):
        return people
    links = contacts_mod.person_links(contacts)
    flags = joiners.select(
        "person_id", "link", **{f"in_{s}": pl.col(f"in_{s}") | (pl.col("_system") == s) for s in ("crm", "web_form", "shop")}
    ).with_columns(n_systems=pl.col("in_crm").cast(pl.Int64) + pl.col("in_web_form").cast(pl.Int64) + pl.col("in_shop").cast(pl.Int64))
    people = people.update(flags, on="person_id")
    merged = people.join(links, on="person_id", how="left", suffix="_new")
    for col in links.columns:
        if col == "person_id":
            continue
        merged = merged.with_columns(pl.coalesce(col, f"{col}_new").alias(col))
    merged = merged.with_columns(identified_at=pl.min_horizontal("identified_at", "identified_at_new"))
    return merged.drop([c for c in merged.columns if c.endswith("_new")])


def _change_attributes(wh: Warehouse, seed: int, day: int, window: Window) -> int:
    """Edit some CRM-side rows in place (EL tools land the latest state): stage, title, phone."""
    rows = wh.read(
        f"SELECT c.contact_id, c.source_system, c.lifecycle_stage, c.job_title, c.phone, p.country, p.phone_national "
        f"FROM {RAW}.crm_contacts c JOIN {TRUTH}.contact_people t USING (source_system, contact_id) "
        f"JOIN {TRUTH}.people p USING (person_id) WHERE c.source_system <> 'shop' AND p.deleted_at IS NULL ORDER BY c.contact_id"
    )
    rng = stream(seed, "changes", day)
    n = len(rows)
    pick = rng.random(n) < CHANGED_CRM_ROWS_PER_DAY
    kind = rng.integers(0, 3, n)
    when = window.start + (rng.random(n) * (window.end - window.start)).astype(np.int64)
    ch = rows.with_columns(_kind=pl.Series(kind), _ts=pl.Series(when)).filter(pl.Series(pick))
    promote = {"subscriber": "lead", "lead": "marketingqualifiedlead", "marketingqualifiedlead": "salesqualifiedlead",
               "salesqualifiedlead": "opportunity", "opportunity": "customer"}
    plus = pl.concat_str([pl.lit("+"), pl.col("country").replace_strict(people_mod.phones.CALLING_CODE, default=None), pl.col("phone_national")])
    ch = ch.select(
        "contact_id",
        lifecycle_stage=pl.when(pl.col("_kind") == 0).then(
            pl.col("lifecycle_stage").str.to_lowercase().replace_strict(promote, default=pl.col("lifecycle_stage"))
        ).otherwise("lifecycle_stage"),
        job_title=pl.when((pl.col("_kind") == 1) & pl.col("job_title").is_not_null()).then(
            pl.concat_str([pl.lit("Senior "), pl.col("job_title").str.replace(r"^Senior ", "")])
        ).otherwise("job_title"),
        phone=pl.when(pl.col("_kind") == 2).then(plus).otherwise("phone"),
        updated_at=pl.from_epoch("_ts", time_unit="s"),
    )
    if not len(ch):
        return 0
    wh.run_with(
        ch,
        f"UPDATE {RAW}.crm_contacts AS c SET lifecycle_stage = a.lifecycle_stage, job_title = a.job_title, "
        f"phone = a.phone, updated_at = a.updated_at FROM _frame AS a WHERE c.contact_id = a.contact_id"
    )
    return len(ch)


def _advance(next_ids: dict[str, int], contacts: pl.DataFrame) -> dict[str, int]:
    counts = contacts.group_by("source_system").len()
    out = dict(next_ids)
    for system, n in counts.iter_rows():
        out[system] += n
    return out


def _empty_contacts() -> pl.DataFrame:
    return pl.DataFrame(schema={"source_system": pl.String, "contact_id": pl.String, "person_id": pl.Int64})
