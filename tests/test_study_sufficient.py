"""Exact pooled ANCOVA from sufficient statistics equals the ANCOVA on the pooled rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from data_schemas.errors import InputError
from ionto_analytics.study.sufficient import pooled_ancova, sufficient_statistics

ARMS = ("ionto+exercise", "exercise")
COVARIATES = ("age_years", "sex", "symptom_duration_weeks")


def _site(rng: np.random.Generator, n: int, shift: float) -> pd.DataFrame:
    arm = np.where(rng.random(n) < 0.45, ARMS[0], ARMS[1])
    baseline = rng.normal(6.0, 1.5, n)
    age = rng.normal(50, 10, n)
    sex = rng.choice(["female", "male"], n)
    dur = rng.gamma(4, 5, n)
    y = (
        shift
        + 0.6 * baseline
        - 1.2 * (arm == ARMS[0])
        + 0.02 * age
        + 0.3 * (sex == "male")
        + 0.01 * dur
        + rng.normal(0, 1.2, n)
    )
    return pd.DataFrame(
        {
            "arm": arm,
            "baseline": baseline,
            "age_years": age,
            "sex": sex,
            "symptom_duration_weeks": dur,
            "follow_up": y,
        }
    )


def test_pooled_ancova_equals_ancova_on_the_pooled_rows() -> None:
    """Reference: statsmodels OLS on the stacked rows with site fixed effects, classical SE
    (the normal equations are the same, so only rounding separates them: tolerance 1e-8)."""
    rng = np.random.default_rng(16)
    frames = [_site(rng, n, shift) for n, shift in ((90, 0.0), (140, 1.5), (70, -0.8))]
    result = pooled_ancova([sufficient_statistics(f, ARMS, COVARIATES) for f in frames])
    rows = pd.concat([f.assign(site=f"s{i}") for i, f in enumerate(frames)], ignore_index=True)
    rows["treated"] = (rows["arm"] == ARMS[0]).astype(float)
    fit = smf.ols(
        "follow_up ~ treated + baseline + age_years + C(sex) + symptom_duration_weeks + C(site)",
        rows,
    ).fit()
    assert result["estimate"] == pytest.approx(fit.params["treated"], abs=1e-8)
    assert result["se"] == pytest.approx(fit.bse["treated"], abs=1e-8)
    assert result["df"] == fit.df_resid
    lo, hi = fit.conf_int().loc["treated"]
    assert (result["ci_low"], result["ci_high"]) == pytest.approx((lo, hi), abs=1e-8)
    assert result["n"] == len(rows)


def test_statistics_behind_a_small_count_are_withheld() -> None:
    rng = np.random.default_rng(3)
    f = _site(rng, 60, 0.0)
    f.loc[f.index[:57], "sex"] = "female"
    f.loc[f.index[57:], "sex"] = "male"  # 3 men
    with pytest.raises(InputError, match=r"sex\[male\] × sex\[male\]"):
        sufficient_statistics(f, ARMS, COVARIATES)
