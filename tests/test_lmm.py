"""Agreement of the mixed-model engine (``ionto_analytics.lmm``) with outside references.

References (how each expected number was produced):

* ``tests/reference/reference_fits.json`` is written by ``tests/reference/mmrm_reference.R``
  (``make reference``; R 4.x, nlme, lme4, lmerTest) from the CSVs next to it, which
  ``tests/reference/make_datasets.py`` simulates with fixed seeds (Orthodont comes from nlme).
  The design matrices are R's own ``model.matrix`` (stored in the JSON), so the columns match.

  - MMRM: ``nlme::gls(y ~ 0 + factor(week) + factor(week):arm + factor(week):baseline +
    factor(clinic), correlation = corSymm(form = ~ w | patient), weights = varIdent(form =
    ~ 1 | factor(w)), method = "REML")`` and the cs / AR(1) / heterogeneous / diagonal
    variants; Orthodont with ``distance ~ Sex * factor(age)``.
  - Random intercept: ``lmerTest::lmer(y ~ x + arm + (1 | patient), REML = TRUE/FALSE)``
    (lme4's estimates; lmerTest's Satterthwaite df).

* statsmodels ``MixedLM(y, X, groups, exog_re=1).fit(reml=..., method="bfgs", gtol=1e-12)``,
  run here (it is a dependency), on the same three random-intercept CSVs.

Tolerances: 1e-6 relative on fixed effects, SEs, variances and log-likelihoods. nlme's
optimizer (optim BFGS with numerical gradients, polished once) stops ~1e-6 short of the
optimum on the covariance parameters themselves, so those use 5e-6; our log-likelihood is
never lower than R's. lmerTest's df come from a numerical Hessian (numDeriv), so df use
1e-4. Two documented convention differences: nlme scales ML standard errors by
``sqrt(N / (N - p))`` (a REML-like sigma), and statsmodels' ``bse_fe`` inverts the joint
observed information of (beta, variances), which differs from the model-based
``(X'V^{-1}X)^{-1}`` of lme4, nlme and SAS by O(1/n) (0.3% here).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.mixed_linear_model import MixedLMParams

from data_schemas.errors import InputError, StatisticalWarning
from ionto_analytics.lmm import STRUCTURES, fit_mmrm, fit_random_intercept
from ionto_analytics.lmm.certify import certify
from ionto_analytics.lmm.covariance import get_structure
from ionto_analytics.lmm.mmrm import _Criterion
from ionto_analytics.lmm.sufficient import pattern_stats

REFERENCE = Path(__file__).parent / "reference"
FITS = json.loads((REFERENCE / "reference_fits.json").read_text())
RI_KEYS = [k for k, v in FITS.items() if v.get("model") == "random_intercept"]
MMRM_KEYS = [k for k, v in FITS.items() if v.get("model") == "mmrm"]


def rel(got, expected) -> float:
    """Largest relative difference (entries that are 0 relative to the largest entry)."""
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    scale = np.where(expected != 0, np.abs(expected), np.max(np.abs(expected)))
    return float(np.max(np.abs(got - expected) / scale))


def load(key: str) -> tuple[dict, pd.DataFrame, np.ndarray]:
    ref = FITS[key]
    data = pd.read_csv(REFERENCE / ref["data"])
    return ref, data, np.array(ref["design"], dtype=float)


def fit_ri_quietly_at_boundary(data: pd.DataFrame, X: np.ndarray, method: str):
    """Fit; a boundary data set must warn (and only then)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fit = fit_random_intercept(data.y, X, data.patient, method=method)
    assert len(seen) == int(fit.convergence.at_boundary)
    assert all(issubclass(w.category, StatisticalWarning) for w in seen)
    return fit


@pytest.mark.parametrize("key", RI_KEYS)
def test_random_intercept_matches_lme4(key):
    ref, data, X = load(key)
    fit = fit_ri_quietly_at_boundary(data, X, ref["method"])
    assert rel(fit.beta, ref["coef"]) < 1e-6
    assert rel(fit.se, ref["se"]) < 1e-6
    assert rel(fit.residual_variance, ref["residual_variance"]) < 1e-6
    if ref["patient_variance"] == 0:
        assert fit.patient_variance == 0 and fit.convergence.at_boundary
    else:
        assert rel(fit.patient_variance, ref["patient_variance"]) < 1e-6
    assert rel(fit.loglik, ref["logLik"]) < 1e-6
    assert rel(fit.contrast(np.eye(X.shape[1])).df, ref["df"]) < 1e-4
    assert fit.convergence.converged


