"""orchestration.churn on its own: too little data gives null scores with the reason, and a
fit on simulated BG/NBD customers behaves as the model says it must."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.churn import ChurnSettings, fit, score


def simulated(n: int, seed: int = 3) -> pd.DataFrame:
    """Customers buying at Poisson rates, each dropping out after any purchase with p."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        rate, p, age = rng.gamma(0.5, 1 / 20), rng.beta(1, 4), float(rng.integers(30, 365))
        t, purchases = 0.0, []
        while True:
            t += rng.exponential(1 / rate)
            if t > age:
                break
            purchases.append(t)
            if rng.random() < p:
                break
        days = sorted({int(x) for x in purchases}) or [0]  # a customer: the first purchase at day 0
        rows.append({"profile_id": f"p{i}", "frequency": len(days) - 1, "recency_days": days[-1] - days[0],
                     "t_days": age - days[0], "monetary_usd": float(rng.gamma(5, 8)) if len(days) > 1 else 0.0})
    return pd.DataFrame(rows)


def test_too_little_data_gives_null_scores_and_says_why():
    few = simulated(50)
    fitted = fit(few, ChurnSettings())
    assert fitted.loc[0, "status"] == "too_few_customers: 50 < 100"
    scored = score(few, fitted, ChurnSettings())
    assert len(scored) == 50 and scored["churn_risk"].isna().all()
    nobody_returns = simulated(300).assign(frequency=0, recency_days=0, monetary_usd=0.0)
    assert fit(nobody_returns, ChurnSettings()).loc[0, "status"].startswith("too_few_repeat_customers")


def test_scores_follow_the_model():
    rfm = simulated(1500)
    fitted = fit(rfm, ChurnSettings())
    assert fitted.loc[0, "status"] == "fitted" and fitted.loc[0, "customers"] == 1500
    s = score(rfm, fitted, ChurnSettings(horizon_days=90)).set_index("profile_id")
    assert ((s["p_alive"] >= 0) & (s["p_alive"] <= 1)).all()
    assert np.allclose(s["churn_risk"], 1 - s["p_alive"])
    # BG/NBD: no repeat purchase yet means alive; a long silence after many purchases means likely gone
    assert (s.loc[rfm.set_index("profile_id")["frequency"] == 0, "p_alive"] == 1).all()
    probe = pd.DataFrame({"profile_id": ["recent", "silent"], "frequency": [5, 5], "recency_days": [300, 60],
                          "t_days": [305, 305], "monetary_usd": [40.0, 40.0]})
    p = score(probe, fitted, ChurnSettings()).set_index("profile_id")
    assert p.loc["silent", "churn_risk"] > p.loc["recent", "churn_risk"] + 0.3
    assert p.loc["recent", "expected_value_usd"] > p.loc["silent", "expected_value_usd"] > 0


def test_a_stored_fit_is_kept_until_a_reason_to_refit():
    from datetime import datetime, timedelta

    from orchestration.churn import fit_row, refit_reason

    settings, fitted_at = ChurnSettings(refit_days=7), datetime(2026, 1, 1)
    rfm = simulated(1500)
    stored = fit_row(rfm, settings, fitted_at).iloc[0].to_dict()
    assert stored["model_name"] == "bgnbd_gamma_gamma" and stored["status"] == "fitted"
    assert refit_reason(stored, settings, fitted_at + timedelta(days=6, hours=23), 1500) is None
    assert refit_reason(stored, settings, fitted_at + timedelta(days=7), 1500) == "fitted 7 or more days ago"
    assert refit_reason(stored, ChurnSettings(refit_days=0), fitted_at, 1500) == "fitted 0 or more days ago"
    assert refit_reason(stored, settings, fitted_at - timedelta(days=1), 1500) == "as_of is before the stored fit"
    assert refit_reason(stored, ChurnSettings(penalizer=0.1), fitted_at, 1500) == "churn settings changed"
    # the horizon shapes the scores, not the parameters
    assert refit_reason(stored, ChurnSettings(horizon_days=30), fitted_at, 1500) is None
    assert refit_reason(stored, settings, fitted_at, 3001) == "customers went from 1,500 at the fit to 3,001"
    assert refit_reason(stored, settings, fitted_at, 749).startswith("customers went from")
    assert refit_reason(None, settings, fitted_at, 1500) == "no stored fit"
    # a row from before fits were kept, or one without parameters, is made again
    assert refit_reason({"status": "fitted"}, settings, fitted_at, 1500) == "no stored fit"
    unfitted = fit_row(simulated(50), settings, fitted_at).iloc[0].to_dict()
    assert refit_reason(unfitted, settings, fitted_at, 50).startswith("the stored fit has no parameters")
