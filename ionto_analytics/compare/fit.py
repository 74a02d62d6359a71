"""The fitting core every estimator shares: OLS/WLS with a chosen variance, the coefficient
table, the arm-presence check, the minimum-cluster rule and the Newton logistic regression
of the weighting estimators.

Examples
--------
>>> import pandas as pd
>>> choose_se(6), choose_se(25)
('hc2', 'cluster')
>>> df = pd.DataFrame({"y": [1.0, 2.0, 2.5, 4.0, 5.5], "x": [0.0, 1.0, 2.0, 3.0, 4.0]})
>>> fit, variance, notes = ols_fit("y ~ x", df, se="hc2", cluster=None)
>>> variance, coef_table(fit, 0.05)["term"].tolist()
('HC2 robust, Bell–McCaffrey t df for the contrast', ['Intercept', 'x'])
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import special, stats

from ionto_analytics.compare.frame import AnalysisFrame, with_categories
from ionto_analytics.errors import InputError, StatisticalWarning

__all__ = [
    "MIN_CLUSTERS",
    "SeType",
    "bell_mccaffrey_df",
    "check_arms_present",
    "check_identifiable",
    "choose_se",
    "coef_table",
    "contrast_text",
    "logistic_coefficients",
    "ols_fit",
    "t_interval",
]

SeType = Literal["auto", "cluster", "hc2", "hc3"]
MIN_CLUSTERS = 20
"""Fewer clinics than this: cluster-robust SEs are unreliable; ``se="auto"`` uses HC2."""


def choose_se(n_clusters: int, min_clusters: int = MIN_CLUSTERS) -> Literal["cluster", "hc2"]:
    """The minimum-cluster rule: cluster-robust with ≥ ``min_clusters`` clusters, else HC2.

    Few-cluster CR1 standard errors are biased downwards and over-reject; HC2 ignores the
    within-clinic correlation, which clinic fixed effects absorb in part. HC2 (residuals
    scaled by ``1/sqrt(1 − h)``) is unbiased when the errors are homoskedastic (Bell &
    McCaffrey 2002; the small-sample choice of Imbens & Kolesár 2016); HC3 (``1/(1 − h)``)
    over-corrects: with the 20–30 parameters of the default adjustment set on 100–300
    episodes its intervals covered 96.2–96.9 % in the coverage bench (bench/RESULTS.md),
    so it stays available (``se="hc3"``) but is not the default.

    Examples
    --------
    >>> choose_se(19), choose_se(20), choose_se(3, min_clusters=3)
    ('hc2', 'cluster', 'cluster')
    """
    return "cluster" if n_clusters >= min_clusters else "hc2"


def contrast_text(af: AnalysisFrame) -> str:
    """The contrast in words: ``"first − second"``.

    Examples
    --------
    >>> af = AnalysisFrame(pd.DataFrame(), "nprs", 6, ("ionto+exercise", "exercise"))
    >>> contrast_text(af)
    'ionto+exercise − exercise'
    """
    return f"{af.arms[0]} − {af.arms[1]}"


def check_arms_present(d: pd.DataFrame, af: AnalysisFrame, what: str, min_n: int = 2) -> None:
    """Raise :class:`InputError` unless each arm of ``af`` has ``min_n`` rows in ``d``.

    Examples
    --------
    >>> af = AnalysisFrame(pd.DataFrame(), "nprs", 6, ("ionto+exercise", "exercise"))
    >>> check_arms_present(pd.DataFrame({"arm": ["exercise"] * 3}), af, "ancova")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: ancova: arm 'ionto+exercise' has 0 analysable episode(s); ...
    """
    for arm in af.arms:
        k = int((d["arm"] == arm).sum())
        if k < min_n:
            raise InputError(
                f"{what}: arm {arm!r} has {k} analysable episode(s); at least {min_n} needed "
                f"(exclusions: {af.excluded})"
            )


def check_identifiable(exog: np.ndarray, names: list[str], n_rows: int, what: str) -> None:
    """Refuse a design the data cannot identify (numpy ``matrix_rank``) or fit exactly.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0, 2.0], [1.0, 1.0, 2.0], [1.0, 0.0, 2.0]])
    >>> check_identifiable(x, ["Intercept", "treated", "age_years"], 3, "ancova")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: ancova: the design has 3 parameters but only rank 2 ...
    """
    if n_rows != exog.shape[0]:
        raise InputError(
            f"{what}: {n_rows - exog.shape[0]} row(s) have a missing value in the model; "
            "they must be excluded (and counted) before fitting"
        )
    k = exog.shape[1]
    rank = int(np.linalg.matrix_rank(exog))
    if rank < k:
        raise InputError(
            f"{what}: the design has {k} parameters but only rank {rank} on {n_rows} "
            f"episode rows (terms: {names}); the data cannot tell them apart. Adjust for "
            "fewer covariates (covariates=...), drop clinic effects, or pool more episodes"
        )
    if n_rows <= k:
        raise InputError(
            f"{what}: {n_rows} rows for {k} parameters leave no residual degree of freedom "
            "for a standard error; adjust for fewer covariates or pool more episodes"
        )


def ols_fit(
    formula: str,
    data: pd.DataFrame,
    se: SeType,
    cluster: str | None,
    min_clusters: int = MIN_CLUSTERS,
    weights: np.ndarray | None = None,
) -> tuple[object, str, list[str]]:
    """Fit OLS/WLS with the requested variance; returns (fit, variance text, notes).

    ``cluster``: CR1 sandwich ``G/(G−1)·(N−1)/(N−K)`` with t(G − 1) reference (statsmodels
    ``cov_type="cluster"``). ``hc2`` / ``hc3``: MacKinnon–White HC2 / HC3 with t(N − K)
    reference, except the contrast of an HC2 fit: :func:`coef_table` gives it the
    Bell–McCaffrey df (:func:`bell_mccaffrey_df`). ``auto``: :func:`choose_se` on the
    number of clusters; when that gives HC2 a :class:`StatisticalWarning` says so (choose
    explicitly to silence it).
    """
    notes: list[str] = []
    coded = with_categories(data, formula)
    model = smf.ols(formula, coded) if weights is None else smf.wls(formula, coded, weights=weights)
    check_identifiable(model.exog, list(model.exog_names), len(data), f"model {formula!r}")
    if se == "auto":
        g = int(data[cluster].nunique()) if cluster and cluster in data.columns else 0
        se = choose_se(g, min_clusters)
        if se == "hc2":
            msg = (
                f"only {g} clusters ({cluster}); cluster-robust SEs need about "
                f"{min_clusters}+; using HC2 instead (pass se='cluster' or se='hc2' to "
                "choose explicitly)"
            )
            warnings.warn(msg, StatisticalWarning, stacklevel=3)
            notes.append(msg)
    if se == "cluster":
        if not cluster or cluster not in data.columns:
            raise InputError(f"se='cluster' needs the cluster column {cluster!r}")
        groups = pd.factorize(data[cluster])[0]
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
        return fit, f"cluster-robust by {cluster} (CR1, t df = G − 1)", notes
    if se in ("hc2", "hc3"):
        name = se.upper()
        design = model.wexog  # the (weighted) design matrix
        leverage = np.einsum("ij,ij->i", design, design @ np.linalg.pinv(design.T @ design))
        if np.nanmax(leverage) < 1 - 1e-8:
            bm = ", Bell–McCaffrey t df for the contrast" if name == "HC2" else ""
            return model.fit(cov_type=name, use_t=True), f"{name} robust{bm}", notes
        # HC2 and HC3 divide by 1 - leverage: an episode fitted exactly (alone in its clinic,
        # say) makes them undefined; HC1 needs no leverage and is the usual fallback.
        msg = (
            f"{int((leverage >= 1 - 1e-8).sum())} observation(s) fitted exactly (e.g. the "
            f"only episode of a clinic); HC1 used instead of {name}"
        )
        warnings.warn(msg, StatisticalWarning, stacklevel=3)
        notes.append(msg)
        return model.fit(cov_type="HC1", use_t=True), "HC1 robust", notes
    raise InputError(f"se must be 'auto', 'cluster', 'hc2' or 'hc3', got {se!r}")


def logistic_coefficients(
    x: np.ndarray, y: np.ndarray, max_iter: int = 50, *, firth: bool = False
) -> np.ndarray:
    """Logistic-regression coefficients of ``y`` (0/1) on the design ``x`` by Newton–Raphson.

    The steps use a pseudo-inverse of the Hessian, so a design that lost a level (a clinic
    missing from a bootstrap resample, a history indicator constant among the episodes at
    risk) still fits: the aliased directions get no step. A step that would lower the
    (penalized) log-likelihood is halved until it does not. Under (quasi-)separation the
    plain fit stops after ``max_iter`` steps with the separated probabilities near 0 or 1
    (each row's log-probability is at least the total log-likelihood, so no row the data do
    not separate is pushed there). ``firth=True`` maximizes Firth's penalized likelihood
    ``log L + ½ log det I`` instead (Firth 1993; Heinze & Schemper 2002): finite
    coefficients under separation, probabilities shrunk away from 0 and 1, less small-sample
    bias when events are few (the determinant over the non-aliased directions). The
    propensity bootstrap of :func:`~ionto_analytics.compare.iptw.iptw` uses the plain fit,
    the censoring models of :func:`~ionto_analytics.compare.ipcw.ipcw` Firth's.

    Examples
    --------
    >>> x = np.column_stack([np.ones(6), [0.0, 1, 2, 3, 4, 5], [1.0, 1, 1, 1, 1, 1]])
    >>> a = logistic_coefficients(x, np.array([0.0, 1, 0, 1, 1, 1]))
    >>> round(float(special.expit(x @ a).sum()), 6)  # score equations: fitted = observed
    4.0
    >>> separated = np.array([0.0, 0, 0, 1, 1, 1])
    >>> p = special.expit(x @ logistic_coefficients(x, separated))
    >>> bool(p[:3].max() < 1e-3 < 0.999 < p[3:].min())  # near 0 and 1, finite
    True
    >>> p = special.expit(x @ logistic_coefficients(x, separated, firth=True))
    >>> [round(float(v), 2) for v in p]
    [0.06, 0.16, 0.36, 0.64, 0.84, 0.94]
    """

    def information(e: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ik->jk", x, x * (e * (1 - e))[:, None])

    def objective(a: np.ndarray) -> float:
        eta = np.einsum("ij,j->i", x, a)
        ll = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
        if not firth:
            return ll
        ev = np.linalg.eigvalsh(information(special.expit(eta)))
        return ll + 0.5 * float(np.sum(np.log(ev[ev > 1e-12 * max(ev.max(), 1e-300)])))

    alpha = np.zeros(x.shape[1])
    value = objective(alpha)
    for _ in range(max_iter):
        # einsum, not BLAS: a threaded BLAS on a loaded machine makes these small products
        # (and so a bootstrap of hundreds of fits) many times slower (bench/RESULTS.md)
        e = special.expit(np.einsum("ij,j->i", x, alpha))
        inverse = np.linalg.pinv(information(e))
        residual = y - e
        if firth:  # Firth's modified score: the hat values pull each fit toward 1/2
            hat = np.einsum("ij,jk,ik->i", x, inverse, x) * e * (1 - e)
            residual = residual + hat * (0.5 - e)
        step = inverse @ np.einsum("ij,i->j", x, residual)
        new = objective(alpha + step)
        while new < value and np.max(np.abs(step)) > 1e-10:
            step = step / 2
            new = objective(alpha + step)
        if new < value:
            break
        alpha, value = alpha + step, new
        if np.max(np.abs(step)) < 1e-10:
            break
    return alpha


def bell_mccaffrey_df(fit: object, term: str) -> float:
    """Degrees of freedom of the HC2 variance of one coefficient (Bell & McCaffrey 2002).

    HC2's ``V = Σ a_i² e_i² / (1 − h_i)`` with ``a = e_k'(X'X)⁻¹X'`` is, under homoskedastic
    normal errors, a quadratic form ``ε'MDMε`` (``M = I − H``, ``D = diag(a_i²/(1 − h_i))``);
    Satterthwaite's approximation gives ``df = tr(MDM)² / tr((MDM)²)``. With ``X = QR``,
    ``tr(MDM) = Σ d_i(1 − h_i)`` and ``tr((MDM)²) = Σ d_i²(1 − 2h_i) + ‖Q'DQ‖²_F``, so the
    cost is ``O(n k²)``, not ``O(n²)``. The df is ``n − k`` for a balanced design and smaller
    when a few high-leverage episodes (a small clinic, the tail of a spline) carry the
    contrast, where ``t(n − k)`` intervals under-cover (Imbens & Kolesár 2016 recommend HC2
    with this df). Weighted fits use the whitened design (``wexog``).

    Examples
    --------
    Two arms and nothing else: the Welch–Satterthwaite df at equal variances.

    >>> df = pd.DataFrame({"y": np.arange(12.0), "treated": [1] * 3 + [0] * 9})
    >>> fit, _, _ = ols_fit("y ~ treated", df, se="hc2", cluster=None)
    >>> n1, n0 = 3, 9
    >>> welch = (1 / n1 + 1 / n0) ** 2 / (1 / (n1**2 * (n1 - 1)) + 1 / (n0**2 * (n0 - 1)))
    >>> round(bell_mccaffrey_df(fit, "treated"), 6) == round(welch, 6), round(welch, 2)
    (True, 3.46)
    """
    x = np.asarray(fit.model.wexog, dtype=float)  # type: ignore[attr-defined]
    k = list(fit.model.exog_names).index(term)  # type: ignore[attr-defined]
    q, r = np.linalg.qr(x)
    a = np.linalg.solve(r, q.T)[k]  # row k of (X'X)⁻¹X' = R⁻¹Q'
    h = np.einsum("ij,ij->i", q, q)
    d = a**2 / (1 - h)
    qdq = q.T @ (q * d[:, None])
    return float((d @ (1 - h)) ** 2 / (d**2 @ (1 - 2 * h) + np.sum(qdq**2)))


def coef_table(fit: object, alpha: float, contrast: str | None = None) -> pd.DataFrame:
    """Tidy coefficients of a statsmodels fit: ``term``, ``estimate``, ``se``, ``ci_low``,
    ``ci_high``, ``p_value`` (intervals at level 1 − ``alpha``) and ``df``, the t reference's
    degrees of freedom.

    The ``contrast`` row (the arm or dose coefficient an estimator reports) of an HC2 fit
    takes its interval and p-value from ``t(`` :func:`bell_mccaffrey_df` ``)``; every other
    row, and every other variance, the fit's own reference (``n − k``, or ``G − 1``
    clustered).

    Examples
    --------
    >>> df = pd.DataFrame({"y": [1.0, 2, 2.5, 4, 5.5, 5], "treated": [1, 1, 0, 0, 0, 0]})
    >>> fit, _, _ = ols_fit("y ~ treated", df, se="hc2", cluster=None)
    >>> tab = coef_table(fit, 0.05, "treated").set_index("term")
    >>> [round(float(v), 2) for v in tab["df"]]
    [4.0, 2.08]
    """
    ci = fit.conf_int(alpha=alpha)  # type: ignore[attr-defined]
    df_fit = getattr(fit, "df_resid_inference", None) or fit.df_resid  # type: ignore[attr-defined]
    tab = pd.DataFrame(
        {
            "term": fit.params.index,  # type: ignore[attr-defined]
            "estimate": fit.params.to_numpy(),  # type: ignore[attr-defined]
            "se": fit.bse.to_numpy(),  # type: ignore[attr-defined]
            "ci_low": ci.iloc[:, 0].to_numpy(),
            "ci_high": ci.iloc[:, 1].to_numpy(),
            "p_value": fit.pvalues.to_numpy(),  # type: ignore[attr-defined]
            "df": float(df_fit),
        }
    )
    if contrast is not None and fit.cov_type == "HC2":  # type: ignore[attr-defined]
        i = list(tab["term"]).index(contrast)
        df_bm = bell_mccaffrey_df(fit, contrast)
        low, high, p = t_interval(tab.at[i, "estimate"], tab.at[i, "se"], df_bm, alpha)
        tab.loc[i, ["ci_low", "ci_high", "p_value", "df"]] = [low, high, p, df_bm]
    return tab


def t_interval(est: float, se: float, df: float, alpha: float) -> tuple[float, float, float]:
    """``est ± t(df) · se`` and the two-sided p-value (for a variance not from the fit, e.g.
    a bootstrap).

    Examples
    --------
    >>> [round(v, 3) for v in t_interval(1.0, 0.5, 30, 0.05)]
    [-0.021, 2.021, 0.055]
    """
    q = float(stats.t.ppf(1 - alpha / 2, df))
    return est - q * se, est + q * se, float(2 * stats.t.sf(abs(est / se), df))
