"""Tests of the MMRM estimator (``ionto_analytics.compare.mmrm``).

* End to end against R: ``tests/reference/reference_fits.json`` holds
  ``nlme::gls(y ~ 0 + factor(week) + factor(week):arm + factor(week):baseline +
  factor(clinic), correlation = corSymm(form = ~ w | patient), weights = varIdent(form = ~ 1 |
  factor(w)), method = "REML")`` on ``tests/reference/mmrm_emulated.csv`` (script
  ``tests/reference/mmrm_reference.R``, ``make reference``). Here the same rows go through
  ``comparison_frame`` and :func:`mmrm`: the arm contrasts at every window and their SEs
  must equal nlme's to 1e-6 (the engine is exact; the reference is converged past 1e-9).
* Covariates by window: on complete data with a confounder whose effect grows over the
  weeks, the MMRM equals each window's ANCOVA; the trial specification (one shared
  coefficient) is biased.
* Dropout: under missing-at-random dropout driven by the observed early improvement (the
  emulator's mechanism, ``emulator.outcomes.apply_dropout``, here stronger so that a few
  seeds show it), complete-case ANCOVA at week 12 is biased toward the null; the MMRM is
  not.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ionto_analytics import mmrm as public_mmrm
from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.command import compare_frames
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.mixed import mixed_model
from ionto_analytics.compare.mmrm import mmrm
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.errors import InputError, StatisticalWarning

ARMS = ("ionto+exercise", "exercise")
REFERENCE = Path(__file__).parent / "reference"
DAYS = {4: 28, 6: 42, 12: 84}
MEAN = {4: -1.0, 6: -1.5, 12: -2.0}
EFFECT = {4: -1.0, 6: -1.5, 12: -1.5}


def episodes_frame(ids: np.ndarray, treated: np.ndarray, clinic: np.ndarray) -> pd.DataFrame:
    n = ids.size
    rng = np.random.default_rng(n)
    return pd.DataFrame(
        {
            "episode_id": ids,
            "patient_id": [f"p-{i}" for i in ids],
            "clinic_id": clinic.astype(str),
            "condition": "lateral_epicondylitis",
            "arm": np.where(treated, ARMS[0], ARMS[1]),
            "age_years": rng.uniform(20, 75, n),
            "sex": np.where(rng.random(n) < 0.45, "male", "female"),
            "symptom_duration_weeks": rng.gamma(2.0, 6.0, n),
            "n_visits": 8,
        }
    )


def mar_dropout(seed: int, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NPRS at weeks 4, 6, 12 (true arm effect -1.5 at week 12); an episode stops coming
    after week 4 with log-odds -0.8 + 1.5 per SD of its observed week-4 improvement."""
    rng = np.random.default_rng(seed)
    treated = rng.random(n) < 0.5
    baseline = np.clip(rng.normal(7, 1.0, n), 1, 9.5)
    episode_level = rng.normal(0, 1.0, n)
    ids = np.array([f"e{i:04d}" for i in range(n)])
    episodes = episodes_frame(ids, treated, rng.choice(["c1", "c2", "c3"], n))
    score = {
        w: np.clip(
            baseline + MEAN[w] + EFFECT[w] * treated + episode_level + rng.normal(0, 0.7, n), 0, 10
        )
        for w in DAYS
    }
    improvement = baseline - score[4]
    z = (improvement - improvement.mean()) / improvement.std()
    dropped = rng.random(n) < 1 / (1 + np.exp(-(-0.8 + 1.5 * z)))
    parts = [pd.DataFrame({"episode_id": ids, "days_from_intake": 0, "score": baseline})]
    for w, day in DAYS.items():
        seen = np.ones(n, bool) if w == 4 else ~dropped
        parts.append(
            pd.DataFrame(
                {"episode_id": ids[seen], "days_from_intake": day, "score": score[w][seen]}
            )
        )
    return episodes, pd.concat(parts, ignore_index=True).assign(instrument="nprs")


