"""The clinic outcomes explorer behind notebook 01: filters → trajectories, responders, reading.

Every widget callback of the notebook is a plain function here, so it is tested without a
browser:

* :func:`filter_episodes` – clinic, condition (or family) and intake-date filters;
* :func:`trajectories` – mean score (or change) by arm at baseline and weeks 2–12, with
  t-based 95 % intervals;
* :func:`responder_rates` – share of MCID responders by arm at a week, Wilson 95 % intervals;
* :func:`reading` – the plain-language sentence ("Of 84 patients with lateral
  epicondylitis, 52 % improved by at least the MCID ...");
* :func:`explore` – all three for one choice of filters (an :class:`ExplorerView`);
* :class:`Explorer` – the ipywidgets that call :func:`explore` and redraw in place;
* :class:`TraceViewer` – the session trace viewer of notebook 03.

Small cells (privacy): a count of 1 to 10 patients is shown as ``"<11"``, following the
CMS cell-size suppression policy (DOMAIN.md section 5; 0 may be shown). Percentages that
would let a reader work such a count out (a share of responders when the responders or
the non-responders number 1–10) are suppressed too, and so is the mean of fewer than 11
patients. When exactly one arm's count is suppressed while the total is shown, the next
smallest arm is suppressed as well (complementary suppression), so it cannot be derived
by subtraction.

Examples
--------
>>> small_count(7), small_count(0), small_count(1234)
('<11', '0', '1,234')
"""

from __future__ import annotations

import datetime as dt
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from data_schemas.vocabulary import CONDITION_FAMILIES, CONDITIONS, conditions_in
from ionto_analytics.compare.responders import wilson_interval
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument, select_mcid
from ionto_analytics.outcomes import change_from_baseline, mcid_responders
from ionto_analytics.plots import arm_label, instrument_short_name, trajectory_figure

__all__ = [
    "DEFAULT_NOTEBOOK_URL",
    "SMALL_CELL",
    "Explorer",
    "ExplorerView",
    "TraceViewer",
    "condition_text",
    "explore",
    "explorer_options",
    "filter_episodes",
    "mcid_text",
    "open_store",
    "reading",
    "responder_rates",
    "small_count",
    "trajectories",
]

SMALL_CELL = 11
"""Counts from 1 to ``SMALL_CELL − 1`` are never shown."""

DEFAULT_NOTEBOOK_URL = "sqlite:///../ionto.db"
"""Store the notebooks open when ``IONTO_DATABASE_URL`` is not set: ``ionto.db`` at the
repository root, relative to ``notebooks/`` (where Jupyter runs a notebook)."""

ALL = "all"
"""Value of a filter that keeps everything."""


def small_count(n: float | int | None) -> str:
    """A count as shown to readers: ``"<11"`` for 1–10, else the number.

    Examples
    --------
    >>> small_count(11), small_count(None)
    ('11', '–')
    """
    if n is None or (isinstance(n, float) and np.isnan(n)):
        return "–"
    k = int(n)
    return f"<{SMALL_CELL}" if 0 < k < SMALL_CELL else f"{k:,}"


def _hidden(n: int) -> bool:
    return 0 < int(n) < SMALL_CELL


