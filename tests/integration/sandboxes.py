"""Every tool sandbox on free loopback ports, and a destinations.yml pointing at them.

Shared by the hostile-input and leak tests. The credentials are throwaway values, but
distinctive ones, so a test can search every output for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from destinations.sandbox.serve import SANDBOXES, start_all, stop_all, write_sandbox_destinations

# Each secret is long and unlike anything else, so a leak of it is unmistakable.
ENV = {var: f"s3cr3t-{var.lower().replace('_', '-')}-9f8e7d" for spec in SANDBOXES.values() for var in spec.env}
ENV["OUTFLOW_MAILCHIMP_API_KEY"] = "mc5ecret0f0e1d2c3b4a-us19"  # Mailchimp keys end in their data centre
SECRETS = sorted(ENV.values())

# Quicker failure paths than production defaults: few retries, short polls.
FAST = {"max_retries": 1, "connect_timeout": 2.0, "read_timeout": 10.0}
FAST_BY_TYPE = {"klaviyo": {"poll_interval": 0.05}, "google_ads": {"poll_interval": 0.05},
                "salesforce": {"bulk_poll_interval": 0.05}}
NO_TIMEOUTS = {"google_ads": {"connect_timeout", "read_timeout"}}  # its Config has no timeouts


class Sandboxes:
    def __init__(self, root: Path, *, fast: bool = True):
        self.root = root
        self.running = start_all(ENV, ephemeral=True)
        try:
            self.config = write_sandbox_destinations(self.running, root / "destinations.yml", outbox=root / "outbox")
            if fast:
                self._speed_up()
        except BaseException:
            stop_all(self.running)
            raise

    def _speed_up(self) -> None:
        config = yaml.safe_load(self.config.read_text())
        for settings in config.values():
            kind = settings["type"]
            if kind == "file":
                continue
            for key, value in {**FAST, **FAST_BY_TYPE.get(kind, {})}.items():
                if key not in NO_TIMEOUTS.get(kind, set()):
                    settings[key] = value
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))

    def __getitem__(self, name: str):
        return self.running[name]

    def garbage(self, share: float, kinds: tuple[str, ...] | None = None) -> None:
        for sandbox in self.running.values():
            sandbox.garbage_share = share
            if kinds:
                sandbox.garbage_kinds = kinds

    def stop(self) -> None:
        stop_all(self.running)


@contextmanager
def running_sandboxes(root: Path, settings: dict[str, dict] | None = None) -> Iterator[Sandboxes]:
    """Sandboxes for a test that runs the declared syncs: `settings` go on top of their
    destinations.yml entries (e.g. a faster rate than the tool's own); `.env` holds the
    credentials and OUTFLOW_DESTINATIONS."""
    sandboxes = Sandboxes(root)
    try:
        if settings:
            config = yaml.safe_load(sandboxes.config.read_text())
            for entry, extra in settings.items():
                config[entry].update(extra)
            sandboxes.config.write_text(yaml.safe_dump(config, sort_keys=False))
        sandboxes.env = {**ENV, "OUTFLOW_DESTINATIONS": str(sandboxes.config)}
        yield sandboxes
    finally:
        sandboxes.stop()
