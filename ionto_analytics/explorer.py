"""The clinic outcomes explorer behind notebook 01: filters → trajectories, responders, reading.

Every widget callback of the notebook is a plain function here, so it is tested without a
browser:

* :func:`filter_episodes` – clinic, condition (or family) and intake-date filters;
* :func:`trajectories` – mean score (or change) by arm at baseline and weeks 2–12, with
  t-based 95 % intervals;
* :func:`responder_rates` – share of MCID responders by arm at a week, Wilson 95 % intervals;
* :func:`explore` – all three, with the plain-language reading of
  :func:`ionto_analytics.plain_language.reading`, for one choice of filters (an
  :class:`ExplorerView`); :mod:`ionto_analytics.widgets` puts ipywidgets around it.

Small cells (privacy), by :mod:`ionto_analytics.suppression` (the CMS cell-size policy,
DOMAIN.md section 5): a count of 1 to 10 patients is shown as ``"<11"`` (0 may be shown);
a share of responders is suppressed when its responders or non-responders number 1–10,
and so is the mean of fewer than 11 patients; complementary suppression hides further
cells so that no hidden count can be derived from the totals by subtraction.

Examples
--------
>>> import pandas as pd
>>> ep = pd.DataFrame({"episode_id": ["a"], "clinic_id": "c1", "condition": "plantar_fasciitis",
...                    "start_date": pd.to_datetime(["2025-01-05"])})
>>> len(filter_episodes(ep, clinic="c2"))
0
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from data_schemas.vocabulary import CONDITION_FAMILIES, CONDITIONS, conditions_in
from data_schemas.windows import window_text
from ionto_analytics.compare.responders import wilson_interval
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument
from ionto_analytics.outcomes import change_from_baseline, mcid_responders
from ionto_analytics.plain_language import ALL, condition_text, reading
from ionto_analytics.plots import arm_label, instrument_short_name, trajectory_figure
from ionto_analytics.plots.style import subtitled
from ionto_analytics.suppression import (
    COMPLEMENTARY_TEXT,
    SUPPRESSED_TEXT,
    cell_mark,
    count_label,
    is_small,
    suppress_counts,
)

__all__ = [
    "ExplorerView",
    "explore",
    "explorer_options",
    "filter_episodes",
    "responder_rates",
    "trajectories",
]


def _date(value: Any) -> pd.Timestamp | None:
    if value is None or value == "":
        return None
    try:
        return pd.Timestamp(value)
    except (TypeError, ValueError):
        raise InputError(f"not a date: {value!r} (expected e.g. 2025-03-01)") from None


def filter_episodes(
    episodes: pd.DataFrame,
    *,
    clinic: str | None = None,
    condition: str | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
) -> pd.DataFrame:
    """Episodes of one clinic and condition (or family) with intake between two dates.

    ``None`` or ``"all"`` keeps everything; dates are inclusive.

    Examples
    --------
    >>> import pandas as pd
    >>> ep = pd.DataFrame({"episode_id": ["a", "b"], "clinic_id": ["c1", "c2"],
    ...                    "condition": ["plantar_fasciitis", "lateral_epicondylitis"],
    ...                    "start_date": pd.to_datetime(["2025-01-05", "2025-03-01"])})
    >>> filter_episodes(ep, condition="epicondylitis")["episode_id"].tolist()
    ['b']
    """
    need = ["episode_id", "clinic_id", "condition", "start_date"]
    missing = [c for c in need if c not in episodes.columns]
    if missing:
        raise InputError(f"episodes: missing column(s) {missing}")
    keep = np.ones(len(episodes), dtype=bool)
    if clinic not in (None, ALL):
        keep &= (episodes["clinic_id"] == clinic).to_numpy()
    if condition not in (None, ALL):
        try:
            conds = conditions_in(str(condition))
        except ValueError as error:
            raise InputError(str(error)) from None
        keep &= episodes["condition"].isin(conds).to_numpy()
    dates = pd.to_datetime(episodes["start_date"])
    lo, hi = _date(start), _date(end)
    if lo is not None and hi is not None and lo > hi:
        raise InputError(
            f"intake dates: 'from' ({lo:%d %b %Y}) is after 'to' ({hi:%d %b %Y}); "
            "swap them or move one so that 'from' comes first"
        )
    if lo is not None:
        keep &= (dates >= lo).to_numpy()
    if hi is not None:
        keep &= (dates <= hi).to_numpy()
    return episodes[keep]


def _t_interval(x: np.ndarray, alpha: float) -> tuple[float, float, float, float]:
    n = len(x)
    if n == 0:
        return (np.nan, np.nan, np.nan, np.nan)
    m = float(np.mean(x))
    if n < 2:
        return (m, np.nan, np.nan, np.nan)
    sd = float(np.std(x, ddof=1))
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / np.sqrt(n)
    return (m, sd, m - half, m + half)


def trajectories(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    instrument: str,
    *,
    weeks: Sequence[int] = (2, 4, 6, 8, 12),
    by: str = "arm",
    measure: str = "score",
    alpha: float = 0.05,
    suppress: bool = True,
) -> pd.DataFrame:
    """Mean score (or change) by group at baseline (week 0) and each week's window.

    Windows follow :mod:`ionto_analytics.outcomes` (baseline day ≤ 7; week W nearest day
    7·W within ±7 days up to week 6, ±14 after). Intervals are t-based on the episodes
    measured in that window (each window's n is its own: patients drop out).

    Parameters
    ----------
    episodes, outcomes : DataFrame
        Episode and long outcome frames; not modified. Only episodes in ``episodes`` count.
    instrument : str
    weeks : sequence of int
    by : str
        Group column of ``episodes`` (a missing value is the group "no arm").
    measure : {"score", "change", "improvement"}
    alpha : float
    suppress : bool
        Hide means of fewer than 11 episodes (``n_label`` "<11", mean and CI NaN).

    Returns
    -------
    DataFrame
        ``by``, ``week``, ``n``, ``n_label``, ``mean``, ``sd``, ``ci_low``, ``ci_high``,
        ``instrument``, ``measure``.

    Examples
    --------
    >>> import pandas as pd
    >>> ep = pd.DataFrame({"episode_id": ["a", "b"], "arm": ["exercise"] * 2})
    >>> out = pd.DataFrame({"episode_id": ["a", "a", "b", "b"], "instrument": "nprs",
    ...                     "score": [6.0, 3.0, 8.0, 4.0], "days_from_intake": [0, 42] * 2})
    >>> t = trajectories(ep, out, "nprs", weeks=(6,), suppress=False)
    >>> t["week"].tolist(), t["n"].tolist(), t["mean"].tolist()
    ([0, 6], [2, 2], [7.0, 3.5])
    """
    if measure not in ("score", "change", "improvement"):
        raise InputError(f"measure must be 'score', 'change' or 'improvement', got {measure!r}")
    if by not in episodes.columns:
        raise InputError(f"episodes: no column {by!r} to group by")
    get_instrument(instrument)
    out = outcomes[outcomes["episode_id"].isin(episodes["episode_id"])]
    out = out[out["instrument"] == instrument]
    groups = episodes.drop_duplicates("episode_id").set_index("episode_id")[by]
    cols = [by, "week", "n", "n_label", "mean", "sd", "ci_low", "ci_high"]
    if out.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols}).assign(
            instrument=instrument, measure=measure
        )
    ch = change_from_baseline(out, windows=tuple(weeks), instrument=instrument)
    ch = ch.assign(_g=ch["episode_id"].map(groups).astype(object).fillna("no arm"))
    base = ch.drop_duplicates("episode_id").dropna(subset=["baseline"])
    pieces: list[tuple[int, pd.DataFrame, str]] = [
        (0, base, "baseline" if measure == "score" else "_zero")
    ]
    value = {"score": "score", "change": "change", "improvement": "improvement"}[measure]
    for w in weeks:
        part = ch[(ch["window"] == f"week_{int(w)}") & ch[value].notna()]
        if measure != "score":
            part = part[part["baseline"].notna()]
        pieces.append((int(w), part, value))
    rows = []
    for week, part, col in pieces:
        for g, d in part.groupby("_g", sort=False):
            x = np.zeros(len(d)) if col == "_zero" else d[col].to_numpy(float)
            m, sd, lo, hi = _t_interval(x, alpha)
            n = len(d)
            if suppress and is_small(n):
                m = sd = lo = hi = np.nan
            rows.append(
                {
                    by: g,
                    "week": week,
                    "n": n,
                    "n_label": count_label(n),
                    "mean": m,
                    "sd": sd,
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
    res = pd.DataFrame(rows, columns=cols)
    res["instrument"] = instrument
    res["measure"] = measure
    return res.sort_values([by, "week"], kind="stable").reset_index(drop=True)


def responder_rates(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    instrument: str,
    week: int = 6,
    *,
    by: str = "arm",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Share of MCID responders by group and overall, with small-cell suppression.

    The table of responders and non-responders by group, with its totals (the group's
    ``n``, the overall row), is suppressed by
    :func:`ionto_analytics.suppression.suppress_counts` (primary and complementary): a
    share is hidden when its responders, non-responders or ``n`` are.

    Episodes with a baseline and a measurement in the week's window count; the MCID is
    the registry's for each episode's condition and the week
    (:func:`ionto_analytics.outcomes.mcid_responders`).

    Returns
    -------
    DataFrame
        ``by`` (last row ``"all"``), ``n``, ``responders``, ``proportion``, ``ci_low``,
        ``ci_high`` (Wilson), ``suppressed`` (True: the share is not shown), ``n_label``,
        ``responders_label``, ``percent_label``, ``ci_label``.

    Examples
    --------
    >>> import pandas as pd
    >>> ep = pd.DataFrame({"episode_id": [f"e{i}" for i in range(30)], "arm": "exercise",
    ...                    "condition": "plantar_fasciitis"})
    >>> out = pd.DataFrame({"episode_id": list(ep["episode_id"]) * 2, "instrument": "nprs",
    ...                     "score": [7.0] * 30 + [2.0] * 15 + [6.5] * 15,
    ...                     "days_from_intake": [0] * 30 + [42] * 30})
    >>> responder_rates(ep, out, "nprs", 6)[["arm", "n_label", "percent_label"]].values.tolist()
    [['exercise', '30', '50 %'], ['all', '30', '50 %']]
    """
    if by not in episodes.columns:
        raise InputError(f"episodes: no column {by!r} to group by")
    out = outcomes[outcomes["episode_id"].isin(episodes["episode_id"])]
    out = out[out["instrument"] == instrument]
    cols = [by, "n", "responders", "proportion", "ci_low", "ci_high", "suppressed"]
    if out.empty:
        d = pd.DataFrame({"episode_id": [], "responder": [], "_g": []})
    else:
        ch = change_from_baseline(out, windows=(week,), instrument=instrument)
        ch = ch[ch["baseline"].notna() & ch["score"].notna()]
        d = mcid_responders(ch, episodes[["episode_id", "condition"]])
        groups = episodes.drop_duplicates("episode_id").set_index("episode_id")[by]
        d = d.assign(_g=d["episode_id"].map(groups).astype(object).fillna("no arm"))
    rows = []
    parts = [(g, p) for g, p in d.groupby("_g", sort=False)] if len(d) else []
    parts.sort(key=lambda gp: str(gp[0]))
    for g, part in [*parts, (ALL, d)]:
        n = len(part)
        x = int(part["responder"].astype(bool).sum()) if n else 0
        lo, hi = wilson_interval(x, n, alpha) if n else (np.nan, np.nan)
        rows.append(
            {
                by: g,
                "n": n,
                "responders": x,
                "proportion": x / n if n else np.nan,
                "ci_low": lo,
                "ci_high": hi,
            }
        )
    res = pd.DataFrame(rows, columns=cols[:-1])
    counts = pd.DataFrame(
        {"responders": res["responders"], "non_responders": res["n"] - res["responders"]}
    ).iloc[:-1]
    s = suppress_counts(counts, total_row=True, total_col=True, total_label=ALL)
    hide_n = s.mask[ALL].to_numpy(bool)
    small_n = s.primary[ALL].to_numpy(bool)
    res["suppressed"] = s.mask.any(axis=1).to_numpy(bool)
    res["n_label"] = [
        SUPPRESSED_TEXT if p else (COMPLEMENTARY_TEXT if h else count_label(n))
        for p, h, n in zip(small_n, hide_n, res["n"], strict=True)
    ]
    res["responders_label"] = [
        cell_mark(x) if h else count_label(x)
        for h, x in zip(res["suppressed"], res["responders"], strict=True)
    ]
    res["percent_label"] = [
        "hidden" if h else "–" if n == 0 else f"{100 * p:.0f} %"
        for h, n, p in zip(res["suppressed"], res["n"], res["proportion"], strict=True)
    ]
    res["ci_label"] = [
        "" if h or n == 0 else f"{100 * lo:.0f}–{100 * hi:.0f} %"
        for h, n, lo, hi in zip(
            res["suppressed"], res["n"], res["ci_low"], res["ci_high"], strict=True
        )
    ]
    return res


@dataclass(frozen=True, eq=False)
class ExplorerView:
    """What the explorer shows for one choice of filters.

    Attributes
    ----------
    figure : plotly.graph_objects.Figure
        Trajectories by arm.
    table : DataFrame
        Responder rates by arm as shown (strings, small cells suppressed).
    rates : DataFrame
        :func:`responder_rates` output (counts kept for testing; not for display).
    reading : str
    filters : dict
    """

    figure: go.Figure
    table: pd.DataFrame
    rates: pd.DataFrame
    reading: str
    filters: dict[str, Any]

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(self.reading)}</p>" + self.table.to_html(index=False)


