"""Positivity and balance diagnostics of :func:`iptw`, and its variances for the estimated
propensity (M-estimation, bootstrap)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ionto_analytics.compare.diagnostics import c_statistic, preference_scores
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.iptw import iptw
from ionto_analytics.errors import InputError, StatisticalWarning
from tests.analysis_sim import simulate

ARMS = ("ionto+exercise", "exercise")


def _frame(n: int, seed: int, **kw):
    ep, out = simulate(n, seed, **kw)
    return ep, out, comparison_frame(ep, out, "nprs", 6, ARMS)


def _plain(n: int, seed: int, confounding: float) -> pd.DataFrame:
    """One confounder (the baseline), no clinics: for the variance checks."""
    rng = np.random.default_rng(seed)
    b = rng.normal(6, 1.2, n)
    t = rng.random(n) < 1 / (1 + np.exp(-confounding * (b - 6)))
    y = 1.5 + 0.6 * b - 1.0 * t + 0.4 * (b - 6) ** 2 * t + rng.normal(0, 1, n)
    return pd.DataFrame({"arm": np.where(t, ARMS[0], ARMS[1]), "baseline": b, "follow_up": y})


def test_c_statistic_matches_pairwise_count() -> None:
    # Independent definition: share of (treated, untreated) pairs ranked right, ties ½.
    rng = np.random.default_rng(5)
    ps = np.round(rng.random(60), 1)  # many ties
    t = rng.random(60) < ps
    pairs = ps[t][:, None] - ps[~t][None, :]
    expected = ((pairs > 0).sum() + 0.5 * (pairs == 0).sum()) / pairs.size
    assert c_statistic(ps, t) == pytest.approx(expected, abs=1e-12)


def test_preference_score_is_one_half_at_the_treated_share() -> None:
    # Walker 2013: an episode whose propensity equals the cohort's treated share has
    # preference 0.5; the map is monotone.
    t = np.array([1, 1, 1, 0])
    f = preference_scores(np.array([0.75, 0.9, 0.75, 0.2]), t)
    assert f[0] == pytest.approx(0.5) and f[2] == pytest.approx(0.5)
    assert f[3] < 0.5 < f[1]


def test_diagnostics_reported_in_result_notes_and_json() -> None:
    _, _, af = _frame(600, 3, confounding=0.8)
    r = iptw(af, weighting="overlap", se="hc3")
    dx = r.diagnostics
    assert dx is not None and r.status == dx.status == "ok"
    d, _ = af.complete_cases()
    t = d["treated"].to_numpy() == 1
    w = dx.preference["weight"].to_numpy()
    for arm, m in ((ARMS[0], t), (ARMS[1], ~t)):
        assert dx.ess[arm] == pytest.approx(w[m].sum() ** 2 / (w[m] ** 2).sum())
        assert dx.ess[arm] < m.sum()  # weighting costs information
    assert 0.5 < dx.c_statistic < 0.95
    assert 0 < dx.equipoise_share <= 1
    assert dx.largest_weights["weight"].iloc[0] == pytest.approx(w.max())
    assert dx.largest_weights["episode_id"].iloc[0] in set(d["episode_id"])
    assert any("c-statistic" in n and "equipoise" in n for n in r.notes)
    out = json.loads(json.dumps(r.to_dict()))
    assert out["status"] == "ok"
    assert out["diagnostics"]["c_statistic"] == pytest.approx(dx.c_statistic)
    hist = pd.DataFrame(out["diagnostics"]["preference_histogram"])
    assert hist.groupby("arm")["n"].sum().to_dict() == r.n
    assert r.summary()["status"].iloc[0] == "ok"
    fig = dx.plot()
    assert isinstance(fig, go.Figure) and "<br>" in fig.layout.title.text


def test_no_confounding_means_equipoise_and_chance_c_statistic() -> None:
    _, _, af = _frame(2000, 4, confounding=0.0)
    dx = iptw(af, weighting="overlap", se="hc3", clinic_effects=False, covariates=()).diagnostics
    assert dx is not None
    assert dx.c_statistic < 0.56
    assert dx.equipoise_share > 0.95


def test_clinic_that_treats_everyone_is_named_excluded_and_counted() -> None:
    ep, out, _ = _frame(800, 8)
    ep = ep.copy()
    ep.loc[ep["clinic_id"] == "c03", "arm"] = ARMS[0]
    af = comparison_frame(ep, out, "nprs", 6, ARMS)
    d, _ = af.complete_cases()
    n_c03 = int((d["clinic_id"] == "c03").sum())
    with pytest.warns(StatisticalWarning, match="c03 .*only one of the arms"):
        r = iptw(af, weighting="ate", se="hc3")
    assert r.excluded["clinic_one_arm"] == n_c03
    assert sum(r.n.values()) == len(d) - n_c03
    assert "clinics offering both arms" in r.estimand
    kept = set(r.diagnostics.preference["episode_id"])
    assert kept.isdisjoint(d.loc[d["clinic_id"] == "c03", "episode_id"])
    strata = r.diagnostics.single_arm_strata
    assert strata.to_dict("records") == [{"clinic_id": "c03", "arm": ARMS[0], "n": n_c03}]
    assert any("clinic c03" in n for n in r.notes)


def test_clinic_that_treats_almost_everyone_is_named_as_sparse() -> None:
    """A clinic with a few episodes in one arm stays in the estimate, and the diagnostics
    name it (the positivity problem short of a single-arm clinic) with its counts."""
    ep, out, _ = _frame(800, 8)
    ep = ep.copy()
    c03 = ep.index[ep["clinic_id"] == "c03"]
    ep.loc[c03, "arm"] = ARMS[0]
    ep.loc[c03[:3], "arm"] = ARMS[1]  # three episodes left in the other arm
    af = comparison_frame(ep, out, "nprs", 6, ARMS)
    d, _ = af.complete_cases()
    in_c03 = d[d["clinic_id"] == "c03"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        r = iptw(af, weighting="ate", se="hc3")
    assert "clinic_one_arm" not in r.excluded
    sparse = r.diagnostics.sparse_strata.to_dict("records")
    k = int((in_c03["arm"] == ARMS[1]).sum())
    assert sparse == [{"clinic_id": "c03", "arm": ARMS[1], "n": k, "n_total": len(in_c03)}]
    assert any(f"clinic c03 ({k} of {len(in_c03)} in {ARMS[1]})" in n for n in r.notes)
    assert json.loads(json.dumps(r.to_dict()))["diagnostics"]["sparse_strata"][0]["n"] == k
    # the default simulation has no such clinic: nothing is named
    _, _, plain = _frame(800, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        assert iptw(plain, se="hc3").diagnostics.sparse_strata.empty


def test_residual_imbalance_turns_status_imbalanced() -> None:
    # Heavy truncation of strongly confounded propensities leaves the baseline unbalanced.
    _, _, af = _frame(1500, 9, confounding=2.5)
    r = iptw(af, weighting="ate", trim=0.3, se="hc3")
    assert r.status == "imbalanced"
    bad = r.diagnostics.imbalanced
    assert "baseline" in set(bad["variable"]) and (bad["smd_after"].abs() > 0.1).all()
    assert any("imbalanced after weighting" in n and "baseline" in n for n in r.notes)
    assert r.to_dict()["diagnostics"]["imbalanced"][0]["variable"] in set(bad["variable"])


@pytest.mark.parametrize("weighting", ["ate", "overlap"])
def test_m_estimation_se_matches_bootstrap(weighting: str) -> None:
    # One data set, heterogeneous effect (so the propensity's estimation matters): the
    # stacked-equation SE and a 1,000-resample bootstrap SE estimate the same sampling SD.
    # Monte Carlo SE of a bootstrap SE is about SE/sqrt(2B) ≈ 2.2 %; tolerance 10 %.
    df = _plain(500, 12, confounding=1.0)
    kw = {"arms": ARMS, "covariates": (), "clinic_effects": False, "weighting": weighting}
    m = iptw(df, se="hc3", variance="m_estimation", **kw)
    b = iptw(df, se="hc3", variance="bootstrap", n_boot=1000, seed=1, **kw)
    s = iptw(df, se="hc3", **kw)
    assert m.estimate == b.estimate == s.estimate
    se_m, se_b = (m.ci_high - m.ci_low), (b.ci_high - b.ci_low)  # same t quantile
    assert se_m / se_b == pytest.approx(1.0, abs=0.10)
    assert "M-estimation" in m.estimator and "bootstrap, 1000" in b.estimator


def test_bootstrap_is_reproducible_and_variance_is_checked() -> None:
    df = _plain(200, 2, confounding=0.5)
    kw = {"arms": ARMS, "covariates": (), "clinic_effects": False, "se": "hc3"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = iptw(df, variance="bootstrap", n_boot=100, seed=np.random.default_rng(4), **kw)
        b = iptw(df, variance="bootstrap", n_boot=100, seed=np.random.default_rng(4), **kw)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    with pytest.raises(InputError, match="variance must be"):
        iptw(df, variance="jackknife", **kw)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="n_boot"):
        iptw(df, variance="bootstrap", n_boot=10, **kw)


def test_clustered_m_estimation_matches_clinic_cluster_bootstrap() -> None:
    # 24 clinics (clinic fixed effects in the propensity): the clinic-clustered stacked
    # sandwich and a 200-resample clinic bootstrap agree; tolerance 15 % for the bootstrap's
    # Monte Carlo error (≈ 5 %) and its few-cluster downward bias (≈ sqrt((G − 1)/G)).
    _, _, af = _frame(800, 31, n_clinics=24)
    m = iptw(af, se="cluster", variance="m_estimation")
    b = iptw(af, se="cluster", variance="bootstrap", n_boot=200, seed=2)
    assert "clustered by clinic_id" in m.estimator and "clinic cluster bootstrap" in b.estimator
    assert (m.ci_high - m.ci_low) / (b.ci_high - b.ci_low) == pytest.approx(1.0, abs=0.15)
