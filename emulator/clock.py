"""Clinic clocks: the UTC offset of a clinic's local time zone on each date.

Shared by the engine (device session start times) and the FHIR writer (Encounter periods),
so both stamp the same offset on the same visit.

Examples
--------
>>> import numpy as np
>>> dates = np.array(["2025-01-15", "2025-07-15"], dtype="datetime64[D]")
>>> utc_offsets("America/New_York", dates).tolist()
[-300, -240]
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np


def utc_offsets(tz: str, dates: np.ndarray) -> np.ndarray:
    """UTC offset in minutes at noon local time on each date (clinic hours avoid DST jumps).

    Parameters
    ----------
    tz : str
        IANA time zone of the clinic, such as ``"Europe/Berlin"``.
    dates : numpy.ndarray
        Dates or datetimes (``datetime64``); only the calendar day is used.

    Returns
    -------
    numpy.ndarray
        ``int64`` offsets in minutes east of UTC, one per date.

    Examples
    --------
    >>> import numpy as np
    >>> utc_offsets("Europe/Berlin", np.array(["2025-03-29T09:00", "2025-03-31T09:00"],
    ...                                         dtype="datetime64[m]")).tolist()
    [60, 120]
    """
    zone = ZoneInfo(tz)
    uniq, inv = np.unique(dates.astype("datetime64[D]"), return_inverse=True)
    offs = []
    for d in uniq.astype(object):
        off = dt.datetime(d.year, d.month, d.day, 12, tzinfo=zone).utcoffset()
        offs.append(int(off.total_seconds() // 60) if off is not None else 0)
    return np.asarray(offs, np.int64)[inv]
