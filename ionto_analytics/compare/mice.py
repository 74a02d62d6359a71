"""Missing scores by multiple imputation beside complete case: :func:`mice_sensitivity`.

Chained equations with Bayesian linear-regression draws (Rubin 1987, §5.3; the ``norm``
method of R's ``mice``): each incomplete score (follow-up, baseline, the follow-ups of the
other windows) is imputed from the arm, the covariates and every other score, so the outcome
history and the arm are in every imputation model. Draws come from the posterior of the
regression (no donor pool, hence no pull toward the null that predictive mean matching
with many donors shows). The ANCOVA fits are pooled by Rubin's rules with the
Barnard–Rubin (1999) small-sample degrees of freedom and a t interval.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(5)
>>> n = 120
>>> b = rng.normal(6, 1, n)
>>> t = np.arange(n) % 2 == 0
>>> y = 1.5 + 0.6 * b - 1.0 * t + rng.normal(0, 0.8, n)
>>> df = pd.DataFrame({"arm": np.where(t, "ionto+exercise", "exercise"), "baseline": b,
...                    "follow_up": np.where(rng.random(n) < 0.15, np.nan, y)})
>>> r = mice_sensitivity(df, arms=("ionto+exercise", "exercise"), covariates=(),
...                      clinic_effects=False, n_imputations=5, seed=1)
>>> r.table["term"].tolist()[:3], sum(r.n.values()) == n
(['complete case (OLS)', 'multiple imputation', 'follow-ups imputed'], True)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ionto_analytics.compare.fit import contrast_text
from ionto_analytics.compare.frame import (
    DEFAULT_COVARIATES,
    AnalysisFrame,
    as_analysis_frame,
    design_terms,
)
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError

__all__ = [
    "HISTORY_WINDOWS",
    "PooledEstimate",
    "chained_imputations",
    "mice_sensitivity",
    "pool_rubin",
]

HISTORY_WINDOWS: tuple[int, ...] = (4, 6, 12)
"""Windows whose follow-ups enter the imputation models as outcome history (when the
frame carries its long outcomes); the analysed window itself is left out."""

MIN_FOLLOW_UPS_PER_ARM = 2
"""Observed follow-ups each arm needs: imputing a whole arm's outcome is extrapolation."""


@dataclass(frozen=True)
class PooledEstimate:
    """Rubin's rules for one coefficient over ``m`` imputations.

    Attributes
    ----------
    estimate, se : float
        Mean of the estimates; square root of the total variance ``ū + (1 + 1/m) b``.
    df : float
        Barnard–Rubin (1999) degrees of freedom.
    ci_low, ci_high, p_value : float
        t interval and two-sided p-value on ``df``.
    fmi : float
        Fraction of missing information (as R's ``mice::pool``).
    m : int
        Number of imputations.
    """

    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    p_value: float
    fmi: float
    m: int


def pool_rubin(
    estimates: Sequence[float], variances: Sequence[float], df_complete: float, alpha: float = 0.05
) -> PooledEstimate:
    """Pool one coefficient by Rubin's rules with Barnard–Rubin degrees of freedom.

    ``ν_old = (m − 1)/λ²``, ``ν_obs = (ν_com + 1)/(ν_com + 3) · ν_com · (1 − λ)``,
    ``ν = ν_old ν_obs / (ν_old + ν_obs)`` with ``λ = (1 + 1/m) b / T`` and ``ν_com`` the
    complete-data residual degrees of freedom.

    Examples
    --------
    >>> p = pool_rubin([1.0, 1.2, 0.8, 1.1, 0.9], [0.04] * 5, df_complete=50)
    >>> round(p.estimate, 3), round(p.se, 4), round(p.df, 2)
    (1.0, 0.2646, 12.15)
    >>> pool_rubin([1.0, 1.0], [0.04, 0.04], df_complete=50).df  # no between variance
    48.113207547169814
    """
    q = np.asarray(estimates, dtype=float)
    u = np.asarray(variances, dtype=float)
    m = q.size
    if m < 2:
        raise InputError(f"pool_rubin: needs at least 2 imputations, got {m}")
    ubar = float(u.mean())
    b = float(q.var(ddof=1))
    total = ubar + (1 + 1 / m) * b
    lam = (1 + 1 / m) * b / total
    nu_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
    nu = nu_obs if lam == 0 else 1 / (lam**2 / (m - 1) + 1 / nu_obs)
    riv = (1 + 1 / m) * b / ubar
    est, se = float(q.mean()), math.sqrt(total)
    half = float(stats.t.ppf(1 - alpha / 2, nu)) * se
    return PooledEstimate(
        estimate=est,
        se=se,
        df=float(nu),
        ci_low=est - half,
        ci_high=est + half,
        p_value=float(2 * stats.t.sf(abs(est) / se, nu)),
        fmi=float((riv + 2 / (nu + 3)) / (riv + 1)),
        m=m,
    )


