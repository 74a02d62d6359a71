"""Between-arm comparisons: ANCOVA and MCID responders here; weighting and models re-exported.

Every estimator takes the analysis frame from :func:`comparison_frame` (or a plain DataFrame
with its columns plus ``arms=``) and returns a :class:`ComparisonResult` whose estimate is
*first arm minus second arm*.

* :func:`ancova` – follow-up score on arm + baseline + covariates + clinic fixed effects.
* :func:`responders` – MCID responder risk difference, risk ratio and NNT.
* :func:`ionto_analytics.compare_weighting.iptw` – propensity weighting (ATE / overlap).
* :func:`ionto_analytics.compare_models.mixed_model`, :func:`mice_sensitivity`,
  :func:`dose_response`.
* :func:`ionto_analytics.table1.table1` – baseline characteristics with SMDs.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({
...     "arm": ["ionto+exercise"] * 4 + ["exercise"] * 4,
...     "baseline": [6.0, 7.0, 5.0, 8.0, 6.0, 7.0, 5.0, 8.0],
...     "follow_up": [3.0, 4.5, 2.5, 5.0, 4.0, 5.0, 3.5, 6.5]})
>>> r = ancova(df, arms=("ionto+exercise", "exercise"), covariates=(), clinic_effects=False,
...            se="hc3")
>>> round(r.estimate, 3), r.n
(-1.0, {'ionto+exercise': 4, 'exercise': 4})
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

from ionto_analytics.compare_frame import (
    DEFAULT_COVARIATES,
    AnalysisFrame,
    as_analysis_frame,
    comparison_frame,
    design_terms,
)
from ionto_analytics.compare_result import ComparisonResult
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.instruments import get_instrument, select_mcid
from ionto_analytics.table1 import Table1, table1

__all__ = [
    "AnalysisFrame",
    "ComparisonResult",
    "Table1",
    "ancova",
    "comparison_frame",
    "dose_response",
    "iptw",
    "mice_sensitivity",
    "mixed_model",
    "newcombe_interval",
    "responders",
    "table1",
    "wilson_interval",
]

SeType = Literal["auto", "cluster", "hc3"]
MIN_CLUSTERS = 20
"""Fewer clinics than this: cluster-robust SEs are unreliable; ``se="auto"`` uses HC3."""


def _contrast_text(af: AnalysisFrame) -> str:
    return f"{af.arms[0]} − {af.arms[1]}"


def _check_arms_present(d: pd.DataFrame, af: AnalysisFrame, what: str, min_n: int = 2) -> None:
    for arm in af.arms:
        k = int((d["arm"] == arm).sum())
        if k < min_n:
            raise InputError(
                f"{what}: arm {arm!r} has {k} analysable episode(s); at least {min_n} needed "
                f"(exclusions: {af.excluded})"
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
    ``cov_type="cluster"``). ``hc3``: MacKinnon–White HC3 with t(N − K) reference. ``auto``:
    cluster when ≥ ``min_clusters`` clusters, otherwise HC3 with a :class:`StatisticalWarning`
    (few-cluster CR1 SEs are biased downwards and over-reject; HC3 ignores within-clinic
    correlation, which clinic fixed effects absorb in part: choose explicitly to silence).
    """
    notes: list[str] = []
    model = smf.ols(formula, data) if weights is None else smf.wls(formula, data, weights=weights)
    if se == "auto":
        g = int(data[cluster].nunique()) if cluster and cluster in data.columns else 0
        if g >= min_clusters:
            se = "cluster"
        else:
            msg = (
                f"only {g} clusters ({cluster}); cluster-robust SEs need about "
                f"{min_clusters}+; using HC3 instead (pass se='cluster' or se='hc3' to "
                "choose explicitly)"
            )
            warnings.warn(msg, StatisticalWarning, stacklevel=3)
            notes.append(msg)
            se = "hc3"
    if se == "cluster":
        if not cluster or cluster not in data.columns:
            raise InputError(f"se='cluster' needs the cluster column {cluster!r}")
        groups = pd.factorize(data[cluster])[0]
        fit = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
        return fit, f"cluster-robust by {cluster} (CR1, t df = G − 1)", notes
    if se == "hc3":
        design = model.wexog  # the (weighted) design matrix
        leverage = np.einsum("ij,ij->i", design, design @ np.linalg.pinv(design.T @ design))
        if np.nanmax(leverage) < 1 - 1e-8:
            return model.fit(cov_type="HC3", use_t=True), "HC3 robust", notes
        # HC3 divides by 1 - leverage: an episode fitted exactly (alone in its clinic, say)
        # makes it undefined; HC1 needs no leverage and is the usual fallback.
        msg = (
            f"{int((leverage >= 1 - 1e-8).sum())} observation(s) fitted exactly (e.g. the "
            "only episode of a clinic); HC1 used instead of HC3"
        )
        warnings.warn(msg, StatisticalWarning, stacklevel=3)
        notes.append(msg)
        return model.fit(cov_type="HC1", use_t=True), "HC1 robust", notes
    raise InputError(f"se must be 'auto', 'cluster' or 'hc3', got {se!r}")


