"""Propensity-score weighting: :func:`iptw` (ATE inverse probability or overlap weights).

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

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf

from ionto_analytics.compare.adjustment import rhs_terms
from ionto_analytics.compare.fit import SeType, check_arms_present, contrast_text, ols_fit
from ionto_analytics.compare.frame import (
    AnalysisFrame,
    as_analysis_frame,
    design_terms,
)
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.compare.table1 import table1
from ionto_analytics.errors import InputError

__all__ = ["iptw", "propensity_scores"]


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
    n_min = int(min(d["treated"].sum(), len(d) - d["treated"].sum()))
    terms = design_terms(d, ("baseline", *covariates), clinic_effects, splines_n=n_min)
    formula = "treated ~ " + " + ".join(terms)
    fit = smf.glm(formula, d, family=sm.families.Binomial()).fit()
    return np.asarray(fit.predict(d), dtype=float), formula


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
) -> ComparisonResult:
    """Propensity-score weighted difference in mean follow-up (≡ change, baseline-adjusted).

    1. Propensity ``e(x)`` of the first arm by logistic regression on baseline score,
       covariates and clinic (complete cases).
    2. Weights: ATE ``T/e + (1−T)/(1−e)`` with ``e`` truncated to ``[trim, 1 − trim]`` (the
       number truncated is reported in ``excluded``-style ``notes`` and ``table``), or
       overlap ``T(1−e) + (1−T)e`` (ATO; no trimming needed, exact mean balance on the
       propensity-model covariates).
    3. Weighted least squares ``follow_up ~ treated + baseline`` with a sandwich variance
       (cluster-robust by clinic or HC3, as :func:`ionto_analytics.compare.fit.ols_fit`); the
       variance treats the weights as known, which is conservative for the ATE.

    Returns
    -------
    ComparisonResult
        ``balance`` holds SMDs before/after weighting; ``table`` the effective sample size per
        arm, the number of truncated propensities and the weight range.
    """
    af = as_analysis_frame(frame, arms)
    covariates = af.adjustment(covariates)
    d, excluded = af.complete_cases(covariates)
    check_arms_present(d, af, "iptw")
    if weighting not in ("ate", "overlap"):
        raise InputError(f"weighting must be 'ate' or 'overlap', got {weighting!r}")
    if not 0 <= trim < 0.5:
        raise InputError(f"trim must be in [0, 0.5), got {trim}")
    ps, ps_formula = propensity_scores(d, covariates, clinic_effects)
    t = d["treated"].to_numpy() == 1
    notes: list[str] = []
    n_trunc = 0
    if weighting == "ate":
        n_trunc = int(((ps < trim) | (ps > 1 - trim)).sum())
        e = np.clip(ps, trim, 1 - trim)
        w = np.where(t, 1 / e, 1 / (1 - e))
        if n_trunc:
            notes.append(f"{n_trunc} propensity score(s) truncated to [{trim}, {1 - trim}]")
    else:
        w = np.where(t, 1 - ps, ps)
    ess = {
        arm: float(w[m].sum() ** 2 / (w[m] ** 2).sum())
        for arm, m in ((af.arms[0], t), (af.arms[1], ~t))
    }
    formula = "follow_up ~ treated" + "".join(f" + {c}" for c in outcome_covariates)
    fit, var_text, more = ols_fit(formula, d, se, "clinic_id", weights=w)
    notes += more
    ci = fit.conf_int(alpha=alpha)  # type: ignore[attr-defined]
    est = float(fit.params["treated"])  # type: ignore[attr-defined]
    balance = _balance(d, w, covariates, clinic_effects, af.arms)
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
        ci_low=ci.loc["treated"].iloc[0],
        ci_high=ci.loc["treated"].iloc[1],
        p_value=fit.pvalues["treated"],  # type: ignore[attr-defined]
        excluded=excluded,
        estimator=f"IPTW ({weighting.upper()} weights), weighted OLS, {var_text}",
        estimand=(
            f"{'average treatment effect' if weighting == 'ate' else 'overlap-weighted'}"
            f" difference in mean change, {contrast_text(af)}; "
            f"propensity: {ps_formula}"
        ),
        alpha=alpha,
        table=table,
        balance=balance,
        notes=notes,
        adjustment_set=rhs_terms(ps_formula),
    )