def _draw_norm(
    rng: np.random.Generator, x_obs: np.ndarray, y_obs: np.ndarray, x_mis: np.ndarray
) -> np.ndarray:
    """Impute from a posterior draw of a normal linear regression (improper flat prior).

    ``σ² = RSS / χ²(n − p)``, ``β ~ N(β̂, σ² (X'X)⁻¹)``, ``y_mis = X_mis β + N(0, σ²)``;
    a ridge of 1e-5 · diag(X'X) keeps (X'X) invertible, as ``mice.impute.norm`` does.
    """
    n, p = x_obs.shape
    xtx = x_obs.T @ x_obs
    xtx += np.diag(1e-5 * np.diag(xtx) + 1e-12)
    chol = np.linalg.cholesky(xtx)
    beta_hat = np.linalg.solve(xtx, x_obs.T @ y_obs)
    resid = y_obs - x_obs @ beta_hat
    sigma = math.sqrt(float(resid @ resid) / rng.chisquare(max(n - p, 1)))
    # (X'X)^-1 = L^-T L^-1, so L^-T z has covariance (X'X)^-1
    beta = beta_hat + sigma * np.linalg.solve(chol.T, rng.standard_normal(p))
    return x_mis @ beta + sigma * rng.standard_normal(x_mis.shape[0])


