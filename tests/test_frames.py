"""Tests of the analysis DataFrame contracts (data_schemas.frames)."""

from __future__ import annotations

import pandas as pd
import pytest

from data_schemas.errors import SchemaError
from data_schemas.frames import FRAME_COLUMNS, SCHEMAS, validate_frame
from tests.analysis_sim import simulate


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    sim = simulate(60, 3, full=True)
    interventions = pd.DataFrame(
        {
            "episode_id": ["e00000", "e00000"],
            "visit_id": ["v1", "v1"],
            "modality": ["iontophoresis", "exercise"],
            "cpt_code": ["97033", None],
            "minutes": [15.0, None],
        }
    )
    return {
        "episode": sim.episodes,
        "outcome": sim.outcomes,
        "session": sim.sessions,
        "intervention": interventions,
    }


def test_valid_frames_pass_unchanged(frames: dict[str, pd.DataFrame]) -> None:
    for name, df in frames.items():
        before = df.copy()
        assert validate_frame(df, name) is df
        pd.testing.assert_frame_equal(df, before)
        assert set(df.columns) == set(FRAME_COLUMNS[name])
    assert set(SCHEMAS) == set(FRAME_COLUMNS)


@pytest.mark.parametrize(
    ("name", "change", "pattern"),
    [
        ("episode", lambda d: d.drop(columns="sex"), r"column 'sex': missing"),
        ("episode", lambda d: d.assign(extra=1), r"column 'extra': not part"),
        (
            "episode",
            lambda d: d.assign(age_years=d["age_years"].astype("int64")),
            r"column 'age_years': dtype must be a float",
        ),
        ("episode", lambda d: d.assign(arm="laser"), r"column 'arm': values must be one of"),
        ("episode", lambda d: d.assign(condition="gout"), r"column 'condition'"),
        (
            "episode",
            lambda d: d.assign(age_years=95.0),
            r"column 'age_years': values must be "
            r"within \[0.0, 90.0\]",
        ),
        ("episode", lambda d: d.assign(episode_id="same"), r"column 'episode_id'"),
        ("episode", lambda d: d.assign(patient_id=None), r"column 'patient_id'"),
        (
            "episode",
            lambda d: d.assign(start_date=d["start_date"].astype(str)),
            r"column 'start_date': dtype must be naive datetime64",
        ),
        (
            "outcome",
            lambda d: d.assign(score=d["score"] * 10 + 11),
            r"column 'score': nprs score outside \[0.0, 10.0\] \(got",
        ),
        ("outcome", lambda d: d.assign(instrument="womac"), r"column 'instrument'"),
        ("outcome", lambda d: d.assign(days_from_intake=-1), r"column 'days_from_intake'"),
        (
            "outcome",
            lambda d: d.assign(days_from_intake=d["days_from_intake"].astype(float)),
            r"dtype must be an integer",
        ),
        (
            "session",
            lambda d: d.assign(started_at_utc=d["started_at_utc"].dt.tz_localize(None)),
            r"column 'started_at_utc': dtype must be datetime64\[\*, UTC\]",
        ),
        (
            "session",
            lambda d: d.assign(fault_codes="ELECTRODE_REJECT;GREMLIN"),
            r"column 'fault_codes'",
        ),
        (
            "session",
            lambda d: d.assign(delivered_dose_mA_min=500.0),
            r"column 'delivered_dose_mA_min'",
        ),
        ("session", lambda d: d.assign(wrong_polarity=None), r"column 'wrong_polarity'"),
        ("intervention", lambda d: d.assign(modality="laser"), r"column 'modality'"),
    ],
)
def test_violations_name_column_and_reason(
    frames: dict[str, pd.DataFrame], name: str, change: object, pattern: str
) -> None:
    bad = change(frames[name].copy())  # type: ignore[operator]
    with pytest.raises(SchemaError, match=pattern):
        validate_frame(bad, name)


def test_nullable_columns_accept_nulls(frames: dict[str, pd.DataFrame]) -> None:
    ep = frames["episode"].copy()
    ep.loc[0, "arm"] = None
    ep.loc[0, "planned_arm"] = None
    ep.loc[0, "end_date"] = pd.NaT
    validate_frame(ep, "episode")
    s = frames["session"].copy()
    s.loc[0, "episode_id"] = None
    validate_frame(s, "session")


def test_unknown_schema_and_non_frame() -> None:
    with pytest.raises(SchemaError, match="unknown frame schema"):
        validate_frame(pd.DataFrame(), "visits")
    with pytest.raises(SchemaError, match="expected a pandas DataFrame"):
        validate_frame([1, 2], "episode")  # type: ignore[arg-type]
