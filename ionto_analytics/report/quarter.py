"""Calendar quarters: parse ``"2025Q3"``, its dates, the quarter before it.

Examples
--------
>>> q = Quarter.parse("2025Q3")
>>> q.start, q.end, str(q.previous())
(datetime.date(2025, 7, 1), datetime.date(2025, 9, 30), '2025Q2')
>>> str(Quarter.parse("2025q1").previous())
'2024Q4'
>>> str(latest_complete_quarter(dt.date(2026, 3, 20)))
'2025Q4'
>>> str(latest_complete_quarter(dt.date(2025, 12, 31)))
'2025Q4'
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd

from ionto_analytics.errors import InputError

__all__ = ["Quarter", "latest_complete_quarter"]

_PATTERN = re.compile(r"^\s*(\d{4})\s*-?\s*[Qq]([1-4])\s*$")


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter (January-March is Q1).

    Attributes
    ----------
    year : int
    number : int
        1 to 4.
    """

    year: int
    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 4:
            raise InputError(f"quarter number must be 1 to 4, got {self.number}")
        if not dt.MINYEAR <= self.year < dt.MAXYEAR:
            raise InputError(
                f"quarter year must be {dt.MINYEAR} to {dt.MAXYEAR - 1}, got {self.year:04d}"
            )

    @classmethod
    def parse(cls, text: str) -> Quarter:
        """Read ``"2025Q3"`` (also ``"2025-Q3"``, ``"2025q3"``).

        Raises
        ------
        InputError
            When the text is not a year followed by Q1 to Q4.

        Examples
        --------
        >>> Quarter.parse("2025-Q4")
        Quarter(year=2025, number=4)
        >>> Quarter.parse("2025Q5")
        Traceback (most recent call last):
        ...
        data_schemas.errors.InputError: quarter '2025Q5': expected a year and Q1-Q4 ...
        """
        match = _PATTERN.match(str(text))
        if not match:
            raise InputError(
                f"quarter {text!r}: expected a year and Q1-Q4 such as 2025Q3 "
                "(Q1 = January to March)"
            )
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def start(self) -> dt.date:
        """First day of the quarter."""
        return dt.date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> dt.date:
        """Last day of the quarter."""
        return self.next().start - dt.timedelta(days=1)

    @property
    def label(self) -> str:
        """``"2025Q3 (1 Jul – 30 Sep 2025)"``.

        Examples
        --------
        >>> Quarter(2025, 3).label
        '2025Q3 (1 Jul – 30 Sep 2025)'
        """
        s, e = self.start, self.end
        return f"{self} ({s.day} {s:%b} – {e.day} {e:%b} {e.year})"

    def previous(self) -> Quarter:
        """The quarter before this one."""
        return (
            Quarter(self.year - 1, 4) if self.number == 1 else Quarter(self.year, self.number - 1)
        )

    def next(self) -> Quarter:
        """The quarter after this one."""
        return (
            Quarter(self.year + 1, 1) if self.number == 4 else Quarter(self.year, self.number + 1)
        )

    def contains(self, dates: pd.Series) -> pd.Series:
        """Boolean mask: which dates (or UTC timestamps, by their UTC date) fall in it.

        Examples
        --------
        >>> import pandas as pd
        >>> Quarter(2025, 3).contains(pd.Series(pd.to_datetime(["2025-06-30", "2025-07-01",
        ...                                                    "2025-09-30"]))).tolist()
        [False, True, True]
        """
        d = pd.to_datetime(dates)
        if getattr(d.dt, "tz", None) is not None:
            d = d.dt.tz_convert("UTC").dt.tz_localize(None)
        day = d.dt.normalize()
        return (day >= pd.Timestamp(self.start)) & (day <= pd.Timestamp(self.end))


def latest_complete_quarter(last_day: dt.date) -> Quarter:
    """The most recent calendar quarter that ended on or before ``last_day``."""
    quarter = Quarter(last_day.year, (last_day.month - 1) // 3 + 1)
    return quarter if quarter.end <= last_day else quarter.previous()
