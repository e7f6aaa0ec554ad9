"""Word lists drawn from faker's locale data (static tables, so no faker RNG is involved)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from faker.providers.address import de_DE as addr_de
from faker.providers.address import en_GB as addr_gb
from faker.providers.address import en_US as addr_us
from faker.providers.address import fr_FR as addr_fr
from faker.providers.person import de_DE as person_de
from faker.providers.person import en_GB as person_gb
from faker.providers.person import en_US as person_us
from faker.providers.person import fr_FR as person_fr

COUNTRIES = ("US", "GB", "DE", "FR")
COUNTRY_WEIGHTS = np.array([0.50, 0.18, 0.16, 0.16])
CURRENCY = {"US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR"}
# How a record may spell its country; all resolve with pycountry.countries.lookup.
COUNTRY_SPELLINGS = {
    "US": ("US", "USA", "United States", "us"),
    "GB": ("GB", "GBR", "United Kingdom", "gb"),
    "DE": ("DE", "DEU", "Germany", "de"),
    "FR": ("FR", "FRA", "France", "fr"),
}
PERSONAL_DOMAINS = {
    "US": ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "aol.com"),
    "GB": ("gmail.com", "hotmail.co.uk", "outlook.com", "btinternet.com", "yahoo.co.uk"),
    "DE": ("gmail.com", "web.de", "gmx.de", "t-online.de", "outlook.de"),
    "FR": ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"),
}
COMPANY_SUFFIXES = {
    "US": ("Inc", "LLC", "Corp", "Group", "Labs", "Systems"),
    "GB": ("Ltd", "PLC", "Group", "Partners", "Digital"),
    "DE": ("GmbH", "AG", "GmbH & Co. KG", "Gruppe", "Systeme"),
    "FR": ("SARL", "SA", "SAS", "Groupe", "Conseil"),
}
COMPANY_TLD = {"US": "com", "GB": "co.uk", "DE": "de", "FR": "fr"}
INDUSTRIES = (
    "Software", "Financial Services", "Retail", "Healthcare", "Manufacturing",
    "Education", "Media", "Logistics", "Professional Services", "Non-profit",
)
# Fit for the planted propensity: a B2B SaaS seller likes software/finance/services.
INDUSTRY_FIT = np.array([1.0, 0.7, 0.4, 0.3, 0.2, -0.2, 0.3, 0.1, 0.5, -0.6])
DEPARTMENTS = ("Marketing", "Sales", "Engineering", "Finance", "Operations", "Product", "Growth", "IT")
# seniority level -> title templates ({d} = department); fit grows with seniority.
SENIORITY = ("c_level", "vp", "director", "head", "manager", "individual", "intern")
SENIORITY_WEIGHTS = np.array([0.04, 0.07, 0.11, 0.08, 0.25, 0.40, 0.05])
SENIORITY_FIT = np.array([1.2, 1.0, 0.8, 0.7, 0.3, -0.1, -1.0])
TITLE_TEMPLATES = {
    "c_level": ("Chief {d} Officer", "CEO", "CTO", "CMO", "CFO", "COO"),
    "vp": ("VP {d}", "VP of {d}", "Vice President, {d}"),
    "director": ("Director of {d}", "{d} Director", "Senior Director, {d}"),
    "head": ("Head of {d}",),
    "manager": ("{d} Manager", "Senior {d} Manager", "{d} Team Lead"),
    "individual": ("{d} Engineer", "{d} Specialist", "{d} Analyst", "Senior {d} Engineer", "{d} Associate"),
    "intern": ("{d} Intern", "Intern, {d}", "Working Student {d}"),
}
LEAD_SOURCES = ("organic_search", "paid_search", "paid_social", "referral", "event", "webinar", "outbound", "partner")
LIFECYCLE_STAGES = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer")
BLOG_SLUGS = (
    "reverse-etl-explained", "lead-scoring-101", "consent-first-marketing", "warehouse-native-crm",
    "customer-segmentation", "email-deliverability", "identity-resolution", "attribution-models",
)
PRODUCT_SLUGS = (
    "starter-kit", "pro-bundle", "analytics-addon", "team-plan", "enterprise-plan",
    "onboarding-pack", "data-connector", "support-plus",
)
SITE = "https://www.example-shop.com"


def ascii_slug(text: str) -> str:
    """'Müller-Lüdenscheidt' -> 'muellerluedenscheidt' (for email local parts and domains)."""
    text = text.lower()
    for src, dst in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in text if ch.isalnum())


def _names(values) -> tuple[list[str], np.ndarray]:
    """Names and sampling weights (faker keeps frequency weights in OrderedDicts)."""
    if isinstance(values, dict):
        names = list(values)
        weights = np.array([float(values[n]) for n in names])
    else:
        names = list(dict.fromkeys(values))
        weights = np.ones(len(names))
    return names, weights / weights.sum()


@dataclass(frozen=True)
class LocaleVocab:
    country: str
    first_names: tuple[str, ...]
    first_weights: np.ndarray
    last_names: tuple[str, ...]
    last_weights: np.ndarray
    streets: tuple[str, ...]
    cities: tuple[str, ...]
    # index into first_names -> nickname ('' when none)
    nicknames: tuple[str, ...]


def _nickname_table(first_names: list[str]) -> list[str]:
    """One unambiguous nickname per first name where the nicknames package has one.

    Only pairs where the nickname resolves to exactly one canonical name (and the
    canonical name is not itself a nickname), so a nickname->canonical lookup built
    from the same package gets them right.
    """
    from nicknames import NickNamer

    namer = NickNamer()
    out = []
    for name in first_names:
        canon = name.lower()
        pick = ""
        if not namer.canonicals_of(canon):
            for nick in sorted(namer.nicknames_of(canon)):
                if (
                    len(nick) >= 3
                    and nick[0] == canon[0]
                    and namer.canonicals_of(nick) == {canon}
                    and not namer.nicknames_of(nick)
                ):
                    pick = nick.capitalize()
                    break
        out.append(pick)
    return out


def _streets(country: str, last_names: list[str]) -> list[str]:
    lasts = last_names[:300]
    if country == "US":
        sufs = addr_us.Provider.street_suffixes[:40]
        return [f"{n} {s}" for n in lasts for s in sufs[::7]]
    if country == "GB":
        sufs = ("Road", "Street", "Lane", "Close", "Avenue", "Gardens", "Way")
        return [f"{n} {s}" for n in lasts for s in sufs]
    if country == "DE":
        return [f"{n}{s.lower()}" for n in lasts for s in ("Straße", "Weg", "Allee", "Ring", "Gasse", "Platz")]
    return [f"{p} {n}" for n in lasts for p in ("rue", "avenue", "chemin", "boulevard", "rue du Général")]


def _cities(country: str, last_names: list[str]) -> list[str]:
    if country == "DE":
        return list(dict.fromkeys(addr_de.Provider.cities))
    if country == "FR":
        sufs = ("-sur-Mer", "-les-Bains", "-la-Forêt", "ville", "")
        return [f"Saint-{n}{s}" if i % 2 else f"{n}{s}" for i, n in enumerate(last_names[:120]) for s in sufs]
    provider = addr_us.Provider if country == "US" else addr_gb.Provider
    sufs = provider.city_suffixes
    return [f"{n}{s}" for n in last_names[:150] for s in sufs[:6]] + [
        f"{p} {n}" for n in last_names[150:200] for p in provider.city_prefixes if country == "US"
    ]


@lru_cache(maxsize=None)
def locale(country: str) -> LocaleVocab:
    person = {"US": person_us, "GB": person_gb, "DE": person_de, "FR": person_fr}[country].Provider
    first, fw = _names(person.first_names)
    last, lw = _names(person.last_names)
    return LocaleVocab(
        country=country,
        first_names=tuple(first),
        first_weights=fw,
        last_names=tuple(last),
        last_weights=lw,
        streets=tuple(dict.fromkeys(_streets(country, last))),
        cities=tuple(dict.fromkeys(_cities(country, last))),
        nicknames=tuple(_nickname_table(first)),
    )


def gb_postal_zones() -> tuple[str, ...]:
    return tuple(addr_gb.Provider.POSTAL_ZONES)


def fr_departments() -> tuple[str, ...]:
    return tuple(code for code, _ in addr_fr.Provider.departments if code.isdigit())
