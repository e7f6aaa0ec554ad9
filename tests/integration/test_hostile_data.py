"""Hostile data (Unicode, control characters, SQL quotes, backslashes, 10 kB strings) flows
from the raw tables through dbt, the plan and every destination without breaking a batch
or being mangled: each tool holds exactly what the model holds (or, for ad platforms,
the SHA-256 of it normalised by the platform's documented rules)."""

from __future__ import annotations

import csv
import json
import shutil

import duckdb
import pyarrow.parquet as pq
import pytest

from destinations import google_ads, meta
from destinations.base import Record
from destinations.registry import build_destination
from orchestration.sync.apply import run_sync
from orchestration.sync.spec import SyncSpec
from tests.integration.hostile_world import HOSTILE, INVALID_EMAILS, LONG
from tests.integration.sandboxes import ENV, Sandboxes

pytestmark = pytest.mark.slow

NAMES = {"first_name": "first_name", "last_name": "last_name"}
# destination entry -> (mode, object, match_on, fields)
FILE_FIELDS = {**NAMES, "company": "company", "job_title": "job_title"}
SYNCS = {
    "outbox": ("upsert", "contacts", {"email": "email"}, FILE_FIELDS),
    "outbox_csv": ("upsert", "contacts", {"email": "email"}, FILE_FIELDS),
    "outbox_parquet": ("upsert", "contacts", {"email": "email"}, FILE_FIELDS),
    "webhook_sandbox": ("upsert", "contacts", {"email": "email"},
                        {**NAMES, "company": "company", "job_title": "job_title"}),
    "hubspot_sandbox": ("upsert", "contacts", {"email": "email"},
                        {"firstname": "first_name", "lastname": "last_name", "company": "company",
                         "jobtitle": "job_title"}),
    "salesforce_sandbox": ("upsert", "Contact", {"Email": "email"},
                           {"FirstName": "first_name", "LastName": "last_name", "Title": "job_title"}),
    "mailchimp_sandbox": ("membership", "seg1", {"email": "email"}, {"FNAME": "first_name", "LNAME": "last_name"}),
    "klaviyo_sandbox": ("membership", "Y6nRLr", {"email": "email"}, dict(NAMES)),
    "meta_sandbox": ("membership", "23850000000000001", {"email": "email"},
                     {**NAMES, "phone": "phone_e164", "country": "country_code", "zip": "postal_code"}),
    "google_ads_sandbox": ("membership", "5550001", {"email": "email"},
                           {**NAMES, "phone": "phone_e164", "country": "country_code",
                            "postal_code": "postal_code"}),
}


