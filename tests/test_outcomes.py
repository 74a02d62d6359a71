"""Tests of change from baseline, responders, time to MCID and Kaplan–Meier (outcomes.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

from data_schemas.windows import (
    FOLLOW_UP_WEEKS,
    window_days,
    window_label,
    window_tolerance,
)
from ionto_analytics.errors import InputError
from ionto_analytics.outcomes import (
    baseline_scores,
    change_from_baseline,
    change_per_visit,
    kaplan_meier,
    mcid_responders,
    time_to_mcid,
)


def _out(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["episode_id", "instrument", "score", "days_from_intake"])


def test_window_rule() -> None:
    out = _out(
        [
            ("a", "nprs", 8.0, 3),
            ("a", "nprs", 7.0, 5),  # baseline: day 3 (nearest day 0)
            ("a", "nprs", 5.0, 38),
            ("a", "nprs", 4.0, 46),  # week 6: tie 4 days each → earlier
            ("a", "nprs", 3.0, 71),  # week 12: first day of its window (71–98)
            ("b", "nprs", 6.0, 8),  # no baseline (day 8 > 7)
            ("b", "nprs", 5.0, 50),  # week 6: 8 days late → outside ±7
        ]
    )
    ch = change_from_baseline(out, windows=(6, 12, "discharge"))
    a = ch[ch["episode_id"] == "a"].set_index("window")
    assert a.loc["week_6", "baseline"] == 8.0 and a.loc["week_6", "baseline_day"] == 3
    assert a.loc["week_6", "days_from_intake"] == 38 and a.loc["week_6", "change"] == -3.0
    assert a.loc["week_12", "days_from_intake"] == 71
    assert a.loc["discharge", "days_from_intake"] == 71
    assert a.loc["week_6", "improvement"] == 3.0
    assert a.loc["week_6", "percent_change"] == pytest.approx(-37.5)
    b = ch[ch["episode_id"] == "b"].set_index("window")
    assert np.isnan(b.loc["week_6", "score"]) and np.isnan(b.loc["week_6", "baseline"])
    assert b.loc["discharge", "score"] == 5.0  # discharge = last measurement after day 7
    assert window_tolerance(6) == 7 and window_tolerance(12) == 14
    # nothing dropped: 2 episodes x 3 windows
    assert len(ch) == 6


def test_windows_never_overlap_and_cover_their_neighbourhood() -> None:
    owners = {}
    for week in FOLLOW_UP_WEEKS:
        first, last = window_days(week)
        assert first <= 7 * week <= last  # the target day is in its own window
        assert 7 * week - first <= window_tolerance(week)
        assert last - 7 * week <= window_tolerance(week)
        for day in range(first, last + 1):
            assert day not in owners, f"day {day} in weeks {owners.get(day)} and {week}"
            owners[day] = week
    # between weeks 4 and 12 every day has exactly one window (no gap, no overlap)
    assert [owners.get(d) for d in (35, 36, 49, 50, 70, 71)] == [4, 6, 6, 8, 8, 12]


def test_each_score_is_used_in_at_most_one_week() -> None:
    days = np.arange(8, 400, 3)
    out = _out([("a", "nprs", 5.0, 0)] + [("a", "nprs", float(d % 11), int(d)) for d in days])
    ch = change_from_baseline(out, windows=FOLLOW_UP_WEEKS)
    used = ch["days_from_intake"].dropna()
    assert used.is_unique and len(used) == len(FOLLOW_UP_WEEKS)


@pytest.mark.parametrize("week", [0, 3, 10, -6, 6.0, True, "6"])
def test_a_week_without_a_window_is_refused(week) -> None:
    with pytest.raises(InputError, match="no follow-up window; choose one of 2, 4, 6, 8, 12"):
        window_label(week)


def test_same_day_duplicates_are_averaged_and_zero_baseline() -> None:
    out = _out([("a", "nprs", 0.0, 0), ("a", "nprs", 2.0, 28), ("a", "nprs", 4.0, 28)])
    ch = change_from_baseline(out, windows=(4,))
    assert ch["score"].iloc[0] == 3.0
    assert np.isnan(ch["percent_change"].iloc[0])  # baseline 0: percent change undefined
    base = baseline_scores(out)
    assert base["baseline"].tolist() == [0.0]


def test_bad_inputs_raise() -> None:
    with pytest.raises(InputError, match=r"nprs score 11\.0"):
        change_from_baseline(_out([("a", "nprs", 11.0, 0)]))
    with pytest.raises(InputError, match="unknown instrument"):
        change_from_baseline(_out([("a", "foo", 1.0, 0)]))
    with pytest.raises(InputError, match="missing column"):
        change_from_baseline(pd.DataFrame({"episode_id": ["a"]}))
    with pytest.raises(InputError, match="window"):
        change_from_baseline(_out([("a", "nprs", 1.0, 0)]), windows=(0,))
    with pytest.raises(InputError, match="≥ 0"):
        change_from_baseline(_out([("a", "nprs", 1.0, -2)]))


def test_responders_use_registry_thresholds() -> None:
    out = _out(
        [
            ("a", "nprs", 4.0, 0),
            ("a", "nprs", 2.8, 42),  # 30 % of 4 = 1.2 → responder
            ("b", "nprs", 9.0, 0),
            ("b", "nprs", 7.2, 42),  # needs 2 points → not
            ("c", "nprs", 9.0, 0),
            ("c", "nprs", 6.8, 42),  # lateral epicondylitis: needs 2.3
            ("d", "nprs", 0.0, 0),
            ("d", "nprs", 0.0, 42),  # no change from 0 is not a response
            ("e", "nprs", 6.0, 0),  # no follow-up → responder missing
            ("g", "groc", 4.0, 42),  # transition rating: +4 ≥ +3
        ]
    )
    episodes = pd.DataFrame(
        {
            "episode_id": list("abcdeg"),
            "condition": ["plantar_fasciitis"] * 2
            + ["lateral_epicondylitis"]
            + ["plantar_fasciitis"] * 3,
        }
    )
    ch = change_from_baseline(out, windows=(6,))
    before = ch.copy()
    r = mcid_responders(ch, episodes).set_index("episode_id")
    pd.testing.assert_frame_equal(ch, before)
    assert r.loc["a", "mcid_threshold"] == pytest.approx(1.2) and r.loc["a", "responder"]
    assert not r.loc["b", "responder"]
    assert r.loc["c", "mcid_threshold"] == 2.3 and not r.loc["c", "responder"]
    assert r.loc["c", "mcid_source"] == "[S22]"
    assert not r.loc["d", "responder"]
    assert pd.isna(r.loc["e", "responder"])
    assert r.loc["g", "responder"]


def test_time_to_mcid_and_change_per_visit() -> None:
    out = _out(
        [
            ("a", "nprs", 6.0, 0),
            ("a", "nprs", 5.0, 10),
            ("a", "nprs", 3.9, 20),
            ("b", "nprs", 6.0, 0),
            ("b", "nprs", 5.5, 30),
            ("c", "nprs", 6.0, 0),
            ("d", "nprs", 6.0, 9),
        ]
    )
    before = out.copy()
    t = time_to_mcid(out, "nprs").set_index("episode_id")
    pd.testing.assert_frame_equal(out, before)
    assert t.loc["a", "duration_days"] == 20 and t.loc["a", "event"]
    assert t.loc["b", "duration_days"] == 30 and not t.loc["b", "event"]
    assert t.loc["c", "duration_days"] == 0 and not t.loc["c", "event"]
    assert "d" not in t.index  # no baseline: not at risk
    ch = change_from_baseline(out, windows=("discharge",))
    ep = pd.DataFrame({"episode_id": ["a", "b", "c", "d"], "n_visits": [10, 5, 0, 3]})
    cpv = change_per_visit(ch, ep).set_index("episode_id")
    assert cpv.loc["a", "change_per_visit"] == pytest.approx(-0.21)
    assert np.isnan(cpv.loc["c", "change_per_visit"])


def test_kaplan_meier_closed_form() -> None:
    # Hand computation: times 2,3,3+,5,8+,9 (+ = censored)
    # t=2: 6 at risk, 1 event → S=5/6; t=3: 5 at risk, 1 event → S=5/6·4/5=2/3;
    # t=5: 3 at risk, 1 event → S=4/9; t=9: 1 at risk, 1 event → S=0.
    d = pd.DataFrame(
        {"duration_days": [2, 3, 3, 5, 8, 9], "event": [True, True, False, True, False, True]}
    )
    km = kaplan_meier(d)
    ev = km[km["n_events"] > 0]
    np.testing.assert_allclose(ev["survival"], [5 / 6, 2 / 3, 4 / 9, 0.0], atol=1e-12)
    # Greenwood at t=3: S^2 (1/(6·5) + 1/(5·4))
    gw = (2 / 3) ** 2 * (1 / 30 + 1 / 20)
    assert km.loc[km["time"] == 3, "se"].iloc[0] == pytest.approx(np.sqrt(gw), abs=1e-12)


def test_kaplan_meier_matches_statsmodels() -> None:
    # Independent implementation: statsmodels SurvfuncRight (product limit + Greenwood SE).
    # Tolerance 1e-10: both are exact closed forms in double precision.
    rng = np.random.default_rng(11)
    t = rng.integers(1, 60, 150).astype(float)
    e = rng.random(150) < 0.7
    km = kaplan_meier(pd.DataFrame({"duration_days": t, "event": e}))
    sf = SurvfuncRight(t, e.astype(int))
    ev = km[km["n_events"] > 0].reset_index(drop=True)
    np.testing.assert_allclose(ev["time"], sf.surv_times)
    np.testing.assert_allclose(ev["survival"], sf.surv_prob, atol=1e-10)
    np.testing.assert_allclose(ev["se"], sf.surv_prob_se, atol=1e-10, equal_nan=True)
    by = kaplan_meier(pd.DataFrame({"duration_days": t, "event": e, "arm": e}), by="arm")
    assert set(by["arm"]) == {True, False}
    assert ((km["ci_low"] <= km["survival"]) | km["ci_low"].isna()).all()


def test_inputs_are_left_unchanged() -> None:
    from tests.analysis_sim import simulate

    ep, out = simulate(80, 2)
    eb, ob = ep.copy(), out.copy()
    ch = change_from_baseline(out)
    baseline_scores(out)
    chb = ch.copy()
    mcid_responders(ch, ep)
    change_per_visit(ch, ep)
    t = time_to_mcid(out, "nprs", ep)
    tb = t.copy()
    kaplan_meier(t, by="arm")
    pd.testing.assert_frame_equal(ep, eb)
    pd.testing.assert_frame_equal(out, ob)
    pd.testing.assert_frame_equal(ch, chb)
    pd.testing.assert_frame_equal(t, tb)
    assert set(t["arm"]) == {"ionto+exercise", "exercise"}