def test_mmrm_recovers_the_effect_that_complete_case_ancova_misses_under_mar_dropout():
    truth = EFFECT[12]
    z_mmrm, z_ancova, bias_mmrm, bias_ancova = [], [], [], []
    for seed in range(6):
        episodes, outcomes = mar_dropout(seed)
        af = comparison_frame(episodes, outcomes, "nprs", 12, ARMS)
        r = mmrm(af)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 3 clinics: HC3 with a StatisticalWarning
            a = ancova(af, se="hc3")
        for result, z, bias in ((r, z_mmrm, bias_mmrm), (a, z_ancova, bias_ancova)):
            se = (result.ci_high - result.ci_low) / (2 * 1.96)
            bias.append(result.estimate - truth)
            z.append((result.estimate - truth) / se)
        assert sum(r.n.values()) == len(episodes)  # dropouts contribute their week-4 score
        assert sum(a.n.values()) < 0.8 * len(episodes)
    assert all(abs(z) < 2.5 for z in z_mmrm), z_mmrm
    assert abs(sum(z_mmrm)) / np.sqrt(6) < 2, z_mmrm
    assert sum(z_ancova) / np.sqrt(6) > 2.5, z_ancova  # biased toward the null
    assert abs(np.mean(bias_mmrm)) < 0.5 * abs(np.mean(bias_ancova))


def reference_frame() -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The rows of mmrm_emulated.csv as episodes and long outcomes (PRTEE, 0-100, so that
    the outcome's range holds: y + 10; the shift moves only the window means)."""
    ref = json.loads((REFERENCE / "reference_fits.json").read_text())["emulated_unstructured"]
    rows = pd.read_csv(REFERENCE / "mmrm_emulated.csv")
    first = rows.drop_duplicates("patient")
    ids = first["patient"].astype(str).to_numpy()
    episodes = episodes_frame(ids, first["arm"].to_numpy() == 1, first["clinic"].to_numpy())
    outcomes = pd.concat(
        [
            pd.DataFrame(
                {"episode_id": ids, "days_from_intake": 0, "score": first["baseline"].to_numpy()}
            ),
            pd.DataFrame(
                {
                    "episode_id": rows["patient"].astype(str),
                    "days_from_intake": rows["week"] * 7,
                    "score": rows["y"] + 10,
                }
            ),
        ],
        ignore_index=True,
    ).assign(instrument="prtee")
    return ref, episodes, outcomes


@pytest.mark.parametrize("ddf", ["kenward-roger", "satterthwaite", "robust"])
def test_mmrm_on_a_frame_equals_nlme_gls_unstructured(ddf):
    """The unstructured matrix, pre-specified. Kenward–Roger (its default): the SE and df of
    small_sample_reference.json (R, checked there against pbkrtest); Satterthwaite: nlme's
    model-based SE; ``variance="robust"``: clubSandwich's CR2 SE and Satterthwaite df of the
    same gls fit."""
    ref, episodes, outcomes = reference_frame()
    small = json.loads((REFERENCE / "small_sample_reference.json").read_text())
    kr, cr2 = small["emulated_unstructured"], small["emulated_unstructured_cr2"]
    af = comparison_frame(episodes, outcomes, "prtee", 26, ARMS, covariates=())
    ask = {"satterthwaite": {"ddf": ddf}, "robust": {"variance": "robust"}}.get(ddf, {})
    r = mmrm(
        af,
        windows=(4, 6, 12, 26),
        covariance="unstructured",
        covariates=(),
        covariates_by_window=False,
        **ask,
    )
    coef = dict(zip(ref["names"], ref["coef"], strict=True))
    se = dict(zip(ref["names"], ref["se"], strict=True))
    se_kr = dict(zip(kr["names"], kr["se_kr"], strict=True))
    df_kr = dict(zip(kr["names"], kr["df_kr"], strict=True))
    se_cr2 = dict(zip(cr2["names"], cr2["se_cr2"], strict=True))
    df_cr2 = dict(zip(cr2["names"], cr2["df_cr2"], strict=True))
    tab = r.table.set_index("term")
    for w in (4, 6, 12, 26):
        row = tab.loc[f"{ARMS[0]} − {ARMS[1]} at week {w}"]
        name = f"factor(week){w}:arm"
        assert row["estimate"] == pytest.approx(coef[name], rel=1e-6)
        if ddf == "kenward-roger":
            assert row["se"] == pytest.approx(se_kr[name], rel=1e-6)
            assert row["df"] == pytest.approx(df_kr[name], rel=1e-5)
        elif ddf == "robust":
            assert row["se"] == pytest.approx(se_cr2[name], rel=1e-6)
            assert row["df"] == pytest.approx(df_cr2[name], rel=1e-5)
        else:
            assert row["se"] == pytest.approx(se[name], rel=1e-6)
            assert 20 < row["df"] < 200  # Satterthwaite, between patients-per-arm and rows
    sd = tab.loc[[f"residual SD at week {w}" for w in (4, 6, 12, 26)], "estimate"]
    np.testing.assert_allclose(sd, np.sqrt(np.diag(ref["covariance"])), rtol=5e-6)
    assert r.estimate == pytest.approx(coef["factor(week)26:arm"], rel=1e-6)
    assert r.n == {
        ARMS[0]: int((episodes["arm"] == ARMS[0]).sum()),
        ARMS[1]: int((episodes["arm"] == ARMS[1]).sum()),
    }
    assert "unstructured" in r.estimator
    said = {"kenward-roger": "Kenward–Roger", "robust": "CR2"}.get(ddf, "Satterthwaite")
    assert said in r.estimator
    json.dumps(r.to_dict())


@pytest.mark.parametrize("covariance", ["cs", "ar1", "heterogeneous_cs"])
def test_mmrm_covariance_options_equal_nlme(covariance):
    ref_all = json.loads((REFERENCE / "reference_fits.json").read_text())
    ref = ref_all[f"emulated_{covariance}"]
    _, episodes, outcomes = reference_frame()
    af = comparison_frame(episodes, outcomes, "prtee", 12, ARMS, covariates=())
    r = mmrm(
        af, windows=(4, 6, 12, 26), covariates=(), covariance=covariance, covariates_by_window=False
    )
    coef = dict(zip(ref["names"], ref["coef"], strict=True))
    assert r.estimate == pytest.approx(coef["factor(week)12:arm"], rel=1e-6)
    assert covariance in r.estimator


def test_mmrm_defaults_use_the_frames_adjustment_set_and_leave_inputs_unchanged():
    episodes, outcomes = mar_dropout(11, n=200)
    eb, ob = episodes.copy(), outcomes.copy()
    af = comparison_frame(episodes, outcomes, "nprs", 6, ARMS)
    r = mmrm(af)
    pd.testing.assert_frame_equal(episodes, eb)
    pd.testing.assert_frame_equal(outcomes, ob)
    for term in ("age_years", "C(sex)", "symptom_duration_weeks", "C(clinic_id)"):
        assert term in r.estimand
    assert "covariance (the smallest AIC)" in r.estimator
    assert any("covariance chosen by the smallest REML AIC" in n for n in r.notes)
    assert r.table["week"].dropna().astype(int).tolist()[:3] == [4, 6, 12]
    assert public_mmrm is mmrm


def test_mmrm_refuses_what_it_cannot_fit():
    episodes, outcomes = mar_dropout(3, n=120)
    af = comparison_frame(episodes, outcomes, "nprs", 6, ARMS)
    with pytest.raises(InputError, match="covariance must be one of"):
        mmrm(af, covariance="toeplitz")
    with pytest.raises(InputError, match="variance must be one of"):
        mmrm(af, variance="sandwich")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="CR2 brings its own df"):
        mmrm(af, variance="robust", ddf="kenward-roger")
    with pytest.raises(InputError, match="week 6 must be one of windows"):
        mmrm(af, windows=(4, 12))
    with pytest.raises(InputError, match="AnalysisFrame of comparison_frame"):
        mmrm(af.data)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"has 0 episode\(s\) .* in week 26"):
        mmrm(af, windows=(4, 6, 26))