def _display_table(rates: pd.DataFrame, by: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Arm": ["All arms" if g == ALL else arm_label(g) for g in rates[by]],
            "Patients": rates["n_label"],
            "Improved ≥ MCID": rates["responders_label"],
            "%": rates["percent_label"],
            "95 % CI": rates["ci_label"],
        }
    )


def explore(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    instrument: str,
    clinic: str | None = None,
    condition: str | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    week: int = 6,
    weeks: Sequence[int] = (2, 4, 6, 8, 12),
) -> ExplorerView:
    """Trajectories, responder table and reading for one choice of filters.

    Examples
    --------
    >>> import pandas as pd
    >>> ep = pd.DataFrame({"episode_id": ["a"], "clinic_id": "c1", "arm": "exercise",
    ...                    "condition": "plantar_fasciitis",
    ...                    "start_date": pd.to_datetime(["2025-01-05"])})
    >>> out = pd.DataFrame({"episode_id": ["a", "a"], "instrument": "nprs",
    ...                     "score": [7.0, 3.0], "days_from_intake": [0, 42]})
    >>> v = explore(ep, out, instrument="nprs")
    >>> v.table["Patients"].tolist(), v.reading[:20]
    (['<11', '<11'], 'Fewer than 11 patien')
    """
    ep = filter_episodes(episodes, clinic=clinic, condition=condition, start=start, end=end)
    traj = trajectories(ep, outcomes, instrument, weeks=weeks)
    rates = responder_rates(ep, outcomes, instrument, week)
    text = reading(rates, instrument=instrument, week=week, condition=condition, clinic=clinic)
    where = [x for x in (clinic, condition_text(condition)) if x not in (None, ALL)]
    fig = trajectory_figure(
        traj,
        instrument=instrument,
        title=subtitled(
            f"{instrument_short_name(instrument)} over time by arm"
            + (f" — {', '.join(where)}" if where else ""),
            f"each week W: the score nearest day 7·W; responders at {window_text(week)}",
        ),
    )
    return ExplorerView(
        figure=fig,
        table=_display_table(rates, "arm"),
        rates=rates,
        reading=text,
        filters={
            "clinic": clinic,
            "condition": condition,
            "instrument": instrument,
            "start": start,
            "end": end,
            "week": week,
        },
    )


