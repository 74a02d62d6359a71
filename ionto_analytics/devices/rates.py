"""Event rates per 1,000 sessions with exact confidence intervals, and the grouping columns
every device-quality table is computed by.

Examples
--------
>>> [round(v, 1) for v in rate_ci(0, 1000)]
[0.0, 0.0, 3.7]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from data_schemas.frames import require_columns
from ionto_analytics.errors import InputError

__all__ = ["RateMethod", "group_columns", "rate_ci"]

RateMethod = Literal["clopper-pearson", "poisson"]


def group_columns(by: str | Sequence[str] | None, df: pd.DataFrame) -> list[str]:
    """``by`` as a list of columns of ``df`` (checked to be there).

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"clinic_id": []})
    >>> group_columns("clinic_id", d), group_columns(None, d)
    (['clinic_id'], [])
    """
    cols = [] if by is None else [by] if isinstance(by, str) else list(by)
    require_columns(df, cols, "sessions")
    return cols


def rate_ci(
    n_events: int,
    n: int,
    *,
    per: float = 1000.0,
    method: RateMethod = "clopper-pearson",
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """Rate per ``per`` sessions with an exact confidence interval.

    * ``"clopper-pearson"``: the binomial exact interval, ``Beta(α/2; x, n−x+1)`` to
      ``Beta(1−α/2; x+1, n−x)`` (0 and 1 at the ends), for "sessions with the event";
    * ``"poisson"``: the exact Poisson (Garwood) interval ``χ²(α/2; 2x)/2`` to
      ``χ²(1−α/2; 2x+2)/2`` events divided by ``n``, for counts of events.

    Parameters
    ----------
    n_events, n : int
        Events and sessions (the denominator).
    per : float
        Scale (1,000 sessions by default).
    method : {"clopper-pearson", "poisson"}
    alpha : float
        1 − confidence level.

    Returns
    -------
    (rate, ci_low, ci_high) : tuple of float
        NaN when ``n`` is 0.

    Examples
    --------
    >>> [round(v, 2) for v in rate_ci(3, 1000)]
    [3.0, 0.62, 8.74]
    >>> [round(v, 2) for v in rate_ci(0, 500, method="poisson")]
    [0.0, 0.0, 7.38]
    """
    x, m = int(n_events), int(n)
    if m < 0 or x < 0 or (method == "clopper-pearson" and x > m):
        raise InputError(f"rate_ci: need 0 ≤ events ≤ sessions, got {x} events in {m}")
    if m == 0:
        return (np.nan, np.nan, np.nan)
    if method == "clopper-pearson":
        lo = 0.0 if x == 0 else float(stats.beta.ppf(alpha / 2, x, m - x + 1))
        hi = 1.0 if x == m else float(stats.beta.ppf(1 - alpha / 2, x + 1, m - x))
    elif method == "poisson":
        lo = 0.0 if x == 0 else float(stats.chi2.ppf(alpha / 2, 2 * x) / 2) / m
        hi = float(stats.chi2.ppf(1 - alpha / 2, 2 * x + 2) / 2) / m
    else:
        raise InputError(f"method must be 'clopper-pearson' or 'poisson', got {method!r}")
    return (per * x / m, per * lo, per * hi)
