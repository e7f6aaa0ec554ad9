"""When the build refits the Splink model instead of keeping the stored one."""

from __future__ import annotations

from datetime import datetime

import pytest

from orchestration.identity.dbt_settings import match_settings
from orchestration.settings import as_of_from_meta as as_of
from orchestration.identity.model_fit import FittedModel, model_row, refit_reason
from orchestration.identity.resolve import MatchSettings

FIT_DAY = datetime(2026, 1, 1)


def stored(settings: MatchSettings, status: str = "fitted", contacts: int = 1000) -> dict:
    fitted = FittedModel(status=status, splink_model="{}" if status == "fitted" else None, contacts=contacts)
    return model_row(fitted, settings, FIT_DAY).to_pylist()[0]


def test_a_recent_fit_of_the_same_settings_is_kept():
    settings = MatchSettings(refit_days=7)
    assert refit_reason(stored(settings), settings, datetime(2026, 1, 7, 23), 1100) is None


@pytest.mark.parametrize(
    ("changed", "when", "contacts", "reason"),
    [
        ({}, datetime(2026, 1, 8), 1000, "7 or more days ago"),
        ({}, datetime(2025, 12, 31), 1000, "before the stored fit"),
        ({"seed": 43}, datetime(2026, 1, 2), 1000, "settings"),
        ({"max_pairs_per_record": 5}, datetime(2026, 1, 2), 1000, "settings"),
        ({}, datetime(2026, 1, 2), 2001, "contacts went from 1,000"),
        ({}, datetime(2026, 1, 2), 499, "contacts went from 1,000"),
    ],
)
def test_refit_when_due(changed, when, contacts, reason):
    settings = MatchSettings(refit_days=7)
    assert reason in refit_reason(stored(settings), settings.model_copy(update=changed), when, contacts)


def test_the_threshold_does_not_refit_it_only_filters_links():
    settings = MatchSettings()
    assert refit_reason(stored(settings), settings.model_copy(update={"match_threshold": 0.9}),
                        datetime(2026, 1, 2), 1000) is None


def test_too_few_contacts_refits_once_there_are_enough():
    settings = MatchSettings(min_records_for_probabilistic=200)
    small = stored(settings, status="too_few_contacts", contacts=150)
    assert refit_reason(small, settings, datetime(2026, 1, 2), 199) is None
    assert "enough contacts" in refit_reason(small, settings, datetime(2026, 1, 2), 200)
    assert refit_reason(None, settings, datetime(2026, 1, 2), 10) == "no stored model"


def test_meta_settings_and_as_of_from_dbt_vars():
    settings = match_settings({"match_threshold": "0.9", "refit_days": "3", "seed": "None"})
    assert (settings.match_threshold, settings.refit_days, settings.seed) == (0.9, 3, 42)
    assert as_of({"as_of": "2026-01-05"}) == datetime(2026, 1, 5)
    assert as_of({"as_of": "2026-01-05T06:30:00"}) == datetime(2026, 1, 5, 6, 30)
    with pytest.raises(ValueError, match="outflow_as_of"):
        as_of({"as_of": "yesterday"})
    with pytest.raises(ValueError):
        match_settings({"refit_days": "0"})


def test_as_of_falls_back_to_the_environment_then_now(monkeypatch):
    """The var (meta) wins; unset, OUTFLOW_AS_OF, read when the model runs; neither: now."""
    monkeypatch.setenv("OUTFLOW_AS_OF", "2026-02-03")
    assert as_of({"as_of": "None"}) == datetime(2026, 2, 3)
    assert as_of({}) == datetime(2026, 2, 3)
    assert as_of({"as_of": "2026-01-05"}) == datetime(2026, 1, 5)
    monkeypatch.setenv("OUTFLOW_AS_OF", "yesterday")
    with pytest.raises(ValueError, match="OUTFLOW_AS_OF"):
        as_of({"as_of": ""})
    monkeypatch.delenv("OUTFLOW_AS_OF")
    before = datetime.utcnow()
    assert before <= as_of({"as_of": None}) <= datetime.utcnow()
