"""Plausibility rules: what an export may say happened, in one place.

Range checks say whether a value is physically possible (``data_schemas.vocabulary.LIMITS``);
these rules say whether a record could have happened in a clinic: a date inside the
clinic's operating window (from 1990 until today, with a day of clock skew), sample times
that strictly increase at the interval the device states, an impedance above zero (a
skin never conducts perfectly; an open circuit is infinite, not negative), and a session
that lasts as long as its samples say and less than a day.

Examples
--------
>>> import datetime as dt
>>> import numpy as np
>>> from device_import.problems import FileRejected
>>> check_sample_times(np.array([0.0, 1.0, 2.0]), "a.csv", interval_s=1.0)
>>> try:
...     check_sample_times(np.array([0.0, 2.0, 1.0]), "a.csv", first_line=18)
... except FileRejected as error:
...     print(error.problem.record, "|", error.problem.reason)
line 20 | sample times must strictly increase; the rows are out of order or repeated
>>> check_date(dt.date(2099, 1, 1), dt.date(2026, 3, 1), "v.csv", record="line 2", field="day")
Traceback (most recent call last):
...
device_import.problems.FileRejected: v.csv, line 2, field day: date in the future ...
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from device_import.problems import reject

OPERATING_WINDOW_START = dt.date(1990, 1, 1)
"""No clinic record or device log is older than this (the devices are younger still)."""
CLOCK_SKEW = dt.timedelta(days=1)
"""How far into the future a date may be: a device clock or a time zone slightly off."""
LONGEST_SESSION = dt.timedelta(hours=24)
"""A clinic session lasts minutes and a wearable patch hours: never a day."""
DURATION_TOLERANCE = (dt.timedelta(minutes=2), 0.10)
"""How far a session's stated duration may differ from its samples' (absolute, relative)."""
INTERVAL_TOLERANCE = 0.5
"""How far one sample step may differ from the stated interval, as a share of it."""


def check_date(
    value: dt.date | dt.datetime, today: dt.date, file: str, *, record: str, field: str
) -> None:
    """Refuse a date before 1990 or after tomorrow (``today`` plus the clock skew)."""
    day = value.date() if isinstance(value, dt.datetime) else value
    latest = today + CLOCK_SKEW
    if day > latest:
        reason = "date in the future (beyond a day of clock skew); is the device clock set?"
    elif day < OPERATING_WINDOW_START:
        reason = "date before the clinic's operating window (1990); is the year right?"
    else:
        return
    raise reject(
        file,
        reason,
        record=record,
        field=field,
        expected=f"between {OPERATING_WINDOW_START} and {latest}",
        found=f"a date in {day.year}",
    )


def check_sample_times(
    t_s: np.ndarray,
    file: str,
    *,
    first_line: int = 1,
    interval_s: float | None = None,
    field: str = "elapsed_s",
) -> None:
    """Refuse sample times that are not finite, do not strictly increase, or stray from
    the stated interval (by more than :data:`INTERVAL_TOLERANCE` of it)."""
    bad_value = ~np.isfinite(t_s)
    if bad_value.any():
        index = int(np.argmax(bad_value))
        raise reject(
            file,
            "sample time is not a number",
            record=f"line {first_line + index}",
            field=field,
            expected="seconds since the start",
            found="a number that is not finite",
        )
    steps = np.diff(t_s)
    backwards = steps <= 0
    if backwards.any():
        index = int(np.argmax(backwards)) + 1
        raise reject(
            file,
            "sample times must strictly increase; the rows are out of order or repeated",
            record=f"line {first_line + index}",
            field=field,
            expected="a time after the previous row's",
            got=float(steps[index - 1]),
        )
    if interval_s is not None:
        stray = np.abs(steps - interval_s) > INTERVAL_TOLERANCE * interval_s
        if stray.any():
            index = int(np.argmax(stray)) + 1
            raise reject(
                file,
                "sample time does not follow the stated sample interval",
                record=f"line {first_line + index}",
                field=field,
                expected=f"{interval_s:g} s after the previous row",
                got=float(steps[index - 1]),
            )


def check_interval(interval_s: float, file: str, *, field: str) -> None:
    """Refuse a stated sample interval of zero, below zero, or longer than an hour."""
    if not 0 < interval_s <= 3600:
        raise reject(
            file,
            "impossible sample interval",
            record="samples",
            field=field,
            expected="more than 0 and at most 3600 s",
            got=interval_s,
        )


def check_impedance(ohm: np.ndarray, file: str, *, first_line: int = 1, field: str) -> None:
    """Refuse an impedance of zero or below (an open circuit is infinite, and allowed)."""
    bad = ~(ohm > 0)
    if bad.any():
        index = int(np.argmax(bad))
        raise reject(
            file,
            "impedance must be above zero; is the column the impedance?",
            record=f"line {first_line + index}",
            field=field,
            expected="more than 0",
            got=float(ohm[index]),
        )


def check_session_times(
    started: dt.datetime,
    ended: dt.datetime,
    last_sample_s: float,
    today: dt.date,
    file: str,
) -> None:
    """Refuse a session outside the operating window, lasting a day or more, or whose
    stated end disagrees with its samples."""
    check_date(started, today, file, record="session", field="start")
    lasted = ended - started
    if lasted >= LONGEST_SESSION:
        raise reject(
            file,
            "the session lasts a day or more: not a treatment session",
            record="session",
            field="end",
            expected=f"less than {LONGEST_SESSION}",
            found=f"{lasted.total_seconds() / 3600:.1f} hours",
        )
    absolute, relative = DURATION_TOLERANCE
    sampled = dt.timedelta(seconds=last_sample_s)
    if abs(lasted - sampled) > max(absolute, relative * sampled):
        raise reject(
            file,
            "the session's stated duration does not match its samples",
            record="session",
            field="end",
            expected=f"about {sampled.total_seconds():.0f} s after the start, as the samples",
            found=f"{lasted.total_seconds():.0f} s",
        )
