"""destinations.yml: validation errors name the destination and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from destinations.file import FileDestination
from destinations.registry import RegistryError, build_destination, load_destinations
from destinations.webhook import WebhookDestination

REPO_ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    p = tmp_path / "destinations.yml"
    p.write_text(text)
    return p


def test_repo_file_declares_the_demo_destinations(tmp_path):
    cfgs = load_destinations(REPO_ROOT / "destinations.yml")
    assert cfgs["outbox"].type == "file" and cfgs["outbox"].format == "jsonl"
    assert cfgs["webhook_sandbox"].secret_env == "OUTFLOW_WEBHOOK_SECRET"
    out = build_destination("outbox", REPO_ROOT / "destinations.yml")
    assert isinstance(out, FileDestination) and out.folder == REPO_ROOT / "warehouse" / "outbox"
    env = {"OUTFLOW_WEBHOOK_SECRET": "s3cret-value"}
    hook = build_destination("webhook_sandbox", REPO_ROOT / "destinations.yml", env=env)
    assert isinstance(hook, WebhookDestination) and hook.url == "http://127.0.0.1:8765/outflow"
    env["OUTFLOW_WEBHOOK_URL"] = "http://127.0.0.1:9999/x"
    assert build_destination("webhook_sandbox", REPO_ROOT / "destinations.yml", env=env).url.endswith(":9999/x")


def test_env_var_names_the_file(tmp_path, monkeypatch):
    p = write(tmp_path, "o: {type: file, folder: /tmp/abs-outbox, format: csv}\n")
    monkeypatch.setenv("OUTFLOW_DESTINATIONS", str(p))
    d = build_destination("o")
    assert d.folder == Path("/tmp/abs-outbox") and d.fmt == "csv"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x: {type: ftp}", "destination 'x', key 'type': unknown type 'ftp' (known: "),
        ("x: {folder: a}", "destination 'x', key 'type': unknown type None"),
        ("x: {type: file}", "destination 'x', key 'folder': Field required"),
        ("x: {type: file, folder: a, format: xml}", "destination 'x', key 'format'"),
        ("x: {type: file, folder: a, colour: red}", "destination 'x', key 'colour': Extra inputs"),
        ("h: {type: webhook, url: 'http://a', secret_env: X, max_batch_size: 0}", "destination 'h', key 'max_batch_size'"),
        ("h: {type: webhook, url: 'http://a', secret_env: 'abc def'}", "destination 'h', key 'secret_env': must be an environment variable NAME"),
        ("h: {type: webhook, url: 'http://a'}", "destination 'h', key 'secret_env': Field required"),
        ("h: {type: webhook, secret_env: X}", "destination 'h', key 'url': give a url or a url_env"),
        ("h: {type: webhook, url: 'http://a', secret: hunter2}", "destination 'h', key 'secret': secrets never go"),
        ("h: [1, 2]", "destination 'h' must be a mapping"),
        ("- a\n- b", "must be a mapping of destination name"),
        ("a: [", "not valid YAML"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, text, expected):
    with pytest.raises(RegistryError) as info:
        load_destinations(write(tmp_path, text))
    assert expected in str(info.value)
    assert "hunter2" not in str(info.value)


def test_build_errors(tmp_path):
    p = write(tmp_path, "h: {type: webhook, url: 'ftp://a', secret_env: MY_SECRET}\n")
    with pytest.raises(RegistryError, match="no destination named 'nope' \\(configured: h\\)"):
        build_destination("nope", p, env={})
    with pytest.raises(RegistryError, match="'h', key 'secret_env': environment variable MY_SECRET is not set"):
        build_destination("h", p, env={})
    with pytest.raises(RegistryError, match="'h': .*url must start with http") as info:
        build_destination("h", p, env={"MY_SECRET": "the-secret-value"})
    assert "the-secret-value" not in str(info.value)
    with pytest.raises(RegistryError, match="no destinations file"):
        load_destinations(tmp_path / "missing.yml")


def test_relative_folder_is_relative_to_the_file(tmp_path):
    p = write(tmp_path, "o: {type: file, folder: out/box, format: parquet}\n")
    assert build_destination("o", p).folder == tmp_path / "out" / "box"