def chained_imputations(
    complete: np.ndarray,
    incomplete: np.ndarray,
    *,
    m: int,
    n_iter: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``m`` completed copies of ``incomplete`` by chained Bayesian-regression draws.

    Each incomplete column is drawn in turn given ``complete`` (which should hold an
    intercept) and the current values of the other columns; missing cells start as random
    observed values; each copy runs its own ``n_iter`` cycles (one when a single column is
    incomplete: the draw is then exact).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.column_stack([np.ones(50), rng.normal(size=50)])
    >>> y = np.column_stack([x[:, 1] + rng.normal(size=50)])
    >>> y[:10, 0] = np.nan
    >>> out = chained_imputations(x, y, m=3, n_iter=5, rng=rng)
    >>> len(out), bool(np.isnan(out[0]).any()), bool((out[0][10:] == y[10:]).all())
    (3, False, True)
    """
    miss = np.isnan(incomplete)
    todo = [j for j in range(incomplete.shape[1]) if miss[:, j].any()]
    cycles = n_iter if len(todo) > 1 else 1
    copies = []
    for _ in range(m):
        y = incomplete.copy()
        for j in todo:
            y[miss[:, j], j] = rng.choice(y[~miss[:, j], j], int(miss[:, j].sum()))
        for _ in range(cycles):
            for j in todo:
                x = np.column_stack([complete, np.delete(y, j, axis=1)])
                obs = ~miss[:, j]
                y[~obs, j] = _draw_norm(rng, x[obs], y[obs, j], x[~obs])
        copies.append(y)
    return copies


def _ols_treated(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """Coefficient of column 1 (treated), its OLS variance, residual df."""
    n, p = x.shape
    if n <= p or np.linalg.matrix_rank(x) < p:
        raise InputError(
            f"mice_sensitivity: the ANCOVA design has {p} parameters but its {n} complete "
            f"episodes identify only {min(n, np.linalg.matrix_rank(x))} (rank check); drop "
            "covariates or clinic effects (clinic_effects=False), or analyse more episodes"
        )
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    resid = y - x @ beta
    return float(beta[1]), float(resid @ resid / (n - p) * xtx_inv[1, 1]), n - p


def _covariate_design(d: pd.DataFrame, terms: Sequence[str]) -> pd.DataFrame:
    cols: dict[str, np.ndarray] = {}
    for t in terms:
        col = t[2:-1] if t.startswith("C(") else t
        if t.startswith("C("):
            dummies = pd.get_dummies(d[col].astype(str), prefix=col, drop_first=True, dtype=float)
            cols.update({c: dummies[c].to_numpy() for c in dummies.columns})
        else:
            cols[col] = d[col].astype(float).to_numpy()
    out = pd.DataFrame(cols, index=d.index)
    bad = [c for c in out.columns if out[c].isna().any()]
    if bad:
        raise InputError(
            f"mice_sensitivity: covariate column(s) {bad} have missing values; only scores "
            "(baseline, follow-ups) are imputed. Build the frame with comparison_frame, "
            "which excludes and counts such episodes, or drop the covariate"
        )
    return out


def _history(af: AnalysisFrame, d: pd.DataFrame, min_observed: int) -> dict[str, np.ndarray]:
    """Follow-ups of the other windows (by episode), those observed often enough."""
    if af.outcomes is None or "episode_id" not in d.columns:
        return {}
    out: dict[str, np.ndarray] = {}
    for w in HISTORY_WINDOWS:
        if w == af.week:
            continue
        other = af.at_week(w).data.set_index("episode_id")["follow_up"]
        values = d["episode_id"].map(other).astype(float).to_numpy()
        if int(np.isfinite(values).sum()) >= min_observed:
            out[f"follow_up_week_{w}"] = values
    return out


def _check_arms(af: AnalysisFrame, d: pd.DataFrame) -> None:
    for arm in af.arms:
        k = int((d["arm"] == arm).sum())
        seen = int(d.loc[d["arm"] == arm, "follow_up"].notna().sum())
        if seen < MIN_FOLLOW_UPS_PER_ARM:
            raise InputError(
                f"mice_sensitivity: arm {arm!r} has {k} episode(s), {seen} with a follow-up "
                f"in window {af.week}; expected at least {MIN_FOLLOW_UPS_PER_ARM} with one "
                "(imputing a whole arm's outcome is extrapolation, not imputation); choose "
                "another window or arm, or import more data"
            )


def mice_sensitivity(
    frame: AnalysisFrame | pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    clinic_effects: bool = True,
    n_imputations: int | None = None,
    n_burnin: int = 10,
    seed: int | np.random.Generator = 0,
    alpha: float = 0.05,
) -> ComparisonResult:
    """Missing scores handled by multiple imputation beside complete case.

    The ANCOVA ``follow_up ~ treated + baseline + covariates (+ clinic dummies)`` (OLS
    variance) is fit to ``n_imputations`` data sets completed by chained equations
    (:func:`chained_imputations`): the follow-up, a missing baseline and the follow-ups of
    :data:`HISTORY_WINDOWS` (the outcome history, when the frame has its long outcomes and
    a window is observed in at least 10 + the number of predictors episodes) are drawn
    from Bayesian linear regressions on the arm, the covariates and each other. The fits
    are pooled by :func:`pool_rubin` (Barnard–Rubin degrees of freedom, t interval). Valid
    under missing at random given these variables; under MCAR, or MAR on the baseline, arm
    and covariates, it agrees with the (then also valid) complete-case estimate.

    Parameters
    ----------
    frame : AnalysisFrame or DataFrame
        Not modified. A plain DataFrame needs ``arms``.
    arms : (str, str), optional
        For a plain DataFrame.
    covariates : sequence of str
        Complete covariates of the analysis and imputation models.
    clinic_effects : bool
        Clinic fixed effects in both models.
    n_imputations : int, optional
        Default ``max(20, ⌈100 × share of episodes with a missing score⌉)`` (White, Royston &
        Wood 2011: m ≥ the percentage of incomplete cases).
    n_burnin : int
        Cycles of the chained equations per imputation (one suffices when only one score is
        incomplete).
    seed : int or Generator
    alpha : float

    Returns
    -------
    ComparisonResult
        ``estimate`` pooled over imputations; ``table``: complete case, multiple
        imputation, scores imputed, fraction of missing information, imputations, df.
    """
    if n_imputations is not None and n_imputations < 2:
        raise InputError(
            f"mice_sensitivity: n_imputations must be at least 2 (got {n_imputations}); "
            "leave it unset for max(20, percentage of incomplete episodes)"
        )
    af = as_analysis_frame(frame, arms)
    d = af.data.reset_index(drop=True)
    _check_arms(af, d)
    cov = _covariate_design(d, design_terms(d, covariates, clinic_effects))
    complete = np.column_stack([np.ones(len(d)), d["treated"].astype(float), cov.to_numpy()])
    scores = {
        "follow_up": d["follow_up"].astype(float).to_numpy(),
        "baseline": d["baseline"].astype(float).to_numpy(),
    }
    scores.update(_history(af, d, min_observed=10 + complete.shape[1] + len(scores)))
    incomplete = np.column_stack(list(scores.values()))
    formula = "follow_up ~ " + " + ".join(["treated", "baseline", *cov.columns])
    design = np.column_stack([complete[:, :2], incomplete[:, 1], complete[:, 2:]])
    cc_rows = np.isfinite(incomplete[:, :2]).all(axis=1)
    cc_est, cc_var, cc_df = _ols_treated(design[cc_rows], incomplete[cc_rows, 0])
    cc_half = float(stats.t.ppf(1 - alpha / 2, cc_df)) * math.sqrt(cc_var)
    cc_p = float(2 * stats.t.sf(abs(cc_est) / math.sqrt(cc_var), cc_df))
    n_fu, n_bl = (int(np.isnan(incomplete[:, j]).sum()) for j in (0, 1))
    share = float((~cc_rows).mean())
    m = n_imputations or max(20, math.ceil(100 * share))
    rows = [("complete case (OLS)", cc_est, cc_est - cc_half, cc_est + cc_half, cc_p)]
    if n_fu + n_bl == 0:
        est, lo, hi, p = rows[0][1:]
        method = "complete case (no missing score; multiple imputation not needed)"
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        fits = [
            _ols_treated(np.column_stack([complete[:, :2], y[:, 1], complete[:, 2:]]), y[:, 0])
            for y in chained_imputations(complete, incomplete, m=m, n_iter=n_burnin, rng=rng)
        ]
        pooled = pool_rubin(
            [f[0] for f in fits], [f[1] for f in fits], len(d) - design.shape[1], alpha
        )
        est, lo, hi, p = pooled.estimate, pooled.ci_low, pooled.ci_high, pooled.p_value
        rows += [
            ("multiple imputation", est, lo, hi, p),
            ("follow-ups imputed", n_fu, np.nan, np.nan, np.nan),
            ("baselines imputed", n_bl, np.nan, np.nan, np.nan),
            ("fraction of missing information", pooled.fmi, np.nan, np.nan, np.nan),
            ("imputations", m, np.nan, np.nan, np.nan),
            ("Barnard–Rubin df", pooled.df, np.nan, np.nan, np.nan),
        ]
        history = [k for k in scores if k.startswith("follow_up_week_")]
        method = (
            f"multiple imputation by chained equations (Bayesian linear regression draws; "
            f"imputation models: arm, covariates, baseline, follow-up"
            f"{', ' + ', '.join(history) if history else ''}), {m} imputations, Rubin's rules "
            f"with Barnard–Rubin df = {pooled.df:.1f} (t interval), OLS variance"
        )
    table = pd.DataFrame(rows, columns=["term", "estimate", "ci_low", "ci_high", "p_value"])
    return ComparisonResult.from_fit(
        af,
        d,
        estimate=est,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        excluded=dict(af.excluded),
        estimator=method,
        estimand=(
            f"adjusted difference in mean change, {contrast_text(af)}, "
            f"missing scores imputed; model: {formula}"
        ),
        alpha=alpha,
        table=table,
    )
