"""Cohorts: every exclusion counted, per-protocol rules from device logs, inputs untouched.

Expected counts are worked out by hand from the small frames built below.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import pytest

from data_schemas.frames import validate_frame
from ionto_analytics.cohorts import ATTRITION_COLUMNS, Cohort
from ionto_analytics.errors import InputError

IE, EX, IEM = "ionto+exercise", "exercise", "ionto+exercise+manual"


def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Ten episodes; sessions for the iontophoresis ones (see the comments)."""
    ids = [f"e{i}" for i in range(10)]
    episodes = pd.DataFrame(
        {
            "episode_id": ids,
            "patient_id": [f"p{i}" for i in range(10)],
            "clinic_id": ["c1"] * 8 + ["c2"] * 2,
            "condition": ["lateral_epicondylitis"] * 8 + ["medial_epicondylitis", "bursitis"],
            # e0-e4 ionto+exercise, e5-e6 exercise, e7 no arm, e8 exercise, e9 exercise
            "arm": [IE, IE, IE, IE, IE, EX, EX, None, EX, EX],
            "planned_arm": [IE, IE, IE, IE, IE, EX, IE, EX, EX, EX],
            "age_years": 50.0,
            "sex": "female",
            "symptom_duration_weeks": 8.0,
            "start_date": pd.to_datetime(["2025-03-03"] * 9 + ["2024-12-01"]),
            "end_date": pd.NaT,
            "n_visits": [8, 8, 8, 8, 8, 8, 2, 8, 8, 8],
        }
    )
    outcomes = pd.DataFrame(
        {
            "episode_id": [*ids, "e0"],
            "instrument": ["prtee"] * 4 + ["nprs"] + ["prtee"] * 6,
            "score": 50.0,
            "days_from_intake": [0] * 10 + [42],
            "visit_id": None,
        }
    )
    outcomes.loc[4, "score"] = 6.0  # e4 has only an NPRS score
    rows = []

    def add(ep: str | None, prescribed: float, delivered: float, wrong: bool = False) -> None:
        rows.append(
            {
                "session_id": f"s{len(rows)}",
                "episode_id": ep,
                "clinic_id": "c1",
                "device_model": "KD-400",
                "device_kind": "clinic_unit",
                "started_at_utc": pd.Timestamp("2025-03-05 15:00", tz="UTC")
                + pd.Timedelta(days=len(rows)),
                "prescribed_dose_mA_min": prescribed,
                "delivered_dose_mA_min": delivered,
                "end_reason": "DOSE_COMPLETE",
                "fault_codes": None,
                "wrong_polarity": wrong,
                "current_limited": False,
                "skin_check_after": "normal",
            }
        )

    for _ in range(4):  # e0: 4 full sessions → 100 % of the dose
        add("e0", 40.0, 40.0)
    add("e1", 40.0, 40.0)  # e1: 40 + 20 of 80 = 75 % < 80 % → low dose
    add("e1", 40.0, 20.0)
    add("e2", 40.0, 40.0, wrong=True)  # e2: wrong polarity
    # e3: no session at all
    add("e5", 40.0, 40.0)  # e5: exercise arm with an ionto session → contamination
    add(None, 40.0, 40.0)  # unlinked
    sessions = pd.DataFrame(rows)
    return episodes, outcomes, sessions


def test_attrition_adds_up_and_steps_are_in_order() -> None:
    episodes, outcomes, sessions = frames()
    r = Cohort("epicondylitis", "prtee", (IE, EX), min_visits=4).build(episodes, outcomes, sessions)
    a = r.attrition
    assert list(a.columns) == list(ATTRITION_COLUMNS)
    assert a["step"].tolist()[:8] == [
        "all episodes",
        "condition",
        "intake window",
        "clinics",
        "arm recorded",
        "arm compared",
        "minimum visits",
        "instrument scored",
    ]
    assert a["remaining"].iloc[0] == 10
    assert a["excluded"].sum() == a["remaining"].iloc[0] - a["remaining"].iloc[-1]
    assert (a["remaining"].shift(1).iloc[1:] - a["excluded"].iloc[1:]).tolist() == a[
        "remaining"
    ].iloc[1:].tolist()
    # bursitis e9 (other condition), e7 no arm, e6 2 visits, e4 no prtee score
    assert r.excluded == {
        "other_condition": 1,
        "no_arm": 1,
        "too_few_visits": 1,
        "no_instrument_score": 1,
    }
    assert r.n == {IE: 4, EX: 2}
    assert set(r.outcomes["instrument"]) == {"prtee"}
    assert set(r.sessions["episode_id"]) <= set(r.episodes["episode_id"])


