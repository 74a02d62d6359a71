"""Tests of mice_sensitivity, chained_imputations and pool_rubin (compare/mice).

Outside reference: ``tests/reference/mice_reference.json``, written by
``tests/reference/mice_reference.R`` (``make reference``; R 4.2, Debian r-cran-mice 3.15)
from ``mice_dataset.csv`` (``tests/reference/make_mice_dataset.py``, fixed seed): R's
``mice(method = "norm", m = 500, maxit = 20)``, ``lm`` per data set, ``pool()``; and
``pool.scalar`` on fixed numbers. R's random numbers are not ours, so the imputation
comparison holds within Monte Carlo error (tolerances below say how much).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ionto_analytics.compare.frame import AnalysisFrame, comparison_frame
from ionto_analytics.compare.mice import chained_imputations, mice_sensitivity, pool_rubin
from ionto_analytics.errors import InputError
from tests.analysis_sim import simulate
from tests.reference.make_mice_dataset import mice_data

ARMS = ("ionto+exercise", "exercise")
REFERENCE = Path(__file__).parent / "reference"


def _as_arms(data: pd.DataFrame | dict[str, np.ndarray]) -> pd.DataFrame:
    d = pd.DataFrame(data)
    d["arm"] = np.where(d.pop("treated") == 1, ARMS[0], ARMS[1])
    return d


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((REFERENCE / "mice_reference.json").read_text())


@pytest.fixture(scope="module")
def dataset() -> pd.DataFrame:
    return _as_arms(pd.read_csv(REFERENCE / "mice_dataset.csv"))


def test_pool_rubin_matches_r_pool_scalar(reference: dict) -> None:
    s = reference["scalar"]
    p = pool_rubin(s["q"], s["u"], df_complete=s["n"] - s["k"])
    assert p.estimate == pytest.approx(s["qbar"], abs=1e-12)
    assert p.se**2 == pytest.approx(s["t"], rel=1e-12)
    assert p.df == pytest.approx(s["df"], rel=1e-10)  # Barnard–Rubin, not Rubin's (m-1)/λ²
    assert p.fmi == pytest.approx(s["fmi"], rel=1e-10)
    with pytest.raises(InputError, match="at least 2 imputations"):
        pool_rubin([1.0], [0.1], df_complete=10)


def test_mice_matches_r_mice_within_monte_carlo_error(
    dataset: pd.DataFrame, reference: dict
) -> None:
    before = dataset.copy()
    r = mice_sensitivity(
        dataset, arms=ARMS, covariates=("age_years",), clinic_effects=False,
        n_imputations=300, n_burnin=20, seed=11,
    )  # fmt: skip
    pd.testing.assert_frame_equal(dataset, before)
    tab = r.table.set_index("term")
    # complete case: the same lm() on the same rows, exact up to floating point
    assert tab.loc["complete case (OLS)", "estimate"] == pytest.approx(
        reference["complete_case_estimate"], abs=1e-9
    )
    # pooled estimate: Monte Carlo SD of ours (m=300) and R's (m=500) is
    # sqrt(b/300 + b/500) ≈ 0.07 with b ≈ 0.9; 0.2 is about 3 SD
    assert r.estimate == pytest.approx(reference["estimate"], abs=0.2)
    # SE and FMI depend on the between-imputation variance b, whose relative Monte Carlo SD
    # is sqrt(2/(m-1)) ≈ 8 % (m=300): SE within 6 %, FMI within 0.06, df within 20 %
    t_crit = (r.ci_high - r.ci_low) / 2
    df = tab.loc["Barnard–Rubin df", "estimate"]

    assert t_crit / stats.t.ppf(0.975, df) == pytest.approx(reference["se"], rel=0.06)
    assert tab.loc["fraction of missing information", "estimate"] == pytest.approx(
        reference["fmi"], abs=0.06
    )
    assert df == pytest.approx(reference["df"], rel=0.2)
    assert tab.loc["baselines imputed", "estimate"] == dataset["baseline"].isna().sum()
    assert tab.loc["follow-ups imputed", "estimate"] == dataset["follow_up"].isna().sum()
    assert sum(r.n.values()) == len(dataset)


def test_mice_agrees_with_complete_case_under_mar_on_covariates() -> None:
    # 40 data sets of 150 episodes, ~30 % of baselines and ~15 % of follow-ups missing at
    # random given age and arm (both in the analysis model), so complete case is valid and
    # MICE must agree with it on average. statsmodels' PMM with 20 donors gave +0.44 on -8.
    rng = np.random.default_rng(20261202)
    diffs, missing = [], []
    for i in range(40):
        d = _as_arms(mice_data(rng, 150))
        missing.append(d["baseline"].isna().mean())
        r = mice_sensitivity(d, arms=ARMS, covariates=("age_years",), clinic_effects=False, seed=i)
        diffs.append(r.estimate - r.table.set_index("term").loc["complete case (OLS)", "estimate"])
    mean, mc_se = np.mean(diffs), np.std(diffs, ddof=1) / np.sqrt(len(diffs))
    assert 0.25 < np.mean(missing) < 0.40
    assert mc_se < 0.2  # precise enough to see the old +0.44
    assert abs(mean) < 2 * mc_se


def test_chained_imputations_keep_observed_values_and_draw_the_regression() -> None:
    # one incomplete column: imputations are draws from y | x; their mean over many copies
    # is the least-squares prediction (an independent numpy lstsq here)
    rng = np.random.default_rng(4)
    x = np.column_stack([np.ones(400), rng.normal(size=400)])
    y = (2.0 + 1.5 * x[:, 1] + rng.normal(0, 0.5, 400))[:, None]
    y[:100, 0] = np.nan
    copies = chained_imputations(x, y, m=400, n_iter=5, rng=rng)
    assert all((c[100:] == y[100:]).all() for c in copies)
    beta, *_ = np.linalg.lstsq(x[100:], y[100:, 0], rcond=None)
    mean_imputed = np.mean([c[:100, 0] for c in copies], axis=0)
    assert np.abs(mean_imputed - x[:100] @ beta).max() < 0.15  # 0.5/sqrt(400)*~4 + β draw
    spread = np.std([c[:100, 0] - x[:100] @ beta for c in copies])
    assert spread == pytest.approx(0.5, rel=0.1)  # the residual SD is drawn, not dropped


def test_mice_uses_outcome_history_of_the_frame() -> None:
    ep, out = simulate(300, 3, p_missing=0.25)
    af = comparison_frame(ep, out, "nprs", 6, ARMS)
    r = mice_sensitivity(af, n_imputations=5, seed=2)
    assert "follow_up_week_4" in r.estimator and "follow_up_week_12" in r.estimator
    assert "Barnard–Rubin df" in r.estimator
    assert r.ci_low < -1.0 < r.ci_high  # planted -1.0 at week 6


def test_mice_refuses_an_arm_without_follow_ups_and_incomplete_covariates(
    dataset: pd.DataFrame,
) -> None:
    d = dataset.copy()
    d.loc[d["arm"] == ARMS[1], "follow_up"] = np.nan
    with pytest.raises(InputError, match=r"arm 'exercise' has .* 0 with a follow-up"):
        mice_sensitivity(d, arms=ARMS, covariates=(), clinic_effects=False)
    with pytest.raises(InputError, match="arm 'ionto\\+exercise' has 0 episode"):
        mice_sensitivity(dataset[dataset["arm"] == ARMS[1]], arms=ARMS, covariates=(),
                         clinic_effects=False)  # fmt: skip
    d = dataset.copy()
    d.loc[3, "age_years"] = np.nan
    with pytest.raises(InputError, match=r"\['age_years'\] have missing values"):
        mice_sensitivity(d, arms=ARMS, covariates=("age_years",), clinic_effects=False)
    few = dataset.dropna().groupby("arm").head(2)
    few = few.assign(clinic_id=[f"c{i}" for i in range(len(few))])
    with pytest.raises(InputError, match="n_imputations must be at least 2"):
        mice_sensitivity(dataset, arms=ARMS, covariates=(), n_imputations=1)
    with pytest.raises(InputError, match="rank check"):
        mice_sensitivity(few, arms=ARMS, covariates=("age_years",))


def _history_mar(rng: np.random.Generator, n: int = 300) -> tuple[AnalysisFrame, float]:
    """Week-6 follow-ups missing on the week-4 score (MAR given the outcome history only);
    returns the frame and the ANCOVA estimate on the full data before anything was lost."""
    ids = [f"e{i:04d}" for i in range(n)]
    t = rng.random(n) < 0.5
    b = np.clip(rng.normal(7, 1.0, n), 0, 10)
    y4 = np.clip(0.5 + 0.7 * b - 1.0 * t + rng.normal(0, 1, n), 0, 10)
    y6 = np.clip(0.5 + 0.8 * y4 - 1.0 * t + rng.normal(0, 0.7, n), 0, 10)
    y12 = np.clip(0.3 + 0.8 * y6 + rng.normal(0, 0.7, n), 0, 10)
    lost = rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 1.5 * (y4 - y4.mean()))))
    ep = pd.DataFrame(
        {
            "episode_id": ids, "patient_id": ids, "clinic_id": "c1",
            "condition": "lateral_epicondylitis", "arm": np.where(t, ARMS[0], ARMS[1]),
            "age_years": rng.uniform(20, 70, n),
            "sex": np.where(rng.random(n) < 0.5, "female", "male"),
            "symptom_duration_weeks": rng.gamma(2, 6, n), "n_visits": 8,
        }
    )  # fmt: skip
    days = [(0, b, np.zeros(n, bool)), (28, y4, np.zeros(n, bool)), (42, y6, lost)]
    days.append((84, y12, np.zeros(n, bool)))
    out = pd.concat(
        pd.DataFrame({"episode_id": ids, "days_from_intake": day, "score": v})[~gone]
        for day, v, gone in days
    ).assign(instrument="nprs")
    x = np.column_stack(
        [np.ones(n), t, b, ep["age_years"], ep["symptom_duration_weeks"], ep["sex"] == "male"]
    ).astype(float)
    full = float(np.linalg.lstsq(x, y6, rcond=None)[0][1])
    return comparison_frame(ep, out, "nprs", 6, ARMS), full


def test_outcome_history_removes_the_bias_of_complete_case() -> None:
    # Dropout on the week-4 score: complete case is biased (measured +0.14, 7 MC SE, over
    # 20 data sets); MICE with the week-4 and week-12 follow-ups in its imputation models
    # recovers the full-data estimate (measured -0.004, MC SE 0.009).
    rng = np.random.default_rng(7)
    mi, cc = [], []
    for i in range(15):
        af, full = _history_mar(rng)
        r = mice_sensitivity(af, clinic_effects=False, seed=i)
        mi.append(r.estimate - full)
        cc.append(r.table.set_index("term").loc["complete case (OLS)", "estimate"] - full)
    assert "follow_up_week_4" in r.estimator
    mc_se = np.std(mi, ddof=1) / np.sqrt(len(mi))
    assert abs(np.mean(mi)) < 2 * mc_se
    assert np.mean(cc) > 0.08  # the design does bias complete case, so the test can fail
