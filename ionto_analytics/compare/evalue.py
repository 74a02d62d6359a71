"""Sensitivity to unmeasured confounding: E-values (VanderWeele & Ding 2017).

The E-value is the minimum strength of association, on the risk-ratio scale, that an
unmeasured confounder would need with both the arm and the outcome, above the measured
covariates, to explain away an estimate: ``E = RR + sqrt(RR · (RR − 1))`` for ``RR ≥ 1``
(``RR`` inverted first when below 1). For a difference in means the standardized
difference ``d = estimate / SD`` is mapped to ``RR ≈ exp(0.91 · d)`` (VanderWeele & Ding
2017, Ann Intern Med 167:268, Table; after Hasselblad & Hedges 1995). The E-value of the
confidence interval is that of the limit nearest the null, 1 when the interval crosses it.

Here SD is :func:`pooled_sd`, the pooled within-arm SD of the change from baseline among
the analysed episodes with a follow-up.

Examples
--------
>>> round(e_value_rr(3.9), 2), round(e_value_rr(1.8), 2)  # the paper's worked example
(7.26, 3.0)
>>> [round(v, 2) for v in e_value_difference(-1.2, -2.0, -0.4, sd=2.4)]
[2.53, 1.6]
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pandas as pd

__all__ = [
    "e_value_difference",
    "e_value_ratio",
    "e_value_rr",
    "pooled_sd",
    "rr_from_difference",
]

COEFFICIENT = 0.91
"""``log RR ≈ 0.91 · d`` (VanderWeele & Ding 2017, for a standardized mean difference)."""

MAX_LOG_RR = math.log(sys.float_info.max)
"""Largest log risk ratio a float holds (about 709.8); beyond it the ratio is infinite."""


def e_value_rr(rr: float) -> float:
    """E-value of a risk ratio (point estimate or a confidence limit).

    Examples
    --------
    >>> round(e_value_rr(1 / 3.9), 2), e_value_rr(1.0), e_value_rr(float("nan"))
    (7.26, 1.0, nan)
    """
    if not rr > 0:
        return math.nan
    r = rr if rr >= 1 else 1 / rr
    return r + math.sqrt(r * (r - 1))


def rr_from_difference(difference: float, sd: float) -> float:
    """Approximate risk ratio ``exp(0.91 · difference / sd)`` of a mean difference.

    Examples
    --------
    >>> round(rr_from_difference(0.5, 1.0), 3)  # d = 0.5
    1.576
    >>> rr_from_difference(900.0, 1.0), rr_from_difference(-900.0, 1.0)  # an SD near 0
    (inf, 0.0)
    """
    if not sd > 0:
        return math.nan
    log_rr = COEFFICIENT * difference / sd
    return math.inf if log_rr > MAX_LOG_RR else math.exp(log_rr)


def e_value_difference(
    estimate: float, ci_low: float, ci_high: float, sd: float
) -> tuple[float, float]:
    """E-values of a mean difference and of its confidence limit nearest the null.

    Returns
    -------
    (float, float)
        ``(e_value, e_value_ci)``; ``e_value_ci`` is 1 when the interval holds 0; both NaN
        when ``sd`` is not positive or the estimate is not finite.

    Examples
    --------
    >>> [round(v, 2) for v in e_value_difference(0.5, 0.1, 0.9, sd=1.0)]  # d = 0.5
    [2.53, 1.42]
    >>> e_value_difference(0.5, -0.1, 1.1, sd=1.0)[1]
    1.0
    >>> e_value_difference(-2000.0, -2100.0, -1900.0, sd=1.0)  # no overflow
    (inf, inf)
    """
    if not (sd > 0 and math.isfinite(estimate)):
        return math.nan, math.nan
    # the E-value depends on |d| only; |d| keeps a huge standardized difference (an SD of
    # change near 0) at an infinite E-value instead of underflowing to a ratio of 0
    e = e_value_rr(rr_from_difference(abs(estimate), sd))
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return e, math.nan
    if ci_low <= 0 <= ci_high:
        return e, 1.0
    nearest = ci_low if ci_low > 0 else ci_high
    return e, e_value_rr(rr_from_difference(abs(nearest), sd))


def e_value_ratio(rr: float, ci_low: float, ci_high: float) -> tuple[float, float]:
    """E-values of a risk ratio and of its confidence limit nearest the null (1 if it holds 1).

    Examples
    --------
    >>> [round(v, 2) for v in e_value_ratio(3.9, 1.8, 8.7)]  # VanderWeele & Ding's example
    [7.26, 3.0]
    >>> e_value_ratio(0.8, 0.5, 1.2)[1]
    1.0
    """
    e = e_value_rr(rr)
    if not (ci_low > 0 and ci_high > 0):
        return e, math.nan
    if ci_low <= 1 <= ci_high:
        return e, 1.0
    return e, e_value_rr(ci_low if ci_low > 1 else ci_high)


def pooled_sd(data: pd.DataFrame, value: str = "change") -> float:
    """Pooled within-arm SD of ``value`` (rows where it is observed), by ``treated``.

    ``sqrt(Σ (n_a − 1) s_a² / (Σ n_a − 2))`` over the two arms; NaN without the columns
    or with fewer than 2 observed values in an arm.

    Examples
    --------
    >>> df = pd.DataFrame({"treated": [1, 1, 1, 0, 0, 0],
    ...                    "change": [-3.0, -1.0, -2.0, 0.0, 2.0, None]})
    >>> round(pooled_sd(df), 4)
    1.1547
    """
    if value not in data.columns or "treated" not in data.columns:
        return math.nan
    groups = [
        g[value].dropna().astype(float).to_numpy() for _, g in data.groupby("treated", sort=True)
    ]
    if len(groups) != 2 or min(g.size for g in groups) < 2:
        return math.nan
    ss = sum(float(((g - g.mean()) ** 2).sum()) for g in groups)
    return float(np.sqrt(ss / (sum(g.size for g in groups) - 2)))
