"""Configured destinations: `destinations.yml` at the repo root (or $OUTFLOW_DESTINATIONS).

    <name>:
      type: file | webhook
      ...settings of that type

Secrets are never in the file: a destination names the environment variable that
holds its secret (`secret_env: OUTFLOW_WEBHOOK_SECRET`). Every error names the
destination and the key to fix.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from destinations.base import Destination

REPO_ROOT = Path(__file__).resolve().parent.parent
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RegistryError(ValueError):
    """A destinations file or entry that cannot be used, with what to fix."""


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileConfig(_Base):
    type: Literal["file"]
    folder: str = Field(min_length=1, description="outbox folder; relative paths are relative to the file")
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"


class WebhookConfig(_Base):
    type: Literal["webhook"]
    url: str | None = Field(None, description="the endpoint, or the default when url_env is unset")
    url_env: str | None = Field(None, description="env var that overrides url")
    secret_env: str = Field(description="name of the env var holding the signing secret")
    max_batch_size: int = Field(500, ge=1, le=10_000)
    requests_per_second: float | None = Field(None, gt=0)
    max_concurrency: int = Field(4, ge=1, le=64)
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_retries: int = Field(5, ge=0, le=20)

    @field_validator("secret_env", "url_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.match(v):
            raise ValueError("must be an environment variable NAME (letters, digits, _), not a value")
        return v


DestinationConfig = Annotated[FileConfig | WebhookConfig, Field(discriminator="type")]
_ADAPTER = TypeAdapter(DestinationConfig)
KNOWN_TYPES = ("file", "webhook")
_SECRET_KEYS = {"secret", "password", "token", "api_key", "apikey"}


def destinations_path() -> Path:
    return Path(os.environ.get("OUTFLOW_DESTINATIONS") or REPO_ROOT / "destinations.yml")


def _entry(name: str, raw: Any, where: Path) -> FileConfig | WebhookConfig:
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
        cfg = _ADAPTER.validate_python(dict(raw))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"] if str(p) not in KNOWN_TYPES]
            problems.append(f"key '{'.'.join(loc) or 'type'}': {err['msg']}")
        raise RegistryError(f"{where}: destination '{name}', " + "; ".join(problems)) from None
    if isinstance(cfg, WebhookConfig) and not cfg.url and not cfg.url_env:
        raise RegistryError(f"{where}: destination '{name}', key 'url': give a url or a url_env")
    return cfg


def load_destinations(path: str | os.PathLike[str] | None = None) -> dict[str, FileConfig | WebhookConfig]:
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
    if isinstance(cfg, FileConfig):
        from destinations.file import FileDestination

        folder = Path(os.path.expanduser(cfg.folder))
        if not folder.is_absolute():
            folder = where.resolve().parent / folder
        return FileDestination(folder, cfg.format, name=name)

    from destinations.webhook import WebhookDestination

    secret = env.get(cfg.secret_env)
    if not secret:
        raise RegistryError(
            f"{where}: destination '{name}', key 'secret_env': environment variable "
            f"{cfg.secret_env} is not set (or empty)"
        )
    url = (env.get(cfg.url_env) if cfg.url_env else None) or cfg.url
    if not url:
        raise RegistryError(
            f"{where}: destination '{name}', key 'url_env': environment variable {cfg.url_env} "
            "is not set and no default url is given"
        )
    try:
        return WebhookDestination(
            url,
            secret,
            name=name,
            max_batch_size=cfg.max_batch_size,
            requests_per_second=cfg.requests_per_second,
            max_concurrency=cfg.max_concurrency,
            connect_timeout=cfg.connect_timeout,
            read_timeout=cfg.read_timeout,
            max_retries=cfg.max_retries,
            secret_env=cfg.secret_env,
        )
    except ValueError as exc:
        raise RegistryError(f"{where}: destination '{name}': {exc}") from None
