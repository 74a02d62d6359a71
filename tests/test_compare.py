"""Tests of comparison_frame, ANCOVA, Table 1, responders and IPTW (compare/, table1.py).

Reference numbers are produced independently inside each test (numpy least squares and the
sandwich formulas written out by hand; SMD formulas from Austin 2009 / Yang & Dalton 2012
coded directly; Newcombe 1998 Table II for the RD interval), with the tolerance and the reason
next to each assertion.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy import stats

from data_schemas import store
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from emulator import emulate
from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.frame import AnalysisFrame, comparison_frame
from ionto_analytics.compare.iptw import iptw
from ionto_analytics.compare.responders import newcombe_interval, responders
from ionto_analytics.compare.table1 import table1
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.loaders import load_episodes, load_outcomes
from tests.analysis_sim import simulate
from tests.proof_fixtures import EmulatedStore

ARMS = ("ionto+exercise", "exercise")


@pytest.fixture(scope="module")
def sim() -> tuple[pd.DataFrame, pd.DataFrame]:
    return simulate(500, 7)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def frame(sim: tuple[pd.DataFrame, pd.DataFrame]) -> AnalysisFrame:
    return comparison_frame(sim[0], sim[1], "nprs", 6, ARMS)


def _design(d: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The ANCOVA design built by hand (treated first), independent of patsy."""
    dummies = pd.get_dummies(d[["sex", "clinic_id"]], drop_first=True, dtype=float)
    x = np.column_stack(
        [
            d["treated"].to_numpy(float),
            np.ones(len(d)),
            d["baseline"],
            d["age_years"],
            d["symptom_duration_weeks"],
            dummies.to_numpy(),
        ]
    )
    return x, d["follow_up"].to_numpy(float)