@pytest.mark.parametrize("name", ["ri_balanced", "ri_unbalanced", "ri_boundary"])
@pytest.mark.parametrize("method", ["REML", "ML"])
def test_random_intercept_matches_statsmodels(name, method):
    data = pd.read_csv(REFERENCE / f"{name}.csv")
    X = np.column_stack([np.ones(len(data)), data.x, data.arm])
    model = sm.MixedLM(
        data.y.to_numpy(), X, data.patient.to_numpy(), exog_re=np.ones((len(data), 1))
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels warns at the boundary
        sm_fit = model.fit(reml=method == "REML", method="bfgs", gtol=1e-12, maxiter=1000)
    fit = fit_ri_quietly_at_boundary(data, X, method)
    if fit.convergence.at_boundary:
        # statsmodels optimizes a Cholesky factor and stops short of 0 (variance ~1e-3):
        # its own likelihood at our estimates (ratio 1e-12) must equal ours and beat its fit
        at_ours = MixedLMParams.from_components(fe_params=fit.beta, cov_re=np.array([[1e-12]]))
        assert rel(fit.loglik, model.loglike(at_ours, profile_fe=False)) < 1e-9
        assert fit.loglik > sm_fit.llf
        return
    assert rel(fit.beta, sm_fit.fe_params) < 1e-6
    assert rel(fit.residual_variance, sm_fit.scale) < 1e-6
    assert abs(fit.patient_variance - float(np.asarray(sm_fit.cov_re)[0, 0])) < 1e-6 * (
        fit.residual_variance
    )
    assert rel(fit.loglik, sm_fit.llf) < 1e-6
    # statsmodels' SEs use the joint observed information (see the module docstring)
    assert rel(fit.se, sm_fit.bse_fe) < 1e-2


@pytest.mark.parametrize("key", MMRM_KEYS)
def test_mmrm_matches_nlme_gls(key):
    ref, data, X = load(key)
    fit = fit_mmrm(
        data.y, X, data.patient, data.week, covariance=ref["structure"], method=ref["method"]
    )
    assert fit.convergence.converged and not fit.convergence.at_boundary
    assert rel(fit.beta, ref["coef"]) < 1e-6
    n, p = X.shape
    nlme_scale = 1.0 if ref["method"] == "REML" else np.sqrt((n - p) / n)
    assert rel(fit.se, np.array(ref["se"]) * nlme_scale) < 1e-6
    assert rel(fit.covariance, ref["covariance"]) < 5e-6
    assert fit.loglik >= ref["logLik"] - 1e-9
    assert rel(fit.loglik, ref["logLik"]) < 1e-9


def test_mmrm_cs_df_matches_lmertest_random_intercept():
    """On complete balanced data a cs MMRM (rho > 0) is the random-intercept model."""
    ref, data, X = load("orthodont_ri_sexweek")
    fit = fit_mmrm(data.y, X, data.patient, data.week, covariance="cs")
    assert rel(fit.beta, ref["coef"]) < 1e-6
    assert rel(fit.se, ref["se"]) < 1e-6
    assert rel(fit.contrast(np.eye(X.shape[1])).df, ref["df"]) < 1e-4


def emulated_criterion(structure: str, reml: bool) -> tuple[_Criterion, np.ndarray]:
    _, data, X = load("emulated_unstructured")
    codes = pd.factorize(data.patient)[0]
    windows = pd.factorize(data.week, sort=True)[0]
    stats = pattern_stats(data.y.to_numpy(float), X, codes, codes.max() + 1, windows, 4)
    crit = _Criterion(stats, get_structure(structure, 4), 4, reml)
    rng = np.random.default_rng(5)
    return crit, 0.3 * rng.normal(size=STRUCTURES[structure].n_params(4))


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
@pytest.mark.parametrize("reml", [True, False])
def test_mmrm_analytic_gradient_matches_finite_differences(structure, reml):
    crit, theta = emulated_criterion(structure, reml)
    _, grad = crit.value_and_gradient(theta)
    h = 1e-6
    numeric = np.array(
        [
            (crit.value_and_gradient(theta + h * e)[0] - crit.value_and_gradient(theta - h * e)[0])
            / (2 * h)
            for e in np.eye(theta.size)
        ]
    )
    assert np.max(np.abs(grad - numeric)) < 1e-5 * max(1.0, np.max(np.abs(numeric)))


def test_mmrm_dcov_beta_matches_finite_differences():
    crit, theta = emulated_criterion("unstructured", True)
    structure = crit.structure
    ev = crit.evaluate(structure.sigma(theta, 4))
    h = 1e-6
    for k, e in enumerate(np.eye(theta.size)):
        up = crit.evaluate(structure.sigma(theta + h * e, 4)).A_inv
        down = crit.evaluate(structure.sigma(theta - h * e, 4)).A_inv
        numeric = (up - down) / (2 * h)
        assert np.max(np.abs(crit.dcov_beta(theta, ev)[k] - numeric)) < 1e-6 * np.max(
            np.abs(ev.A_inv)
        )


def test_sufficient_statistics_do_not_depend_on_row_order():
    _, data, X = load("emulated_unstructured")
    fit = fit_mmrm(data.y, X, data.patient, data.week)
    order = np.random.default_rng(0).permutation(len(data))
    shuffled = fit_mmrm(
        data.y.to_numpy()[order],
        X[order],
        data.patient.to_numpy()[order],
        data.week.to_numpy()[order],
    )
    assert rel(shuffled.beta, fit.beta) < 1e-9
    assert rel(shuffled.covariance, fit.covariance) < 1e-7


def test_inputs_are_left_unchanged():
    _, data, X = load("emulated_unstructured")
    y, groups, weeks = (data[c].to_numpy() for c in ("y", "patient", "week"))
    before = [a.copy() for a in (y, X, groups, weeks)]
    fit_random_intercept(y, X, groups)
    fit_mmrm(y, X, groups, weeks)
    assert all(np.array_equal(a, b) for a, b in zip(before, (y, X, groups, weeks), strict=True))


def test_refuses_a_rank_deficient_design():
    _, data, X = load("ri_balanced_reml")
    X_bad = np.column_stack([X, X[:, 1] + X[:, 2]])
    with pytest.raises(InputError, match=r"column 3 is .* linear combination"):
        fit_random_intercept(data.y, X_bad, data.patient)


def test_refuses_missing_outcomes_and_unknown_options():
    _, data, X = load("ri_balanced_reml")
    y = data.y.to_numpy().copy()
    y[7] = np.nan
    with pytest.raises(InputError, match="first at row 7"):
        fit_random_intercept(y, X, data.patient)
    with pytest.raises(InputError, match="'REML' or 'ML'"):
        fit_random_intercept(data.y, X, data.patient, method="GEE")
    with pytest.raises(InputError, match="choose one of"):
        fit_mmrm(data.y, X, data.patient, data.x > 0, covariance="toeplitz")


def test_certificate_warns_on_a_large_gradient_and_an_indefinite_hessian():
    with pytest.warns(StatisticalWarning) as seen:
        cert = certify(
            np.array([0.5]),
            np.array([[-1.0]]),
            True,
            3,
            "stopped",
            at_boundary=False,
            what="test fit",
        )
    assert not cert.converged and len(seen) == 2
    assert "gradient is 0.5" in str(seen[0].message)
    assert "not positive definite" in str(seen[1].message)


def test_mmrm_on_a_degenerate_covariance_is_never_silent():
    """Outcomes constant within patient: the cs correlation runs to 1."""
    rng = np.random.default_rng(3)
    n = 40
    patient = np.repeat(np.arange(n), 3)
    window = np.tile(np.arange(3), n)
    X = np.column_stack([np.ones(3 * n), window == 1, window == 2])
    y = rng.normal(size=n)[patient] * 2 + 1e-6 * rng.normal(size=3 * n)
    with pytest.warns(StatisticalWarning, match="MMRM \\(cs\\)"):
        fit = fit_mmrm(y, X, patient, window, covariance="cs")
    assert fit.convergence.at_boundary or not fit.convergence.converged


def test_mmrm_satterthwaite_df_is_exact_on_complete_cell_means():
    """Complete data, cell-means design: each arm difference at a window is a difference of
    two sample means whose variance is estimated with n - 2 df (pooled Wishart), and
    Satterthwaite recovers exactly n - 2."""
    rng = np.random.default_rng(8)
    n, T = 50, 4
    patient = np.repeat(np.arange(n), T)
    window = np.tile(np.arange(T), n)
    arm = (patient < 23).astype(float)
    onehot = np.eye(T)[window]
    X = np.column_stack([onehot, onehot * arm[:, None]])
    S = 0.5 + 0.5 * np.eye(T) + 0.1 * np.arange(T)[:, None] * np.eye(T)
    y = rng.multivariate_normal(np.zeros(T), S, size=n).ravel() + X @ rng.normal(size=2 * T)
    fit = fit_mmrm(y, X, patient, window)
    df = fit.contrast(np.eye(2 * T)[T:]).df
    np.testing.assert_allclose(df, n - 2, rtol=1e-6)


def test_fit_to_dict_is_json():
    _, data, X = load("orthodont_unstructured")
    fit = fit_mmrm(data.y, X, data.patient, data.week)
    back = json.loads(json.dumps(fit.to_dict()))
    assert back["structure"] == "unstructured" and len(back["se"]) == X.shape[1]
    assert back["convergence"]["converged"] is True
