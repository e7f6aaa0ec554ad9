"""The contact rule for tests whose model is synthetic (no dbt build): every row of the
model contactable on every channel, no deletion requests. Tests of the rule itself use
the dbt marts (tests/integration/test_consent_syncs.py)."""

from __future__ import annotations

import duckdb

from orchestration.sync import state as st


def allow_everyone(con: duckdb.DuckDBPyConnection, model: str = "people", key: str = "profile_id") -> None:
    st.ensure_tables(con)
    con.execute(
        "CREATE OR REPLACE VIEW main.contactable_profiles AS "
        f"SELECT CAST({key} AS VARCHAR) AS profile_id, c.channel, true AS is_contactable, 'opted_in' AS reason, "
        f"false AS is_deletion_requested FROM main.{model} "
        "CROSS JOIN (VALUES ('email'), ('sms'), ('ads'), ('crm')) AS c(channel)")
    con.execute("CREATE TABLE IF NOT EXISTS main.deletion_requests "
                "(request_id VARCHAR, email VARCHAR, profile_id VARCHAR, requested_at TIMESTAMP)")