def test_comparison_frame_tally_and_no_mutation(sim: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ep, out = sim
    ep = ep.copy()
    ep.loc[ep.index[:5], "arm"] = None
    ep.loc[ep.index[5:8], "arm"] = "ionto"
    ep.loc[ep.index[8:10], "age_years"] = np.nan
    out = out[
        ~((out["episode_id"].isin(ep["episode_id"].iloc[10:14])) & (out["days_from_intake"] == 0))
    ]
    eb, ob = ep.copy(), out.copy()
    af = comparison_frame(ep, out, "nprs", 6, ARMS)
    pd.testing.assert_frame_equal(ep, eb)
    pd.testing.assert_frame_equal(out, ob)
    assert af.excluded == {
        "no_arm": 5,
        "other_arm": 3,
        "no_baseline": 4,
        "missing_covariate:age_years": 2,
    }
    d, excl = af.complete_cases()
    assert len(af.data) + sum(af.excluded.values()) == len(ep)
    assert len(d) + excl["no_follow_up_in_window"] == len(af.data)
    # another window from the frame's long outcomes = the frame built at that window
    for week in (4, 12):
        direct = comparison_frame(ep, out, "nprs", week, ARMS)
        again = af.at_week(week)
        pd.testing.assert_frame_equal(again.data, direct.data)
        assert again.excluded == direct.excluded and again.week == week
    assert not af.data["follow_up"].equals(af.at_week(12).data["follow_up"])
    with pytest.raises(InputError, match="no long outcomes"):
        AnalysisFrame(d, "nprs", 6, ARMS).at_week(12)
    with pytest.raises(InputError, match="unknown arm"):
        comparison_frame(ep, out, "nprs", 6, ("laser", "exercise"))
    with pytest.raises(InputError, match="two different"):
        comparison_frame(ep, out, "nprs", 6, ("exercise", "exercise"))
    with pytest.raises(InputError, match="unknown instrument"):
        comparison_frame(ep, out, "koos", 6, ARMS)


def test_ancova_matches_hand_ols_and_cluster_sandwich(frame: AnalysisFrame) -> None:
    d, _ = frame.complete_cases()
    x, y = _design(d)
    n, k = x.shape
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    u = y - x @ beta
    xtx_inv = np.linalg.inv(x.T @ x)
    # CR1 sandwich: (X'X)^-1 [sum_g X_g'u_g u_g'X_g] (X'X)^-1 * G/(G-1) * (N-1)/(N-K)
    meat = np.zeros((k, k))
    groups = d["clinic_id"].to_numpy()
    for g in np.unique(groups):
        s = x[groups == g].T @ u[groups == g]
        meat += np.outer(s, s)
    n_g = len(np.unique(groups))
    v_cr1 = xtx_inv @ meat @ xtx_inv * n_g / (n_g - 1) * (n - 1) / (n - k)
    # HC3: (X'X)^-1 X' diag(u^2/(1-h)^2) X (X'X)^-1
    h = np.einsum("ij,jk,ik->i", x, xtx_inv, x)
    v_hc3 = xtx_inv @ (x.T * (u / (1 - h)) ** 2) @ x @ xtx_inv
    # HC2 (the few-clinic default): (X'X)^-1 X' diag(u^2/(1-h)) X (X'X)^-1
    v_hc2 = xtx_inv @ (x.T * (u**2 / (1 - h))) @ x @ xtx_inv
    # Tolerance 1e-8: same closed forms, differing only by floating-point order of operations.
    r = ancova(frame, se="cluster", flexible=False)
    assert r.estimate == pytest.approx(beta[0], abs=1e-8)
    se_cl = (r.ci_high - r.ci_low) / 2 / stats.t.ppf(0.975, n_g - 1)
    assert se_cl == pytest.approx(np.sqrt(v_cr1[0, 0]), abs=1e-8)
    r3 = ancova(frame, se="hc3", flexible=False)
    se3 = (r3.ci_high - r3.ci_low) / 2 / stats.t.ppf(0.975, n - k)
    assert r3.estimate == pytest.approx(beta[0], abs=1e-8)
    # HC2's interval takes the Bell-McCaffrey df: Satterthwaite on the quadratic form
    # u'diag(a^2/(1-h))u = e'M D M e, written out as n x n matrices here
    a = (xtx_inv @ x.T)[0]
    m = np.eye(n) - x @ xtx_inv @ x.T
    omega = m @ np.diag(a**2 / (1 - h)) @ m
    df_bm = np.trace(omega) ** 2 / np.trace(omega @ omega)
    assert 2 < df_bm < n - k - 2  # a few high-leverage episodes carry the contrast
    r2 = ancova(frame, se="hc2", flexible=False)
    se2 = (r2.ci_high - r2.ci_low) / 2 / stats.t.ppf(0.975, df_bm)
    assert se2 == pytest.approx(np.sqrt(v_hc2[0, 0]), abs=1e-8)
    assert "Bell–McCaffrey" in r2.estimator
    assert se2 < se3  # HC3 divides by (1 - h)^2: always at least as wide
    assert se3 == pytest.approx(np.sqrt(v_hc3[0, 0]), abs=1e-8)
    assert r.n == {a: int((d["arm"] == a).sum()) for a in ARMS}
    assert r.excluded["no_follow_up_in_window"] == int((~frame.data["has_follow_up"]).sum())
    # ANCOVA on change gives the same arm coefficient as on the follow-up score
    beta_c, *_ = np.linalg.lstsq(x, y - d["baseline"].to_numpy(), rcond=None)
    assert beta_c[0] == pytest.approx(beta[0], abs=1e-10)


def test_ancova_few_clusters_warns_and_uses_hc2(frame: AnalysisFrame) -> None:
    with pytest.warns(StatisticalWarning, match="only 8 clusters.*using HC2"):
        r = ancova(frame)
    assert "HC2" in r.estimator and r.notes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ancova(frame, se="hc2")  # explicit choice: no warning


def test_result_object_contract(frame: AnalysisFrame) -> None:
    before = frame.data.copy()
    r = ancova(frame, se="hc3")
    pd.testing.assert_frame_equal(frame.data, before)
    s = r.summary()
    assert list(s.columns[:8]) == [
        "instrument",
        "week",
        "contrast",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "n",
    ]
    assert isinstance(r.plot(), go.Figure)
    assert "<table" in r._repr_html_()
    d = json.loads(json.dumps(r.to_dict()))
    assert d["arms"] == list(ARMS) and d["n"] == r.n


def test_table1_smds_match_hand_formulas(frame: AnalysisFrame) -> None:
    d = frame.data
    before = d.copy()
    t1 = table1(d, by="arm", groups=ARMS, variables=["age_years", "sex", "clinic_id"])
    pd.testing.assert_frame_equal(d, before)
    smd = t1.smd.set_index("variable")["smd"]
    a, b = d[d["arm"] == ARMS[0]], d[d["arm"] == ARMS[1]]
    # continuous: (m1 - m2) / sqrt((s1^2 + s2^2)/2) with ddof=1 SDs. Tolerance 1e-8 (closed form)
    exp_age = (a["age_years"].mean() - b["age_years"].mean()) / np.sqrt(
        (a["age_years"].var() + b["age_years"].var()) / 2
    )
    assert smd["age_years"] == pytest.approx(exp_age, abs=1e-8)
    # binary: proportion of the second level ('male')
    p1, p2 = (a["sex"] == "male").mean(), (b["sex"] == "male").mean()
    exp_sex = (p1 - p2) / np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2)
    assert smd["sex"] == pytest.approx(exp_sex, abs=1e-8)
    # categorical (Yang & Dalton): Mahalanobis distance of level proportions 2..k
    levels = sorted(d["clinic_id"].unique())
    pa = np.array([(a["clinic_id"] == lv).mean() for lv in levels])[1:]
    pb = np.array([(b["clinic_id"] == lv).mean() for lv in levels])[1:]
    s = ((np.diag(pa) - np.outer(pa, pa)) + (np.diag(pb) - np.outer(pb, pb))) / 2
    exp_cl = np.sqrt((pa - pb) @ np.linalg.inv(s) @ (pa - pb))
    assert smd["clinic_id"] == pytest.approx(exp_cl, abs=1e-8)
    # weighted: weighted means and reliability-weight variances
    w = np.random.default_rng(2).uniform(0.5, 3, len(d))
    tw = table1(d, by="arm", groups=ARMS, weights=w, variables=["age_years"])
    ma = a.index.to_numpy()
    mb = b.index.to_numpy()

    def wmv(x: np.ndarray, ww: np.ndarray) -> tuple[float, float]:
        m = np.average(x, weights=ww)
        return m, np.sum(ww * (x - m) ** 2) / (ww.sum() - (ww**2).sum() / ww.sum())

    m1, v1 = wmv(d.loc[ma, "age_years"].to_numpy(), w[ma])
    m2, v2 = wmv(d.loc[mb, "age_years"].to_numpy(), w[mb])
    assert tw.smd["smd"].iloc[0] == pytest.approx((m1 - m2) / np.sqrt((v1 + v2) / 2), abs=1e-8)
    summ = t1.summary()
    assert summ["variable"].iloc[0] == "n"
    assert isinstance(t1.plot(), go.Figure)
    json.dumps(t1.to_dict())
    assert "<table" in t1._repr_html_()
    with pytest.raises(InputError, match="two groups"):
        table1(d[d["arm"] == ARMS[0]], by="arm")


