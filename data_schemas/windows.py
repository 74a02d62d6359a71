"""Baseline and follow-up windows: which score counts as the baseline and as week W.

The rule, written once here in the contract and used by every analysis, table and figure
and by the emulator's ``ground_truth.json`` (whose windowed differences are the estimand a
window measures):

* **Baseline** = the measurement at ``days_from_intake ≤ 7`` nearest day 0 (the earliest).
* **Week W** is one of the follow-up weeks :data:`FOLLOW_UP_WEEKS` (2, 4, 6, 8, 12, 16, 26,
  52). Its window is the days within ±7 of day ``7·W`` (``W ≤ 6``) or ±14 (``W > 6``), cut at
  the midpoints between neighbouring follow-up weeks, so that the windows never overlap and
  each score belongs to at most one of them: week 4 = days 22–35, week 6 = days 36–49,
  week 8 = days 50–70, week 12 = days 71–98 (:func:`window_days`). The week-W score is the
  measurement in the window nearest day ``7·W``; ties go to the earlier day. A window with
  no measurement gives a row with ``score`` NaN (kept, never dropped). Any other week is
  refused: a "week 10" would silently be the week-12 data. :func:`nearest_in_window`
  picks the week-W measurement of every group at once.
* **Discharge** = the last measurement after the baseline window (``day > 7``); it is a
  different quantity (the last score, whenever it was taken) and may repeat a week's score.

Examples
--------
>>> window_text(6)
'week 6 = days 36–49, nearest to day 42'
"""

from __future__ import annotations

import numpy as np

from data_schemas.errors import InputError

__all__ = [
    "BASELINE_MAX_DAY",
    "FOLLOW_UP_WEEKS",
    "Window",
    "nearest_in_window",
    "window_days",
    "window_label",
    "window_text",
    "window_tolerance",
    "window_week",
]

BASELINE_MAX_DAY = 7
"""Latest day a measurement counts as baseline."""

FOLLOW_UP_WEEKS: tuple[int, ...] = (2, 4, 6, 8, 12, 16, 26, 52)
"""The follow-up weeks that have a window (the usual PROM time points of PT episodes and
trials: 2 to 12 weeks in care, then 4, 6 and 12 months)."""

Window = int | str


def window_tolerance(week: int) -> int:
    """Half-width (days) of the window around day 7·week: 7 for week ≤ 6, else 14.

    Examples
    --------
    >>> window_tolerance(4), window_tolerance(12)
    (7, 14)
    """
    return 7 if week <= 6 else 14


def _follow_up_week(week: object) -> int:
    if (
        isinstance(week, int | np.integer)
        and not isinstance(week, bool)
        and int(week) in FOLLOW_UP_WEEKS
    ):
        return int(week)
    raise InputError(
        f"week {week!r} has no follow-up window; choose one of "
        f"{', '.join(map(str, FOLLOW_UP_WEEKS))} (windows do not overlap, so an in-between "
        "week would be a neighbour's data)"
    )


def window_days(week: int) -> tuple[int, int]:
    """First and last day (inclusive) of the week-``week`` window.

    ±7 days around day 7·week up to week 6, ±14 after, cut at the midpoints between
    neighbouring follow-up weeks (a midpoint day goes to the earlier week) and after the
    baseline window.

    Examples
    --------
    >>> [window_days(w) for w in (2, 4, 6, 8, 12)]
    [(8, 21), (22, 35), (36, 49), (50, 70), (71, 98)]
    >>> window_days(10)
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: week 10 has no follow-up window; choose one of 2, 4, 6, 8, 12, 16, 26, 52 (windows do not overlap, so an in-between week would be a neighbour's data)
    """  # noqa: E501
    week = _follow_up_week(week)
    i = FOLLOW_UP_WEEKS.index(week)
    target, tol = 7 * week, window_tolerance(week)
    first, last = max(target - tol, BASELINE_MAX_DAY + 1), target + tol
    if i > 0:
        first = max(first, (7 * FOLLOW_UP_WEEKS[i - 1] + target) // 2 + 1)
    if i + 1 < len(FOLLOW_UP_WEEKS):
        last = min(last, (target + 7 * FOLLOW_UP_WEEKS[i + 1]) // 2)
    return first, last


def nearest_in_window(group: np.ndarray, day: np.ndarray, week: int) -> np.ndarray:
    """Positions of the week-``week`` measurements: one per group with a day in the window.

    The chosen row of a group is the one whose day lies in :func:`window_days` and after the
    baseline window and is nearest day ``7·week``; ties go to the earlier day, and rows of
    the same group and day to the first of them.

    Parameters
    ----------
    group : numpy.ndarray
        Group of each row (an episode, or episode and instrument, as sortable codes).
    day : numpy.ndarray
        Days from intake of each row, same length as ``group``.
    week : int
        A follow-up week of :data:`FOLLOW_UP_WEEKS`.

    Returns
    -------
    numpy.ndarray
        Integer positions into ``group`` and ``day``, ordered by group; groups with no day in
        the window have none.

    Examples
    --------
    Week 2 is days 8–21, nearest day 14: episode 0 has days 12 and 16 (a tie, so day 12),
    episode 1 only day 30 (no week-2 score), episode 2 days 21 and 15.

    >>> group = np.array([0, 0, 0, 1, 2, 2])
    >>> day = np.array([0, 12, 16, 30, 21, 15])
    >>> nearest_in_window(group, day, 2).tolist()
    [1, 5]
    >>> nearest_in_window(group, day[:3], 2)
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: nearest_in_window: group has 6 rows but day has 3; pass one day per row
    """  # noqa: E501
    group, day = np.asarray(group), np.asarray(day)
    if group.shape != day.shape or group.ndim != 1:
        raise InputError(
            f"nearest_in_window: group has {group.size} rows but day has {day.size}; "
            "pass one day per row"
        )
    first, last = window_days(week)
    cand = np.flatnonzero((day >= first) & (day <= last) & (day > BASELINE_MAX_DAY))
    order = cand[np.lexsort((day[cand], np.abs(day[cand] - 7 * week), group[cand]))]
    sorted_group = group[order]
    first_of_group = np.ones(len(order), bool)
    first_of_group[1:] = sorted_group[1:] != sorted_group[:-1]
    return order[first_of_group]


def window_text(window: Window) -> str:
    """The window in words, for headers and reports.

    Examples
    --------
    >>> window_text(6)
    'week 6 = days 36–49, nearest to day 42'
    >>> window_text("discharge")
    'discharge = the last score after day 7'
    """
    if window == "discharge":
        return f"discharge = the last score after day {BASELINE_MAX_DAY}"
    first, last = window_days(window)  # type: ignore[arg-type]
    return f"week {int(window)} = days {first}–{last}, nearest to day {7 * int(window)}"


def window_label(window: Window) -> str:
    """Label of a window: ``"week_4"`` or ``"discharge"``.

    Examples
    --------
    >>> window_label(6), window_label("discharge")
    ('week_6', 'discharge')
    """
    if window == "discharge":
        return "discharge"
    return f"week_{_follow_up_week(window)}"


def window_week(label: str) -> int | None:
    """The week of a window label (None for discharge).

    Examples
    --------
    >>> window_week("week_6"), window_week("discharge")
    (6, None)
    """
    return None if label == "discharge" else int(label.split("_")[1])
