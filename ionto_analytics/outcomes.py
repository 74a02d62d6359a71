"""Change from baseline at stated windows, MCID responders, time to first MCID, per-visit change.

The baseline and follow-up windows are those of :mod:`data_schemas.windows` (the rule
is written there once); **same-day duplicates** of one (episode, instrument) are averaged
first.

Change = follow-up − baseline (raw scale); ``improvement`` = change signed so that positive
means better (``-change`` for lower-is-better instruments); ``percent_change`` = change /
baseline × 100 (NaN when the baseline is 0).

Examples
--------
>>> import pandas as pd
>>> out = pd.DataFrame({"episode_id": ["e1"] * 3, "instrument": ["nprs"] * 3,
...                     "score": [7.0, 4.0, 2.0], "days_from_intake": [0, 27, 85]})
>>> ch = change_from_baseline(out, windows=(4, 12))
>>> ch[["window", "baseline", "score", "change", "improvement"]].to_numpy().tolist()
[['week_4', 7.0, 4.0, -3.0, 3.0], ['week_12', 7.0, 2.0, -5.0, 5.0]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from data_schemas.frames import require_columns
from data_schemas.windows import (
    BASELINE_MAX_DAY,
    Window,
    nearest_in_window,
    window_label,
    window_week,
)
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import check_scores, get_instrument, select_mcid

__all__ = [
    "baseline_scores",
    "change_from_baseline",
    "change_per_visit",
    "kaplan_meier",
    "mcid_responders",
    "time_to_mcid",
]


def _prepare(
    outcomes: pd.DataFrame, instrument: str | None, *, episode: str, score: str, day: str
) -> pd.DataFrame:
    require_columns(outcomes, [episode, "instrument", score, day], "outcomes")
    df = outcomes[[episode, "instrument", score, day]].copy()
    if instrument is not None:
        get_instrument(instrument)
        df = df[df["instrument"] == instrument]
    for key in pd.unique(df["instrument"]):
        check_scores(df.loc[df["instrument"] == key, score], str(key), where="outcomes")
    if df[day].isna().any() or (df[day] < 0).any():
        raise InputError(f"outcomes: '{day}' must be ≥ 0 and not missing (intake = day 0)")
    df = df.dropna(subset=[score])
    df = (
        df.groupby([episode, "instrument", day], as_index=False, sort=True)[score]
        .mean()
        .rename(columns={episode: "episode_id", score: "score", day: "day"})
    )
    return df


def baseline_scores(
    outcomes: pd.DataFrame,
    instrument: str | None = None,
    *,
    episode: str = "episode_id",
    score: str = "score",
    day: str = "days_from_intake",
    max_day: int = BASELINE_MAX_DAY,
) -> pd.DataFrame:
    """Baseline per (episode, instrument): the measurement at day ≤ ``max_day`` nearest day 0.

    Parameters
    ----------
    outcomes : DataFrame
        Long outcomes (``episode_id``, ``instrument``, ``score``, ``days_from_intake``).
    instrument : str or None
        Restrict to one instrument.
    episode, score, day : str
        Column names.
    max_day : int
        Latest day that counts as baseline.

    Returns
    -------
    DataFrame
        ``episode_id``, ``instrument``, ``baseline``, ``baseline_day``.

    Examples
    --------
    >>> import pandas as pd
    >>> out = pd.DataFrame({"episode_id": ["a", "a", "b"], "instrument": "nprs",
    ...                     "score": [6.0, 5.0, 4.0], "days_from_intake": [2, 0, 10]})
    >>> baseline_scores(out).to_dict("records")
    [{'episode_id': 'a', 'instrument': 'nprs', 'baseline': 5.0, 'baseline_day': 0}]
    """
    df = _prepare(outcomes, instrument, episode=episode, score=score, day=day)
    base = df[df["day"] <= max_day].groupby(["episode_id", "instrument"], as_index=False).first()
    return base.rename(columns={"score": "baseline", "day": "baseline_day"})[
        ["episode_id", "instrument", "baseline", "baseline_day"]
    ].reset_index(drop=True)


def _pick_window(df: pd.DataFrame, label: str, max_day: int) -> pd.DataFrame:
    week = window_week(label)
    if week is None:
        cand = df[df["day"] > max_day].sort_values(["episode_id", "instrument", "day"])
        return cand.groupby(["episode_id", "instrument"], as_index=False).last()
    group = df.groupby(["episode_id", "instrument"], sort=True).ngroup().to_numpy()
    chosen = nearest_in_window(group, df["day"].to_numpy(dtype=float), week)
    return df.iloc[chosen].reset_index(drop=True)


def change_from_baseline(
    outcomes: pd.DataFrame,
    windows: Sequence[Window] = (4, 6, 12, "discharge"),
    instrument: str | None = None,
    *,
    episode: str = "episode_id",
    score: str = "score",
    day: str = "days_from_intake",
) -> pd.DataFrame:
    """Change from baseline at each window (rule in the module docstring).

    Every (episode, instrument) with any measurement gets one row per window; a missing
    baseline or window measurement gives NaN there (and NaN change), never a dropped row.

    Parameters
    ----------
    outcomes : DataFrame
        Long outcomes; not modified.
    windows : sequence of int or "discharge"
        Weeks and/or ``"discharge"``.
    instrument : str or None
        Restrict to one instrument.
    episode, score, day : str
        Column names.

    Returns
    -------
    DataFrame
        ``episode_id``, ``instrument``, ``window``, ``target_day`` (NaN for discharge),
        ``baseline``, ``baseline_day``, ``score``, ``days_from_intake``, ``change``,
        ``percent_change``, ``improvement``.

    Examples
    --------
    >>> import pandas as pd
    >>> out = pd.DataFrame({"episode_id": "e", "instrument": "visa_a",
    ...                     "score": [50.0, 58.0, 62.0], "days_from_intake": [0, 38, 46]})
    >>> change_from_baseline(out, windows=(6,))[["days_from_intake", "change"]].values.tolist()
    [[38.0, 8.0]]
    """
    labels = [window_label(w) for w in windows]
    df = _prepare(outcomes, instrument, episode=episode, score=score, day=day)
    base = (
        df[df["day"] <= BASELINE_MAX_DAY]
        .groupby(["episode_id", "instrument"], as_index=False)
        .first()
        .rename(columns={"score": "baseline", "day": "baseline_day"})
    )
    keys = df[["episode_id", "instrument"]].drop_duplicates()
    pieces = []
    for label in labels:
        picked = _pick_window(df, label, BASELINE_MAX_DAY).rename(
            columns={"day": "days_from_intake"}
        )
        part = keys.merge(base, how="left").merge(picked, how="left")
        part.insert(2, "window", label)
        week = window_week(label)
        part.insert(3, "target_day", np.nan if week is None else float(7 * week))
        pieces.append(part)
    cols = [
        "episode_id",
        "instrument",
        "window",
        "target_day",
        "baseline",
        "baseline_day",
        "score",
        "days_from_intake",
    ]
    if not pieces:
        raise InputError("change_from_baseline: windows is empty")
    res = pd.concat(pieces, ignore_index=True)[cols]
    res["baseline_day"] = res["baseline_day"].astype(float)
    res["days_from_intake"] = res["days_from_intake"].astype(float)
    res["change"] = res["score"] - res["baseline"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = res["change"] / res["baseline"] * 100.0
    res["percent_change"] = pct.where(res["baseline"] != 0)
    sign = res["instrument"].map(lambda k: 1.0 if get_instrument(k).higher_is_better else -1.0)
    res["improvement"] = res["change"] * sign.astype(float)
    order = {lab: i for i, lab in enumerate(labels)}
    res = res.sort_values(
        ["episode_id", "instrument", "window"],
        key=lambda s: s.map(order) if s.name == "window" else s,
        kind="stable",
    )
    return res.reset_index(drop=True)


def _conditions(episodes: pd.DataFrame | None, episode_ids: pd.Series) -> pd.Series:
    if episodes is None:
        return pd.Series([None] * len(episode_ids), index=episode_ids.index, dtype=object)
    require_columns(episodes, ["episode_id", "condition"], "episodes")
    cmap = episodes.drop_duplicates("episode_id").set_index("episode_id")["condition"]
    return episode_ids.map(cmap)


def mcid_responders(
    changes: pd.DataFrame,
    episodes: pd.DataFrame | None = None,
    *,
    source: str | None = None,
    allow_unverified: bool = False,
) -> pd.DataFrame:
    """Flag MCID responders in the output of :func:`change_from_baseline`.

    The MCID comes from the registry (:func:`ionto_analytics.instruments.select_mcid`) for the
    episode's condition (when ``episodes`` is given) and the window's week; baseline-dependent
    thresholds (NPRS "2 points or 30 %") are evaluated at each episode's baseline. A responder
    improved by at least the threshold *and* by more than 0. For a transition rating (GROC)
    the follow-up score itself is compared with the threshold. ``responder`` is missing
    (``<NA>``) when the change is missing.

    Parameters
    ----------
    changes : DataFrame
        Output of :func:`change_from_baseline`; not modified.
    episodes : DataFrame or None
        Episode frame, for each episode's ``condition``.
    source : str or None
        Force MCIDs with this source tag.
    allow_unverified : bool
        Passed to :func:`~ionto_analytics.instruments.select_mcid`: use an MCID with an
        unverified source without a warning.

    Returns
    -------
    DataFrame
        ``changes`` plus ``mcid_threshold``, ``mcid_source``, ``mcid_note`` (how the MCID
        fits the row: "" or, e.g., "validated at 12 weeks, applied at week 6"),
        ``responder`` (boolean).

    Examples
    --------
    >>> import pandas as pd
    >>> out = pd.DataFrame({"episode_id": ["a", "a", "b", "b"], "instrument": "nprs",
    ...                     "score": [5.0, 3.5, 8.0, 6.5], "days_from_intake": [0, 42] * 2})
    >>> r = mcid_responders(change_from_baseline(out, windows=(6,)))
    >>> r[["mcid_threshold", "responder"]].values.tolist()
    [[1.5, True], [2.0, False]]
    """
    require_columns(
        changes,
        ["episode_id", "instrument", "window", "baseline", "score", "improvement"],
        "changes",
    )
    out = changes.copy()
    cond = _conditions(episodes, out["episode_id"])
    thr = np.full(len(out), np.nan)
    src = np.empty(len(out), dtype=object)
    note = np.empty(len(out), dtype=object)
    resp = pd.array([pd.NA] * len(out), dtype="boolean")
    for i, (inst, label, base, score, imp, c) in enumerate(
        zip(
            out["instrument"],
            out["window"],
            out["baseline"],
            out["score"],
            out["improvement"],
            cond,
            strict=True,
        )
    ):
        m = select_mcid(
            inst,
            condition=c if isinstance(c, str) else None,
            week=window_week(label),
            source=source,
            allow_unverified=allow_unverified,
        )
        src[i] = m.source
        note[i] = m.note
        if m.transition:
            thr[i] = m.points
            if not pd.isna(score):
                resp[i] = bool(score >= m.points)
            continue
        if pd.isna(base):
            continue
        thr[i] = float(m.threshold(float(base)))
        if not pd.isna(imp):
            resp[i] = bool(imp >= thr[i] - 1e-9 and imp > 0)
    out["mcid_threshold"] = thr
    out["mcid_source"] = src
    out["mcid_note"] = note
    out["responder"] = resp
    return out


def time_to_mcid(
    outcomes: pd.DataFrame,
    instrument: str,
    episodes: pd.DataFrame | None = None,
    *,
    episode: str = "episode_id",
    score: str = "score",
    day: str = "days_from_intake",
    source: str | None = None,
) -> pd.DataFrame:
    """Days from intake to the first measurement that reaches the MCID (right-censored).

    Episodes with a baseline only. The event is the first post-baseline measurement whose
    improvement reaches the (general, not week-specific) MCID; otherwise the episode is
    censored at its last measurement day (at the baseline day when nothing followed it).

    Returns
    -------
    DataFrame
        ``episode_id``, ``instrument``, ``duration_days``, ``event`` (bool), plus ``arm`` and
        ``condition`` when ``episodes`` is given.

    Examples
    --------
    >>> import pandas as pd
    >>> out = pd.DataFrame({"episode_id": ["a"] * 3 + ["b"] * 2, "instrument": "nprs",
    ...                     "score": [6.0, 5.0, 3.0, 6.0, 6.0],
    ...                     "days_from_intake": [0, 14, 28, 0, 21]})
    >>> time_to_mcid(out, "nprs")[["duration_days", "event"]].values.tolist()
    [[28.0, True], [21.0, False]]
    """
    inst = get_instrument(instrument)
    df = _prepare(outcomes, instrument, episode=episode, score=score, day=day)
    sign = 1.0 if inst.higher_is_better else -1.0
    cond = (
        None
        if episodes is None
        else _conditions(episodes, pd.Series(pd.unique(df["episode_id"]))).set_axis(
            pd.unique(df["episode_id"])
        )
    )
    rows = []
    for eid, g in df.groupby("episode_id", sort=True):
        base = g[g["day"] <= BASELINE_MAX_DAY]
        if base.empty:
            continue
        b_score, b_day = float(base["score"].iloc[0]), float(base["day"].iloc[0])
        c = None if cond is None else cond.get(eid)
        m = select_mcid(instrument, condition=c if isinstance(c, str) else None, source=source)
        after = g[g["day"] > b_day]
        if m.transition:
            hit = after[after["score"] >= m.points]
        else:
            thr = float(m.threshold(b_score))
            imp = sign * (after["score"] - b_score)
            hit = after[(imp >= thr - 1e-9) & (imp > 0)]
        if not hit.empty:
            rows.append((eid, float(hit["day"].iloc[0]), True))
        else:
            rows.append((eid, float(after["day"].max()) if not after.empty else b_day, False))
    res = pd.DataFrame(rows, columns=["episode_id", "duration_days", "event"])
    res.insert(1, "instrument", instrument)
    res["event"] = res["event"].astype(bool)
    if episodes is not None:
        extra = [c for c in ("arm", "condition") if c in episodes.columns]
        res = res.merge(
            episodes[["episode_id", *extra]].drop_duplicates("episode_id"),
            how="left",
            on="episode_id",
        )
    return res


def _km_one(t: np.ndarray, e: np.ndarray, alpha: float) -> pd.DataFrame:
    times = np.unique(t)
    n_risk = np.array([(t >= u).sum() for u in times], dtype=float)
    d = np.array([((t == u) & e).sum() for u in times], dtype=float)
    c = np.array([((t == u) & ~e).sum() for u in times], dtype=float)
    surv = np.cumprod(1.0 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        gw = np.cumsum(np.where(n_risk > d, d / (n_risk * (n_risk - d)), np.inf))
        se = surv * np.sqrt(gw)
        # log-log (Kalbfleisch-Prentice) interval: exp(-exp(log(-log S) ± z·sqrt(gw)/log S))
        z = stats.norm.ppf(1 - alpha / 2)
        lls = np.log(-np.log(surv))
        half = z * np.sqrt(gw) / np.abs(np.log(surv))
        lo = np.exp(-np.exp(lls + half))
        hi = np.exp(-np.exp(lls - half))
    undefined = (surv <= 0) | (surv >= 1) | ~np.isfinite(gw)
    lo = np.where(undefined, np.nan, lo)
    hi = np.where(undefined, np.nan, hi)
    se = np.where(np.isfinite(se), se, np.nan)
    return pd.DataFrame(
        {
            "time": times,
            "n_at_risk": n_risk.astype(int),
            "n_events": d.astype(int),
            "n_censored": c.astype(int),
            "survival": surv,
            "se": se,
            "ci_low": lo,
            "ci_high": hi,
        }
    )


def kaplan_meier(
    data: pd.DataFrame,
    duration: str = "duration_days",
    event: str = "event",
    by: str | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Kaplan–Meier estimate of "not yet reached the MCID" with Greenwood SEs.

    ``survival`` is the product-limit estimate; ``se`` the Greenwood standard error
    ``S·sqrt(Σ d/(n(n−d)))``; the interval is the log-log (Kalbfleisch–Prentice) one,
    NaN where undefined (S = 0 or 1). Cumulative incidence of reaching the MCID is
    ``1 − survival``.

    Parameters
    ----------
    data : DataFrame
        One row per episode, e.g. :func:`time_to_mcid` output; not modified.
    duration, event : str
        Column names (event: True = reached the MCID, False = censored).
    by : str or None
        Group column (e.g. ``"arm"``): one curve per group.
    alpha : float
        1 − confidence level.

    Returns
    -------
    DataFrame
        [``by``], ``time``, ``n_at_risk``, ``n_events``, ``n_censored``, ``survival``,
        ``se``, ``ci_low``, ``ci_high``.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"duration_days": [1, 2, 2, 3], "event": [True, True, False, True]})
    >>> kaplan_meier(d)["survival"].round(4).tolist()
    [0.75, 0.5, 0.0]
    """
    require_columns(data, [duration, event] + ([by] if by else []), "kaplan_meier data")
    t = data[duration].to_numpy(dtype=float)
    if np.isnan(t).any() or (t < 0).any():
        raise InputError(f"kaplan_meier: '{duration}' must be ≥ 0 and not missing")
    e = data[event].astype(bool).to_numpy()
    if by is None:
        return _km_one(t, e, alpha)
    parts = []
    groups = data[by].to_numpy()
    for g in pd.unique(groups):
        m = groups == g
        part = _km_one(t[m], e[m], alpha)
        part.insert(0, by, g)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def change_per_visit(changes: pd.DataFrame, episodes: pd.DataFrame) -> pd.DataFrame:
    """Change and improvement divided by the episode's number of visits.

    Episodes with ``n_visits`` = 0 or missing get NaN per-visit values.

    Returns
    -------
    DataFrame
        ``changes`` plus ``n_visits``, ``change_per_visit``, ``improvement_per_visit``.

    Examples
    --------
    >>> import pandas as pd
    >>> ch = pd.DataFrame({"episode_id": ["e"], "change": [-4.0], "improvement": [4.0]})
    >>> ep = pd.DataFrame({"episode_id": ["e"], "n_visits": [8]})
    >>> change_per_visit(ch, ep)["improvement_per_visit"].tolist()
    [0.5]
    """
    require_columns(changes, ["episode_id", "change", "improvement"], "changes")
    require_columns(episodes, ["episode_id", "n_visits"], "episodes")
    out = changes.copy()
    visits = (
        out["episode_id"]
        .map(episodes.drop_duplicates("episode_id").set_index("episode_id")["n_visits"])
        .astype(float)
    )
    visits = visits.where(visits > 0)
    out["n_visits"] = visits
    out["change_per_visit"] = out["change"] / visits
    out["improvement_per_visit"] = out["improvement"] / visits
    return out