def _coef_table(fit: object, alpha: float) -> pd.DataFrame:
    ci = fit.conf_int(alpha=alpha)  # type: ignore[attr-defined]
    return pd.DataFrame(
        {
            "term": fit.params.index,  # type: ignore[attr-defined]
            "estimate": fit.params.to_numpy(),  # type: ignore[attr-defined]
            "se": fit.bse.to_numpy(),  # type: ignore[attr-defined]
            "ci_low": ci.iloc[:, 0].to_numpy(),
            "ci_high": ci.iloc[:, 1].to_numpy(),
            "p_value": fit.pvalues.to_numpy(),  # type: ignore[attr-defined]
        }
    )


def ancova(
    frame: AnalysisFrame | pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    clinic_effects: bool = True,
    se: SeType = "auto",
    cluster: str = "clinic_id",
    min_clusters: int = MIN_CLUSTERS,
    alpha: float = 0.05,
) -> ComparisonResult:
    """ANCOVA: follow-up score on arm + baseline + covariates (+ clinic fixed effects).

    Model: ``follow_up ~ treated + baseline + age_years + C(sex) + symptom_duration_weeks
    + C(clinic_id)`` by OLS (constant covariates are dropped). Estimand: the difference in
    mean change from baseline, first arm minus second, adjusted for baseline and covariates
    (with the baseline in the model, regressing the follow-up or the change gives the same
    arm coefficient). Negative = less pain for lower-is-better instruments.

    Variance: see :func:`ols_fit` (``se="auto"`` → cluster-robust by clinic with ≥ 20 clinics,
    else HC3 with a :class:`StatisticalWarning`).

    Parameters
    ----------
    frame : AnalysisFrame or DataFrame
        From :func:`comparison_frame`; not modified. Episodes without a follow-up are
        excluded and counted (``no_follow_up_in_window``).
    arms : (str, str) or None
        Needed for a plain DataFrame.
    covariates : sequence of str
        Adjustment covariates besides baseline and clinic.
    clinic_effects : bool
        Include clinic fixed effects.
    se : {"auto", "cluster", "hc3"}
        Variance estimator.
    cluster : str
        Cluster column for ``se="cluster"``.
    min_clusters : int
        Threshold for ``se="auto"``.
    alpha : float
        1 − confidence level.

    Returns
    -------
    ComparisonResult
        ``table`` holds all coefficients plus the unadjusted difference in mean change.
    """
    af = as_analysis_frame(frame, arms)
    d, excluded = af.complete_cases()
    _check_arms_present(d, af, "ancova")
    terms = design_terms(d, covariates, clinic_effects)
    formula = "follow_up ~ treated + baseline" + "".join(f" + {t}" for t in terms)
    fit, var_text, notes = ols_fit(formula, d, se, cluster, min_clusters)
    coefs = _coef_table(fit, alpha)
    row = coefs.set_index("term").loc["treated"]
    t_arm = d.loc[d["treated"] == 1, "change"]
    c_arm = d.loc[d["treated"] == 0, "change"]
    diff = float(t_arm.mean() - c_arm.mean())
    welch = stats.ttest_ind(t_arm, c_arm, equal_var=False)
    wci = welch.confidence_interval(confidence_level=1 - alpha)
    naive = pd.DataFrame(
        [
            {
                "term": "unadjusted difference in mean change (Welch)",
                "estimate": diff,
                "se": np.nan,
                "ci_low": float(wci.low),
                "ci_high": float(wci.high),
                "p_value": float(welch.pvalue),
            }
        ]
    )
    return ComparisonResult(
        estimate=float(row["estimate"]),
        ci_low=float(row["ci_low"]),
        ci_high=float(row["ci_high"]),
        p_value=float(row["p_value"]),
        n=af.n_per_arm(d),
        excluded=excluded,
        method=f"ANCOVA (OLS), {var_text}",
        estimand=(
            f"adjusted difference in mean change from baseline, {_contrast_text(af)}; "
            f"model: {formula}"
        ),
        instrument=af.instrument or None,
        week=af.week,
        arms=af.arms,
        table=pd.concat([coefs[coefs["term"] != "treated"], naive], ignore_index=True),
        notes=tuple(notes),
        conf_level=1 - alpha,
    )


