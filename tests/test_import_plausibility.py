"""Each plausibility rule refuses its bad input and accepts the valid input next to it."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from data_schemas import vocabulary as v
from device_import import plausibility as p
from device_import.parsers.common import DuplicateKey, unique_keys
from device_import.problems import FileRejected

TODAY = dt.date(2026, 3, 1)


@pytest.mark.parametrize(
    ("day", "fine"),
    [
        (dt.date(2026, 3, 2), True),  # a day of clock skew
        (dt.date(2026, 3, 3), False),
        (dt.date(1990, 1, 1), True),
        (dt.date(1989, 12, 31), False),
        (dt.datetime(2099, 1, 1, tzinfo=dt.UTC), False),
    ],
)
def test_dates_lie_in_the_operating_window(day: dt.date, fine: bool) -> None:
    if fine:
        p.check_date(day, TODAY, "f", record="r", field="d")
    else:
        with pytest.raises(FileRejected, match=r"date (in the future|before the clinic)"):
            p.check_date(day, TODAY, "f", record="r", field="d")


@pytest.mark.parametrize(
    ("times", "interval", "problem"),
    [
        ([0, 1, 2, 3], 1.0, None),
        ([0, 60, 120], 60.0, None),
        ([0, 1, 1, 2], None, "line 12.*strictly increase"),
        ([0, 2, 1], None, "line 12.*strictly increase"),
        ([0, 1, float("nan")], None, "line 12.*not a number"),
        ([0, 60, 300], 60.0, "line 12.*stated sample interval"),
    ],
)
def test_sample_times_strictly_increase_at_the_stated_interval(
    times: list[float], interval: float | None, problem: str | None
) -> None:
    t_s = np.array(times, dtype=float)
    if problem is None:
        p.check_sample_times(t_s, "f", first_line=10, interval_s=interval)
    else:
        with pytest.raises(FileRejected, match=problem):
            p.check_sample_times(t_s, "f", first_line=10, interval_s=interval)


@pytest.mark.parametrize(("interval", "fine"), [(1.0, True), (0.0, False), (-1.0, False)])
def test_a_sample_interval_is_positive(interval: float, fine: bool) -> None:
    if fine:
        p.check_interval(interval, "f", field="interval_ms")
    else:
        with pytest.raises(FileRejected, match=r"interval_ms.*impossible sample interval"):
            p.check_interval(interval, "f", field="interval_ms")


def test_impedance_is_above_zero_and_an_open_circuit_is_allowed() -> None:
    p.check_impedance(np.array([9000.0, np.inf]), "f", field="impedance")
    for bad in (0.0, -5000.0, np.nan):
        with pytest.raises(FileRejected, match=r"line 2.*impedance must be above zero"):
            p.check_impedance(np.array([9000.0, bad]), "f", field="impedance")


def test_a_session_lasts_as_long_as_its_samples_and_less_than_a_day() -> None:
    start = dt.datetime(2026, 2, 1, 9, 0, tzinfo=dt.UTC)
    p.check_session_times(start, start + dt.timedelta(minutes=20), 1200.0, TODAY, "f")
    with pytest.raises(FileRejected, match="does not match its samples"):
        p.check_session_times(start, start + dt.timedelta(hours=5), 1200.0, TODAY, "f")
    with pytest.raises(FileRejected, match="a day or more"):
        p.check_session_times(start, start + dt.timedelta(days=59), 831 * 60.0, TODAY, "f")


def test_a_json_key_given_twice_is_refused() -> None:
    assert json.loads('{"a": {"b": 1}, "c": 2}', object_pairs_hook=unique_keys) == {
        "a": {"b": 1},
        "c": 2,
    }
    with pytest.raises(DuplicateKey, match="'name' appears twice"):
        json.loads('{"x": {"name": "A", "name": "B"}}', object_pairs_hook=unique_keys)


@pytest.mark.parametrize(
    ("code", "normalized", "condition"),
    [
        ("M77.11", "M77.11", "lateral_epicondylitis"),
        ("M7711", "M77.11", "lateral_epicondylitis"),
        ("m76.62", "M76.62", "achilles_tendinopathy"),
        ("M77.1'; --", None, None),
        ("M77.1X9Z9", None, None),
        ("77.11", None, None),
        ("J45.909", "J45.909", None),
    ],
)
def test_icd10_codes_are_validated_as_codes(
    code: str, normalized: str | None, condition: str | None
) -> None:
    assert v.normalize_icd10(code) == normalized
    assert v.condition_from_icd10(code) == condition
