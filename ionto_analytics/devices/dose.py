"""Delivered against prescribed dose: per-session flags and per-group summaries.

*Ended before the prescribed dose*: delivered < (1 − ``tolerance``) × prescribed (5 % by
default). *Dose flags*: ``ended_early``, ``over_prescribed`` (delivered > (1 + tolerance) ×
prescribed), ``above_ceiling`` (delivered > (1 + tolerance) × 80 mA·min, the electrode
limit of DOMAIN.md 1.1, which devices enforce as "80 mA·min ± 5 %"), ``device_vs_samples``
(the device's figure disagrees with the dose recomputed from its samples, when those
columns are present), ``no_prescription``.

Examples
--------
>>> import pandas as pd
>>> s = pd.DataFrame({"session_id": ["s1", "s2"], "prescribed_dose_mA_min": [40.0, 40.0],
...                   "delivered_dose_mA_min": [40.0, 23.3]})
>>> dose_delivery(s)["ended_early"].tolist()
[False, True]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from data_schemas.frames import require_columns
from ionto_analytics.devices.rates import group_columns, rate_ci
from ionto_analytics.errors import InputError

__all__ = ["DOSE_CEILING_MA_MIN", "dose_delivery", "dose_summary"]

DOSE_CEILING_MA_MIN = 80.0
"""Electrode dose ceiling, mA·min (DOMAIN.md 1.1 [S4,S5])."""


def dose_delivery(
    sessions: pd.DataFrame,
    *,
    tolerance: float = 0.05,
    ceiling: float = DOSE_CEILING_MA_MIN,
    mismatch_tolerance: float = 0.02,
) -> pd.DataFrame:
    """Delivered against prescribed dose, one row per session, with dose flags.

    Parameters
    ----------
    sessions : DataFrame
        ``session_id``, ``prescribed_dose_mA_min``, ``delivered_dose_mA_min``; other
        columns (device model, clinic, ...) are carried over. With
        ``recomputed_dose_mA_min`` and/or ``dose_mismatch`` the device-vs-samples check is
        made. Not modified.
    tolerance : float
        Relative shortfall (or excess) that counts as ended early (over prescribed).
    ceiling : float
        Dose ceiling in mA·min.
    mismatch_tolerance : float
        Relative disagreement (at least 0.5 mA·min) between the device's and the
        recomputed dose that flags ``device_vs_samples``.

    Returns
    -------
    DataFrame
        ``sessions`` plus ``delivered_fraction``, ``shortfall_mA_min``, ``ended_early``,
        ``over_prescribed``, ``above_ceiling``, ``device_vs_samples`` (boolean, ``<NA>``
        when unknown), ``no_prescription`` and ``dose_flags`` (';'-joined, "" = none).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"session_id": ["a", "b"], "prescribed_dose_mA_min": [40.0, None],
    ...                   "delivered_dose_mA_min": [85.0, 40.0]})
    >>> dose_delivery(s)["dose_flags"].tolist()
    ['over_prescribed;above_ceiling', 'no_prescription']
    """
    require_columns(
        sessions,
        ["session_id", "prescribed_dose_mA_min", "delivered_dose_mA_min"],
        "sessions",
    )
    if not 0 <= tolerance < 1:
        raise InputError(f"tolerance must be in [0, 1), got {tolerance}")
    out = sessions.copy()
    pres = out["prescribed_dose_mA_min"].astype(float)
    deliv = out["delivered_dose_mA_min"].astype(float)
    has_pres = pres.notna() & (pres > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (deliv / pres).where(has_pres)
    out["delivered_fraction"] = frac
    out["shortfall_mA_min"] = (pres - deliv).where(has_pres)

    def flag(mask: pd.Series, known: pd.Series) -> pd.Series:
        arr = pd.array(mask.to_numpy(bool), dtype="boolean")
        arr[~known.to_numpy(bool)] = pd.NA
        return pd.Series(arr, index=out.index)

    out["ended_early"] = flag(deliv < (1 - tolerance) * pres, has_pres)
    out["over_prescribed"] = flag(deliv > (1 + tolerance) * pres, has_pres)
    out["above_ceiling"] = flag(deliv > (1 + tolerance) * ceiling, deliv.notna())
    mism = pd.Series(False, index=out.index)
    known = pd.Series(False, index=out.index)
    if "recomputed_dose_mA_min" in out.columns:
        rec = out["recomputed_dose_mA_min"].astype(float)
        gap = (deliv - rec).abs()
        limit = np.maximum(0.5, mismatch_tolerance * rec.abs())
        mism |= (gap > limit).fillna(False)
        known |= rec.notna() & deliv.notna()
    if "dose_mismatch" in out.columns:
        dm = out["dose_mismatch"]
        mism |= dm.fillna(False).astype(bool)
        known |= dm.notna()
    out["device_vs_samples"] = flag(mism, known)
    out["no_prescription"] = ~has_pres.to_numpy()
    names = ("ended_early", "over_prescribed", "above_ceiling", "device_vs_samples")
    parts = [out[n].fillna(False).to_numpy(bool) for n in names] + [
        out["no_prescription"].to_numpy(bool)
    ]
    labels = (*names, "no_prescription")
    text = [
        ";".join(lab for lab, on in zip(labels, row, strict=True) if on)
        for row in zip(*parts, strict=True)
    ]
    out["dose_flags"] = pd.Series(text, index=out.index, dtype=object)
    return out


def dose_summary(
    sessions: pd.DataFrame,
    by: str | Sequence[str] | None = "device_model",
    *,
    tolerance: float = 0.05,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Dose delivery per group: delivered vs prescribed, early endings, current limiting.

    Parameters
    ----------
    sessions : DataFrame
        Session frame (with ``current_limited``); not modified.
    by : str, sequence of str or None
        Grouping columns (``"device_model"``, ``"clinic_id"``, both, or None for all).
    tolerance : float
        As in :func:`dose_delivery`.
    alpha : float
        1 − confidence level of the Clopper–Pearson intervals (in %).

    Returns
    -------
    DataFrame
        ``by`` columns, ``n_sessions``, ``n_with_prescription``, ``prescribed_mean``,
        ``delivered_mean``, ``delivered_median``, ``fraction_median``, ``n_ended_early``,
        ``ended_early_pct`` (+ ``_ci_low``/``_ci_high``), ``n_current_limited``,
        ``current_limited_pct`` (+ CI), ``n_flagged`` (any dose flag other than
        no_prescription).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"session_id": list("abcd"), "device_model": ["A", "A", "B", "B"],
    ...                   "prescribed_dose_mA_min": 40.0,
    ...                   "delivered_dose_mA_min": [40.0, 20.0, 40.0, 40.0],
    ...                   "current_limited": [False, True, False, False]})
    >>> dose_summary(s)[["device_model", "n_sessions", "n_ended_early"]].values.tolist()
    [['A', 2, 1], ['B', 2, 0]]
    """
    cols = group_columns(by, sessions)
    require_columns(sessions, ["current_limited"], "sessions")
    d = dose_delivery(sessions, tolerance=tolerance)
    d["_all"] = "all sessions"
    keys = cols or ["_all"]
    rows = []
    for key, g in d.groupby(keys, sort=True, dropna=False):
        key_t = key if isinstance(key, tuple) else (key,)
        n = len(g)
        n_p = int(g["ended_early"].notna().sum())
        early = int(g["ended_early"].fillna(False).sum())
        lim = int(g["current_limited"].astype(bool).sum())
        flagged = int(
            g[["ended_early", "over_prescribed", "above_ceiling", "device_vs_samples"]]
            .fillna(False)
            .any(axis=1)
            .sum()
        )
        e_pct, e_lo, e_hi = rate_ci(early, n_p, per=100, alpha=alpha)
        l_pct, l_lo, l_hi = rate_ci(lim, n, per=100, alpha=alpha)
        row = dict(zip(keys, key_t, strict=True))
        row.update(
            {
                "n_sessions": n,
                "n_with_prescription": n_p,
                "prescribed_mean": float(g["prescribed_dose_mA_min"].mean()),
                "delivered_mean": float(g["delivered_dose_mA_min"].mean()),
                "delivered_median": float(g["delivered_dose_mA_min"].median()),
                "fraction_median": float(g["delivered_fraction"].median()),
                "n_ended_early": early,
                "ended_early_pct": e_pct,
                "ended_early_ci_low": e_lo,
                "ended_early_ci_high": e_hi,
                "n_current_limited": lim,
                "current_limited_pct": l_pct,
                "current_limited_ci_low": l_lo,
                "current_limited_ci_high": l_hi,
                "n_flagged": flagged,
            }
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.rename(columns={"_all": "group"}) if not cols else out
