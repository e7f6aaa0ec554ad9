"""Source-system records (raw.crm_contacts) for people: what each system knows, written its own way."""

from __future__ import annotations

import numpy as np
import polars as pl

from . import dirty, phones, vocab
from .people import DAY
from .rng import stream

PREFIX = {"crm": "crm-", "web_form": "web-", "shop": "shop-"}
ID_WIDTH = 7
CONTACT_COLUMNS = (
    "contact_id", "source_system", "email", "phone", "first_name", "last_name", "street_address", "city",
    "postal_code", "country", "date_of_birth", "company", "job_title", "industry", "employee_count",
    "lead_source", "lifecycle_stage", "created_at", "updated_at",
)
CRM_DUPLICATE_SHARE = 0.03


def membership(people: pl.DataFrame, seed: int, day: int) -> pl.DataFrame:
    """(person_id, source_system, dup) for every record people have; a few CRM duplicates."""
    parts = [
        people.filter(pl.col(f"in_{s}")).select("person_id", pl.lit(s).alias("source_system"), pl.lit(0).alias("dup"))
        for s in ("crm", "web_form", "shop")
    ]
    crm = parts[0]
    rng = stream(seed, "crm_duplicates", day)
    dups = crm.filter(pl.Series(rng.random(len(crm)) < CRM_DUPLICATE_SHARE)).with_columns(dup=pl.lit(1))
    return pl.concat([*parts, dups])


def _spell_country(country: pl.Expr, pick: pl.Expr) -> pl.Expr:
    out = pl.lit(None, dtype=pl.String)
    for code, (alpha2, alpha3, name, lower) in vocab.COUNTRY_SPELLINGS.items():
        spelled = (
            pl.when(pick < 0.80).then(pl.lit(alpha2))
            .when(pick < 0.88).then(pl.lit(alpha3))
            .when(pick < 0.95).then(pl.lit(name))
            .when(pick < 0.97).then(pl.lit(lower))
            .otherwise(pl.lit(None, dtype=pl.String))
        )
        out = pl.when(country == code).then(spelled).otherwise(out)
    return out


def _abbreviate_street(street: pl.Expr, pick: pl.Expr) -> pl.Expr:
    return (
        pl.when(pick < 0.3)
        .then(street.str.replace("straße", "str.", literal=True).str.replace(" Street", " St", literal=True)
              .str.replace(" Avenue", " Ave", literal=True).str.replace(" Road", " Rd", literal=True))
        .when(pick < 0.4).then(street.str.replace("straße", "strasse", literal=True))
        .otherwise(street)
    )