@pytest.fixture(scope="module")
def world(hostile_world, tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_data")
    warehouse = root / "outflow.duckdb"
    shutil.copy(hostile_world.warehouse, warehouse)
    sandboxes = Sandboxes(root)
    with sandboxes.config.open("a") as config:  # the file destination's other formats
        for fmt in ("csv", "parquet"):
            config.write(f"outbox_{fmt}:\n  type: file\n  folder: {root / ('outbox_' + fmt)}\n  format: {fmt}\n")
    yield warehouse, sandboxes
    sandboxes.stop()


def model_rows(warehouse) -> dict[str, dict]:
    """The hostile people as the model holds them, by profile_id."""
    emails = [e for e, *_ in HOSTILE.values()]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute(f"select * from profiles where email in ({', '.join('?' * len(emails))})", emails)
        names = [d[0] for d in cur.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cur.fetchall()}


def test_staging_keeps_hostile_values_apart_from_its_documented_normalisation(hostile_world):
    rows = {r["email"]: r for r in model_rows(hostile_world.warehouse).values()}
    assert len(rows) == len(HOSTILE)  # every hostile person is one profile with a valid email
    by_email = {e: (first, last, company, title) for e, _p, first, last, company, title in HOSTILE.values()}
    for email, (first, last, company, title) in by_email.items():
        row = rows[email]
        # company and job title pass as they are; names are proper-cased (docs/marts.md)
        assert row["company"] == company and row["job_title"] == title, email
        assert row["first_name"].lower() == first.lower() and row["last_name"].lower() == last.lower(), email
    assert rows["tokyo.taro@example.jp"]["first_name"] == "東京"
    assert rows["emoji.fan@example.com"]["first_name"] == "Ann 🎉"
    assert rows["combining@example.com"]["first_name"] == "Jose\u0301"  # combining marks kept, not recomposed
    assert rows["back.slash@example.com"]["last_name"] == "C:\\path\\new\\table"
    assert rows["long.strings@example.com"]["first_name"] == LONG[0] + LONG[1:].lower()
    assert len(rows["long.strings@example.com"]["company"]) == 10_000
    # Invalid addresses never become a profile's email, so no sync can send them.
    with duckdb.connect(str(hostile_world.warehouse), read_only=True) as con:
        emails = {e for (e,) in con.execute("select email from profiles where email is not null").fetchall()}
    assert not emails & {e.lower() for e in INVALID_EMAILS.values()}


def held_by_tool(sandboxes: Sandboxes, entry: str, spec: SyncSpec, rows: dict[str, dict]) -> dict[str, dict]:
    """What the tool holds for each profile_id, in the sync's destination field names."""
    fields = list(spec.fields)
    out: dict[str, dict] = {}
    if entry == "outbox":
        for path in (sandboxes.root / "outbox" / spec.name).glob("*.jsonl"):
            for line in path.read_text(encoding="utf-8").split("\n")[:-1]:  # not splitlines: U+2028 is data
                row = json.loads(line)
                out[row["key"]] = {f: row[f] for f in fields}
    elif entry == "outbox_csv":
        for path in (sandboxes.root / "outbox_csv" / spec.name).glob("*.csv"):
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    out[row["key"]] = {f: row[f] for f in fields}
    elif entry == "outbox_parquet":
        for path in (sandboxes.root / "outbox_parquet" / spec.name).glob("*.parquet"):
            for row in pq.read_table(path).to_pylist():
                out[row["key"]] = {f: row[f] for f in fields}
    elif entry == "webhook_sandbox":
        for key, rec in sandboxes["webhook"].state.records[spec.object].items():
            out[key] = {f: rec["fields"].get(f) for f in fields}
    elif entry == "hubspot_sandbox":
        for key, row in rows.items():
            contact = sandboxes["hubspot"].contact_by_email(row["email"])
            if contact:
                out[key] = {f: contact["properties"].get(f) for f in fields}
    elif entry == "salesforce_sandbox":
        for key in rows:
            rec = sandboxes["salesforce"].by_external_id(key)
            if rec:
                out[key] = {f: rec.get(f) for f in fields}
    elif entry == "mailchimp_sandbox":
        in_segment = sandboxes["mailchimp"].segment_emails("list0001", spec.object)
        for key, row in rows.items():
            member = sandboxes["mailchimp"].member("list0001", row["email"])
            if member and member["email_address"] in in_segment:
                out[key] = {f: member["merge_fields"].get(f) for f in fields}
    elif entry == "klaviyo_sandbox":
        sandboxes["klaviyo"].settle()
        members = sandboxes["klaviyo"].members(spec.object)
        for key, row in rows.items():
            profile = sandboxes["klaviyo"].profile_by_email(row["email"])
            if profile and profile["id"] in members:
                out[key] = {f: profile.get(f) for f in fields}
    return out


def expected_hashes(entry: str, spec: SyncSpec, rows: dict[str, dict]) -> dict[str, object]:
    """The platform's identifiers for each row, by its documented normalisation rules."""
    sent = {key: {dest: row[col] for dest, col in spec.sent_fields().items()} for key, row in rows.items()}
    if entry == "meta_sandbox":
        return {key: meta.hashed_row(fields) for key, fields in sent.items()}
    return {key: google_ads.user_identifiers(Record(key, fields))[0] for key, fields in sent.items()}


def google_member_key(identifier: dict) -> tuple:
    """A UserIdentifier as the Google Ads sandbox keys its list members."""
    if "addressInfo" in identifier:
        a = identifier["addressInfo"]
        return ("addressInfo", (a["hashedFirstName"], a["hashedLastName"], a["countryCode"],
                                str(a.get("postalCode", ""))))
    ((kind, value),) = identifier.items()
    return (kind, value)


@pytest.mark.parametrize("entry", sorted(SYNCS))
def test_every_destination_holds_exactly_what_the_model_holds(world, entry):
    warehouse, sandboxes = world
    rows = model_rows(warehouse)
    mode, obj, match_on, fields = SYNCS[entry]
    ids = ", ".join(f"'{k}'" for k in sorted(rows))
    spec = SyncSpec(name=f"hostile_{entry}", model="profiles", model_table="profiles", destination=entry,
                    object=obj, mode=mode, primary_key="profile_id", match_on=match_on, fields=fields,
                    where=f"profile_id in ({ids})",
                    channel="ads" if entry in ("meta_sandbox", "google_ads_sandbox") else "crm")
    destination = build_destination(entry, sandboxes.config, env=ENV)
    try:
        report = run_sync(spec, destination, warehouse)
    finally:
        destination.close()
    assert report.status == "succeeded", (report.error, report.failed, report.rejected)
    assert sum(report.succeeded.values()) == len(rows) == len(HOSTILE)

    if entry in ("meta_sandbox", "google_ads_sandbox"):
        expected = expected_hashes(entry, spec, rows)
        if entry == "meta_sandbox":
            held = sandboxes["meta"].members(obj)
            for key, row in expected.items():
                assert row in held, key
        else:
            held = sandboxes["google_ads"].members(obj)
            for key, identifiers in expected.items():
                for identifier in identifiers:
                    assert google_member_key(identifier) in held, (key, identifier)
        return
    held = held_by_tool(sandboxes, entry, spec, rows)
    want = {key: {dest: row[col] for dest, col in spec.fields.items()} for key, row in rows.items()}
    assert held.keys() == want.keys()
    for key in want:
        assert held[key] == want[key], (entry, key)
