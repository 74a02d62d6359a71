"""MCID responders: risk difference, risk ratio and NNT, with Wilson and Newcombe intervals.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"arm": ["ionto+exercise"] * 10 + ["exercise"] * 10,
...                    "baseline": 7.0, "follow_up": 4.0,
...                    "responder": [True] * 8 + [False] * 2 + [True] * 5 + [False] * 5})
>>> r = responders(df, arms=("ionto+exercise", "exercise"))
>>> round(r.estimate, 2), r.n
(0.3, {'ionto+exercise': 10, 'exercise': 10})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from ionto_analytics.compare.evalue import e_value_ratio
from ionto_analytics.compare.fit import check_arms_present, contrast_text
from ionto_analytics.compare.frame import AnalysisFrame, as_analysis_frame
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument, select_mcid

__all__ = ["newcombe_interval", "responders", "wilson_interval"]


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


def _supplied_flags(d: pd.DataFrame, excluded: dict[str, int]) -> tuple[pd.DataFrame, np.ndarray]:
    # a missing flag is missing (counted in ``excluded``), never a responder; True/False,
    # 1/0 and pandas' nullable boolean (with <NA>) are accepted, anything else refused
    missing = d["responder"].isna().to_numpy()
    if missing.any():
        excluded["missing_responder_flag"] = int(missing.sum())
        d = d[~missing].reset_index(drop=True)
    values = d["responder"].astype(object)
    bad = ~values.isin([True, False])
    if bad.any():
        raise InputError(
            f"responders: the responder column must hold True/False (or 1/0), got "
            f"{values[bad].iloc[0]!r} in row {int(np.flatnonzero(bad.to_numpy())[0])}; "
            "leave it out to classify by the instrument's MCID"
        )
    return d, np.array([bool(v) for v in values], dtype=bool)


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
    ``responder`` column in a plain DataFrame is used instead; a missing flag excludes the
    episode (counted ``missing_responder_flag``), never makes it a responder.

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
    notes: list[str] = []
    if "responder" in d.columns:
        d, flags = _supplied_flags(d, excluded)
        mcid_text = "responder column supplied"
    else:
        if not af.instrument:
            raise InputError("responders: the frame has no instrument; pass an AnalysisFrame")
        flags, used = _responder_flags(d, af.instrument, af.week, source)
        mcid_text = "; ".join(used)
    check_arms_present(d, af, "responders")
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
    return ComparisonResult.from_fit(
        af,
        d,
        estimate=rd,
        ci_low=lo,
        ci_high=hi,
        p_value=p_value,
        excluded=excluded,
        estimator=f"MCID responders: risk difference ({rd_method}), pooled z-test",
        estimand=(
            f"difference in proportion of MCID responders, {contrast_text(af)}; MCID: {mcid_text}"
        ),
        alpha=alpha,
        table=table,
        notes=notes,
        e_values=e_value_ratio(rr, rr_lo, rr_hi),
    )
