"""The churn parameters are kept between daily builds and fitted again when due: real dbt
runs on a copy of the session's warehouse (fitted as of its start date)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from tests.conftest import SESSION_START_DATE, dbt, query

pytestmark = pytest.mark.slow

CHURN_MODELS = ["int_churn__model_fit", "int_profiles__churn"]


def day(offset: int) -> str:
    return (date.fromisoformat(SESSION_START_DATE) + timedelta(days=offset)).isoformat()


def build(warehouse, target, as_of: str, *extra: str) -> None:
    dbt(["run", "-s", *CHURN_MODELS, *extra], warehouse, target, OUTFLOW_AS_OF=as_of)


def stored(warehouse) -> list[tuple]:
    return query(warehouse, "select model_name, str_split(cast(fitted_as_of as varchar), ' ')[1], status, "
                            "bgnbd_r from main.int_churn__model_fit")


def test_the_fit_is_kept_for_refit_days_then_made_again(warehouse_copy, tmp_path):
    (name, fitted, status, r), = stored(warehouse_copy)
    assert (name, fitted, status) == ("bgnbd_gamma_gamma", SESSION_START_DATE, "fitted")
    build(warehouse_copy, tmp_path / "t", day(6))
    assert stored(warehouse_copy) == [(name, SESSION_START_DATE, status, r)]
    # churn scores are still made as of the day (recency moves)
    assert query(warehouse_copy, "select count(*) from main.int_profiles__churn where p_alive is not null")[0][0] > 0
    build(warehouse_copy, tmp_path / "t", day(7))
    assert [row[:3] for row in stored(warehouse_copy)] == [(name, day(7), "fitted")]
    # a fit setting refits at once; the horizon (scores only) does not
    build(warehouse_copy, tmp_path / "t", day(8), "--vars", "{outflow_churn_horizon_days: 30}")
    assert [row[:2] for row in stored(warehouse_copy)] == [(name, day(7))]
    build(warehouse_copy, tmp_path / "t", day(8), "--vars", "{outflow_churn_penalizer: 0.01}")
    assert [row[:2] for row in stored(warehouse_copy)] == [(name, day(8))]


def test_a_table_from_before_fits_were_kept_is_upgraded(warehouse_copy, tmp_path):
    with duckdb.connect(str(warehouse_copy)) as con:
        con.execute("create or replace table main.int_churn__model_fit as "
                    "select * exclude (model_name, fitted_as_of, settings_key) from main.int_churn__model_fit")
    build(warehouse_copy, tmp_path / "t", day(1))
    assert [row[:3] for row in stored(warehouse_copy)] == [("bgnbd_gamma_gamma", day(1), "fitted")]
    build(warehouse_copy, tmp_path / "t", day(2))
    assert [row[:2] for row in stored(warehouse_copy)] == [("bgnbd_gamma_gamma", day(1))]
