"""Propensity-score weighting: :func:`iptw` (ATE inverse probability or overlap weights).

The result carries :class:`~ionto_analytics.compare.diagnostics.PositivityDiagnostics`
(overlap, c-statistic, effective sample size, largest weights, single-arm clinics, balance);
its ``status`` is ``"imbalanced"`` when a covariate's |SMD| after weighting exceeds 0.1.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(3)
>>> n = 200
>>> b = rng.normal(6, 1.2, n)
>>> t = rng.random(n) < 1 / (1 + np.exp(-(b - 6)))
>>> df = pd.DataFrame({"arm": np.where(t, "ionto+exercise", "exercise"), "baseline": b,
...                    "follow_up": 1.5 + 0.6 * b - 1.0 * t + rng.normal(0, 1, n)})
>>> r = iptw(df, arms=("ionto+exercise", "exercise"), covariates=(), clinic_effects=False,
...          weighting="overlap", se="hc3")
>>> bool(r.ci_low < -1.0 < r.ci_high), float(r.balance["smd_after"].abs().max()) < 1e-6
(True, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf

from ionto_analytics.compare.adjustment import rhs_terms
from ionto_analytics.compare.diagnostics import diagnose, single_arm_strata
from ionto_analytics.compare.fit import (
    SeType,
    check_arms_present,
    coef_table,
    contrast_text,
    logistic_coefficients,
    ols_fit,
    t_interval,
)
from ionto_analytics.compare.frame import (
    AnalysisFrame,
    as_analysis_frame,
    design_terms,
)
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.compare.table1 import table1
from ionto_analytics.errors import InputError, StatisticalWarning

__all__ = ["VarianceType", "check_propensity_size", "iptw", "propensity_scores"]

VarianceType = Literal["sandwich", "m_estimation", "bootstrap"]
"""How :func:`iptw` estimates the variance: weights treated as known, or the propensity's
estimation accounted for by stacked estimating equations or a bootstrap."""


def propensity_scores(
    d: pd.DataFrame, covariates: Sequence[str], clinic_effects: bool
) -> tuple[np.ndarray, str]:
    """Logistic propensity of the first arm on baseline + covariates (+ clinic).

    Examples
    --------
    >>> df = pd.DataFrame({"treated": [1, 0, 1, 0, 1, 0], "baseline": [1., 2, 3, 4, 5, 6]})
    >>> ps, f = propensity_scores(df, (), False)
    >>> f, ps.shape
    ('treated ~ baseline', (6,))
    """
    fit, formula = _propensity_fit(d, covariates, clinic_effects)
    return np.asarray(fit.predict(), dtype=float), formula


def _propensity_fit(
    d: pd.DataFrame, covariates: Sequence[str], clinic_effects: bool
) -> tuple[object, str]:
    n_min = int(min(d["treated"].sum(), len(d) - d["treated"].sum()))
    terms = design_terms(d, ("baseline", *covariates), clinic_effects, splines_n=n_min)
    formula = "treated ~ " + " + ".join(terms)
    model = smf.glm(formula, d, family=sm.families.Binomial())
    check_propensity_size(n_min, model.exog.shape[1], formula)
    return model.fit(), formula


def check_propensity_size(n_smaller_arm: int, parameters: int, formula: str) -> None:
    """Refuse a propensity model with more parameters than the smaller arm has episodes.

    Such a model separates the arms (fitted propensities at 0 or 1), so the weights are set
    by the truncation, not by the data. Over the whole grid of 28 emulated studies (weeks 4
    and 12) the 4,730 estimates this refuses separated in 93 % of fits and covered the
    windowed truth 89.9 % of the time, the 5,313 it keeps 94.9 %; Firth's penalized
    propensity did not rescue them (90.2 %) and nearly doubled the kept cells over |z| 2.5
    (13 against 7 of 202; ``bench/bench_propensity_size.py``, bench/RESULTS.md). ANCOVA, which
    needs residual degrees of freedom over both arms only, still answers such cells.

    Examples
    --------
    >>> check_propensity_size(12, 12, "treated ~ baseline + ...")
    >>> check_propensity_size(9, 12, "treated ~ baseline + ...")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: iptw: the propensity model has 12 parameters but the ...
    """
    if n_smaller_arm < parameters:
        raise InputError(
            f"iptw: the propensity model has {parameters} parameters but the smaller arm only "
            f"{n_smaller_arm} episodes, so it separates the arms and the weights would be set "
            f"by the truncation ({formula}); adjust for fewer covariates (covariates=...), "
            "drop clinic effects, pool more episodes, or use ancova"
        )


def _weights(
    e_raw: np.ndarray, t: np.ndarray, weighting: str, trim: float
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and their derivative with respect to the (untruncated) propensity."""
    if weighting == "overlap":
        return np.where(t, 1 - e_raw, e_raw), np.where(t, -1.0, 1.0)
    e = np.clip(e_raw, trim, 1 - trim)
    inside = (e_raw >= trim) & (e_raw <= 1 - trim)  # a truncated propensity does not move
    dw = np.where(t, -1 / e**2, 1 / (1 - e) ** 2) * inside
    return np.where(t, 1 / e, 1 / (1 - e)), dw


