"""Tests of mixed_model, mice_sensitivity and dose_response (compare/mixed, mice, dose_response)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from ionto_analytics.compare.dose_response import dose_response
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.mice import mice_sensitivity
from ionto_analytics.compare.mixed import mixed_model
from ionto_analytics.errors import InputError
from tests.analysis_sim import SimData, simulate

ARMS = ("ionto+exercise", "exercise")


@pytest.fixture(scope="module")
def sim() -> SimData:
    out = simulate(500, 17, effect=-1.0, dose_slope=-0.004, mar=0.08, full=True)
    assert isinstance(out, SimData)
    return out


def test_mixed_model_recovers_planted_effects(sim: SimData) -> None:
    eb, ob = sim.episodes.copy(), sim.outcomes.copy()
    af = comparison_frame(sim.episodes, sim.outcomes, "nprs", 6, ARMS)
    r = mixed_model(af)
    pd.testing.assert_frame_equal(sim.episodes, eb)
    pd.testing.assert_frame_equal(sim.outcomes, ob)
    # planted: -1.0 at weeks 4 and 6, -0.5 at week 12 (analysis_sim docstring)
    assert r.ci_low < -1.0 < r.ci_high
    tab = r.table.set_index("term")
    w12 = tab.loc[f"{ARMS[0]} − {ARMS[1]} at week 12"]
    assert w12["ci_low"] < -0.5 < w12["ci_high"]
    assert tab.loc["random intercept SD (episode)", "estimate"] > 0.2  # planted 0.5
    # n counts episodes (each has up to three rows in the long frame), not measurements
    with_score = af.data["has_follow_up"] | af.at_week(4).data["has_follow_up"]
    with_score |= af.at_week(12).data["has_follow_up"]
    assert sum(r.n.values()) == int(with_score.sum())
    assert r.excluded.get("no_follow_up_in_any_window", 0) == int((~with_score).sum())
    # the interval is t on Satterthwaite df, and says so
    row = tab.loc[f"{ARMS[0]} − {ARMS[1]} at week 6"]
    assert 50 < row["df"] < np.inf
    assert r.ci_high - r.ci_low == pytest.approx(2 * stats.t.ppf(0.975, row["df"]) * row["se"])
    assert "Satterthwaite" in r.estimator and "C(week):baseline" in r.estimand
    assert isinstance(r.plot(), go.Figure)
    json.dumps(r.to_dict())
    with pytest.raises(InputError, match="must be one of windows"):
        mixed_model(comparison_frame(sim.episodes, sim.outcomes, "nprs", 8, ARMS))
    with pytest.raises(InputError, match="AnalysisFrame of comparison_frame"):
        mixed_model(sim.episodes)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="engine must be one of"):
        mixed_model(af, engine="lme4")  # type: ignore[arg-type]


def test_mixed_model_engine_agrees_with_statsmodels_on_the_same_design(sim: SimData) -> None:
    """The default engine and statsmodels MixedLM fit the same design: the same REML
    estimates; statsmodels' SEs use the joint observed information of fixed effects and
    variances (tests/test_lmm.py), so they differ from (X'V^-1 X)^-1 by up to about 1 %
    (the default CR2 SE is another quantity: tests/test_small_sample.py)."""
    af = comparison_frame(sim.episodes, sim.outcomes, "nprs", 6, ARMS)
    ours = mixed_model(af, variance="model").table.set_index("term")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning expected on these data
        theirs = mixed_model(af, engine="statsmodels").table.set_index("term")
    weeks = [f"{ARMS[0]} − {ARMS[1]} at week {w}" for w in (4, 6, 12)]
    np.testing.assert_allclose(
        ours.loc[weeks, "estimate"], theirs.loc[weeks, "estimate"], rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(ours.loc[weeks, "se"], theirs.loc[weeks, "se"], rtol=1e-2)
    sd = "random intercept SD (episode)"
    assert ours.loc[sd, "estimate"] == pytest.approx(theirs.loc[sd, "estimate"], rel=1e-4)
    assert np.isinf(theirs.loc[weeks, "df"]).all() and np.isfinite(ours.loc[weeks, "df"]).all()


def test_mixed_model_boundary_is_recorded_not_raised() -> None:
    # No patient-level variance and few patients: the REML random-intercept variance is
    # expected on the boundary (0); the engine's StatisticalWarning is caught on purpose and
    # recorded in notes (it says nothing against the fixed-effect contrast).
    ep, out = simulate(40, 10, sigma_u=0.0)  # seed 10 puts the variance on the boundary
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        af = comparison_frame(ep, out, "nprs", 6, ARMS, covariates=())
        r = mixed_model(af, covariates=(), clinic_effects=False)
    assert np.isfinite(r.estimate)
    assert len(r.notes) == 1 and "boundary" in r.notes[0]
    assert r.table.set_index("term").loc["random intercept SD (episode)", "estimate"] == 0.0


def test_mixed_model_refuses_a_window_without_scores_in_one_arm(sim: SimData) -> None:
    af = comparison_frame(sim.episodes, sim.outcomes, "nprs", 6, ARMS)
    first = sim.episodes.loc[sim.episodes["arm"] == ARMS[0], "episode_id"]
    late = sim.outcomes["episode_id"].isin(first) & (sim.outcomes["days_from_intake"] > 60)
    af = comparison_frame(sim.episodes, sim.outcomes[~late.to_numpy()], "nprs", 6, ARMS)
    with pytest.raises(InputError, match=r"arm 'ionto\+exercise' has 0 episode\(s\).*week 12"):
        mixed_model(af)


def test_mice_equals_complete_case_without_missing_and_covers_truth(sim: SimData) -> None:
    ep, out = simulate(200, 8, p_missing=0.0)
    af = comparison_frame(ep, out, "nprs", 6, ARMS)
    r0 = mice_sensitivity(af)
    cc = r0.table.set_index("term").loc["complete case (OLS)", "estimate"]
    assert r0.estimate == pytest.approx(cc, abs=1e-12)
    # MAR missingness (more missing with higher baseline): MICE beside complete case
    af = comparison_frame(sim.episodes, sim.outcomes, "nprs", 6, ARMS)
    before = af.data.copy()
    r = mice_sensitivity(af, n_imputations=5, n_burnin=5, seed=1)
    pd.testing.assert_frame_equal(af.data, before)
    assert r.ci_low < -1.0 < r.ci_high
    tab = r.table.set_index("term")
    assert tab.loc["follow-ups imputed", "estimate"] == (~af.data["has_follow_up"]).sum()
    assert abs(tab.loc["complete case (OLS)", "estimate"] - r.estimate) < 0.2
    assert sum(r.n.values()) == len(af.data)  # imputed episodes are analysed, not dropped
    r_again = mice_sensitivity(af, n_imputations=5, n_burnin=5, seed=1)
    assert r_again.estimate == pytest.approx(r.estimate, abs=1e-12)  # seeded


def test_dose_response_slope_matches_hand_ols_and_truth(sim: SimData) -> None:
    af = comparison_frame(sim.episodes, sim.outcomes, "nprs", 6, ARMS)
    sessions = sim.sessions.copy()
    sessions.loc[sessions.index[:3], "episode_id"] = None
    sb = sessions.copy()
    r = dose_response(af, sessions, se="hc3")
    pd.testing.assert_frame_equal(sessions, sb)
    assert r.ci_low < -0.004 < r.ci_high  # planted slope per mA·min
    assert any("3 session(s) not linked" in n for n in r.notes)
    assert r.excluded["not_an_ionto_arm"] > 0
    # independent: numpy least squares on the same rows (dose summed by hand)
    d, _ = af.complete_cases()
    d = d[d["arm"] == ARMS[0]].copy()
    dose = (
        sessions.dropna(subset=["episode_id"]).groupby("episode_id")["delivered_dose_mA_min"].sum()
    )
    d["dose"] = d["episode_id"].map(dose)
    d = d.dropna(subset=["dose"])
    dummies = pd.get_dummies(d[["sex", "clinic_id"]], drop_first=True, dtype=float)
    x = np.column_stack(
        [
            d["dose"],
            np.ones(len(d)),
            d["baseline"],
            d["age_years"],
            d["symptom_duration_weeks"],
            dummies,
        ]
    )
    beta, *_ = np.linalg.lstsq(x, d["follow_up"].to_numpy(float), rcond=None)
    assert r.estimate == pytest.approx(beta[0], abs=1e-8)  # same closed form; fp order only
    c = r.curve
    ref = float(d["dose"].median())
    assert np.interp(ref, c["x"], c["estimate"]) == pytest.approx(0.0, abs=0.05)
    assert (c["ci_low"] <= c["estimate"]).all() and (c["estimate"] <= c["ci_high"]).all()
    assert isinstance(r.plot(), go.Figure)
    json.dumps(r.to_dict())
    with pytest.raises(InputError, match="missing column"):
        dose_response(af, sessions.drop(columns="delivered_dose_mA_min"))
