"""`webhooks.yml` (or $OUTFLOW_WEBHOOKS): where the spool is and how each tool is verified.

Secrets are never in the file: each tool names the environment variable holding its
shared secret (Mailchimp, Klaviyo) or public key (SendGrid). A variable that is unset
is an error naming it, when the receiver starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orchestration.settings import REPO_ROOT

TOOLS = ("mailchimp", "klaviyo", "sendgrid")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(ValueError):
    """A webhooks file or a secret that cannot be used, with what to fix."""


class ToolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret_env: str | None = None  # Mailchimp: the URL token; Klaviyo: the HMAC secret
    public_key_env: str | None = None  # SendGrid: the verification key (base64 DER or PEM)
    # A signed request older (or newer) than this is refused as stale: a replay.
    # Mailchimp signs nothing and retries for 75 min with the event's own fired_at,
    # so its window is longer (see docs/webhooks.md).
    max_age_seconds: int = Field(300, gt=0, le=7 * 24 * 3600)

    @field_validator("secret_env", "public_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be an environment variable NAME (letters, digits, _), not a value")
        return v


class WebhooksConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spool: str = "warehouse/webhooks"  # relative to the config file
    max_body_bytes: int = Field(1_000_000, gt=0)
    tools: dict[Literal["mailchimp", "klaviyo", "sendgrid"], ToolSettings] = Field(default_factory=dict)


def config_path() -> Path:
    return Path(os.environ.get("OUTFLOW_WEBHOOKS") or REPO_ROOT / "webhooks.yml")


def load_config(path: str | os.PathLike[str] | None = None) -> tuple[WebhooksConfig, Path]:
    where = Path(path) if path else config_path()
    try:
        raw = yaml.safe_load(where.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{where}: no webhooks file (set OUTFLOW_WEBHOOKS or create it)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None
    try:
        return WebhooksConfig.model_validate(raw), where
    except ValidationError as exc:
        problems = "; ".join(
            f"key '{'.'.join(str(p) for p in e['loc'])}': {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )
        raise ConfigError(f"{where}: {problems}") from None


def spool_dir(config: WebhooksConfig, where: Path) -> Path:
    folder = Path(config.spool).expanduser()
    return folder if folder.is_absolute() else (where.parent / folder).resolve()


def env_secret(env: Mapping[str, str], tool: str, key: str, var: str | None, where: Path) -> str:
    if not var:
        raise ConfigError(f"{where}: tools.{tool}: '{key}' is required (the environment variable to read)")
    value = env.get(var)
    if not value:
        raise ConfigError(f"{where}: tools.{tool}.{key}: environment variable {var} is not set (or empty)")
    return value