def _m_estimation_se(
    x: np.ndarray,
    t: np.ndarray,
    e_raw: np.ndarray,
    z: np.ndarray,
    y: np.ndarray,
    beta: np.ndarray,
    k: int,
    weighting: str,
    trim: float,
    groups: np.ndarray | None,
) -> float:
    """SE of coefficient ``k`` of the weighted outcome regression, stacked with the logistic
    propensity model: ``A⁻¹ B A⁻ᵀ`` over the estimating equations
    ``ψ_α = x(t − e)`` and ``ψ_β = w(α) z (y − zβ)`` (Lunceford & Davidian 2004), with
    ``B`` summed within ``groups`` (clinics) when given; small-sample factor ``G/(G − 1)``
    (clusters) or ``n/(n − p)``; ``e_raw`` is the fitted (untruncated) propensity."""
    w, dw = _weights(e_raw, t, weighting, trim)
    r = y - z @ beta
    v = e_raw * (1 - e_raw)
    a_aa = x.T @ (x * v[:, None])
    a_ba = -(z * r[:, None]).T @ (x * (dw * v)[:, None])
    a_bb = z.T @ (z * w[:, None])
    a = np.block([[a_aa, np.zeros((x.shape[1], z.shape[1]))], [a_ba, a_bb]])
    psi = np.hstack([x * (t - e_raw)[:, None], z * (w * r)[:, None]])
    if groups is not None:
        psi = pd.DataFrame(psi).groupby(groups).sum().to_numpy()
        factor = len(psi) / (len(psi) - 1)
    else:
        factor = len(psi) / (len(psi) - psi.shape[1])
    a_inv = np.linalg.pinv(a)
    cov = a_inv @ (psi.T @ psi) @ a_inv.T * factor
    return float(np.sqrt(cov[x.shape[1] + k, x.shape[1] + k]))


def _bootstrap_se(
    x: np.ndarray,
    t: np.ndarray,
    z: np.ndarray,
    y: np.ndarray,
    k: int,
    weighting: str,
    trim: float,
    groups: np.ndarray | None,
    n_boot: int,
    rng: np.random.Generator,
) -> float:
    """SE of coefficient ``k`` over ``n_boot`` resamples of episodes (or of whole clinics
    when ``groups`` is given), refitting the propensity model and the weights each time."""
    units = np.arange(len(t)) if groups is None else np.unique(groups)
    rows = None if groups is None else [np.flatnonzero(groups == g) for g in units]
    est = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(0, len(units), len(units))
        idx = pick if rows is None else np.concatenate([rows[i] for i in pick])
        xb, tb, zb = x[idx], t[idx], z[idx]
        e_raw = 1 / (1 + np.exp(-np.einsum("ij,j->i", xb, logistic_coefficients(xb, tb))))
        w, _ = _weights(e_raw, tb, weighting, trim)
        zw = zb * w[:, None]
        beta = np.linalg.pinv(np.einsum("ij,ik->jk", zw, zb)) @ np.einsum("ij,i->j", zw, y[idx])
        est[b] = beta[k]
    return float(est.std(ddof=1))


def _balance(
    d: pd.DataFrame,
    w: np.ndarray,
    covariates: Sequence[str],
    clinic_effects: bool,
    arms: tuple[str, str],
) -> pd.DataFrame:
    variables = ["baseline", *covariates] + (["clinic_id"] if clinic_effects else [])
    variables = [v for v in variables if v in d.columns and d[v].nunique() > 1]
    before = table1(d, by="arm", variables=variables, groups=arms).smd
    after = table1(d, by="arm", weights=w, variables=variables, groups=arms).smd
    return pd.DataFrame(
        {
            "variable": before["variable"],
            "kind": before["kind"],
            "smd_before": before["smd"].to_numpy(),
            "smd_after": after["smd"].to_numpy(),
        }
    )


