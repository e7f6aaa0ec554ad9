"""A small generated world with hostile people added to the raw tables, built by dbt with
debug logging. Shared by the hostile-data and the leak tests (tests/integration/conftest.py).

Each hostile contact has a valid email (so it reaches profiles and the syncs), email and
ads consent and an order (so the demo syncs' filters take it in), and names built to
break things: Unicode (accents, CJK, RTL, emoji, combining marks), control characters,
SQL quotes, backslashes and 10 kB strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from tests.conftest import SESSION_START_DATE, dbt, generate

PROFILES = 300
SEED = 11
LONG = "L" + "ö" * 4_999 + "x" * 5_000  # 10,000 characters, 15 kB of UTF-8

# contact_id -> (email, phone, first_name, last_name, company, job_title)
HOSTILE: dict[str, tuple[str, str | None, str, str, str, str]] = {
    "crm-h01": ("o'brien+tag@example.com", "+1 (650) 555-0101", "Zoë", "Ünal-Černý", "Café \"Quotes\" 'n' Co",
                "Head of 'Growth'"),
    "crm-h02": ("tokyo.taro@example.jp", "+81 3-1234-5678", "東京", "太郎", "株式会社テスト", "部長"),
    "crm-h03": ("rtl_user@example.com", "+972 2-123-4567", "مرحبا", "שלום", "شركة‏ Test", "مدير"),
    "crm-h04": ("emoji.fan@example.com", "+44 20 7946 0321", "Ann 🎉", "🙂Smith", "Rocket 🚀 Ltd", "Chief 🦄"),
    "crm-h05": ("combining@example.com", "+49 30 901820", "Jose\u0301", "Mu\u0308ller", "Zalgo Z\u0351\u0352o",
                "e\u0301\u0301\u0301"),
    "crm-h06": ("control.chars@example.com", "+33 1 42 68 53 00", "Bell\x07Ring", "Esc\x1b[31mRed",
                "Null\x01Byte Co", "Line\u2028Sep"),
    "crm-h07": ("bobby.tables@example.com", "+1 212 555 0107", "Robert'); DROP TABLE profiles;--",
                "O''Reilly \"; DELETE FROM x; --", "'; SELECT * FROM outflow.sync_state; --", "1' OR '1'='1"),
    "crm-h08": ("back.slash@example.com", "+61 2 9374 4000", "Back\\slash", "C:\\path\\new\\table",
                "\\x00\\n\\t Inc", "\\\\server\\share"),
    "crm-h09": ("long.strings@example.com", "+1 415 555 0109", LONG, LONG[::-1], LONG, LONG),
    "crm-h10": ("percent_under@example.com", "+34 91 123 45 67", "100% _real_", "{{ jinja }} ${env}",
                "%s %d %n", "<script>alert(1)</script>"),
}
# Emails staging refuses (not valid addresses): they must not reach any sync.
INVALID_EMAILS = {
    "crm-h11": "zoë@exämple.com",
    "crm-h12": "x" * 10_000 + "@example.com",
    "crm-h13": "a\\b@example.com",
    "crm-h14": "bad\x00nul@example.com",
}


@dataclass(frozen=True)
class HostileWorld:
    root: Path
    warehouse: Path
    dbt_output: str  # stdout and stderr of the debug dbt build
    dbt_log_dir: Path


def add_hostile_people(warehouse: Path) -> None:
    at = datetime.fromisoformat(SESSION_START_DATE) - timedelta(days=30)
    with duckdb.connect(str(warehouse)) as con:
        columns = [c for (c,) in con.execute(
            "select column_name from information_schema.columns where table_schema = 'raw' "
            "and table_name = 'crm_contacts' order by ordinal_position").fetchall()]
        rows = []
        for cid, (email, phone, first, last, company, title) in HOSTILE.items():
            rows.append({"contact_id": cid, "source_system": "crm", "email": email, "phone": phone,
                         "first_name": first, "last_name": last, "company": company, "job_title": title,
                         "country": "US", "postal_code": "94107", "lifecycle_stage": "lead",
                         "created_at": at, "updated_at": at})
        for cid, email in INVALID_EMAILS.items():
            rows.append({"contact_id": cid, "source_system": "crm", "email": email, "first_name": "Invalid",
                         "last_name": cid, "created_at": at, "updated_at": at})
        for row in rows:
            con.execute(f"insert into raw.crm_contacts ({', '.join(columns)}) values ({', '.join('?' * len(columns))})",
                        [row.get(c) for c in columns])
        for cid, (email, *_rest) in HOSTILE.items():
            for channel in ("email", "ads"):
                con.execute("insert into raw.consent_events (email, channel, status, source, occurred_at) "
                            "values (?, ?, 'granted', 'web_form', ?)", [email, channel, at])
            con.execute("insert into raw.orders (order_id, contact_id, email, amount, currency, status, ordered_at) "
                        "values (?, ?, ?, 99.5, 'USD', 'completed', ?)", [f"ord-{cid}", cid, email, at])


def build_hostile_world(root: Path) -> HostileWorld:
    warehouse = root / "outflow.duckdb"
    generate(warehouse, PROFILES, SEED)
    add_hostile_people(warehouse)
    target = root / "target"
    proc = dbt(["--debug", "build", "--vars", f"{{outflow_as_of: '{SESSION_START_DATE}'}}"], warehouse, target)
    return HostileWorld(root, warehouse, proc.stdout + proc.stderr, target / "logs")
