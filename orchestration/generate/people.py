"""The hidden population: one row per real person, with everything the sources only see parts of.

All draws are vectorised over people (numpy arrays, polars expressions); the only
Python loops run over small vocabularies (countries, companies' word lists).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from . import phones, vocab
from .rng import stream

DAY = 86_400
HISTORY_DAYS = 180
ARCHETYPES = ("active", "vip", "lapsed", "new", "abandoner", "dormant")
ARCHETYPE_WEIGHTS = np.array([0.61, 0.02, 0.12, 0.06, 0.04, 0.15])
ARCHETYPE_BONUS = np.array([0.0, 1.0, -0.8, 0.2, 0.3, -1.0])
SYSTEMS = ("crm", "web_form", "shop")
SYSTEM_COUNT_WEIGHTS = np.array([0.45, 0.38, 0.17])
# How a person's records are tied together when they sit in 2+ systems.
LINKS = ("email", "phone", "fuzzy")
LINK_WEIGHTS = np.array([0.6, 0.2, 0.2])


def _pick(rng: np.random.Generator, options, weights, size) -> np.ndarray:
    return rng.choice(len(options), size=size, p=np.asarray(weights) / np.sum(weights))


def _names_by_country(rng, countries: np.ndarray) -> dict[str, np.ndarray]:
    n = len(countries)
    cols = {k: np.empty(n, dtype=object) for k in ("first_name", "nickname", "last_name", "street", "city")}
    for country in vocab.COUNTRIES:
        idx = np.flatnonzero(countries == country)
        if not len(idx):
            continue
        v = vocab.locale(country)
        fi = rng.choice(len(v.first_names), size=len(idx), p=v.first_weights)
        cols["first_name"][idx] = np.array(v.first_names, dtype=object)[fi]
        cols["nickname"][idx] = np.array(v.nicknames, dtype=object)[fi]
        cols["last_name"][idx] = np.array(v.last_names, dtype=object)[rng.choice(len(v.last_names), size=len(idx), p=v.last_weights)]
        cols["street"][idx] = np.array(v.streets, dtype=object)[rng.integers(0, len(v.streets), len(idx))]
        cols["city"][idx] = np.array(v.cities, dtype=object)[rng.integers(0, len(v.cities), len(idx))]
    return cols


def _postal_codes(rng, countries: np.ndarray) -> np.ndarray:
    n = len(countries)
    digits = pl.Series(rng.integers(0, 100_000, n)).cast(pl.String).str.zfill(5).to_numpy().astype(object)
    out = digits.copy()
    gb = np.flatnonzero(countries == "GB")
    zones = np.array(vocab.gb_postal_zones(), dtype=object)
    letters = np.array(list("ABDEFGHJLNPQRSTUWXYZ"), dtype=object)
    out[gb] = (
        zones[rng.integers(0, len(zones), len(gb))] + rng.integers(1, 20, len(gb)).astype(str).astype(object) + " "
        + rng.integers(0, 10, len(gb)).astype(str).astype(object)
        + letters[rng.integers(0, len(letters), len(gb))] + letters[rng.integers(0, len(letters), len(gb))]
    )
    fr = np.flatnonzero(countries == "FR")
    depts = np.array(vocab.fr_departments(), dtype=object)
    out[fr] = depts[rng.integers(0, len(depts), len(fr))] + digits[fr].astype(str).astype(object)
    out[fr] = pl.Series(out[fr].astype(str)).str.slice(0, 5).to_numpy().astype(object)
    return out


def _companies(rng, n_people: int, countries: np.ndarray) -> pl.DataFrame:
    """A pool of employers per country; several people share one company."""
    rows = []
    for ci, country in enumerate(vocab.COUNTRIES):
        count = int((countries == country).sum())
        if not count:
            continue
        k = max(5, count // 6)
        v = vocab.locale(country)
        lasts = np.array(v.last_names, dtype=object)[rng.integers(0, min(200, len(v.last_names)), k)]
        suffixes = np.array(vocab.COMPANY_SUFFIXES[country], dtype=object)[rng.integers(0, len(vocab.COMPANY_SUFFIXES[country]), k)]
        rows.append(
            pl.DataFrame(
                {
                    "company_country": [country] * k,
                    "company_idx": np.arange(k),
                    "company": (lasts + " " + suffixes).astype(str),
                    "company_stem": [vocab.ascii_slug(x) for x in lasts],  # k names, not people
                    "industry": np.array(vocab.INDUSTRIES)[rng.integers(0, len(vocab.INDUSTRIES), k)],
                    "industry_idx": np.zeros(k, dtype=np.int64),
                    "employee_count": np.clip(np.exp(rng.normal(3.6, 1.7, k)), 1, 250_000).astype(np.int64),
                    "company_tld": [vocab.COMPANY_TLD[country]] * k,
                }
            )
        )
    df = pl.concat(rows).with_columns(
        industry_idx=pl.col("industry").replace_strict({v: i for i, v in enumerate(vocab.INDUSTRIES)}, return_dtype=pl.Int64)
    )
    # Same-named firms are real; their domains must still differ.
    dup = pl.int_range(pl.len()).over("company_stem", "company_tld")
    return df.with_columns(
        company_domain=pl.concat_str(
            [pl.col("company_stem"), pl.when(dup > 0).then(dup.cast(pl.String)).otherwise(pl.lit("")), pl.lit("."), pl.col("company_tld")]
        )
    )


def build_people(
    seed: int,
    n: int,
    start_ts: int,
    *,
    day: int = 0,
    first_person_id: int = 1,
    archetype: str | None = None,
    created_window: tuple[int, int] | None = None,
    taken_emails: pl.Series | None = None,
    taken_addresses: pl.DataFrame | None = None,
    taken_phones: np.ndarray | None = None,
) -> pl.DataFrame:
    """Draw `n` people. Day 0 builds the world; later days add newcomers (archetype 'new')."""
    rng = stream(seed, "people", day)
    person_id = np.arange(first_person_id, first_person_id + n, dtype=np.int64)
    countries = np.array(vocab.COUNTRIES, dtype=object)[_pick(rng, vocab.COUNTRIES, vocab.COUNTRY_WEIGHTS, n)]
    names = _names_by_country(rng, countries)
    dob = (np.datetime64("1950-01-01") + rng.integers(0, 57 * 365, n).astype("timedelta64[D]"))
    arche = (
        np.full(n, ARCHETYPES.index(archetype))
        if archetype
        else _pick(rng, ARCHETYPES, ARCHETYPE_WEIGHTS, n)
    )

    companies = _companies(rng, n, countries)
    seniority = _pick(rng, vocab.SENIORITY, vocab.SENIORITY_WEIGHTS, n)
    employed = rng.random(n) < 0.8
    dept = rng.integers(0, len(vocab.DEPARTMENTS), n)
    template_pick = rng.random(n)

    # Systems: required ones first (customers must be in the shop, newcomers signed up on the web).
    k = _pick(rng, (1, 2, 3), SYSTEM_COUNT_WEIGHTS, n) + 1
    keys = rng.random((n, 3)) * np.array([1.0, 1.1, 0.9])
    needs_shop = np.isin(arche, [ARCHETYPES.index(a) for a in ("vip", "lapsed", "abandoner")])
    keys[needs_shop, 2] = -1.0
    keys[arche == ARCHETYPES.index("new"), 1] = -1.0
    order = np.argsort(keys, axis=1)
    in_sys = np.zeros((n, 3), dtype=bool)
    for rank in range(3):
        in_sys[np.arange(n)[k > rank], order[k > rank, rank]] = True
    link = np.where(k > 1, _pick(rng, LINKS, LINK_WEIGHTS, n), -1)

    # Latent traits: fit (who they are), intent (how engaged), and the planted propensity.
    intent = rng.normal(0.0, 1.0, n)
    open_rate = rng.beta(3.0, 6.0, n)  # mean ~0.33 of delivered
    phone_national = phones.assign_numbers(countries, rng, taken_phones)

    # Activity window (seconds since epoch): when this person generates events.
    hist0 = start_ts - HISTORY_DAYS * DAY
    act_start = np.full(n, hist0 - 400 * DAY, dtype=np.int64)
    act_end = np.full(n, 2**40, dtype=np.int64)  # open-ended: still active
    is_new = arche == ARCHETYPES.index("new")
    if created_window:
        lo, hi = created_window
    else:
        lo, hi = start_ts - 14 * DAY, start_ts
    act_start[is_new] = rng.integers(lo, hi, is_new.sum())
    lapsed = arche == ARCHETYPES.index("lapsed")
    act_end[lapsed] = start_ts - rng.integers(75 * DAY, 170 * DAY, lapsed.sum())
    # Older records were created any time in the last three years (before they went quiet).
    created_hi = np.minimum(act_end, start_ts - DAY)
    first_created = np.where(is_new, act_start, rng.integers(start_ts - 3 * 365 * DAY, created_hi - 30 * DAY))
    act_start = np.where(is_new, act_start, np.maximum(act_start, first_created))

    df = pl.DataFrame(
        {
            "person_id": person_id,
            "country": countries.astype(str),
            "first_name": names["first_name"].astype(str),
            "nickname": names["nickname"].astype(str),
            "last_name": names["last_name"].astype(str),
            "date_of_birth": dob,
            "street": names["street"].astype(str),
            "city": names["city"].astype(str),
            "postal_code": _postal_codes(rng, countries).astype(str),
            "phone_national": phone_national.astype(str),
            "employed": employed,
            "seniority_idx": seniority,
            "dept": np.array(vocab.DEPARTMENTS)[dept],
            "template_pick": template_pick,
            "lead_source": np.array(vocab.LEAD_SOURCES)[rng.integers(0, len(vocab.LEAD_SOURCES), n)],
            "archetype": np.array(ARCHETYPES)[arche],
            "n_systems": k.astype(np.int64),
            "in_crm": in_sys[:, 0],
            "in_web_form": in_sys[:, 1],
            "in_shop": in_sys[:, 2],
            "link": np.where(link >= 0, np.array(LINKS)[np.maximum(link, 0)], "single"),
            "intent": intent,
            "open_rate": open_rate,
            "act_start": act_start,
            "act_end": act_end,
            "first_created": first_created,
            "company_country": countries.astype(str),
            "company_idx": rng.integers(0, 2**31, n),
            "email_style": rng.integers(0, 6, n),
            "personal_domain_pick": rng.random(n),
            "work_style": rng.integers(0, 3, n),
            "anon_id": hex_ids(rng, n),
            "email_consent": rng.random(n) < 0.78,
            "sms_consent": rng.random(n) < 0.22,
            "ads_consent": rng.random(n) < 0.45,
            "house_key": rng.random(n),
            "house_jitter": rng.integers(1, 4, n),
            "mailbox_dead": rng.random(n) < 0.015,
            "suppressed_at": pl.Series([None] * n, dtype=pl.Int64),
            "deleted_at": pl.Series([None] * n, dtype=pl.Int64),
            "house_base": rng.choice([0, 0, 10, 20, 40, 100], n) + rng.integers(0, 10, n),
        }
    )
    df = (
        df.join(companies.group_by("company_country").agg(pl.len().alias("n_companies")), on="company_country")
        .with_columns(company_idx=pl.col("company_idx") % pl.col("n_companies"))
        .join(companies, on=["company_country", "company_idx"], how="left")
        .sort("person_id")
    )
    df = _with_titles(df)
    df = _with_addresses(df, taken_addresses)
    df = _with_emails(df, taken_emails)
    return _with_propensity(df)


def hex_ids(rng, n: int, prefix: str = "anon-") -> np.ndarray:
    """Random 16-hex-digit ids, built from nibbles so no Python loop runs per id."""
    raw = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nibbles = ((raw[:, None] >> shifts) & np.uint64(0xF)).astype(np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles]
    return np.char.add(prefix, np.ascontiguousarray(chars).view("S16").ravel().astype(str))


def _with_titles(df: pl.DataFrame) -> pl.DataFrame:
    exprs = []
    for si, level in enumerate(vocab.SENIORITY):
        templates = vocab.TITLE_TEMPLATES[level]
        pick = (pl.col("template_pick") * len(templates)).floor().cast(pl.Int64)
        title = pl.lit(None, dtype=pl.String)
        for ti, template in enumerate(templates):
            parts = template.split("{d}")
            value = pl.concat_str([pl.lit(parts[0]), pl.col("dept"), pl.lit(parts[1])]) if len(parts) == 2 else pl.lit(template)
            title = pl.when(pick == ti).then(value).otherwise(title)
        exprs.append((si, title))
    job = pl.lit(None, dtype=pl.String)
    for si, title in exprs:
        job = pl.when(pl.col("seniority_idx") == si).then(title).otherwise(job)
    seniority = pl.col("seniority_idx").replace_strict(dict(enumerate(vocab.SENIORITY)), return_dtype=pl.String)
    return df.with_columns(
        job_title=pl.when(pl.col("employed")).then(job),
        seniority=pl.when(pl.col("employed")).then(seniority),
        company=pl.when(pl.col("employed")).then(pl.col("company")),
        company_domain=pl.when(pl.col("employed")).then(pl.col("company_domain")),
        industry=pl.when(pl.col("employed")).then(pl.col("industry")),
        employee_count=pl.when(pl.col("employed")).then(pl.col("employee_count")),
    )


def _with_addresses(df: pl.DataFrame, taken: pl.DataFrame | None = None) -> pl.DataFrame:
    """House numbers are ranked within (country, city, street), so no two people share an address.

    People added on later days move up by 1000s until clear of everyone already there.
    """
    rank = pl.col("house_key").rank("ordinal").over("country", "city", "street") - 1
    base = pl.col("house_base").min().over("country", "city", "street")
    house = pl.col("_house").cast(pl.String)
    street_address = (
        pl.when(pl.col("country") == "DE").then(pl.concat_str([pl.col("street"), pl.lit(" "), house]))
        .otherwise(pl.concat_str([house, pl.lit(" "), pl.col("street")]))
    )
    df = df.with_columns(_house=base + rank * 3 + pl.col("house_jitter"))
    df = df.with_columns(street_address=street_address)
    for _ in range(50):
        if taken is None or not len(taken):
            break
        hit = df.join(taken, on=["country", "city", "street_address"], how="semi")["person_id"]
        if not len(hit):
            break
        bumped = pl.col("person_id").is_in(hit.implode())
        df = df.with_columns(_house=pl.when(bumped).then(pl.col("_house") + 1000).otherwise("_house"))
        df = df.with_columns(street_address=street_address)
    return df.drop("_house")


def _slug(col: str) -> pl.Expr:
    expr = pl.col(col).str.to_lowercase()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss"), ("é", "e"), ("è", "e"), ("ê", "e"),
                     ("ë", "e"), ("à", "a"), ("â", "a"), ("î", "i"), ("ï", "i"), ("ô", "o"), ("ù", "u"),
                     ("û", "u"), ("ç", "c"), ("ÿ", "y"), ("á", "a"), ("í", "i"), ("ó", "o"), ("ú", "u"),
                     ("ñ", "n"), ("ø", "o"), ("å", "a"), ("æ", "ae"), ("œ", "oe"), ("č", "c"), ("š", "s"),
                     ("ž", "z"), ("ł", "l"), ("ć", "c"), ("ś", "s"), ("ń", "n"), ("ź", "z"), ("ż", "z")):
        expr = expr.str.replace_all(src, dst, literal=True)
    return expr.str.replace_all(r"[^a-z0-9]", "")


def _with_emails(df: pl.DataFrame, taken: pl.Series | None) -> pl.DataFrame:
    """Personal and work addresses; collisions get a '.<person_id>' suffix so every address is one person's."""
    first, last = _slug("first_name"), _slug("last_name")
    year = pl.col("date_of_birth").dt.year().cast(pl.String).str.slice(2, 2)
    style = pl.col("email_style")
    local = (
        pl.when(style == 0).then(pl.concat_str([first, pl.lit("."), last]))
        .when(style == 1).then(pl.concat_str([first, last]))
        .when(style == 2).then(pl.concat_str([first.str.slice(0, 1), last]))
        .when(style == 3).then(pl.concat_str([first, pl.lit("."), last, year]))
        .when(style == 4).then(pl.concat_str([first, pl.lit("_"), last]))
        .otherwise(pl.concat_str([last, pl.lit("."), first]))
    )
    domain = pl.lit(None, dtype=pl.String)
    for country, domains in vocab.PERSONAL_DOMAINS.items():
        pick = (pl.col("personal_domain_pick") * len(domains)).floor().cast(pl.Int64)
        d = pl.lit(None, dtype=pl.String)
        for i, name in enumerate(domains):
            d = pl.when(pick == i).then(pl.lit(name)).otherwise(d)
        domain = pl.when(pl.col("country") == country).then(d).otherwise(domain)
    work_local = (
        pl.when(pl.col("work_style") == 0).then(pl.concat_str([first, pl.lit("."), last]))
        .when(pl.col("work_style") == 1).then(pl.concat_str([first.str.slice(0, 1), last]))
        .otherwise(pl.concat_str([first, last.str.slice(0, 1)]))
    )
    df = df.with_columns(
        _personal_local=local,
        _personal_domain=domain,
        _work_local=pl.when(pl.col("company_domain").is_not_null()).then(work_local),
    )
    # Unique across people (and across earlier days via `taken`).
    long = pl.concat(
        [
            df.select("person_id", pl.lit(0).alias("kind"), pl.col("_personal_local").alias("local"), pl.col("_personal_domain").alias("domain")),
            df.select("person_id", pl.lit(1).alias("kind"), pl.col("_work_local").alias("local"), pl.col("company_domain").alias("domain")),
        ]
    ).filter(pl.col("local").is_not_null())
    long = long.with_columns(email=pl.concat_str(["local", pl.lit("@"), "domain"]))
    clash = pl.int_range(pl.len()).over("email") > 0
    if taken is not None and len(taken):
        clash = clash | pl.col("email").is_in(taken.implode())
    long = long.sort("person_id", "kind").with_columns(
        email=pl.when(clash)
        .then(pl.concat_str(["local", pl.lit("."), pl.col("person_id").cast(pl.String), pl.lit("@"), "domain"]))
        .otherwise("email")
    )
    wide = long.pivot(on="kind", index="person_id", values="email")
    wide = wide.rename({"0": "personal_email", **({"1": "work_email"} if "1" in wide.columns else {})})
    if "work_email" not in wide.columns:
        wide = wide.with_columns(work_email=pl.lit(None, dtype=pl.String))
    return df.join(wide, on="person_id", how="left").drop("_personal_local", "_personal_domain", "_work_local")


def _with_propensity(df: pl.DataFrame) -> pl.DataFrame:
    """Planted conversion propensity from fit (seniority, size, industry) and behaviour (intent, archetype)."""
    seniority_fit = pl.col("seniority_idx").replace_strict(dict(enumerate(vocab.SENIORITY_FIT.tolist())), return_dtype=pl.Float64)
    industry_fit = pl.col("industry_idx").replace_strict(dict(enumerate(vocab.INDUSTRY_FIT.tolist())), default=0.0, return_dtype=pl.Float64)
    size_fit = (pl.col("employee_count").cast(pl.Float64).log10().clip(0, 5) - 2.0) * 0.4
    fit = pl.when(pl.col("employed")).then(seniority_fit + industry_fit + size_fit).otherwise(-0.8)
    bonus = pl.col("archetype").replace_strict(dict(zip(ARCHETYPES, ARCHETYPE_BONUS.tolist())), return_dtype=pl.Float64)
    logit = -3.0 + fit + 0.9 * pl.col("intent") + bonus
    return df.with_columns(fit=fit).with_columns(propensity=1.0 / (1.0 + (-logit).exp()))
