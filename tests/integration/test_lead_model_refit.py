"""The predictive lead score is refitted on a cadence and scores every day in between:
real dbt runs on a copy of the session's warehouse (fitted as of its start date)."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, timedelta

import pytest

from tests.conftest import REPO_ROOT, SESSION_START_DATE, dbt, query

pytestmark = pytest.mark.slow

LEAD_MODELS = ["int_lead_scores__refit_schedule", "int_lead_scores__training_snapshots",
               "int_lead_scores__score_snapshot", "int_lead_scores__model", "int_lead_scores__predicted",
               "lead_scores", "lead_score_model_card"]


def day(offset: int) -> str:
    return (date.fromisoformat(SESSION_START_DATE) + timedelta(days=offset)).isoformat()


def build(warehouse, target, as_of: str, *extra: str, **variables) -> None:
    rendered = ", ".join(f"{name}: {value}" for name, value in variables.items())
    dbt(["run", "-s", *LEAD_MODELS, *extra, "--vars", f"{{outflow_as_of: '{as_of}'{', ' if rendered else ''}{rendered}}}"],
        warehouse, target)


def fit(warehouse) -> dict:
    """What identifies the stored fit: its id, as_of, pickled model, and the training rows."""
    (fit_id, fitted_as_of, test_cutoff, score_cutoff, due, age, seed, pickled), = query(warehouse, """
        select card.fit_id, card.fitted_as_of, card.test_cutoff, card.score_cutoff, card.refit_due_at,
               card.fit_age_days, card.seed, model.model_pickle
        from main.lead_score_model_card card join main.int_lead_scores__model model using (fit_id)""")
    training = query(warehouse, """select count(*), count(distinct fit_id), min(fitted_as_of)
                                   from main.int_lead_scores__training_snapshots""")[0]
    return {"fit_id": fit_id, "fitted_as_of": str(fitted_as_of.date()), "test_cutoff": str(test_cutoff.date()),
            "score_cutoff": str(score_cutoff.date()), "refit_due_at": str(due.date()), "fit_age_days": age,
            "seed": seed, "model": hashlib.sha256(pickled).hexdigest(), "training_rows": training[0],
            "training_fits": training[1], "training_as_of": str(training[2].date())}


def scored_as_of(warehouse) -> tuple:
    return query(warehouse, """select min(as_of_at), max(as_of_at), count(*), count(predicted_conversion)
                               from main.lead_scores""")[0]


def test_a_fresh_build_fits_as_of_today(built_warehouse):
    first = fit(built_warehouse)
    assert first["fitted_as_of"] == first["score_cutoff"] == SESSION_START_DATE and first["fit_age_days"] == 0
    assert first["refit_due_at"] == day(7) and first["test_cutoff"] == day(-30)
    assert first["training_fits"] == 1 and first["training_as_of"] == SESSION_START_DATE


def test_the_next_day_keeps_the_fit_and_scores_as_of_that_day(warehouse_copy, tmp_path):
    before = fit(warehouse_copy)
    old_scores = query(warehouse_copy, "select profile_id, predicted_conversion from main.lead_scores")
    build(warehouse_copy, tmp_path / "target", day(1))
    after = fit(warehouse_copy)
    # Same fit: id, pickled model, training rows; only today's cutoff and the age move.
    assert {k: after[k] for k in ("fit_id", "model", "fitted_as_of", "test_cutoff", "training_rows", "refit_due_at")} \
        == {k: before[k] for k in ("fit_id", "model", "fitted_as_of", "test_cutoff", "training_rows", "refit_due_at")}
    assert after["score_cutoff"] == day(1) and after["fit_age_days"] == 1
    low, high, total, scored = scored_as_of(warehouse_copy)
    assert str(low.date()) == str(high.date()) == day(1) and total == scored > 0
    # The kept model scores the features as of the new day (the 30/90-day windows moved on).
    assert query(warehouse_copy, "select distinct cutoff_at from main.int_lead_scores__score_snapshot")[0][0].date() \
        == date.fromisoformat(day(1))
    assert old_scores != query(warehouse_copy, "select profile_id, predicted_conversion from main.lead_scores")


def test_the_model_is_refitted_once_the_cadence_is_due(warehouse_copy, tmp_path):
    before = fit(warehouse_copy)
    build(warehouse_copy, tmp_path / "target", day(6))
    assert fit(warehouse_copy)["fit_id"] == before["fit_id"]
    build(warehouse_copy, tmp_path / "target", day(7))
    after = fit(warehouse_copy)
    assert after["fit_id"] != before["fit_id"] and after["model"] != before["model"]
    assert after["fitted_as_of"] == after["score_cutoff"] == after["training_as_of"] == day(7)
    assert after["test_cutoff"] == day(-23) and after["refit_due_at"] == day(14) and after["training_fits"] == 1
    # A shorter cadence is due sooner: 0 refits on every build.
    build(warehouse_copy, tmp_path / "target", day(8), outflow_lead_model_refit_days=0)
    assert fit(warehouse_copy)["fitted_as_of"] == day(8)


def test_full_refresh_refits(warehouse_copy, tmp_path):
    build(warehouse_copy, tmp_path / "target", day(2))
    kept = fit(warehouse_copy)
    assert kept["fitted_as_of"] == SESSION_START_DATE
    build(warehouse_copy, tmp_path / "target", day(2), "--full-refresh")
    refitted = fit(warehouse_copy)
    assert refitted["fitted_as_of"] == refitted["training_as_of"] == day(2) and refitted["fit_id"] != kept["fit_id"]


def test_a_changed_setting_refits(warehouse_copy, tmp_path):
    before = fit(warehouse_copy)
    build(warehouse_copy, tmp_path / "target", day(1), outflow_lead_model_seed=11)
    after = fit(warehouse_copy)
    assert after["seed"] == 11 and after["fitted_as_of"] == day(1) and after["fit_id"] != before["fit_id"]
    # The snapshot settings shape the training rows: a longer step moves the training cutoffs.
    build(warehouse_copy, tmp_path / "target", day(1), outflow_lead_model_seed=11,
          outflow_lead_model_snapshot_step_days=20)
    cutoffs = query(warehouse_copy, """select distinct cast(cutoff_at as date) from main.int_lead_scores__training_snapshots
        where snapshot_kind = 'train' order by 1""")
    assert [str(c) for c, in cutoffs] == [day(1 - 60 - 40), day(1 - 60 - 20), day(1 - 60)]


def test_a_changed_feature_query_refits(warehouse_copy, tmp_path):
    """A kept fit must not score features it was not trained on: editing the feature query
    (here: clicks counted as opens) refits on the next build, not when the fit is due."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO_ROOT / "dbt_project.yml", project / "dbt_project.yml")
    shutil.copytree(REPO_ROOT / "dbt_project", project / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    before = fit(warehouse_copy)
    macro = project / "dbt_project" / "macros" / "lead_model_snapshots.sql"
    text = macro.read_text()
    assert "email.event_type = 'open'" in text
    macro.write_text(text.replace("email.event_type = 'open'", "email.event_type in ('open', 'click')"))
    dbt(["run", "-s", *LEAD_MODELS, "--vars", f"{{outflow_as_of: '{day(1)}'}}"], warehouse_copy,
        tmp_path / "target", project=project)
    after = fit(warehouse_copy)
    assert after["fit_id"] != before["fit_id"] and after["fitted_as_of"] == day(1)
    # Back to the repo's query: refitted again, and that fit is kept the next day.
    build(warehouse_copy, tmp_path / "target_repo", day(2))
    kept = fit(warehouse_copy)
    assert kept["fit_id"] != after["fit_id"] and kept["fitted_as_of"] == day(2)
    build(warehouse_copy, tmp_path / "target_repo", day(3))
    assert fit(warehouse_copy)["fit_id"] == kept["fit_id"]


def test_a_backfill_to_an_earlier_day_refits(warehouse_copy, tmp_path):
    build(warehouse_copy, tmp_path / "target", day(-3))
    assert fit(warehouse_copy)["fitted_as_of"] == fit(warehouse_copy)["score_cutoff"] == day(-3)


@pytest.mark.parametrize("setting, value, message", [
    ("outflow_lead_model_refit_days", "-1", "var outflow_lead_model_refit_days must be a whole number of days >= 0"),
    ("outflow_lead_model_seed", "'abc'", "var outflow_lead_model_seed must be a whole number >= 1"),
])
def test_bad_settings_name_the_var(warehouse_copy, tmp_path, setting, value, message):
    result = dbt(["run", "-s", "int_lead_scores__refit_schedule", "--vars",
                  f"{{outflow_as_of: '{day(1)}', {setting}: {value}}}"], warehouse_copy, tmp_path / "target",
                 check=False)
    assert result.returncode != 0 and message in result.stdout + result.stderr
