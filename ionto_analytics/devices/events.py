"""Faults and safety events: the fault Pareto table and event rates per 1,000 sessions.

*Skin reaction*: ``skin_check_after`` is erythema, vesicles or burn; its denominator is the
sessions whose skin was checked (``not_checked`` and missing are counted in
``n_not_assessed``, never silently dropped).

Examples
--------
>>> import pandas as pd
>>> s = pd.DataFrame({"session_id": ["s1", "s2", "s3"],
...                   "skin_check_after": ["normal", "burn", "not_checked"]})
>>> r = event_rates(s, events=["burn"]).set_index("event")
>>> r.loc["burn", ["n_events", "n_sessions", "n_not_assessed"]].tolist()
[1, 2, 1]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from data_schemas.frames import require_columns
from ionto_analytics.devices.dose import dose_delivery
from ionto_analytics.devices.rates import RateMethod, group_columns, rate_ci
from ionto_analytics.errors import InputError

__all__ = ["EVENTS", "SKIN_REACTIONS", "event_rates", "fault_pareto"]

SKIN_REACTIONS: tuple[str, ...] = ("erythema", "vesicles", "burn")
"""``skin_check_after`` values that count as a skin reaction."""

EVENTS: tuple[str, ...] = (
    "skin_reaction",
    "erythema",
    "vesicles",
    "burn",
    "wrong_polarity",
    "current_limited",
    "ended_early",
)
"""Events :func:`event_rates` reports, in this order."""


def fault_pareto(sessions: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Pareto table of fault codes: sessions with each code, most frequent first.

    A session with several codes (``"CURRENT_LIMITED;RESISTANCE_LIMIT"``) counts once under
    each. Rates are per 1,000 sessions of the group (all sessions, with or without faults).

    Parameters
    ----------
    sessions : DataFrame
        ``fault_codes`` (';'-joined, null or "" = none) and the ``by`` columns.
    by : str, sequence of str or None
        Groups (e.g. ``"device_model"``); the order and cumulative share are within group.

    Returns
    -------
    DataFrame
        ``by`` columns, ``fault_code``, ``n_faults``, ``n_sessions``, ``per_1000_sessions``,
        ``share`` (of the group's faults), ``cumulative_share``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"fault_codes": ["PAUSED", None, "CURRENT_LIMITED;PAUSED", ""]})
    >>> fault_pareto(s)[["fault_code", "n_faults", "cumulative_share"]].values.tolist()
    [['PAUSED', 2, 0.6666666666666666], ['CURRENT_LIMITED', 1, 1.0]]
    """
    require_columns(sessions, ["fault_codes"], "sessions")
    cols = group_columns(by, sessions)
    d = sessions[cols].copy()
    d["_n"] = 1
    d["fault_code"] = sessions["fault_codes"].fillna("").astype(str).str.split(";")
    totals = d.groupby(cols, dropna=False)["_n"].sum() if cols else None
    long = d.explode("fault_code")
    long = long[long["fault_code"].notna() & (long["fault_code"] != "")]
    out_cols = [
        *cols,
        "fault_code",
        "n_faults",
        "n_sessions",
        "per_1000_sessions",
        "share",
        "cumulative_share",
    ]
    if long.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in out_cols})
    counts = long.groupby([*cols, "fault_code"], dropna=False).size().rename("n_faults")
    counts = counts.reset_index()
    if cols:
        n_sess = counts.set_index(cols).index.map(totals)
        counts["n_sessions"] = np.asarray(n_sess, dtype=int)
        counts = counts.sort_values(
            [*cols, "n_faults", "fault_code"], ascending=[True] * len(cols) + [False, True]
        )
        grp = counts.groupby(cols, dropna=False)["n_faults"]
        counts["share"] = counts["n_faults"] / grp.transform("sum")
        counts["cumulative_share"] = grp.cumsum() / grp.transform("sum")
    else:
        counts["n_sessions"] = len(sessions)
        counts = counts.sort_values(["n_faults", "fault_code"], ascending=[False, True])
        counts["share"] = counts["n_faults"] / counts["n_faults"].sum()
        counts["cumulative_share"] = counts["n_faults"].cumsum() / counts["n_faults"].sum()
    counts["per_1000_sessions"] = 1000.0 * counts["n_faults"] / counts["n_sessions"]
    return counts[out_cols].reset_index(drop=True)