def test_responders_intervals() -> None:
    # Newcombe (1998) Stat Med 17:873, Table II example (56/70 vs 48/80), method 10:
    # 0.0524 to 0.3339 (4 decimals as published → tolerance 5e-5).
    lo, hi = newcombe_interval(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=5e-5) and hi == pytest.approx(0.3339, abs=5e-5)
    df = pd.DataFrame(
        {
            "arm": [ARMS[0]] * 40 + [ARMS[1]] * 40,
            "baseline": 6.0,
            "follow_up": 3.0,
            "responder": [True] * 28 + [False] * 12 + [True] * 12 + [False] * 28,
        }
    )
    before = df.copy()
    r = responders(df, arms=ARMS)
    pd.testing.assert_frame_equal(df, before)
    assert r.estimate == pytest.approx(0.4)
    tab = r.table.set_index("term")
    # RR 0.7/0.3; log-scale SE sqrt(1/28 - 1/40 + 1/12 - 1/40); z = 1.959964 (6 digits)
    se = np.sqrt(1 / 28 - 1 / 40 + 1 / 12 - 1 / 40)
    rr = 0.7 / 0.3
    assert tab.loc["risk ratio", "estimate"] == pytest.approx(rr)
    assert tab.loc["risk ratio", "ci_low"] == pytest.approx(rr * np.exp(-1.959964 * se), 1e-6)
    assert tab.loc["NNT", "estimate"] == pytest.approx(2.5)
    assert tab.loc["NNT", "ci_low"] == pytest.approx(1 / r.ci_high)
    assert np.isfinite(tab.loc["NNT", "ci_low"])  # RD interval excludes 0
    # pooled z-test p equals Pearson chi-square without continuity correction
    chi = stats.chi2_contingency([[28, 12], [12, 28]], correction=False)
    assert r.p_value == pytest.approx(chi.pvalue, abs=1e-12)
    # RD interval crossing 0: NNT interval in two pieces, numeric limits NaN
    df2 = df.assign(responder=[True] * 18 + [False] * 22 + [True] * 16 + [False] * 24)

    r2 = responders(df2, arms=ARMS)
    assert r2.ci_low < 0 < r2.ci_high
    nnt = r2.table.set_index("term").loc["NNT"]
    assert np.isnan(nnt["ci_low"]) and "NNTB" in nnt["interpretation"]
    assert "NNTH" in nnt["interpretation"] and "∞" in nnt["interpretation"]
    # zero cell: Haldane correction noted
    r3 = responders(df.assign(responder=[False] * 40 + [True] * 40), arms=ARMS)
    assert any("0.5" in n for n in r3.notes)


