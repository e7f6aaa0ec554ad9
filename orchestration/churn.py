"""Churn risk and expected value per customer: BG/NBD and Gamma-Gamma (the `lifetimes` package).

Input is int_profiles__rfm (frequency, recency_days, t_days, monetary_usd per customer, in
lifetimes' conventions with days as the unit). `fit` learns one set of parameters for the
whole customer base; `score` turns them into, per customer:

  p_alive                  P(still a customer | purchase history), BG/NBD
  churn_risk               1 - p_alive
  expected_purchases       expected repeat purchase days in the next `horizon_days`
  expected_order_value_usd Gamma-Gamma conditional mean value of a purchase
  expected_value_usd       expected_purchases * expected_order_value_usd

When there is too little to learn from (few customers, nobody came back) or the fit does
not converge, `fit` says so in `status` and every score is null: a made-up churn risk
would be worse than none.

The dbt build keeps a fit for `refit_days` (`refit_reason`): parameters learnt from the
whole customer base move little from one day to the next, and fitting them is most of
what the churn models cost on a daily build. Scores are made every build.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

BGNBD_PARAMS = ("r", "alpha", "a", "b")
GAMMA_GAMMA_PARAMS = ("p", "q", "v")


@dataclass(frozen=True)
class ChurnSettings:
    min_customers: int = 100  # fewer and the four BG/NBD parameters are guesswork
    min_repeat_customers: int = 20  # BG/NBD and Gamma-Gamma learn from those who came back
    penalizer: float = 0.0  # L2 on the parameters; lifetimes' own knob for small data
    horizon_days: int = 90
    refit_days: int = 7  # a stored fit is kept this long; 0 refits on every build


# The one row int_churn__model_fit holds (its unique key).
FIT_NAME = "bgnbd_gamma_gamma"
# The settings that shape the parameters (horizon_days only shapes the scores).
FIT_SETTINGS = ("min_customers", "min_repeat_customers", "penalizer")


def settings_key(settings: ChurnSettings) -> str:
    return ";".join(f"{name}={getattr(settings, name)!r}" for name in FIT_SETTINGS)


def refit_reason(stored: dict | None, settings: ChurnSettings, as_of: datetime, customers: int) -> str | None:
    """Why the stored fit (a row of `fit_row`) must be made again, or None to keep it."""
    if not stored or stored.get("fitted_as_of") is None:
        return "no stored fit"
    if stored.get("settings_key") != settings_key(settings):
        return "churn settings changed"
    if as_of < stored["fitted_as_of"]:
        return "as_of is before the stored fit"
    if as_of >= stored["fitted_as_of"] + timedelta(days=settings.refit_days):
        return f"fitted {settings.refit_days} or more days ago"
    if stored.get("status") != "fitted":
        return "the stored fit has no parameters (too little data then)"
    at_fit = max(int(stored.get("customers") or 0), 1)
    if customers > 2 * at_fit or 2 * customers < at_fit:
        return f"customers went from {at_fit:,} at the fit to {customers:,}"
    return None


def fit_row(rfm: pd.DataFrame, settings: ChurnSettings, as_of: datetime) -> pd.DataFrame:
    """`fit` with what the build keeps it by: its name, as_of and settings."""
    row = fit(rfm, settings)
    row.insert(0, "model_name", FIT_NAME)
    row["fitted_as_of"] = pd.Timestamp(as_of)
    row["settings_key"] = settings_key(settings)
    return row


def fit(rfm: pd.DataFrame, settings: ChurnSettings) -> pd.DataFrame:
    """One row: the fitted parameters, how many customers they were learnt from, and status
    ('fitted', 'too_few_customers', 'too_few_repeat_customers', 'not_converged: ...')."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    row: dict[str, object] = {f"bgnbd_{k}": None for k in BGNBD_PARAMS}
    row.update({f"gamma_gamma_{k}": None for k in GAMMA_GAMMA_PARAMS})
    customers = len(rfm)
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_usd"] > 0)]
    row.update(customers=customers, repeat_customers=len(repeat), penalizer=settings.penalizer,
               horizon_days=settings.horizon_days, status="fitted")
    if customers < settings.min_customers:
        row["status"] = f"too_few_customers: {customers} < {settings.min_customers}"
        return pd.DataFrame([row])
    if len(repeat) < settings.min_repeat_customers:
        row["status"] = f"too_few_repeat_customers: {len(repeat)} < {settings.min_repeat_customers}"
        return pd.DataFrame([row])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bgf = BetaGeoFitter(penalizer_coef=settings.penalizer)
            bgf.fit(rfm["frequency"].astype(float), rfm["recency_days"].astype(float), rfm["t_days"].astype(float))
            ggf = GammaGammaFitter(penalizer_coef=settings.penalizer)
            ggf.fit(repeat["frequency"].astype(float), repeat["monetary_usd"].astype(float))
    except Exception as e:  # lifetimes raises ConvergenceError or numpy errors on degenerate data
        row["status"] = f"not_converged: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
        return pd.DataFrame([row])
    row.update({f"bgnbd_{k}": float(bgf.params_[k]) for k in BGNBD_PARAMS})
    row.update({f"gamma_gamma_{k}": float(ggf.params_[k]) for k in GAMMA_GAMMA_PARAMS})
    return pd.DataFrame([row])


def _fitter(cls, params: dict[str, float]):
    model = cls()
    model.params_ = pd.Series(params)
    return model


def score(rfm: pd.DataFrame, fitted: pd.DataFrame, settings: ChurnSettings) -> pd.DataFrame:
    """Scores per customer of `rfm` from the one row `fit` returned."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    out = pd.DataFrame({"profile_id": rfm["profile_id"].astype(str)})
    columns = ["p_alive", "churn_risk", "expected_purchases", "expected_order_value_usd", "expected_value_usd"]
    params = fitted.iloc[0] if len(fitted) else None
    if params is None or params["status"] != "fitted" or rfm.empty:
        for c in columns:
            out[c] = pd.Series([None] * len(out), dtype="float64")
        return out
    x = rfm["frequency"].to_numpy(dtype=float)
    t_x = rfm["recency_days"].to_numpy(dtype=float)
    t = rfm["t_days"].to_numpy(dtype=float)
    bgf = _fitter(BetaGeoFitter, {k: float(params[f"bgnbd_{k}"]) for k in BGNBD_PARAMS})
    ggf = _fitter(GammaGammaFitter, {k: float(params[f"gamma_gamma_{k}"]) for k in GAMMA_GAMMA_PARAMS})
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_alive = np.asarray(bgf.conditional_probability_alive(x, t_x, t), dtype=float)
        purchases = np.asarray(
            bgf.conditional_expected_number_of_purchases_up_to_time(settings.horizon_days, x, t_x, t), dtype=float)
        value = np.asarray(ggf.conditional_expected_average_profit(
            rfm["frequency"].astype(float), rfm["monetary_usd"].astype(float)), dtype=float)
    out["p_alive"] = np.clip(p_alive, 0.0, 1.0)
    out["churn_risk"] = 1.0 - out["p_alive"]
    out["expected_purchases"] = purchases
    out["expected_order_value_usd"] = value
    out["expected_value_usd"] = purchases * value
    return out
