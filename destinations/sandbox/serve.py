"""Start every tool sandbox at once, on fixed loopback ports, for the demo and local trials.

Each sandbox checks the same credential its destination sends, read from the
environment variable `destinations.yml` names for that sandbox destination; the demo
sets throwaway values. Ports and list ids here match the `*_sandbox` entries of
destinations.yml.

Tests and parallel trials start them on free ports instead (`start_all(env, ephemeral=True)`)
and write a copy of destinations.yml whose `*_sandbox` entries point at those ports
(`write_sandbox_destinations`); `OUTFLOW_DESTINATIONS` then selects that copy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from destinations.sandbox.server import SandboxServer


@dataclass(frozen=True)
class SandboxSpec:
    port: int
    env: tuple[str, ...]  # credentials the sandbox checks, by environment variable
    build: Callable[..., SandboxServer]  # called with the credential values, in `env` order, and port=


def _webhook(secret: str, port: int):
    from destinations.sandbox.webhook_receiver import WebhookReceiver

    return WebhookReceiver(secret, port=port)


def _hubspot(token: str, port: int):
    from destinations.sandbox.hubspot import HubSpotSandbox

    return HubSpotSandbox(token=token, lists=["1001"], port=port)


def _mailchimp(api_key: str, port: int):
    from destinations.sandbox.mailchimp import MailchimpSandbox

    return MailchimpSandbox(api_key=api_key, lists={"list0001": ["seg1"]}, port=port)


def _klaviyo(api_key: str, port: int):
    from destinations.sandbox.klaviyo import KlaviyoSandbox

    return KlaviyoSandbox(api_key, lists=("Y6nRLr",), port=port)


def _salesforce(token: str, port: int):
    from destinations.sandbox.salesforce import SalesforceSandbox

    return SalesforceSandbox(token=token, campaigns=["701000000000001AAA"], port=port)


def _meta(token: str, port: int):
    from destinations.sandbox.meta import MetaSandbox

    return MetaSandbox(token=token, audiences=["23850000000000001"], port=port)


def _google_ads(access_token: str, developer_token: str, port: int):
    from destinations.sandbox.google_ads import GoogleAdsSandbox

    return GoogleAdsSandbox(access_token=access_token, developer_token=developer_token,
                            user_lists=["5550001"], port=port)


SANDBOXES: dict[str, SandboxSpec] = {
    "webhook": SandboxSpec(8765, ("OUTFLOW_WEBHOOK_SECRET",), _webhook),
    "hubspot": SandboxSpec(8766, ("OUTFLOW_HUBSPOT_TOKEN",), _hubspot),
    "mailchimp": SandboxSpec(8767, ("OUTFLOW_MAILCHIMP_API_KEY",), _mailchimp),
    "klaviyo": SandboxSpec(8768, ("OUTFLOW_KLAVIYO_API_KEY",), _klaviyo),
    "salesforce": SandboxSpec(8769, ("OUTFLOW_SALESFORCE_TOKEN",), _salesforce),
    "meta": SandboxSpec(8770, ("OUTFLOW_META_TOKEN",), _meta),
    "google_ads": SandboxSpec(8771, ("OUTFLOW_GOOGLE_ADS_TOKEN", "OUTFLOW_GOOGLE_ADS_DEVELOPER_TOKEN"), _google_ads),
}


def start_all(env: Mapping[str, str], names: list[str] | None = None, port_offset: int = 0,
              *, ephemeral: bool = False) -> dict[str, SandboxServer]:
    """Start the named sandboxes (all by default), on their fixed ports (+ port_offset) or,
    with `ephemeral`, on free ports the OS picks. Raises naming the first missing variable."""
    started: dict[str, SandboxServer] = {}
    try:
        for name in names or list(SANDBOXES):
            spec = SANDBOXES[name]
            missing = [var for var in spec.env if not env.get(var)]
            if missing:
                raise ValueError(f"sandbox {name}: environment variable {missing[0]} is not set")
            port = 0 if ephemeral else spec.port + port_offset
            sandbox = spec.build(*(env[var] for var in spec.env), port=port)
            sandbox.start()
            started[name] = sandbox
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_all(sandboxes: Mapping[str, SandboxServer]) -> None:
    for sandbox in sandboxes.values():
        sandbox.stop()


# destinations.yml entry of each sandbox -> the key holding its address, and the path
# under the sandbox's root that the entry points at.
SANDBOX_DESTINATIONS: dict[str, tuple[str, str, str]] = {
    "webhook": ("webhook_sandbox", "url", ""),
    "hubspot": ("hubspot_sandbox", "base_url", ""),
    "mailchimp": ("mailchimp_sandbox", "base_url", "/3.0"),
    "klaviyo": ("klaviyo_sandbox", "base_url", ""),
    "salesforce": ("salesforce_sandbox", "instance_url", ""),
    "meta": ("meta_sandbox", "base_url", ""),
    "google_ads": ("google_ads_sandbox", "base_url", ""),
}


def write_sandbox_destinations(sandboxes: Mapping[str, SandboxServer], target: str | os.PathLike[str],
                               source: str | os.PathLike[str] | None = None,
                               outbox: str | os.PathLike[str] | None = None) -> Path:
    """Copy destinations.yml (`source`, default the configured one) to `target` with each
    running sandbox's entry pointed at its actual address, and file destinations at
    `outbox` when given. Returns `target`; set OUTFLOW_DESTINATIONS to it."""
    from destinations.registry import destinations_path

    source = Path(source) if source else destinations_path()
    config = yaml.safe_load(source.read_text()) or {}
    for name, sandbox in sandboxes.items():
        entry, key, path = SANDBOX_DESTINATIONS[name]
        if entry in config:
            config[entry][key] = f"{sandbox.url}{path}"
            config[entry].pop(f"{key}_env", None)  # the running sandbox wins over any override
    if outbox is not None:
        for settings in config.values():
            if isinstance(settings, dict) and settings.get("type") == "file":
                settings["folder"] = str(outbox)
    target = Path(target)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target
