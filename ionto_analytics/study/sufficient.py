"""Exact pooled ANCOVA from per-site sufficient statistics (X'X, X'y, y'y, n).

Each site computes, for one contrast, the cross-products of its ANCOVA design
``[1, treated, baseline, continuous covariates, sex dummies]`` with the follow-up score. The
coordinator stacks them into the design of the pooled-rows model with one intercept per site
(site fixed effects) and solves the normal equations: the same estimate and classical OLS
standard error as an ANCOVA fitted on all sites' rows together (``follow_up ~ treated +
baseline + covariates + C(site)``), without any row leaving a site.

A cross-product of two indicator columns (the intercept, ``treated``, a sex dummy) is a count
of episodes (``n`` itself, n treated, n male, n treated and male, ...): every such cell must
be 0 or at least the threshold, else the site's statistics are withheld
(:func:`sufficient_statistics` raises). The variance is the classical one (homoscedastic):
the robust HC2 and cluster variances need per-row leverages or per-clinic scores.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> def site(n):
...     arm = np.where(rng.random(n) < 0.5, "ionto+exercise", "exercise")
...     b = rng.normal(6, 1, n)
...     return pd.DataFrame({"arm": arm, "baseline": b, "age_years": rng.normal(50, 9, n),
...                          "follow_up": b - 1 - (arm == "ionto+exercise") + rng.normal(0, 1, n)})
>>> stats = [sufficient_statistics(site(80), ("ionto+exercise", "exercise"), ("age_years",))
...          for _ in range(3)]
>>> -1.3 < pooled_ancova(stats)["estimate"] < -0.7  # planted: -1
True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from data_schemas.vocabulary import SEXES
from ionto_analytics.compare.frame import AnalysisFrame, as_analysis_frame
from ionto_analytics.errors import InputError
from ionto_analytics.suppression import THRESHOLD, is_small

__all__ = [
    "SufficientStatistics",
    "from_table",
    "pooled_ancova",
    "sufficient_statistics",
    "to_table",
]

SEX_DUMMIES = tuple(f"sex[{s}]" for s in SEXES[1:])
"""Sex as dummies against the first level (``female``), fixed so every site agrees."""


@dataclass(frozen=True)
class SufficientStatistics:
    """One site's cross-products for one contrast.

    Attributes
    ----------
    terms : tuple of str
        Column names of the design (``Intercept`` first).
    xtx : ndarray
        ``X'X`` (terms × terms).
    xty : ndarray
        ``X'y``.
    yty : float
        ``y'y``.
    n : int
        Episodes.
    """

    terms: tuple[str, ...]
    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    n: int


def _design(d: pd.DataFrame, covariates: Sequence[str]) -> tuple[list[str], np.ndarray]:
    cols = {
        "Intercept": np.ones(len(d)),
        "treated": d["treated"].to_numpy(float),
        "baseline": d["baseline"].to_numpy(float),
    }
    for c in covariates:
        if c == "sex":
            for name, level in zip(SEX_DUMMIES, SEXES[1:], strict=True):
                cols[name] = (d["sex"] == level).to_numpy(float)
        else:
            cols[c] = d[c].to_numpy(float)
    return list(cols), np.column_stack(list(cols.values()))


def sufficient_statistics(
    frame: AnalysisFrame | pd.DataFrame,
    arms: Sequence[str] | None = None,
    covariates: Sequence[str] = ("age_years", "sex", "symptom_duration_weeks"),
    threshold: int = THRESHOLD,
) -> SufficientStatistics:
    """X'X, X'y, y'y and n of one site's ANCOVA design (episodes with a follow-up and every
    covariate).

    Raises
    ------
    InputError
        When a count behind the statistics (a cross-product of indicator columns) is 1 to
        ``threshold − 1``: the statistics may not leave the site.
    """
    af = as_analysis_frame(frame, arms)
    d, _ = af.complete_cases()
    d = d.dropna(subset=["baseline", "follow_up", *covariates])
    terms, x = _design(d, covariates)
    y = d["follow_up"].to_numpy(float)
    xtx = x.T @ x
    indicator = [i for i, t in enumerate(terms) if t in ("Intercept", "treated", *SEX_DUMMIES)]
    small = [
        f"{terms[i]} × {terms[j]}"
        for i in indicator
        for j in indicator
        if j >= i and is_small(xtx[i, j], threshold)
    ]
    if small:
        raise InputError(
            f"sufficient statistics withheld: the counts behind {', '.join(small)} are under "
            f"{threshold}; pool this contrast by meta-analysis only"
        )
    return SufficientStatistics(tuple(terms), xtx, x.T @ y, float(y @ y), len(y))


def pooled_ancova(sites: Sequence[SufficientStatistics], alpha: float = 0.05) -> dict[str, Any]:
    """The ANCOVA on every site's rows, with site intercepts, from the sites' statistics.

    Returns
    -------
    dict
        ``estimate``, ``se``, ``ci_low``, ``ci_high`` (t with N − p df), ``p_value``, ``n``,
        ``df`` and ``terms`` (the common terms kept: those not zero everywhere).
    """
    if not sites:
        raise InputError("pooled_ancova: no site statistics given")
    terms = sites[0].terms
    if any(s.terms != terms for s in sites):
        raise InputError("pooled_ancova: the sites' designs differ; run one study spec")
    common = [i for i in range(1, len(terms)) if sum(s.xtx[i, i] for s in sites) > 0]
    k, p = len(sites), len(common)
    size = k + p
    xtx = np.zeros((size, size))
    xty = np.zeros(size)
    for j, s in enumerate(sites):
        z = s.xtx[np.ix_(common, common)]
        xtx[k:, k:] += z
        xtx[j, j] = s.xtx[0, 0]
        xtx[j, k:] = xtx[k:, j] = s.xtx[0, common]
        xty[j] = s.xty[0]
        xty[k:] += s.xty[common]
    beta = np.linalg.solve(xtx, xty)
    n = sum(s.n for s in sites)
    rss = sum(s.yty for s in sites) - 2 * beta @ xty + beta @ xtx @ beta
    df = n - size
    cov = rss / df * np.linalg.inv(xtx)
    i = k + common.index(terms.index("treated"))
    est, se = float(beta[i]), float(np.sqrt(cov[i, i]))
    q = float(stats.t.ppf(1 - alpha / 2, df))
    return {
        "estimate": est,
        "se": se,
        "ci_low": est - q * se,
        "ci_high": est + q * se,
        "p_value": float(2 * stats.t.sf(abs(est / se), df)),
        "n": n,
        "df": df,
        "terms": [terms[c] for c in common],
    }


COUNT_TERMS = ("Intercept", "treated", *SEX_DUMMIES)


def to_table(s: SufficientStatistics, contrast: str) -> pd.DataFrame:
    """The statistics as tidy rows: ``contrast``, ``kind`` (xtx, xty, yty), ``row``, ``col``,
    ``value`` and ``is_count`` (a cross-product of indicator columns: a count of episodes,
    scanned by the package checker like every other count)."""
    rows = [
        {
            "kind": "xtx",
            "row": a,
            "col": b,
            "value": s.xtx[i, j],
            "is_count": a in COUNT_TERMS and b in COUNT_TERMS,
        }
        for i, a in enumerate(s.terms)
        for j, b in enumerate(s.terms)
    ]
    rows += [
        {"kind": "xty", "row": a, "col": "", "value": s.xty[i], "is_count": False}
        for i, a in enumerate(s.terms)
    ]
    rows.append({"kind": "yty", "row": "", "col": "", "value": s.yty, "is_count": False})
    t = pd.DataFrame(rows)
    t.insert(0, "contrast", contrast)
    return t


def from_table(t: pd.DataFrame) -> SufficientStatistics:
    """Rebuild one site's statistics from its rows of :func:`to_table`.

    Examples
    --------
    >>> s = SufficientStatistics(("Intercept", "treated"), np.array([[20.0, 11.0], [11.0, 11.0]]),
    ...                          np.array([3.0, 1.0]), 9.0, 20)
    >>> back = from_table(to_table(s, "c"))
    >>> back.n, back.xtx.tolist(), back.yty
    (20, [[20.0, 11.0], [11.0, 11.0]], 9.0)
    """
    xty = t[t["kind"].eq("xty")]
    terms = tuple(xty["row"].astype(str))
    xtx = (
        t[t["kind"].eq("xtx")]
        .pivot(index="row", columns="col", values="value")
        .loc[list(terms), list(terms)]
        .to_numpy(float)
    )
    return SufficientStatistics(
        terms,
        xtx,
        xty["value"].to_numpy(float),
        float(t.loc[t["kind"].eq("yty"), "value"].iloc[0]),
        int(np.rint(xtx[0, 0])),
    )