def open_store(url: str | None = None) -> Engine:
    """The store a notebook reads: ``url``, else ``IONTO_DATABASE_URL``, else
    :data:`DEFAULT_NOTEBOOK_URL`.

    A SQLite file that does not exist is refused (rather than silently creating an empty
    store) with the command that builds the demo store.

    Examples
    --------
    >>> open_store("sqlite:////no/such/ionto.db")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: no store at /no/such/ionto.db ...
    """
    from data_schemas import store

    chosen = url or os.environ.get("IONTO_DATABASE_URL") or DEFAULT_NOTEBOOK_URL
    parsed = make_url(chosen)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(str(parsed.database))
        if not path.exists():
            raise InputError(
                f"no store at {path} (from {chosen!r}); run `make demo` at the repository root "
                "or set IONTO_DATABASE_URL to your store"
            )
    return store.connect(chosen)


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
            if suppress and n < SMALL_CELL:
                m = sd = lo = hi = np.nan
            rows.append(
                {
                    by: g,
                    "week": week,
                    "n": n,
                    "n_label": small_count(n),
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


def mcid_text(instrument: str, condition: str | None = None, week: int | None = None) -> str:
    """The MCID in words, as used for the condition(s) and week.

    Examples
    --------
    >>> mcid_text("prtee", "lateral_epicondylitis", 6)
    '11 points or 37 % of the baseline score on PRTEE'
    >>> mcid_text("visa_a", week=12)
    '14 points on VISA-A'
    """
    name = instrument_short_name(instrument)
    unit = get_instrument(instrument).unit
    conds = [None] if condition in (None, ALL) else list(conditions_in(str(condition)))
    ms = {select_mcid(instrument, condition=c, week=week) for c in conds}
    texts = []
    for m in sorted(ms, key=lambda m: m.points):
        if m.transition:
            texts.append(f"a rating of at least {m.points:g} on {name}")
        elif m.percent is not None:
            texts.append(
                f"{m.points:g} {unit} or {100 * m.percent:g} % of the baseline score on {name}"
            )
        else:
            texts.append(f"{m.points:g} {unit} on {name}")
    return texts[0] if len(texts) == 1 else "the condition's MCID (" + "; ".join(texts) + ")"


def condition_text(condition: str | None) -> str:
    """A condition or family key in words.

    Examples
    --------
    >>> condition_text("lateral_epicondylitis"), condition_text(None)
    ('lateral epicondylitis', 'any condition')
    """
    if condition in (None, ALL):
        return "any condition"
    return str(condition).replace("_", " ")


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
    arm_rows = np.arange(len(res)) < len(res) - 1
    hide_n = np.array([_hidden(n) for n in res["n"]], dtype=bool)
    _complement(hide_n, res["n"].to_numpy(int), arm_rows)
    hide_x = np.array(
        [_hidden(x) or _hidden(n - x) for n, x in zip(res["n"], res["responders"], strict=True)],
        dtype=bool,
    )
    hide_x |= hide_n
    _complement(hide_x, res["responders"].to_numpy(int), arm_rows)
    res["suppressed"] = hide_x | hide_n
    res["n_label"] = [
        f"<{SMALL_CELL}" if _hidden(n) else ("suppressed" if h else small_count(n))
        for h, n in zip(hide_n, res["n"], strict=True)
    ]
    res["responders_label"] = [
        "suppressed" if h else small_count(x)
        for h, x in zip(res["suppressed"], res["responders"], strict=True)
    ]
    res["percent_label"] = [
        "suppressed" if h or n == 0 else f"{100 * p:.0f} %"
        for h, n, p in zip(res["suppressed"], res["n"], res["proportion"], strict=True)
    ]
    res["ci_label"] = [
        "" if h or n == 0 else f"{100 * lo:.0f}–{100 * hi:.0f} %"
        for h, n, lo, hi in zip(
            res["suppressed"], res["n"], res["ci_low"], res["ci_high"], strict=True
        )
    ]
    return res


def _complement(hidden: np.ndarray, counts: np.ndarray, rows: np.ndarray) -> None:
    """Complementary suppression: when exactly one of ``rows`` is hidden, hide the next
    smallest non-zero count too (in place)."""
    if rows.sum() > 1 and (hidden & rows).sum() == 1:
        cand = [(int(counts[i]), i) for i in np.flatnonzero(rows & ~hidden) if counts[i] > 0]
        if cand:
            hidden[min(cand)[1]] = True


def reading(
    rates: pd.DataFrame,
    *,
    instrument: str,
    week: int,
    condition: str | None = None,
    clinic: str | None = None,
    by: str = "arm",
) -> str:
    """The plain-language reading of the overall responder rate (the ``"all"`` row).

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"arm": ["all"], "n": [84], "responders": [44],
    ...                   "proportion": [44 / 84], "ci_low": [0.42], "ci_high": [0.63],
    ...                   "suppressed": [False]})
    >>> text = reading(r, instrument="prtee", week=6, condition="lateral_epicondylitis")
    >>> print(text)  # doctest: +ELLIPSIS
    Of 84 patients with lateral epicondylitis, 52 % improved ... at week 6 (95 % CI 42–63 %).
    >>> "(11 points or 37 % of the baseline score on PRTEE)" in text
    True
    """
    row = rates[rates[by] == ALL]
    if row.empty:
        raise InputError("reading: the rates have no 'all' row (use responder_rates)")
    r = row.iloc[0]
    n, x = int(r["n"]), int(r["responders"])
    who = "patients" if condition in (None, ALL) else f"patients with {condition_text(condition)}"
    where = "" if clinic in (None, ALL) else f" at {clinic}"
    mcid = mcid_text(instrument, condition, week)
    if n == 0:
        return (
            f"No {who}{where} have a {instrument_short_name(instrument)} score at baseline and "
            f"at week {week}; widen the filters or choose another instrument."
        )
    if n < SMALL_CELL:
        return (
            f"Fewer than {SMALL_CELL} {who}{where} have a baseline and a week-{week} "
            f"{instrument_short_name(instrument)} score: results for so few patients are not "
            "shown (privacy). Widen the filters."
        )
    if _hidden(x):
        share = f"fewer than {SMALL_CELL}"
        return (
            f"Of {n:,} {who}{where}, {share} improved by at least the MCID ({mcid}) at week {week}."
        )
    if _hidden(n - x):
        return (
            f"Of {n:,} {who}{where}, all but fewer than {SMALL_CELL} improved by at least the "
            f"MCID ({mcid}) at week {week}."
        )
    return (
        f"Of {n:,} {who}{where}, {100 * x / n:.0f} % improved by at least the MCID ({mcid}) "
        f"at week {week} (95 % CI {100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f} %)."
    )


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
        title=f"{instrument_short_name(instrument)} over time by arm"
        + (f" — {', '.join(where)}" if where else ""),
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


class Explorer:
    """ipywidgets front end: drop-downs and dates that redraw the view in place.

    Display it in a notebook (``Explorer(episodes, outcomes)`` as the last line of a cell).
    Every change of a control calls :meth:`update`, which calls :func:`explore` and
    replaces the output area's content; :attr:`view` keeps the last :class:`ExplorerView`.

    Parameters
    ----------
    episodes, outcomes : DataFrame
        Frames of :mod:`ionto_analytics.load`; not modified.
    condition, instrument : str, optional
        Initial choices (default: the first family, its most used instrument).
    week : int
        Initial follow-up week.
    """

    def __init__(
        self,
        episodes: pd.DataFrame,
        outcomes: pd.DataFrame,
        *,
        condition: str | None = None,
        instrument: str | None = None,
        week: int = 6,
    ) -> None:
        import ipywidgets as w

        self.episodes = episodes
        self.outcomes = outcomes
        opts = explorer_options(episodes, outcomes)
        cond = condition or (opts["conditions"][1] if len(opts["conditions"]) > 1 else ALL)
        inst_opts = explorer_options(episodes, outcomes, cond)["instruments"] or ["nprs"]
        self.controls: dict[str, Any] = {
            "clinic": w.Dropdown(options=opts["clinics"], value=ALL, description="Clinic"),
            "condition": w.Dropdown(
                options=opts["conditions"], value=cond, description="Condition"
            ),
            "instrument": w.Dropdown(
                options=inst_opts,
                value=instrument if instrument in inst_opts else inst_opts[0],
                description="Instrument",
            ),
            "week": w.Dropdown(options=[4, 6, 8, 12], value=week, description="Week"),
            "start": w.DatePicker(value=opts["start"], description="Intake from"),
            "end": w.DatePicker(value=opts["end"], description="to"),
        }
        self.output = w.Output()
        self.message = w.HTML()
        self.view: ExplorerView | None = None
        self._busy = False
        self.controls["condition"].observe(self._condition_changed, names="value")
        for name, c in self.controls.items():
            if name != "condition":
                c.observe(self.update, names="value")
        c = self.controls
        self.widget = w.VBox(
            [
                w.HBox([c["clinic"], c["condition"], c["instrument"]]),
                w.HBox([c["week"], c["start"], c["end"]]),
                self.message,
                self.output,
            ]
        )
        self.update()

    def _condition_changed(self, change: Any = None) -> None:
        opts = explorer_options(self.episodes, self.outcomes, self.controls["condition"].value)
        inst = self.controls["instrument"]
        choices = opts["instruments"] or ["nprs"]
        keep = inst.value if inst.value in choices else choices[0]
        self._busy = True  # one redraw for the new condition, not one per control change
        try:
            inst.options = choices
            inst.value = keep
        finally:
            self._busy = False
        self.update()

    def update(self, change: Any = None) -> ExplorerView | None:
        """Recompute the view from the controls and redraw it (the widgets' callback)."""
        from IPython.display import HTML, Markdown, display

        if self._busy:
            return self.view
        c = self.controls
        try:
            view = explore(
                self.episodes,
                self.outcomes,
                instrument=c["instrument"].value,
                clinic=c["clinic"].value,
                condition=c["condition"].value,
                start=c["start"].value,
                end=c["end"].value,
                week=int(c["week"].value),
            )
        except InputError as error:
            self.message.value = f"<b>Cannot show this choice:</b> {html.escape(str(error))}"
            return None
        self.message.value = ""
        self.view = view
        with self.output:
            self.output.clear_output(wait=True)
            display(Markdown(f"**{view.reading}**"))
            display(view.figure)
            display(HTML(view.table.to_html(index=False)))
        return view

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


class TraceViewer:
    """ipywidgets session trace viewer: pick a session, see its trace (notebook 03).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store (samples are read one session at a time).
    choices : dict
        Label → ``session_id``, e.g. :func:`ionto_analytics.devices.trace_choices`.
    """

    def __init__(self, engine: Engine, choices: dict[str, str]) -> None:
        import ipywidgets as w

        if not choices:
            raise InputError("TraceViewer: no session to show (empty choices)")
        self.engine = engine
        self.session = w.Dropdown(
            options=list(choices.items()), description="Session", layout={"width": "640px"}
        )
        self.output = w.Output()
        self.figure: go.Figure | None = None
        self.session.observe(self.update, names="value")
        self.widget = w.VBox([self.session, self.output])
        self.update()

    def update(self, change: Any = None) -> go.Figure:
        """Read the chosen session's samples and redraw (the drop-down's callback)."""
        from IPython.display import display

        from ionto_analytics.devices import session_trace
        from ionto_analytics.plots import trace_figure

        self.figure = trace_figure(session_trace(self.engine, self.session.value))
        with self.output:
            self.output.clear_output(wait=True)
            display(self.figure)
        return self.figure

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
