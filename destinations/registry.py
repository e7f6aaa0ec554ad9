"""Configured destinations: `destinations.yml` at the repo root (or $OUTFLOW_DESTINATIONS).

    <name>:
      type: file | webhook | ...   (TYPES below)
      ...settings of that type (the type module's Config)

Secrets are never in the file: a destination names the environment variable that
holds its secret (`secret_env: OUTFLOW_WEBHOOK_SECRET`). Every error names the
destination and the key to fix.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from destinations.base import Destination

REPO_ROOT = Path(__file__).resolve().parent.parent
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RegistryError(ValueError):
    """A destinations file or entry that cannot be used, with what to fix."""


class DestinationConfig(BaseModel):
    """Base of every destination type's settings (each tool module defines `Config`)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _env_names(cls, v: Any, info) -> Any:
        # Keys ending in _env name an environment variable; they never hold the value.
        if info.field_name.endswith("_env") and v is not None and not _ENV_NAME.match(str(v)):
            raise ValueError("must be an environment variable NAME (letters, digits, _), not a value")
        return v


# type -> the module that implements it. A module defines `Config` (a DestinationConfig
# with `type: Literal[...]`) and `from_config(name, config, *, where, env) -> Destination`.
# A new tool adds one line here.
TYPES: dict[str, str] = {
    "file": "destinations.file",
    "klaviyo": "destinations.klaviyo",
    "webhook": "destinations.webhook",
    "mailchimp": "destinations.mailchimp",
    "hubspot": "destinations.hubspot",
    "salesforce": "destinations.salesforce",
    "google_ads": "destinations.google_ads",
    "meta": "destinations.meta",
}
KNOWN_TYPES = tuple(sorted(TYPES))
_SECRET_KEYS = {"secret", "password", "token", "api_key", "apikey", "access_token", "client_secret"}


def _module(kind: str):
    return importlib.import_module(TYPES[kind])


def env_value(env: Mapping[str, str], var: str | None, *, name: str, key: str, where: Path) -> str:
    """The value of the environment variable a destination names; a clear error when unset."""
    value = env.get(var) if var else None
    if not value:
        raise RegistryError(
            f"{where}: destination '{name}', key '{key}': environment variable {var} is not set (or empty)"
        )
    return value


def secret_env_vars(config: DestinationConfig) -> list[str]:
    """The environment variables that hold this destination's secrets: every `*_env` key
    except URL overrides (`url_env`, `base_url_env`, `instance_url_env`), which are not secret."""
    return [str(value) for key, value in config if key.endswith("_env") and not key.endswith("url_env") and value]


def destinations_path() -> Path:
    return Path(os.environ.get("OUTFLOW_DESTINATIONS") or REPO_ROOT / "destinations.yml")


def _entry(name: str, raw: Any, where: Path) -> DestinationConfig:
    if not isinstance(raw, Mapping):
        raise RegistryError(f"{where}: destination '{name}' must be a mapping with a 'type' key")
    leaked = sorted(k for k in raw if str(k).lower() in _SECRET_KEYS)
    if leaked:
        raise RegistryError(
            f"{where}: destination '{name}', key '{leaked[0]}': secrets never go in this file; "
            "put the value in an environment variable and name it with 'secret_env'"
        )
    kind = raw.get("type")
    if kind not in KNOWN_TYPES:
        raise RegistryError(
            f"{where}: destination '{name}', key 'type': unknown type {kind!r} (known: {', '.join(KNOWN_TYPES)})"
        )
    try:
        return _module(kind).Config.model_validate(dict(raw))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key, msg = ".".join(str(p) for p in err["loc"]), err["msg"].removeprefix("Value error, ")
            if not key:  # a check across keys: by convention its message starts with "key: "
                key, _, msg = msg.partition(": ") if ": " in msg else ("type", "", msg)
            problems.append(f"key '{key}': {msg}")
        raise RegistryError(f"{where}: destination '{name}', " + "; ".join(problems)) from None


def load_destinations(path: str | os.PathLike[str] | None = None) -> dict[str, DestinationConfig]:
    where = Path(path) if path else destinations_path()
    try:
        raw = yaml.safe_load(where.read_text()) or {}
    except FileNotFoundError:
        raise RegistryError(f"{where}: no destinations file (set OUTFLOW_DESTINATIONS or create it)") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise RegistryError(f"{where}: must be a mapping of destination name -> settings")
    return {str(name): _entry(str(name), spec, where) for name, spec in raw.items()}


def build_destination(
    name: str,
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Destination:
    """A ready Destination for a configured name. `env` defaults to os.environ."""
    env = os.environ if env is None else env
    where = Path(path) if path else destinations_path()
    configs = load_destinations(where)
    if name not in configs:
        known = ", ".join(sorted(configs)) or "none"
        raise RegistryError(f"{where}: no destination named '{name}' (configured: {known})")
    cfg = configs[name]
    try:
        return _module(cfg.type).from_config(name, cfg, where=where, env=env)
    except ValueError as exc:
        if isinstance(exc, RegistryError):
            raise
        raise RegistryError(f"{where}: destination '{name}': {exc}") from None
