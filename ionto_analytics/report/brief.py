""" "This quarter in brief": the report's first lines, each linked to the section behind it.

What a clinic director reads first (a FOTO report card's top strip): patients treated,
follow-up completion (share of the discharged episodes with a score after day 7), the share
improving by at least the MCID with its trend over the last four quarters, visits per
discharged episode, the clinics outside the funnel's limits, skin reactions and burns per
1,000 checked sessions, and the share of sessions that ended before the prescribed dose.
Every count follows the one suppression rule (:func:`ionto_analytics.suppression.cell_mark`);
a share whose numerator, complement or denominator is 1 to 10 is hidden.

A quarter with no episode and no session is *empty*: :attr:`Brief.warning` says so, and
``ionto report --strict`` exits with status 2.

Examples
--------
>>> from data_schemas import store
>>> from ionto_analytics.report.data import load_report_data
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> b = quarter_brief(load_report_data(engine), Quarter(2030, 1), None, {})
>>> b.empty, b.warning.split(":")[0]
(True, 'No episode and no session in 2030Q1 (1 Jan – 31 Mar 2030) in this store')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from ionto_analytics.report.data import ReportData
from ionto_analytics.report.model import Section, fmt_pct
from ionto_analytics.report.quarter import Quarter
from ionto_analytics.report.sections import (
    CONDITION_INSTRUMENT,
    active_episode_ids,
    outcome_cohort,
    outcome_stats,
    sessions_in,
)
from ionto_analytics.suppression import cell_mark, count_label, is_small

__all__ = ["Brief", "BriefItem", "plural", "quarter_brief", "share_text", "visits_per_episode"]

FOLLOW_UP_DAY = 7
"""A score after this day from intake is a follow-up score (day ≤ 7 is the baseline)."""


@dataclass(frozen=True)
class BriefItem:
    """One line of the brief: what, the value, a detail, and the section that explains it."""

    label: str
    value: str
    detail: str
    section: str


@dataclass(frozen=True)
class Brief:
    """The brief: its lines, and a warning when the quarter holds no data."""

    items: tuple[BriefItem, ...]
    warning: str = ""

    @property
    def empty(self) -> bool:
        """True when the quarter holds no episode and no session."""
        return bool(self.warning)


def plural(n: int, word: str) -> str:
    """``"1 clinic"``, ``"3 clinics"``.

    Examples
    --------
    >>> plural(1, "clinic"), plural(3, "clinic"), plural(0, "episode")
    ('1 clinic', '3 clinics', '0 episodes')
    """
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def share_text(x: int, n: int) -> str:
    """``"62.5% (50 of 80)"``, or the suppression mark when a part is 1 to 10.

    Examples
    --------
    >>> share_text(50, 80), share_text(5, 80), share_text(75, 80), share_text(0, 0)
    ('62.5% (50 of 80)', '<11', '‡', '–')
    """
    if n == 0:
        return "–"
    if is_small(x) or is_small(n) or is_small(n - x):
        return cell_mark(x if is_small(x) or not is_small(n) else n)
    return f"{fmt_pct(x / n)} ({x:,} of {n:,})"


def _responders(data: ReportData, quarter: Quarter, clinic: str | None) -> tuple[int, int]:
    stats = outcome_stats(data, outcome_cohort(data, quarter, clinic))
    own = stats["condition"].astype(str).map(CONDITION_INSTRUMENT).fillna("lefs")
    mine = stats[(own == stats["instrument"]).to_numpy(bool)]
    return int(mine["responders"].sum()), int(mine["n"].sum())


def _follow_up(data: ReportData, quarter: Quarter, clinic: str | None) -> tuple[int, int]:
    cohort = outcome_cohort(data, quarter, clinic)
    o = data.outcomes
    later = set(o.loc[o["days_from_intake"] > FOLLOW_UP_DAY, "episode_id"])
    return int(cohort["episode_id"].isin(later).sum()), len(cohort)


def visits_per_episode(data: ReportData, quarter: Quarter, clinic: str | None) -> str:
    """Mean (and median) visits from intake to discharge of the episodes discharged in the
    quarter; a mean of fewer than 11 episodes is not shown.

    Examples
    --------
    >>> from data_schemas import store
    >>> from ionto_analytics.report.data import load_report_data
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> visits_per_episode(load_report_data(engine), Quarter(2025, 3), None)
    '–'
    """
    visits = outcome_cohort(data, quarter, clinic)["n_visits"]
    if visits.empty:
        return "–"
    if is_small(len(visits)):
        return f"not shown: {cell_mark(len(visits))} episodes discharged"
    return f"{visits.mean():.1f} (median {visits.median():g})"


def _rate_text(x: int, n: int) -> str:
    if n == 0:
        return "–"
    if is_small(x) or is_small(n):
        return cell_mark(x if is_small(x) else n) + " sessions"
    return f"{1000 * x / n:.1f} per 1,000 ({x:,} of {n:,} checked sessions)"


def _date_range(data: ReportData) -> str:
    days = pd.to_datetime(data.visits["visit_date"]).dropna()
    if days.empty:
        return "The store holds no visit at all: import the clinics' exports first (ionto import)."
    return (
        f"The store holds visits from {days.min():%d %b %Y} to {days.max():%d %b %Y}; "
        "choose a quarter in that range with --quarter."
    )


def quarter_brief(
    data: ReportData, quarter: Quarter, clinic: str | None, sections: Mapping[str, Section]
) -> Brief:
    """The brief of a computed report.

    Parameters
    ----------
    data : ReportData
    quarter : Quarter
    clinic : str or None
    sections : mapping of str to Section
        The report's sections by key (their ``values`` are read, never recomputed).

    Returns
    -------
    Brief
    """
    active = active_episode_ids(data, quarter, clinic)
    sessions = sessions_in(data, quarter, clinic)
    if not active and sessions.empty:
        scope = f"clinic {clinic}" if clinic else "this store"
        return Brief(
            (),
            f"No episode and no session in {quarter.label} in {scope}: every table below is "
            f"empty. {_date_range(data)}",
        )
    patients = data.episodes.loc[data.episodes["episode_id"].isin(active), "patient_id"]
    followed, discharged = _follow_up(data, quarter, clinic)
    trend, q = [], quarter
    for _ in range(4):
        x, n = _responders(data, q, clinic)
        trend.append(f"{q}: {share_text(x, n)}")
        q = q.previous()
    x, n = _responders(data, quarter, clinic)
    items = [
        BriefItem(
            "Patients treated",
            count_label(int(patients.nunique())),
            f"{plural(len(active), 'episode')} active, {len(sessions):,} iontophoresis sessions",
            "volume",
        ),
        BriefItem(
            "Follow-up completion",
            share_text(followed, discharged),
            f"discharged episodes with a score after day {FOLLOW_UP_DAY}",
            "outcomes",
        ),
        BriefItem(
            "Improved by at least the MCID",
            share_text(x, n),
            "condition's own instrument, baseline to discharge; last four quarters, newest "
            "first: " + "; ".join(trend),
            "outcomes",
        ),
        BriefItem(
            "Visits per episode",
            visits_per_episode(data, quarter, clinic),
            f"mean visits from intake to discharge, episodes discharged in {quarter}; "
            f"{quarter.previous()}: {visits_per_episode(data, quarter.previous(), clinic)}",
            "volume",
        ),
    ]
    funnel = sections["combinations"].values.get("funnel") if "combinations" in sections else None
    if funnel is not None:
        c = funnel.clinics
        out = c[(c["flag"] != "") & (c["n"] >= 11)]
        names = ", ".join(f"{r.clinic_id} ({r.flag} limits)" for r in out.itertuples())
        items.append(
            BriefItem(
                "Clinics outside the funnel limits",
                plural(len(out), "clinic"),
                names or "every clinic with 11 or more episodes is within the 95% limits",
                "combinations",
            )
        )
    if "safety" in sections:
        skin, checked = sections["safety"].values["skin"], sections["safety"].values["checked"]
        items.append(
            BriefItem(
                "Skin reactions",
                _rate_text(int(skin.to_numpy().sum()), checked),
                f"burns: {_rate_text(int(skin['burn'].sum()), checked)}",
                "safety",
            )
        )
    if "devices" in sections:
        counts = sections["devices"].values["counts"]
        early = int(counts["Ended before the prescribed dose"].sum())
        with_dose = int(counts["With a prescribed dose"].sum())
        items.append(
            BriefItem(
                "Sessions stopped early",
                share_text(early, with_dose),
                "ended before 95% of the prescribed dose (mA·min)",
                "devices",
            )
        )
    return Brief(tuple(items))
