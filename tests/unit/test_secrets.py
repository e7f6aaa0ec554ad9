"""Secrets: read from the environment variables destinations.yml names, never shown by a
repr or str of any config, destination, HTTP client or Dagster resource, and a missing
one is an error naming the variable."""

from __future__ import annotations

import pytest

from destinations.registry import (
    REPO_ROOT,
    TYPES,
    RegistryError,
    build_destination,
    load_destinations,
    secret_env_vars,
)

CONFIG = REPO_ROOT / "destinations.yml"
CONFIGS = load_destinations(CONFIG)
ENV = {var: f"sekrit-value-{i:02d}-{var.lower()}" for i, var in
       enumerate(sorted({v for c in CONFIGS.values() for v in secret_env_vars(c)}))}
ENV["OUTFLOW_MAILCHIMP_API_KEY"] = "mcsekritvalue0123456789-us19"


def shown(obj) -> str:
    """Everything a log line, an error or a debugger would print of `obj`."""
    parts = [repr(obj), str(obj)]
    if hasattr(obj, "__dict__"):
        parts.append(repr(vars(obj)))
    return "\n".join(parts)


def test_every_destination_type_is_configured_in_the_demo_file():
    assert {c.type for c in CONFIGS.values()} == set(TYPES)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_no_secret_in_the_repr_of_a_config_destination_or_client(name):
    config = CONFIGS[name]
    destination = build_destination(name, CONFIG, env=ENV)
    try:
        objects = [config, destination]
        objects += [v for v in vars(destination).values() if type(v).__name__ == "HttpClient"]
        assert len(objects) > 2 or config.type == "file"
        for obj in objects:
            text = shown(obj)
            for secret in ENV.values():
                assert secret not in text, f"{name}: {type(obj).__name__} shows a secret"
    finally:
        destination.close()


@pytest.mark.parametrize("name", sorted(n for n, c in CONFIGS.items() if secret_env_vars(c)))
def test_a_missing_secret_is_an_error_naming_the_variable(name):
    for var in secret_env_vars(CONFIGS[name]):
        env = {k: v for k, v in ENV.items() if k != var}
        with pytest.raises(RegistryError) as refused:
            build_destination(name, CONFIG, env=env)
        message = str(refused.value)
        assert var in message and name in message
        assert not any(secret in message for secret in ENV.values())


def test_secret_env_vars_are_the_secrets_not_the_url_overrides():
    assert secret_env_vars(CONFIGS["google_ads_sandbox"]) == ["OUTFLOW_GOOGLE_ADS_TOKEN",
                                                               "OUTFLOW_GOOGLE_ADS_DEVELOPER_TOKEN"]
    assert secret_env_vars(CONFIGS["webhook_sandbox"]) == ["OUTFLOW_WEBHOOK_SECRET"]  # not url_env
    assert secret_env_vars(CONFIGS["outbox"]) == []


def test_the_dagster_resource_never_shows_its_secret_values():
    from orchestration.sync_assets import DestinationResource

    resource = DestinationResource(name="hubspot_sandbox", secrets={"OUTFLOW_HUBSPOT_TOKEN": "sekrit-hub"})
    for text in (repr(resource), str(resource), f"{resource}"):
        assert "sekrit-hub" not in text and "OUTFLOW_HUBSPOT_TOKEN" in text
