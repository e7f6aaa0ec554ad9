"""OUTFLOW_LOG_LEVEL turns on Python logging for the CLI; a bad value is a usage error."""

from __future__ import annotations

import logging

from orchestration.cli import main


def test_a_bad_log_level_is_a_usage_error_naming_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("OUTFLOW_LOG_LEVEL", "LOUD")
    assert main(["summary", "--warehouse", "/nonexistent.duckdb"]) == 2
    err = capsys.readouterr().err
    assert "OUTFLOW_LOG_LEVEL" in err and "DEBUG" in err


def test_debug_level_configures_logging(monkeypatch):
    monkeypatch.setenv("OUTFLOW_LOG_LEVEL", "debug")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        root.handlers = []
        main(["summary", "--warehouse", "/nonexistent.duckdb"])  # exits 2 after logging is set up
        assert root.level == logging.DEBUG and root.handlers
    finally:
        root.handlers, root.level = handlers, level