def wilson_interval(x: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a proportion.

    Examples
    --------
    >>> [round(v, 4) for v in wilson_interval(8, 10)]
    [0.4902, 0.9433]
    """
    if n <= 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(1 - alpha / 2)
    p = x / n
    den = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / den
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def newcombe_interval(
    x1: int, n1: int, x2: int, n2: int, alpha: float = 0.05
) -> tuple[float, float]:
    """Newcombe hybrid-score interval (method 10) for p1 − p2.

    Examples
    --------
    >>> [round(v, 4) for v in newcombe_interval(56, 70, 48, 80)]
    [0.0524, 0.3339]
    """
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, alpha)
    l2, u2 = wilson_interval(x2, n2, alpha)
    d = p1 - p2
    return (
        float(d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
        float(d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)),
    )


def _responder_flags(
    d: pd.DataFrame, instrument: str, week: int | str | None, source: str | None
) -> tuple[np.ndarray, list[str]]:
    inst = get_instrument(instrument)
    sign = 1.0 if inst.higher_is_better else -1.0
    wk = None if week in (None, "discharge") else float(week)  # type: ignore[arg-type]
    flags = np.zeros(len(d), dtype=bool)
    used: set[str] = set()
    conds = d["condition"] if "condition" in d.columns else pd.Series([None] * len(d))
    for i, (b, y, c) in enumerate(zip(d["baseline"], d["follow_up"], conds, strict=True)):
        m = select_mcid(
            instrument, condition=c if isinstance(c, str) else None, week=wk, source=source
        )
        used.add(
            f"{m.points:g}{' or ' + format(m.percent, '.0%') if m.percent else ''} "
            f"{m.source} ({m.anchor})"
        )
        if m.transition:
            flags[i] = y >= m.points
        else:
            imp = sign * (y - b)
            flags[i] = bool(imp >= float(m.threshold(b)) - 1e-9 and imp > 0)
    return flags, sorted(used)


def responders(
    frame: AnalysisFrame | pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    source: str | None = None,
    alpha: float = 0.05,
    rd_method: Literal["newcombe", "wald"] = "newcombe",
) -> ComparisonResult:
    """MCID responders: risk difference (main estimate), risk ratio and NNT, first − second.

    A responder improved by at least the registry MCID for the instrument, the episode's
    condition and the week (baseline-dependent where the MCID is), and by more than 0; a
    ``responder`` column in a plain DataFrame is used as is.

    * RD: Newcombe hybrid score interval (default) or Wald; p-value from the pooled
      two-proportion z-test (= Pearson χ² without continuity correction); Fisher's exact
      p-value is reported in ``table``.
    * RR: Wald interval on the log scale; with a zero cell 0.5 is added to every cell
      (noted).
    * NNT = 1 / RD (positive = number needed to treat with the first arm for one more
      responder). When the RD interval excludes 0 the NNT interval is
      ``(1/ci_high, 1/ci_low)``; when it crosses 0 the interval is in two pieces
      (Altman 1998): "NNTB 1/ci_high to ∞ to NNTH 1/|ci_low|"; ``ci_low``/``ci_high`` of the
      NNT row are then NaN and the ``interpretation`` column carries the text.

    Returns
    -------
    ComparisonResult
        ``estimate`` = RD; ``table`` rows: responders per arm, RR, NNT.
    """
    af = as_analysis_frame(frame, arms)
    d, excluded = af.complete_cases()
    _check_arms_present(d, af, "responders", min_n=1)
    notes: list[str] = []
    if "responder" in d.columns:
        flags = d["responder"].astype(bool).to_numpy()
        mcid_text = "responder column supplied"
    else:
        if not af.instrument:
            raise InputError("responders: the frame has no instrument; pass an AnalysisFrame")
        flags, used = _responder_flags(d, af.instrument, af.week, source)
        mcid_text = "; ".join(used)
    t = d["treated"].to_numpy() == 1
    x1, n1 = int(flags[t].sum()), int(t.sum())
    x2, n2 = int(flags[~t].sum()), int((~t).sum())
    p1, p2 = x1 / n1, x2 / n2
    rd = p1 - p2
    z = stats.norm.ppf(1 - alpha / 2)
    if rd_method == "newcombe":
        lo, hi = newcombe_interval(x1, n1, x2, n2, alpha)
    elif rd_method == "wald":
        se_rd = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
        lo, hi = rd - z * se_rd, rd + z * se_rd
    else:
        raise InputError(f"rd_method must be 'newcombe' or 'wald', got {rd_method!r}")
    pooled = (x1 + x2) / (n1 + n2)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    p_value = float(2 * stats.norm.sf(abs(rd) / se0)) if se0 > 0 else 1.0
    fisher_p = float(stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue)
    a, b, c, dd = x1, n1 - x1, x2, n2 - x2
    if min(a, c) == 0:
        a, b, c, dd = a + 0.5, b + 0.5, c + 0.5, dd + 0.5
        notes.append("zero responders in an arm: 0.5 added to every cell for the risk ratio")
    rr = (a / (a + b)) / (c / (c + dd))
    se_log = np.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + dd))
    rr_lo, rr_hi = rr * np.exp(-z * se_log), rr * np.exp(z * se_log)
    nnt = 1 / rd if rd != 0 else np.inf
    if lo > 0 or hi < 0:
        n_lo, n_hi = sorted((1 / hi, 1 / lo))
        who = "NNTB" if rd > 0 else "NNTH"
        interp = f"{who} {abs(nnt):.1f} ({abs(n_lo):.1f} to {abs(n_hi):.1f})"
    else:
        n_lo = n_hi = np.nan
        left = f"NNTB {1 / hi:.1f} to ∞" if hi > 0 else "NNTB ∞"
        right = f"NNTH {1 / abs(lo):.1f}" if lo < 0 else "NNTH ∞"
        interp = (
            f"NNT {nnt:.1f}; RD interval crosses 0, so the NNT interval is "
            f"{left} to {right} (Altman 1998)"
        )
    table = pd.DataFrame(
        [
            {
                "term": f"responders {af.arms[0]}",
                "estimate": p1,
                "ci_low": wilson_interval(x1, n1, alpha)[0],
                "ci_high": wilson_interval(x1, n1, alpha)[1],
                "p_value": np.nan,
                "interpretation": f"{x1}/{n1}",
            },
            {
                "term": f"responders {af.arms[1]}",
                "estimate": p2,
                "ci_low": wilson_interval(x2, n2, alpha)[0],
                "ci_high": wilson_interval(x2, n2, alpha)[1],
                "p_value": np.nan,
                "interpretation": f"{x2}/{n2}",
            },
            {
                "term": "risk ratio",
                "estimate": rr,
                "ci_low": rr_lo,
                "ci_high": rr_hi,
                "p_value": fisher_p,
                "interpretation": "log-scale Wald; p: Fisher exact",
            },
            {
                "term": "NNT",
                "estimate": nnt,
                "ci_low": n_lo,
                "ci_high": n_hi,
                "p_value": np.nan,
                "interpretation": interp,
            },
        ]
    )
    return ComparisonResult(
        estimate=float(rd),
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=p_value,
        n=af.n_per_arm(d),
        excluded=excluded,
        method=f"MCID responders: risk difference ({rd_method}), pooled z-test",
        estimand=(
            f"difference in proportion of MCID responders, {_contrast_text(af)}; MCID: {mcid_text}"
        ),
        instrument=af.instrument or None,
        week=af.week,
        arms=af.arms,
        table=table,
        notes=tuple(notes),
        conf_level=1 - alpha,
    )


from ionto_analytics.compare_models import (  # noqa: E402  (re-export after definitions)
    dose_response,
    mice_sensitivity,
    mixed_model,
)
from ionto_analytics.compare_weighting import iptw  # noqa: E402
