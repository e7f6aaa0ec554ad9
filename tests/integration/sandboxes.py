"""Every tool sandbox on an ephemeral loopback port, and a destinations.yml like the
repo's whose *_sandbox entries point at them (the demo's fixed ports stay free)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from destinations.sandbox.serve import SANDBOXES, stop_all
from destinations.sandbox.server import SandboxServer

REPO = Path(__file__).resolve().parents[2]
CREDENTIALS = {var: f"test-{var.lower().replace('_', '-')}" for spec in SANDBOXES.values() for var in spec.env}
CREDENTIALS["OUTFLOW_MAILCHIMP_API_KEY"] = "testkey-us19"  # Mailchimp keys end in their data centre


@dataclass
class Sandboxes:
    config: Path  # destinations.yml for these sandboxes
    env: dict[str, str]  # what the destinations read: credentials and OUTFLOW_DESTINATIONS
    servers: dict[str, SandboxServer]

    def __getitem__(self, name: str):
        return self.servers[name]


@contextmanager
def running_sandboxes(folder: Path, names: list[str] | None = None,
                      settings: dict[str, dict] | None = None) -> Iterator[Sandboxes]:
    """`settings`: extra keys per destination entry (e.g. a faster rate than the tool's)."""
    servers: dict[str, SandboxServer] = {}
    urls: dict[str, str] = {}
    try:
        for name in names or list(SANDBOXES):
            spec = SANDBOXES[name]
            server = spec.build(*(CREDENTIALS[v] for v in spec.env), port=0)
            urls[name] = server.start()
            servers[name] = server
        config = yaml.safe_load((REPO / "destinations.yml").read_text())
        config["outbox"]["folder"] = str(folder / "outbox")
        where = {"webhook": ("webhook_sandbox", "url"), "hubspot": ("hubspot_sandbox", "base_url"),
                 "klaviyo": ("klaviyo_sandbox", "base_url"), "salesforce": ("salesforce_sandbox", "instance_url"),
                 "meta": ("meta_sandbox", "base_url"), "google_ads": ("google_ads_sandbox", "base_url"),
                 "mailchimp": ("mailchimp_sandbox", "base_url")}
        for name, server in servers.items():
            entry, key = where[name]
            config[entry][key] = server.api_url if name == "mailchimp" else urls[name]
            config[entry].pop(f"{key}_env", None)
        for entry, extra in (settings or {}).items():
            config[entry].update(extra)
        path = folder / "destinations.yml"
        path.write_text(yaml.safe_dump(config))
        yield Sandboxes(path, {**CREDENTIALS, "OUTFLOW_DESTINATIONS": str(path)}, servers)
    finally:
        stop_all(servers)
