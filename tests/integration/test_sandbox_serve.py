"""`outflow sandbox serve`: every tool sandbox starts on loopback and checks its credential."""

from __future__ import annotations

import pytest
import requests

from destinations.sandbox.serve import SANDBOXES, start_all, stop_all

ENV = {var: f"test-{var.lower()}" for spec in SANDBOXES.values() for var in spec.env}
ENV["OUTFLOW_MAILCHIMP_API_KEY"] = "testkey-us19"  # Mailchimp keys end in their data centre


def test_every_sandbox_starts_on_loopback_and_refuses_an_unauthenticated_call():
    sandboxes = start_all(ENV, ephemeral=True)  # free ports: never the demo's
    try:
        assert set(sandboxes) == set(SANDBOXES)
        for name, sandbox in sandboxes.items():
            assert sandbox.url.startswith("http://127.0.0.1:")
            answer = requests.post(sandbox.url, json={}, timeout=5)  # no credentials at all
            assert answer.status_code in (400, 401, 403, 404), name
    finally:
        stop_all(sandboxes)


def test_a_missing_credential_is_named_and_nothing_is_left_running():
    env = dict(ENV)
    del env["OUTFLOW_META_TOKEN"]
    with pytest.raises(ValueError, match="OUTFLOW_META_TOKEN"):
        start_all(env, port_offset=1100)
    again = start_all(ENV, names=["webhook", "hubspot"], port_offset=1100)  # ports were released
    stop_all(again)