def test_ionto_compare_method_mmrm():
    episodes, outcomes = mar_dropout(5, n=200)
    episodes = episodes.assign(start_date=pd.Timestamp("2026-01-05"))
    spec = ComparisonSpec("lateral_epicondylitis", "nprs", ARMS, week=12, method="mmrm")
    report = compare_frames(episodes, outcomes, None, spec)
    direct = mmrm(comparison_frame(episodes, outcomes, "nprs", 12, ARMS))
    assert report.result.estimate == pytest.approx(direct.estimate, rel=1e-9)
    out = report.to_dict()
    assert out["method"] == "mmrm" and "MMRM" in out["estimator"]
    assert not any("HC2" in note for note in out["notes"])


def _growing_confounder(seed: int, n: int = 600) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Complete PRTEE scores at weeks 4, 6, 12; age drives the arm and an improvement that
    grows with time (as the emulator's natural-history modifiers do); arm effect 0."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"g{i:04d}" for i in range(n)])
    age = rng.uniform(20, 75, n)
    treated = rng.random(n) < 1 / (1 + np.exp(-(age - 47) / 8))
    episodes = episodes_frame(ids, treated, rng.choice(["c1", "c2"], n)).assign(age_years=age)
    baseline = rng.normal(50, 12, n)
    level = rng.normal(0, 4, n)
    slope = {4: 0.05, 6: 0.12, 12: 0.3}  # points per year of age, growing with the week
    rows = [pd.DataFrame({"episode_id": ids, "days_from_intake": 0, "score": baseline})]
    for w, day in DAYS.items():
        y = baseline - 8 - slope[w] * (age - 47) + level + rng.normal(0, 5, n)
        rows.append(
            pd.DataFrame({"episode_id": ids, "days_from_intake": day, "score": np.clip(y, 0, 100)})
        )
    return episodes, pd.concat(rows, ignore_index=True).assign(instrument="prtee")


def test_covariates_by_window_remove_the_shared_slope_bias_and_match_ancova():
    """With complete data and the same regressors in every window, the MMRM with covariates
    by window gives each window's ANCOVA estimate (GLS with identical regressors is OLS per
    window); with one shared age coefficient it is biased where the age effect has grown."""
    episodes, outcomes = _growing_confounder(4)
    af = comparison_frame(
        episodes, outcomes, "prtee", 12, ARMS, covariates=("age_years",), adjust_for=("age_years",)
    )
    by_window = mmrm(af, windows=(4, 6, 12), clinic_effects=False).table.dropna(subset=["df"])
    shared = mmrm(af, windows=(4, 6, 12), clinic_effects=False, covariates_by_window=False)
    for row in by_window.itertuples():
        anc = ancova(af.at_week(int(row.week)), clinic_effects=False, flexible=False, se="hc3")
        assert row.estimate == pytest.approx(anc.estimate, abs=1e-6)
    week12 = by_window.set_index("week").loc[12]
    assert week12["ci_low"] < 0 < week12["ci_high"]
    assert shared.ci_low > 0 or shared.ci_high < 0  # the shared slope misses the truth 0
    assert "C(week):age_years" in " ".join(mmrm(af, clinic_effects=False).adjustment_set)


def test_a_thin_window_falls_back_to_one_coefficient_per_covariate_or_is_refused():
    """Per-window adjustment needs residual degrees of freedom in every window (the
    whole-grid bench: MMRM intervals covering 0-40 % in cells of 15-30 episodes without
    them); the default then takes the trial specification and says so, a forced choice is
    refused with the fix, and a window too thin for any adjustment is refused."""
    episodes, outcomes = mar_dropout(3, n=24)
    af = comparison_frame(episodes, outcomes, "nprs", 12, ARMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # boundary variances at this size
        auto = mmrm(af)
        shared = mmrm(af, covariates_by_window=False)
        mixed = mixed_model(af, windows=(4, 6, 12))
    assert auto.estimate == shared.estimate and auto.ci_low == shared.ci_low
    assert any("trial specification" in n and "week(s) [" in n for n in auto.notes)
    assert any("trial specification" in n for n in mixed.notes)
    with pytest.raises(
        InputError,
        match=r"mmrm: week \d+ has \d+ residual degree.*"
        "covariates_by_window=False",
    ):
        mmrm(af, covariates_by_window=True)
    large = comparison_frame(*mar_dropout(3, n=200), "nprs", 12, ARMS)
    assert not any("trial specification" in n for n in mmrm(large).notes)
    tiny = comparison_frame(*mar_dropout(3, n=14), "nprs", 12, ARMS)
    after_fallback = r"residual degree.* for its variance: adjust for fewer covariates, leave"
    with pytest.raises(InputError, match=after_fallback):
        mmrm(tiny)


def test_a_singular_unstructured_fit_falls_back_in_the_prespecified_order():
    """A cell of the emulated grid (tests/reference/make_singular_cell.py): 20 episodes,
    21 fixed effects over 4 windows; the unstructured covariance is singular. The result
    is the first structure of MMRM_FALLBACK that converges, with CR2 SEs and df below the
    number of episodes (the non-converged fit had reported df of about 1e6); without a
    fallback the call is refused."""
    episodes = pd.read_csv(REFERENCE / "singular_cell_episodes.csv")
    outcomes = pd.read_csv(REFERENCE / "singular_cell_outcomes.csv")
    arms = ("exercise+manual", "exercise")
    af = comparison_frame(episodes, outcomes, "nprs", 2, arms, condition="rheumatoid")
    ask = {"windows": (2, 4, 6, 12), "covariance": "unstructured"}
    with pytest.raises(InputError, match=r"no covariance structure converged.*20 episodes"):
        mmrm(af, fallback=(), **ask)
    with pytest.warns(StatisticalWarning, match="fitted heterogeneous_ar1 instead"):
        r = mmrm(af, **ask)
    assert "heterogeneous_ar1 covariance" in r.estimator and "CR2" in r.estimator
    assert any("unstructured covariance did not converge" in n for n in r.notes)
    contrasts = r.table.dropna(subset=["se"])
    assert len(contrasts) == 4 and (contrasts["df"] < 20).all()
    assert np.isfinite(contrasts[["ci_low", "ci_high"]].to_numpy()).all()
    with pytest.raises(InputError, match="fallback structures"):
        mmrm(af, fallback=("toeplitz",))


def test_covariance_by_aic_ranks_the_structures_by_the_reml_log_likelihoods_r_reports():
    """``covariance="aic"`` on the nlme reference data: every candidate's AIC in the note is
    -2 logLik + 2k with nlme's REML logLik (k = 10, 5, 5, 2 covariance parameters), the
    smallest (unstructured) is kept, and its contrasts are those of the plain unstructured
    fit (Kenward–Roger)."""
    ref = json.loads((REFERENCE / "reference_fits.json").read_text())
    k = {"unstructured": 10, "heterogeneous_ar1": 5, "heterogeneous_cs": 5, "cs": 2}
    want = {s: -2 * ref[f"emulated_{s}"]["logLik"] + 2 * n for s, n in k.items()}
    _, episodes, outcomes = reference_frame()
    af = comparison_frame(episodes, outcomes, "prtee", 12, ARMS, covariates=())
    ask = {"windows": (4, 6, 12, 26), "covariates": (), "covariates_by_window": False}
    r = mmrm(af, covariance="aic", **ask)
    note = next(n for n in r.notes if "smallest REML AIC" in n)
    said = {s: float(a) for s, a in re.findall(r"([a-z_0-9]+) (\d+\.\d)", note)}
    assert said.keys() == want.keys()
    for s, a in want.items():
        assert said[s] == pytest.approx(a, abs=0.051)
    assert min(want, key=want.get) == "unstructured" and "unstructured covariance" in r.estimator
    plain = mmrm(af, covariance="unstructured", **ask)
    assert "smallest AIC" not in plain.estimator
    assert r.estimate == pytest.approx(plain.estimate, rel=1e-10)
    assert (r.ci_low, r.ci_high) == pytest.approx((plain.ci_low, plain.ci_high), rel=1e-10)
    assert "smallest AIC" in r.estimator and "Kenward–Roger" in r.estimator


def test_covariance_by_aic_on_a_small_cell_keeps_a_converged_simpler_structure_with_cr2():
    """The singular cell (20 episodes), the default covariance: the unstructured matrix does
    not converge and is named in the note; the kept structure has the smallest AIC of those
    that converged and takes CR2 with df below the number of episodes."""
    episodes = pd.read_csv(REFERENCE / "singular_cell_episodes.csv")
    outcomes = pd.read_csv(REFERENCE / "singular_cell_outcomes.csv")
    arms = ("exercise+manual", "exercise")
    af = comparison_frame(episodes, outcomes, "nprs", 2, arms, condition="rheumatoid")
    r = mmrm(af, windows=(2, 4, 6, 12))
    note = next(n for n in r.notes if "smallest REML AIC" in n)
    assert "the unstructured covariance did not converge" in note
    aics = {s: float(a) for s, a in re.findall(r"([a-z_0-9]+) (\d+\.\d)", note.split("(AIC")[1])}
    kept = min(aics, key=aics.get)
    assert kept != "unstructured" and f"{kept} covariance (the smallest AIC)" in r.estimator
    assert "CR2" in r.estimator
    contrasts = r.table.dropna(subset=["se"])
    assert len(contrasts) == 4 and (contrasts["df"] < 20).all()
    with pytest.raises(InputError, match=r"or 'aic', got 'toeplitz'"):
        mmrm(af, covariance="toeplitz")