def test_responders_from_registry(frame: AnalysisFrame) -> None:
    r = responders(frame)
    d, _ = frame.complete_cases()
    # lateral epicondylitis NPRS MCID is 2.3 points [S22] → responder = baseline-follow_up ≥ 2.3
    flags = (d["baseline"] - d["follow_up"]) >= 2.3 - 1e-9
    p1 = flags[d["treated"] == 1].mean()
    p2 = flags[d["treated"] == 0].mean()
    assert r.estimate == pytest.approx(p1 - p2, abs=1e-12)
    assert "[S22]" in r.estimand


def test_iptw_balance_and_contract(frame: AnalysisFrame) -> None:
    before = frame.data.copy()
    r = iptw(frame, weighting="overlap", se="hc3")
    pd.testing.assert_frame_equal(frame.data, before)
    # overlap weights balance the propensity-model covariates exactly (mean difference 0)
    cont = r.balance[r.balance["kind"] != "categorical"]
    assert cont["smd_after"].abs().max() < 1e-6
    assert r.balance.set_index("variable").loc["baseline", "smd_before"] > 0.3
    ra = iptw(frame, weighting="ate", se="hc3", trim=0.05)
    assert "truncated" in " ".join(ra.table["term"])
    assert isinstance(ra.plot(), go.Figure)
    json.dumps(ra.to_dict())
    with pytest.raises(InputError):
        iptw(frame, weighting="att")  # type: ignore[arg-type]


def test_naive_is_biased_adjusted_methods_cover_truth() -> None:
    # One large confounded data set: the naive difference is visibly biased; ANCOVA and
    # IPTW 95 % CIs cover the planted effect (-1.0).
    ep, out = simulate(3000, 21, effect=-1.0, confounding=1.0)
    af = comparison_frame(ep, out, "nprs", 6, ARMS)
    d, _ = af.complete_cases()
    naive = (
        d.loc[d["treated"] == 1, "follow_up"].mean() - d.loc[d["treated"] == 0, "follow_up"].mean()
    )
    assert naive - (-1.0) > 0.4
    for r in (
        ancova(af, se="hc3"),
        iptw(af, weighting="overlap", se="hc3"),
        iptw(af, weighting="ate", se="hc3"),
    ):
        assert r.ci_low < -1.0 < r.ci_high, r
        assert abs(r.estimate + 1.0) < 0.15


def test_coverage_study() -> None:
    # 100 replicates, n = 250: coverage of nominal 95 % CIs must lie in the central
    # binomial(100, 0.95) acceptance region (≥ 89 covers has P ≈ 0.99); |bias| < 0.05
    # (Monte Carlo SE of the mean estimate ≈ 0.15/sqrt(100) = 0.015).
    truth = -1.0
    cover = {"ancova": 0, "iptw": 0}
    est = {"ancova": [], "iptw": []}
    for rep in range(100):
        ep, out = simulate(250, 1000 + rep, effect=truth)
        af = comparison_frame(ep, out, "nprs", 6, ARMS)
        for name, r in (
            ("ancova", ancova(af, se="hc3")),
            ("iptw", iptw(af, weighting="overlap", se="hc3")),
        ):
            cover[name] += int(r.ci_low <= truth <= r.ci_high)
            est[name].append(r.estimate)
    lo = stats.binom.ppf(0.005, 100, 0.95)
    for name in cover:
        assert lo <= cover[name] <= 100, (name, cover[name])
        assert abs(np.mean(est[name]) - truth) < 0.05, (name, np.mean(est[name]))