def build_contacts(
    people: pl.DataFrame,
    records: pl.DataFrame,
    *,
    seed: int,
    day: int,
    start_ts: int,
    next_ids: dict[str, int],
    created_window: tuple[int, int] | None = None,
) -> pl.DataFrame:
    """One row per record in `records` (person_id, source_system, dup), contract columns plus person_id."""
    rng = stream(seed, "contacts", day)
    df = records.join(people, on="person_id", how="left")
    n = len(df)
    u = {k: rng.random(n) for k in (
        "order", "email_missing", "email_case", "email_space", "email_broken", "work", "phone_has", "phone_bad",
        "country", "nick", "typo_field", "typo_pos", "recase_first", "recase_last", "street_abbr", "addr_missing",
        "dob_missing", "b2b_missing", "title_case", "lead_missing", "stage", "stage_case", "created", "updated",
        "id_order", "pad",
    )}
    df = df.with_columns(
        **{f"_u_{k}": pl.Series(v) for k, v in u.items()},
        _typo_kind=pl.Series(rng.integers(0, 3, n)),
        _broken_kind=pl.Series(rng.integers(0, 4, n)),
        _phone_style=pl.Series(rng.choice(5, n, p=[0.35, 0.30, 0.10, 0.10, 0.15])),
    )
    # j = 0 is the person's "first" record; later ones carry the drift.
    df = df.with_columns(j=(pl.col("_u_order").rank("ordinal").over("person_id") - 1).cast(pl.Int64))
    system, j, link = pl.col("source_system"), pl.col("j"), pl.col("link")
    fuzzy = link == "fuzzy"

    chosen_email = (
        pl.when(link == "phone").then(pl.when(j == 0).then(pl.col("personal_email")))
        .when(fuzzy).then(pl.when(j == 0).then(pl.col("personal_email")).when(j == 1).then(pl.col("work_email")))
        .when((link == "single") & (system == "crm") & (pl.col("_u_work") < 0.6) & pl.col("work_email").is_not_null())
        .then(pl.col("work_email"))
        .otherwise(pl.when(pl.col("_u_email_missing") >= 0.04).then(pl.col("personal_email")))
    )
    broken = chosen_email.is_not_null() & (pl.col("_u_email_broken") < 0.02)
    email = (
        pl.when(broken).then(dirty.broken_email(chosen_email, pl.col("_broken_kind")))
        .otherwise(dirty.email_variant(chosen_email, pl.col("_u_email_case"), pl.col("_u_email_space")))
    )
    # 'phone' links: no email on the later records, sometimes an empty string instead of null.
    email = pl.when((link == "phone") & (j > 0) & (pl.col("_u_email_missing") < 0.3)).then(pl.lit("")).otherwise(email)

    phone_rate = pl.when(system == "crm").then(0.7).when(system == "shop").then(0.6).otherwise(0.35)
    has_phone = (
        pl.when(link == "phone").then(True)
        .when(fuzzy).then((j == 0) & (pl.col("_u_phone_has") < 0.5))
        .otherwise(pl.col("_u_phone_has") < phone_rate)
    )
    country_raw = _spell_country(pl.col("country"), pl.col("_u_country"))
    phone_text = phones.formatted(pl.col("country"), pl.col("phone_national"), pl.col("_phone_style"), country_raw.is_not_null())
    # A mistyped, too-short number: never a valid number for anyone.
    phone_bad = pl.concat_str([pl.lit("+"), pl.col("country").replace_strict(phones.CALLING_CODE, default=None),
                               pl.lit(" "), pl.col("phone_national").str.slice(0, 5)])
    phone = pl.when(has_phone).then(pl.when(pl.col("_u_phone_bad") < 0.015).then(phone_bad).otherwise(phone_text))

    later = j > 0
    use_nick = (pl.col("nickname") != "") & (
        pl.when(later).then(pl.col("_u_nick") < 0.5).otherwise((system != "crm") & (pl.col("_u_nick") < 0.15))
    )
    first = pl.when(use_nick).then(pl.col("nickname")).otherwise(pl.col("first_name"))
    typo_field = pl.when(later).then(
        pl.when(pl.col("_u_typo_field") < 0.05).then(1).when(pl.col("_u_typo_field") < 0.10).then(2)
        .when(pl.col("_u_typo_field") < 0.18).then(3).otherwise(0)
    ).otherwise(0)
    typo = lambda text: dirty.typo(text, pl.col("_typo_kind"), pl.col("_u_typo_pos"))  # noqa: E731
    first = pl.when(typo_field == 1).then(typo(first)).otherwise(first)
    last = pl.when(typo_field == 2).then(typo(pl.col("last_name"))).otherwise(pl.col("last_name"))
    street = _abbreviate_street(pl.col("street_address"), pl.col("_u_street_abbr"))
    street = pl.when(typo_field == 3).then(typo(street)).otherwise(street)
    pad = lambda text: pl.when(pl.col("_u_pad") < 0.03).then(pl.concat_str([text, pl.lit(" ")])).otherwise(text)  # noqa: E731

    addr_missing = ~fuzzy & (pl.col("_u_addr_missing") < pl.when(system == "web_form").then(0.5).otherwise(0.08))
    dob_rate = pl.when(system == "web_form").then(0.6).when(system == "shop").then(0.3).otherwise(0.2)
    dob_missing = ~fuzzy & (pl.col("_u_dob_missing") < dob_rate)
    b2b = (system == "crm") & (pl.col("_u_b2b_missing") < 0.9) | (system == "web_form") & (pl.col("_u_b2b_missing") < 0.5)
    title = pl.when(pl.col("_u_title_case") < 0.05).then(pl.col("job_title").str.to_lowercase()).otherwise(pl.col("job_title"))

    stage_idx = ((pl.col("propensity") * 10 + pl.col("_u_stage") * 2.5).floor().clip(0, 4)).cast(pl.Int64)
    crm_stage = stage_idx.replace_strict(dict(enumerate(vocab.LIFECYCLE_STAGES)), return_dtype=pl.String)
    stage = (
        pl.when(system == "shop").then(pl.lit("customer"))
        .when(system == "web_form").then(pl.when(pl.col("_u_stage") < 0.6).then(pl.lit("subscriber")).otherwise(pl.lit("lead")))
        .otherwise(pl.when(pl.col("in_shop") & (pl.col("archetype") == "vip")).then(pl.lit("customer")).otherwise(crm_stage))
    )
    stage = (
        pl.when(pl.col("_u_stage_case") < 0.10).then(stage.str.to_titlecase())
        .when(pl.col("_u_stage_case") < 0.13).then(stage.str.to_uppercase())
        .otherwise(stage)
    )

    if created_window:
        lo, hi = created_window
        created = pl.lit(lo) + (pl.col("_u_created") * (hi - lo)).cast(pl.Int64)
    else:
        latest = pl.min_horizontal(pl.col("act_end"), pl.lit(start_ts - 3600))
        created = (
            pl.when(j == 0).then(pl.col("first_created"))
            .otherwise(pl.col("first_created") + (pl.col("_u_created") * (latest - pl.col("first_created"))).cast(pl.Int64))
        )
    df = df.with_columns(_created=created)
    updated = pl.col("_created") + ((pl.lit(start_ts) - pl.col("_created")).clip(lower_bound=0) * pl.col("_u_updated") ** 3).cast(pl.Int64)
    if created_window:
        updated = pl.col("_created")

    out = df.with_columns(
        email=email,
        phone=phone,
        first_name=pad(dirty.recase(first, pl.col("_u_recase_first"))),
        last_name=dirty.recase(last, pl.col("_u_recase_last")),
        street_address=pl.when(~addr_missing).then(street),
        city=pl.when(~addr_missing).then(pl.col("city")),
        postal_code=pl.when(~addr_missing).then(pl.col("postal_code")),
        country=country_raw,
        date_of_birth=pl.when(~dob_missing).then(pl.col("date_of_birth")),
        company=pl.when(b2b).then(pl.col("company")),
        job_title=pl.when(b2b).then(title),
        industry=pl.when(b2b & (system == "crm")).then(pl.col("industry")),
        employee_count=pl.when(b2b & (system == "crm")).then(pl.col("employee_count")),
        lead_source=pl.when((system != "shop") & (pl.col("_u_lead_missing") < 0.8)).then(pl.col("lead_source")),
        lifecycle_stage=stage,
        created_at=pl.from_epoch("_created", time_unit="s"),
        updated_at=pl.from_epoch(updated, time_unit="s"),
        email_ok=chosen_email.is_not_null() & ~broken,
        _clean_email=pl.when(~broken).then(chosen_email),
    )
    # Contact ids: per system, numbered in a random order so ids say nothing about who matches whom.
    out = out.sort("source_system", "_u_id_order")
    number = pl.int_range(pl.len()).over("source_system") + pl.col("source_system").replace_strict(next_ids, return_dtype=pl.Int64)
    out = out.with_columns(
        contact_id=pl.concat_str([system.replace_strict(PREFIX, return_dtype=pl.String), number.cast(pl.String).str.zfill(ID_WIDTH)])
    )
    return out.select(*CONTACT_COLUMNS, "person_id", "j", "email_ok", "_clean_email").sort("contact_id")