def event_rates(
    sessions: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    events: Sequence[str] = EVENTS,
    per: float = 1000.0,
    method: RateMethod = "clopper-pearson",
    alpha: float = 0.05,
    tolerance: float = 0.05,
) -> pd.DataFrame:
    """Events per 1,000 sessions with exact confidence intervals (:func:`rate_ci`).

    Denominators: skin events (``skin_reaction``, ``erythema``, ``vesicles``, ``burn``)
    use the sessions whose skin was checked afterwards; ``ended_early`` the sessions with a
    prescribed dose; ``wrong_polarity`` and ``current_limited`` all sessions. Sessions left
    out of a denominator are counted in ``n_not_assessed``.

    Parameters
    ----------
    sessions : DataFrame
        Session frame; only the columns the requested events need must be present.
    by : str, sequence of str or None
        Groups (``"clinic_id"``, ``"device_model"``).
    events : sequence of str
        Subset of :data:`EVENTS`.
    per : float
        Rate scale.
    method : {"clopper-pearson", "poisson"}
    alpha : float
    tolerance : float
        As in :func:`dose_delivery`, for ``ended_early``.

    Returns
    -------
    DataFrame
        ``by`` columns, ``event``, ``n_events``, ``n_sessions`` (denominator),
        ``n_not_assessed``, ``rate_per_1000``, ``ci_low``, ``ci_high``, ``method``.
    """
    cols = group_columns(by, sessions)
    bad = [e for e in events if e not in EVENTS]
    if bad:
        raise InputError(f"unknown event(s) {bad}; expected some of {list(EVENTS)}")
    flags: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    skin_needed = any(e in ("skin_reaction", *SKIN_REACTIONS) for e in events)
    if skin_needed:
        require_columns(sessions, ["skin_check_after"], "sessions")
        skin = sessions["skin_check_after"].astype(object)
        checked = (skin.notna() & (skin != "not_checked")).to_numpy(bool)
        flags["skin_reaction"] = (skin.isin(SKIN_REACTIONS).to_numpy(bool), checked)
        for name in SKIN_REACTIONS:
            flags[name] = ((skin == name).to_numpy(bool), checked)
    for name in ("wrong_polarity", "current_limited"):
        if name in events:
            require_columns(sessions, [name], "sessions")
            flags[name] = (
                sessions[name].astype(bool).to_numpy(),
                np.ones(len(sessions), bool),
            )
    if "ended_early" in events:
        d = dose_delivery(sessions, tolerance=tolerance)
        flags["ended_early"] = (
            d["ended_early"].fillna(False).to_numpy(bool),
            d["ended_early"].notna().to_numpy(bool),
        )
    groups: list[tuple[tuple, np.ndarray]] = []
    if not cols:
        groups.append(((), np.ones(len(sessions), bool)))
    else:
        for key, g in sessions.reset_index(drop=True).groupby(cols, sort=True, dropna=False):
            mask = np.zeros(len(sessions), bool)
            mask[g.index.to_numpy()] = True
            groups.append((key if isinstance(key, tuple) else (key,), mask))
    rows = []
    for key, mask in groups:
        for ev in events:
            hit, denom = flags[ev]
            x = int((hit & denom & mask).sum())
            n = int((denom & mask).sum())
            rate, lo, hi = rate_ci(x, n, per=per, method=method, alpha=alpha)
            row = dict(zip(cols, key, strict=True))
            row.update(
                {
                    "event": ev,
                    "n_events": x,
                    "n_sessions": n,
                    "n_not_assessed": int((mask & ~denom).sum()),
                    "rate_per_1000": rate,
                    "ci_low": lo,
                    "ci_high": hi,
                    "method": method,
                }
            )
            rows.append(row)
    return pd.DataFrame(rows)