def test_ancova_falls_back_to_hc1_when_an_episode_is_fitted_exactly(
    sim: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """A clinic with a single episode is fitted exactly by its fixed effect (leverage 1),
    which leaves HC3 undefined (0/0); the estimate must stay finite and say why."""
    episodes, outcomes = sim
    lonely = episodes.iloc[[0]].assign(clinic_id="clinic_alone")
    episodes = pd.concat([episodes.iloc[1:], lonely], ignore_index=True)
    frame = comparison_frame(episodes, outcomes, "nprs", 6, ARMS)
    assert (frame.data["clinic_id"] == "clinic_alone").sum() == 1
    with pytest.warns(StatisticalWarning, match="HC1 used instead of HC3"):
        result = ancova(frame, se="hc3")
    assert np.isfinite([result.estimate, result.ci_low, result.ci_high]).all()
    assert "HC1" in result.estimator


def _bias_z(episodes: pd.DataFrame, outcomes: pd.DataFrame, truth: dict) -> dict[str, float]:
    """z of ANCOVA and IPTW against the planted 0 for NPRS, achilles, week 6."""
    (planted,) = [
        e["difference"]
        for e in truth["effects"]
        if (e["condition"], e["instrument"], e["arm"], e["versus"], float(e["week"]))
        == ("achilles_tendinopathy", "nprs", *ARMS, 6.0)
    ]
    af = comparison_frame(episodes, outcomes, "nprs", 6, ARMS, condition="achilles_tendinopathy")
    assert "intake_visa_a" in af.adjust_for  # the primary instrument's intake score
    z = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few-cluster and spline notes
        for name, r in (("ancova", ancova(af, se="hc3")), ("iptw", iptw(af, se="hc3"))):
            se = (r.ci_high - r.ci_low) / 2 / stats.norm.ppf(0.975)  # t df > 100: ≈ z
            z[name] = (r.estimate - planted) / se
    return z


def test_secondary_instrument_bias_is_gone_on_the_emulated_network(
    emulated_store: EmulatedStore,
) -> None:
    """NPRS on achilles, where the emulator plants 0 and chooses the arm on the VISA-A intake.

    With only the NPRS baseline in the set every seed gave z ≈ −1.5 to −1.9 (issue 11 and
    the before/after study recorded with this change); one seed cannot show a mean, so the
    tolerance is the 95 % band of one standard-normal z, which a bias of 1.5 SE fails often
    and the multi-seed test below checks properly.
    """
    engine = store.connect(emulated_store.url)
    try:
        z = _bias_z(load_episodes(engine), load_outcomes(engine), emulated_store.truth)
    finally:
        engine.dispose()
    assert all(abs(v) < 1.96 for v in z.values()), z


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("IONTO_SLOW"), reason="set IONTO_SLOW=1 (about 7 min)")
def test_secondary_instrument_bias_mean_z_over_seeds(tmp_path: Path) -> None:
    """Three 3,000-patient networks of the default scenario: mean z within ±1.5 of 0.

    The mean of three unbiased z has SD 0.58, so ±1.5 holds 99 % of the time and a bias of
    1.5 SE (the old default set) fails half the time per method, nearly always for both.
    """
    zs: dict[str, list[float]] = {"ancova": [], "iptw": []}
    for seed in (1, 2, 3):
        out = tmp_path / f"emu{seed}"
        summary = emulate(out, seed=seed, patients=3000)
        truth = json.loads(Path(summary.ground_truth).read_text(encoding="utf-8"))
        engine = store.connect(f"sqlite:///{tmp_path / f's{seed}.db'}")
        store.upgrade(engine)
        Importer(engine, Keyer(b"bias-study-key-0123456789"), today=dt.date(2026, 6, 1)).run(
            [out / "ehr"]
        )
        try:
            for k, v in _bias_z(load_episodes(engine), load_outcomes(engine), truth).items():
                zs[k].append(v)
        finally:
            engine.dispose()
    assert all(abs(float(np.mean(v))) < 1.5 for v in zs.values()), zs