def person_links(contacts: pl.DataFrame) -> pl.DataFrame:
    """Per person: the ids and addresses events refer to (web/shop contact, the address the ESP mails)."""
    c = contacts.with_columns(
        _created_s=pl.col("created_at").dt.epoch("s"),
        _sys_rank=pl.col("source_system").replace_strict({"crm": 0, "web_form": 1, "shop": 2}, return_dtype=pl.Int64),
    ).sort("person_id", "_sys_rank", "created_at", "contact_id")
    first_of = lambda s: c.filter(pl.col("source_system") == s).group_by("person_id", maintain_order=True).first()  # noqa: E731
    web = first_of("web_form").select("person_id", web_contact_id="contact_id", web_email="email", web_created="_created_s")
    shop = first_of("shop").select("person_id", shop_contact_id="contact_id", shop_email="email", shop_created="_created_s")
    esp = (
        c.filter(pl.col("email_ok")).group_by("person_id", maintain_order=True).first()
        .select("person_id", esp_email=pl.col("email").str.strip_chars(), esp_since="_created_s")
    )
    phone = (
        c.filter(pl.col("phone").is_not_null()).group_by("person_id", maintain_order=True).first()
        .select("person_id", consent_phone="phone")
    )
    out = c.select("person_id").unique(maintain_order=True)
    for part in (web, shop, esp, phone):
        out = out.join(part, on="person_id", how="left")
    return out.with_columns(identified_at=pl.min_horizontal("web_created", "shop_created"))