def test_window_and_clinic_filters_count_their_exclusions() -> None:
    episodes, outcomes, _ = frames()
    r = Cohort(
        "lateral_epicondylitis", "prtee", (IE, EX), start="2025-01-01", clinics=("c1",)
    ).build(episodes, outcomes)
    assert r.excluded["other_condition"] == 2
    assert "outside_intake_window" not in r.excluded  # e9 already gone (bursitis)
    r2 = Cohort("epicondylitis", "prtee", (IE, EX), end="2025-01-31").build(episodes, outcomes)
    assert r2.excluded == {"other_condition": 1, "outside_intake_window": 9}
    assert len(r2.episodes) == 0
    r3 = Cohort("epicondylitis", "prtee", (IE, EX), clinics=("c2",)).build(episodes, outcomes)
    assert r3.excluded["other_clinic"] == 8  # e0-e7 are in c1
    assert r3.episodes["episode_id"].tolist() == ["e8"]


def test_per_protocol_rules_from_device_logs() -> None:
    episodes, outcomes, sessions = frames()
    r = Cohort("epicondylitis", "prtee", (IE, EX), per_protocol=True).build(
        episodes, outcomes, sessions
    )
    ex = r.excluded
    assert ex["pp_no_session"] == 1  # e3
    assert ex["pp_wrong_polarity"] == 1  # e2
    assert ex["pp_low_dose"] == 1  # e1 (75 %)
    assert ex["pp_ionto_in_control"] == 1  # e5
    assert sorted(r.episodes["episode_id"]) == ["e0", "e6", "e8"]
    # A lower threshold keeps e1; keeping wrong polarity keeps e2.
    r2 = Cohort(
        "epicondylitis",
        "prtee",
        (IE, EX),
        per_protocol=True,
        min_dose_fraction=0.7,
        exclude_wrong_polarity=False,
    ).build(episodes, outcomes, sessions)
    assert sorted(r2.episodes["episode_id"]) == ["e0", "e1", "e2", "e6", "e8"]
    assert "pp_wrong_polarity" not in r2.excluded


def test_per_protocol_without_sessions_excludes_every_ionto_episode() -> None:
    episodes, outcomes, _ = frames()
    r = Cohort("epicondylitis", "prtee", (IE, EX), per_protocol=True).build(episodes, outcomes)
    assert r.n[IE] == 0 and r.excluded["pp_no_session"] == 4


def test_intention_to_treat_uses_the_planned_arm() -> None:
    episodes, outcomes, _ = frames()
    r = Cohort("epicondylitis", "prtee", (IE, EX), intention_to_treat=True).build(
        episodes, outcomes
    )
    # e6 planned ionto (delivered exercise) counts as ionto; e7 (no delivered arm) is back.
    assert r.n == {IE: 5, EX: 3}
    assert r.episodes.set_index("episode_id").loc["e6", "arm"] == IE
    validate_frame(r.episodes, "episode")


def test_inputs_are_not_modified() -> None:
    episodes, outcomes, sessions = frames()
    before = [f.copy(deep=True) for f in (episodes, outcomes, sessions)]
    Cohort("epicondylitis", "prtee", (IE, EX), per_protocol=True, min_visits=3).build(
        episodes, outcomes, sessions
    )
    Cohort("epicondylitis", "prtee", (IE, EX), intention_to_treat=True).build(
        episodes, outcomes, sessions
    )
    for b, f in zip(before, (episodes, outcomes, sessions), strict=True):
        pd.testing.assert_frame_equal(b, f)


def test_plot_summary_and_dict() -> None:
    episodes, outcomes, sessions = frames()
    r = Cohort("epicondylitis", "prtee", (IE, EX)).build(episodes, outcomes, sessions)
    fig = r.plot()
    assert isinstance(fig, go.Figure)
    assert list(fig.data[0].x) == r.attrition["remaining"].tolist()
    d = r.to_dict()
    assert d["n"] == r.n and d["excluded"] == r.excluded
    assert len(d["attrition"]) == len(r.attrition)
    assert "<table" in r._repr_html_()
    assert r.summary() is not r.attrition


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"condition": "knee"}, "unknown condition"),
        ({"instrument": "womac"}, "unknown instrument"),
        ({"arms": ("exercise", "yoga")}, "arm keys"),
        ({"arms": ("exercise", "exercise")}, "arm keys"),
        ({"per_protocol": True, "intention_to_treat": True}, "exclude each other"),
        ({"min_dose_fraction": 1.5}, "min_dose_fraction"),
        ({"start": "2025-06-01", "end": "2025-01-01"}, "before start"),
    ],
)
def test_bad_definitions_raise_input_error(kwargs: dict, match: str) -> None:
    spec = {"condition": "epicondylitis", "instrument": "prtee", "arms": (IE, EX)} | kwargs
    with pytest.raises(InputError, match=match):
        Cohort(**spec)


def test_missing_columns_are_named() -> None:
    episodes, outcomes, _ = frames()
    with pytest.raises(InputError, match="n_visits"):
        Cohort("epicondylitis", "prtee", (IE, EX)).build(
            episodes.drop(columns="n_visits"), outcomes
        )


def test_family_key_and_three_arms() -> None:
    episodes, outcomes, _ = frames()
    r = Cohort("epicondylitis", "prtee", (IE, EX, IEM)).build(episodes, outcomes)
    assert r.n[IEM] == 0 and r.excluded["other_condition"] == 1
