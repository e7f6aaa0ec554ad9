"""Fixtures shared by integration tests."""

from __future__ import annotations

import pytest

from tests.integration.hostile_world import HostileWorld, build_hostile_world


@pytest.fixture(scope="session")
def hostile_world(tmp_path_factory) -> HostileWorld:
    """A small world with hostile people added, built once by a debug dbt build (read-only:
    tests that write copy `hostile_world.warehouse`)."""
    return build_hostile_world(tmp_path_factory.mktemp("hostile"))