def explorer_options(
    episodes: pd.DataFrame, outcomes: pd.DataFrame, condition: str | None = None
) -> dict[str, Any]:
    """Choices for the explorer's drop-downs, from the data.

    Returns
    -------
    dict
        ``clinics`` and ``conditions`` (with families first, ``"all"`` first of all),
        ``instruments`` (scored for the condition, most used first), ``start`` and ``end``
        (the intake date range, as :class:`datetime.date`).

    Examples
    --------
    >>> import pandas as pd
    >>> ep = pd.DataFrame({"episode_id": ["a"], "clinic_id": "c1",
    ...                    "condition": "plantar_fasciitis",
    ...                    "start_date": pd.to_datetime(["2025-01-05"])})
    >>> out = pd.DataFrame({"episode_id": ["a"], "instrument": "ffi"})
    >>> explorer_options(ep, out)["instruments"]
    ['ffi']
    """
    present = set(episodes["condition"].dropna())
    families = [f for f, members in CONDITION_FAMILIES.items() if present & set(members)]
    conditions = [ALL, *families, *[c for c in CONDITIONS if c in present]]
    ep = filter_episodes(episodes, condition=condition)
    scored = outcomes[outcomes["episode_id"].isin(ep["episode_id"])]
    counts = scored.drop_duplicates(["episode_id", "instrument"])["instrument"].value_counts()
    dates = pd.to_datetime(episodes["start_date"])
    return {
        "clinics": [ALL, *sorted(episodes["clinic_id"].dropna().astype(str).unique())],
        "conditions": conditions,
        "instruments": [str(i) for i in counts.index],
        "start": dates.min().date() if len(dates) else None,
        "end": dates.max().date() if len(dates) else None,
    }
