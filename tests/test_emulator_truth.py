"""The planted truth states the windowed estimand: the contrast at the day a window selects.

``difference`` is the counterfactual contrast at exactly day 7·W; ``window_difference`` the
same at the day the week-W window rule (``data_schemas.windows.nearest_in_window``, shared
with the analyses) selects among each episode's planned visits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from data_schemas.windows import FOLLOW_UP_WEEKS, nearest_in_window
from emulator import load_scenario
from emulator.outcomes import TRUTH_WEEKS, window_visit_days
from emulator.schedule import plan_care, visit_calendar

from .emulator_fixtures import small_run, small_truth

__all__ = ["small_run", "small_truth"]

WINDOWS = {
    2: (8, 21),
    4: (22, 35),
    6: (36, 49),
    8: (50, 70),
    12: (71, 98),
    16: (99, 126),
    26: (168, 196),
    52: (350, 378),
}
"""The follow-up windows as the analysis plan states them (days from intake, inclusive):
±7 days around day 7·W up to week 6, ±14 after, cut at the midpoints between neighbours."""

IONTO_PAIRS = {("ionto+exercise", "exercise"), ("ionto+exercise+manual", "exercise+manual")}
"""Arm pairs that differ by iontophoresis alone (its effect is 0 from week 5 on)."""


def _brute_force_nearest(group: np.ndarray, day: np.ndarray, week: int) -> tuple[list[int], int]:
    """Row by row: in the window and after day 7, nearest day 7·week, then the earlier day,
    then the first row. Also returns how many groups had a tie for the nearest distance."""
    first, last = WINDOWS[week]
    best: dict[Any, tuple[float, float, int]] = {}
    nearest: dict[Any, list[float]] = {}
    for i, (g, d) in enumerate(zip(group.tolist(), day.tolist(), strict=True)):
        if not (first <= d <= last and d > 7):
            continue
        key = (abs(d - 7 * week), d, i)
        nearest.setdefault(g, []).append(key[0])
        if g not in best or key < best[g]:
            best[g] = key
    ties = sum(dist.count(min(dist)) > 1 for dist in nearest.values())
    return [best[g][2] for g in sorted(best)], ties


@pytest.mark.parametrize("half_days", [False, True])
def test_nearest_in_window_matches_a_row_by_row_search(half_days: bool) -> None:
    rng = np.random.default_rng(3)
    ties = 0
    for _ in range(200):
        n = int(rng.integers(0, 60))
        group = rng.integers(0, 6, n)
        day = rng.integers(0, 110, n) + (rng.choice([0.0, 0.5], n) if half_days else 0)
        for week in FOLLOW_UP_WEEKS:
            expected, tied = _brute_force_nearest(group, day, week)
            assert nearest_in_window(group, day, week).tolist() == expected
            ties += tied
    assert ties > 50  # equidistant days and same-day rows were exercised


def test_nearest_in_window_takes_group_labels_of_any_sortable_kind() -> None:
    group = np.array(["EP2", "EP1", "EP1", "EP2"], dtype=object)
    day = np.array([30, 26, 30, 28])
    assert nearest_in_window(group, day, 4).tolist() == [1, 3]


def _calendar(n: int) -> tuple[dict[str, Any], pd.DataFrame]:
    s = load_scenario()
    rng = np.random.default_rng(11)
    intake = np.datetime64("2025-03-03") + rng.integers(0, 60, n).astype("timedelta64[D]")
    eps = pd.DataFrame({"intake_date": intake.astype("datetime64[D]"), "clinic": 0})
    plan = plan_care(rng, s, eps, np.array([0.2]))
    return s, visit_calendar(rng, s, eps, plan)


@pytest.mark.parametrize("instr", ["nprs", "prtee", "groc"])
def test_truth_window_days_follow_the_analysis_plan_on_a_calendar(instr: str) -> None:
    """Independent recomputation with pandas: the scored visits (NPRS at every visit, the
    others at every progress visit, discharge and follow-up, GROC not at visit 0), the window
    of the analysis plan, nearest day 7·W, ties to the earlier day."""
    s, visits = _calendar(40)
    has = np.ones(40, bool)
    has[::7] = False  # episodes not scored on the instrument count nowhere
    got = window_visit_days(s, instr, visits, has)
    every = s["schedule"]["progress_every_visits"]
    v = visits[has[visits["episode_row"].to_numpy()]]
    if instr != "nprs":
        scheduled = (v["seq"] % every == 0) | v["kind"].isin(["discharge", "follow_up"])
        v = v[scheduled & (v["seq"] > 0)] if instr == "groc" else v[scheduled]
    for wi, week in enumerate(TRUTH_WEEKS):
        first, last = WINDOWS[int(week)]
        cand = v[v["day"].between(first, last)]
        cand = cand.assign(dist=(cand["day"] - 7 * week).abs())
        picked = cand.sort_values(["episode_row", "dist", "day"]).groupby("episode_row")["day"]
        expected = picked.first().reindex(range(40)).to_numpy(float)
        np.testing.assert_array_equal(got[:, wi], expected)
    assert np.isnan(got[~has]).all() and not np.isnan(got[has]).all()


def test_every_effect_row_states_its_window(small_truth: dict[str, Any]) -> None:
    for e in small_truth["effects"]:
        assert (e["window_first_day"], e["window_last_day"]) == WINDOWS[int(e["week"])]
        assert 0 <= e["window_n"] <= e["n"]
        # Main cells: the large ones, and NPRS (scored at every visit; every plan has visits
        # in days 8-21 and 22-35, and a follow-up visit) outside week 6.
        main_cell = e["n"] >= 50 or (e["instrument"] == "nprs" and e["week"] != 6.0)
        if main_cell:
            assert e["window_n"] > 0 and e["window_difference"] is not None
        # Every episode has its planned follow-up visit (at 12 weeks) before dropout: the
        # week-12 estimand is the no-dropout one, over all episodes scored on the instrument.
        if e["week"] == 12.0:
            assert e["window_n"] == e["n"]
    week6 = [e for e in small_truth["effects"] if e["week"] == 6.0 and e["instrument"] == "nprs"]
    assert any(e["window_n"] < e["n"] for e in week6)  # 4-week plans end before day 36


def test_window_difference_is_smaller_where_the_ionto_curve_peaks(
    small_truth: dict[str, Any],
) -> None:
    """Iontophoresis peaks at day 14, the centre of the week-2 window (days 8–21): every
    other day the window selects measures less of it."""
    cell = ("lateral_epicondylitis", "prtee", "ionto+exercise", "exercise", 2.0)
    (e,) = [
        e
        for e in small_truth["effects"]
        if (e["condition"], e["instrument"], e["arm"], e["versus"], e["week"]) == cell
    ]
    assert e["difference"] < -3.0  # lower PRTEE is better
    assert e["difference"] < e["window_difference"] < 0.0
    assert abs(e["window_difference"]) < 0.97 * abs(e["difference"])


def test_window_and_exact_week_agree_where_no_arm_term_moves(
    small_truth: dict[str, Any],
) -> None:
    """At week 12 iontophoresis has faded (0 from week 5), and the window selects the planned
    12-week follow-up visit (day 84 or the next business day), where exercise (tau 3 weeks)
    and manual therapy (tau 1.5 weeks) have all but levelled off."""
    ionto_only = IONTO_PAIRS | {(b, a) for a, b in IONTO_PAIRS}
    n_ionto = n_other = 0
    for e in small_truth["effects"]:
        if e["week"] != 12.0:
            continue
        if (e["arm"], e["versus"]) in ionto_only:
            assert e["difference"] == e["window_difference"] == 0.0
            n_ionto += 1
        elif e["n"] >= 50:
            assert e["difference"] != 0.0
            assert e["window_difference"] == pytest.approx(e["difference"], rel=0.01)
            n_other += 1
    assert n_ionto > 40 and n_other > 100