def _drop_single_arm_clinics(
    d: pd.DataFrame, af: AnalysisFrame, clinic_effects: bool, excluded: dict[str, int]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Exclude (count, name in a warning) the clinics where only one arm occurs."""
    if not clinic_effects or "clinic_id" not in d.columns:
        return d, pd.DataFrame({"clinic_id": [], "arm": [], "n": []}), excluded
    one_arm = single_arm_strata(d, "clinic_id", af.arms)
    if not len(one_arm):
        return d, one_arm, excluded
    msg = (
        "iptw: clinic(s) "
        + ", ".join(f"{r.clinic_id} (all {r.n} in {r.arm})" for r in one_arm.itertuples())
        + " have only one of the arms, so no comparison is possible there (the propensity "
        "is 0 or 1); excluded, and the estimate is for clinics offering both arms"
    )
    warnings.warn(msg, StatisticalWarning, stacklevel=3)
    d = d[~d["clinic_id"].isin(set(one_arm["clinic_id"]))].reset_index(drop=True)
    check_arms_present(d, af, "iptw (clinics with both arms)")
    return d, one_arm, {**excluded, "clinic_one_arm": int(one_arm["n"].sum())}


def iptw(
    frame: AnalysisFrame | pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
    clinic_effects: bool = True,
    weighting: Literal["ate", "overlap"] = "ate",
    trim: float = 0.01,
    outcome_covariates: Sequence[str] = ("baseline",),
    se: SeType = "auto",
    alpha: float = 0.05,
    variance: VarianceType = "sandwich",
    n_boot: int = 500,
    seed: int | np.random.Generator = 0,
) -> ComparisonResult:
    """Propensity-score weighted difference in mean follow-up (≡ change, baseline-adjusted).

    1. Propensity ``e(x)`` of the first arm by logistic regression on baseline score,
       covariates and clinic (complete cases).
    2. Weights: ATE ``T/e + (1−T)/(1−e)`` with ``e`` truncated to ``[trim, 1 − trim]`` (the
       number truncated is reported in ``excluded``-style ``notes`` and ``table``), or
       overlap ``T(1−e) + (1−T)e`` (ATO; no trimming needed, exact mean balance on the
       propensity-model covariates).
    3. Weighted least squares ``follow_up ~ treated + baseline``. ``variance="sandwich"``
       (default): cluster-robust by clinic or HC2 (Bell–McCaffrey df), as
       :func:`ionto_analytics.compare.fit.ols_fit`, treating the weights as known (usually
       conservative for the ATE). ``"m_estimation"``: stacked estimating equations of the
       propensity model and the weighted regression (``A⁻¹BA⁻ᵀ``, clustered by clinic when
       ``se`` resolves to cluster-robust), so the propensity's estimation is accounted for.
       ``"bootstrap"``: ``n_boot`` resamples of episodes (of clinics when cluster-robust)
       refitting the propensity each time, drawn from ``numpy.random.default_rng(seed)``.
       Both use the t reference of the sandwich (df ``G − 1`` or ``n − k``).

    Clinics where only one of the arms occurs give no comparison and a propensity of 0 or 1
    (perfect separation): with ``clinic_effects`` they are excluded, counted in
    ``excluded["clinic_one_arm"]`` and named in a :class:`StatisticalWarning`. A propensity
    model with more parameters than the smaller arm has episodes is refused
    (:func:`check_propensity_size`).

    Returns
    -------
    ComparisonResult
        ``balance`` holds SMDs before/after weighting; ``diagnostics`` the positivity and
        balance diagnostics (also in ``notes`` and ``to_dict()``); ``status`` is
        ``"imbalanced"`` when a covariate's |SMD| after weighting exceeds 0.1; ``table`` the
        effective sample size per arm, the number of truncated propensities and the weight
        range.
    """
    af = as_analysis_frame(frame, arms)
    covariates = af.adjustment(covariates)
    d, excluded = af.complete_cases(covariates)
    check_arms_present(d, af, "iptw")
    if weighting not in ("ate", "overlap"):
        raise InputError(f"weighting must be 'ate' or 'overlap', got {weighting!r}")
    if not 0 <= trim < 0.5:
        raise InputError(f"trim must be in [0, 0.5), got {trim}")
    if variance not in ("sandwich", "m_estimation", "bootstrap"):
        raise InputError(
            f"variance must be 'sandwich', 'm_estimation' or 'bootstrap', got {variance!r}"
        )
    if variance == "bootstrap" and n_boot < 50:
        raise InputError(f"variance='bootstrap' needs n_boot >= 50, got {n_boot}")
    notes: list[str] = []
    d, one_arm, excluded = _drop_single_arm_clinics(d, af, clinic_effects, excluded)
    ps_fit, ps_formula = _propensity_fit(d, covariates, clinic_effects)
    # predicted on the fitted design matrix (no second patsy pass over the frame)
    ps = np.asarray(ps_fit.predict(), dtype=float)  # type: ignore[attr-defined]
    t = d["treated"].to_numpy() == 1
    w, _ = _weights(ps, t, weighting, trim)
    n_trunc = 0
    if weighting == "ate":
        n_trunc = int(((ps < trim) | (ps > 1 - trim)).sum())
        if n_trunc:
            notes.append(f"{n_trunc} propensity score(s) truncated to [{trim}, {1 - trim}]")
    formula = "follow_up ~ treated" + "".join(f" + {c}" for c in outcome_covariates)
    fit, var_text, more = ols_fit(formula, d, se, "clinic_id", weights=w)
    notes += more
    row = coef_table(fit, alpha, "treated").set_index("term").loc["treated"]
    est, p_value = float(row["estimate"]), float(row["p_value"])
    ci_low, ci_high = float(row["ci_low"]), float(row["ci_high"])
    if variance != "sandwich":
        clustered = var_text.startswith("cluster")
        groups = pd.factorize(d["clinic_id"])[0] if clustered else None
        model = fit.model  # type: ignore[attr-defined]
        x, z, y = ps_fit.model.exog, model.exog, model.endog  # type: ignore[attr-defined]
        k = list(fit.params.index).index("treated")  # type: ignore[attr-defined]
        if variance == "m_estimation":
            beta = fit.params.to_numpy()  # type: ignore[attr-defined]
            se_t = _m_estimation_se(x, t, ps, z, y, beta, k, weighting, trim, groups)
            var_text = "M-estimation sandwich (propensity estimated)" + (
                ", clustered by clinic_id" if clustered else ""
            )
        else:
            rng = np.random.default_rng(seed)
            se_t = _bootstrap_se(x, t, z, y, k, weighting, trim, groups, n_boot, rng)
            var_text = f"{'clinic cluster ' if clustered else ''}bootstrap, {n_boot} resamples"
        df_t = (len(np.unique(groups)) - 1) if clustered else len(y) - z.shape[1]
        ci_low, ci_high, p_value = t_interval(est, se_t, df_t, alpha)
    balance = _balance(d, w, covariates, clinic_effects, af.arms)
    dx = diagnose(d, ps, w, balance, af.arms, one_arm)
    notes += dx.notes()
    ess = dx.ess
    table = pd.DataFrame(
        [
            {
                "term": f"effective sample size {arm}",
                "estimate": v,
                "ci_low": np.nan,
                "ci_high": np.nan,
            }
            for arm, v in ess.items()
        ]
        + [
            {
                "term": "propensity scores truncated",
                "estimate": float(n_trunc),
                "ci_low": np.nan,
                "ci_high": np.nan,
            },
            {
                "term": "weight min / max",
                "estimate": float(w.min()),
                "ci_low": float(w.min()),
                "ci_high": float(w.max()),
            },
        ]
    )
    return ComparisonResult.from_fit(
        af,
        d,
        estimate=est,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        excluded=excluded,
        estimator=f"IPTW ({weighting.upper()} weights), weighted OLS, {var_text}",
        estimand=(
            f"{'average treatment effect' if weighting == 'ate' else 'overlap-weighted'}"
            f" difference in mean change, {contrast_text(af)}"
            f"{' in clinics offering both arms' if len(one_arm) else ''}; "
            f"propensity: {ps_formula}"
        ),
        alpha=alpha,
        table=table,
        balance=balance,
        notes=notes,
        adjustment_set=rhs_terms(ps_formula),
        diagnostics=dx,
    )
