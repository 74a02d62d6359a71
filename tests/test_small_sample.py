"""Small-sample inference of the mixed-model engine: Kenward–Roger for the MMRM
(``ionto_analytics.lmm.kenward_roger``), CR2 for the random intercept (``lmm.robust``).

* Against R: ``tests/reference/small_sample_reference.json`` (script
  ``small_sample_reference.R``, ``make reference``) holds pbkrtest's ``vcovAdj`` and
  ``get_Lb_ddf`` for a random-intercept model of Orthodont (on these complete, balanced
  data the compound-symmetry MMRM), and the KR formulas on dense matrices (checked there
  against pbkrtest) for the unstructured nlme::gls fit of ``mmrm_emulated.csv``. The
  engine's adjusted SEs and df must equal them to 1e-6 (SE) and 1e-5 (df).
  It also holds clubSandwich's CR2 covariance and Satterthwaite df of two nlme::lme
  random-intercept fits: to 1e-6 (SE, the fits agree to about 1e-8) and 1e-5 (df).
* Properties: the KR adjustment widens the intervals and vanishes as the data grow; the
  structures not linear in their parameters are refused. CR2 covers where the model-based
  interval of a random intercept does not (a patient effect that grows over the windows).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_schemas.errors import InputError, StatisticalWarning
from ionto_analytics.lmm import fit_mmrm, fit_random_intercept
from ionto_analytics.lmm.robust import cluster_robust

REFERENCE = Path(__file__).parent / "reference"
KR = json.loads((REFERENCE / "small_sample_reference.json").read_text())


def rel(got, expected) -> float:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    return float(np.max(np.abs(got - expected) / np.abs(expected)))


@pytest.mark.parametrize(
    ("key", "covariance"), [("orthodont_ri", "cs"), ("emulated_unstructured", "unstructured")]
)
def test_kenward_roger_matches_r(key, covariance):
    ref = KR[key]
    data = pd.read_csv(REFERENCE / ref["data"])
    X = np.array(ref["design"], dtype=float)
    fit = fit_mmrm(data.y, X, data.patient, data.week, covariance=covariance, ddf="kenward-roger")
    plain = fit_mmrm(data.y, X, data.patient, data.week, covariance=covariance)
    assert fit.ddf == "kenward-roger" and fit.convergence.converged
    assert rel(fit.beta, ref["coef"]) < 1e-6
    assert rel(plain.se, ref["se_model"]) < 1e-6
    assert rel(fit.se, ref["se_kr"]) < 1e-6
    assert rel(fit.contrast(np.eye(X.shape[1])).df, ref["df_kr"]) < 1e-5
    if covariance == "unstructured":  # (balanced cell means: KR adds nothing, as in R)
        assert np.max(fit.se / plain.se) > 1.01  # the adjustment is what is tested here


def simulated(n: int, seed: int, T: int = 4):
    rng = np.random.default_rng(seed)
    patient = np.repeat(np.arange(n), T)
    window = np.tile(np.arange(T), n)
    arm = (patient % 2).astype(float)
    X = np.column_stack([window == t for t in range(T)] + [arm * (window == t) for t in range(T)])
    S = 0.5 + 0.5 * np.eye(T) + 0.3 * np.add.outer(np.arange(T), np.arange(T))
    y = rng.multivariate_normal(np.zeros(T), S, size=n).ravel()
    keep = rng.random(n * T) > 0.15  # some missing windows
    return y[keep], X[keep].astype(float), patient[keep], window[keep]


def test_adjustment_widens_and_vanishes_with_more_patients():
    """Unstructured over 4 windows (10 parameters); the arm contrasts at each window."""
    ratios = []
    for n in (30, 600):
        y, X, patient, window = simulated(n, seed=n)
        plain = fit_mmrm(y, X, patient, window)
        kr = fit_mmrm(y, X, patient, window, ddf="kenward-roger")
        assert np.allclose(kr.beta, plain.beta)
        ratios.append(float(np.max(kr.se[4:] / plain.se[4:])))
    small, large = ratios
    assert small > 1.005
    assert large - 1 < (small - 1) / 5


def test_kenward_roger_needs_reml_and_a_known_name():
    y, X, patient, window = simulated(30, seed=1)
    with pytest.raises(InputError, match="Kenward-Roger with method='REML'"):
        fit_mmrm(y, X, patient, window, method="ML", ddf="kenward-roger")
    with pytest.raises(InputError, match="ddf must be one of"):
        fit_mmrm(y, X, patient, window, ddf="kr")
    with pytest.raises(InputError, match="'ar1' is not: pass ddf='satterthwaite'"):
        fit_mmrm(y, X, patient, window, covariance="ar1", ddf="kenward-roger")


@pytest.mark.parametrize("key", ["ri_unbalanced_cr2", "orthodont_cr2"])
def test_cr2_matches_clubsandwich(key):
    ref = KR[key]
    data = pd.read_csv(REFERENCE / ref["data"])
    X = np.array(ref["design"], dtype=float)
    fit = fit_random_intercept(data.y, X, data.patient)
    assert rel(fit.beta, ref["coef"]) < 1e-6
    assert rel(fit.patient_variance, ref["patient_variance"]) < 1e-5
    robust = cluster_robust(fit, data.y, X, data.patient)
    assert rel(robust.se, ref["se_cr2"]) < 1e-6
    assert rel(robust.contrast(np.eye(X.shape[1])).df, ref["df_cr2"]) < 1e-5
    assert np.max(np.abs(robust.se / fit.se - 1)) > 0.02  # not the model-based SE again


def test_cr2_of_an_unstructured_mmrm_matches_clubsandwich_on_gls():
    """The MMRM's ``variance="robust"``: CR2 over patients of the unstructured gls fit,
    with missing windows (each pattern's block of Sigma is the working covariance)."""
    fixed, ref = KR["emulated_unstructured"], KR["emulated_unstructured_cr2"]
    data = pd.read_csv(REFERENCE / ref["data"])
    X = np.array(fixed["design"], dtype=float)
    fit = fit_mmrm(data.y, X, data.patient, data.week)
    assert data.groupby("patient").size().nunique() > 1  # missing windows are exercised
    robust = cluster_robust(fit, data.y, X, data.patient, data.week)
    assert rel(robust.se, ref["se_cr2"]) < 1e-6
    assert rel(robust.contrast(np.eye(X.shape[1])).df, ref["df_cr2"]) < 1e-5
    assert np.max(np.abs(robust.se / fit.se - 1)) > 0.02


def test_cr2_of_an_mmrm_needs_its_windows_and_the_model_based_covariance():
    y, X, patient, window = simulated(30, seed=2)
    fit = fit_mmrm(y, X, patient, window)
    with pytest.raises(InputError, match="needs the windows"):
        cluster_robust(fit, y, X, patient)
    with pytest.raises(InputError, match="not the fit's"):
        cluster_robust(fit, y, X, patient, window + 1)
    kr = fit_mmrm(y, X, patient, window, ddf="kenward-roger")
    with pytest.raises(InputError, match="ddf='satterthwaite'"):
        cluster_robust(kr, y, X, patient, window)


def test_cr2_covers_a_growing_patient_effect_that_the_model_based_se_misses():
    """Random intercept fitted to scores whose patient effect grows (SD 0.5, 1, 2 over three
    windows): 300 data sets of 40 episodes; the arm contrast at the last window."""
    covered = {"model": 0, "cr2": 0}
    for seed in range(300):
        rng = np.random.default_rng(seed)
        n = 40
        g = np.repeat(np.arange(n), 3)
        t = np.tile(np.arange(3), n)
        arm = (g % 2).astype(float)
        X = np.column_stack([t == 0, t == 1, t == 2, arm * (t == 2)]).astype(float)
        y = rng.normal(0, 1, n)[g] * np.array([0.5, 1.0, 2.0])[t] + rng.normal(0, 0.5, 3 * n)
        fit = fit_random_intercept(y, X, g)
        for name, c in (
            ("model", fit.contrast([0, 0, 0, 1.0])),
            ("cr2", cluster_robust(fit, y, X, g).contrast([0, 0, 0, 1.0])),
        ):
            covered[name] += int(c.ci_low[0] < 0 < c.ci_high[0])
    assert covered["model"] / 300 < 0.90
    assert 0.92 < covered["cr2"] / 300 < 0.98


def test_kenward_roger_falls_back_to_satterthwaite_on_a_degenerate_fit_and_says_so():
    """Outcomes constant within patient: the correlation runs to 1 (boundary); KR's
    expansion does not hold there, so the fit keeps the model-based SE, with a warning."""
    rng = np.random.default_rng(3)
    n = 40
    patient = np.repeat(np.arange(n), 3)
    window = np.tile(np.arange(3), n)
    X = np.column_stack([np.ones(3 * n), window == 1, window == 2]).astype(float)
    y = rng.normal(size=n)[patient] * 2 + 1e-6 * rng.normal(size=3 * n)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit = fit_mmrm(y, X, patient, window, covariance="cs", ddf="kenward-roger")
    said = [str(w.message) for w in seen if issubclass(w.category, StatisticalWarning)]
    assert any("Kenward-Roger needs a converged fit" in m for m in said)
    assert fit.ddf == "satterthwaite"
    assert np.all(np.isfinite(fit.se))
