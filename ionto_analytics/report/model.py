"""What a report is made of: sections holding display tables, figures and notes.

A :class:`ReportTable` holds only strings ready to print (every count already suppressed,
see :mod:`ionto_analytics.suppression`); the :class:`~ionto_analytics.suppression.Suppressed`
tables it came from ride along in ``audit`` so tests can re-check every equation. The
figures are built from published values only.

Examples
--------
>>> import pandas as pd
>>> t = ReportTable("k", "Title", pd.DataFrame({"n": ["<11"]}))
>>> Section("s", "A section", tables=(t,)).tables[0].frame.iloc[0, 0]
'<11'
>>> fmt_num(3.14159, 2), fmt_ci(1.0, 2.5, 1), fmt_pct(0.125)
('3.14', '1.0 to 2.5', '12.5%')
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ionto_analytics.plots.style import VOCABULARY_NAMES, display_name
from ionto_analytics.suppression import SUPPRESSED_TEXT, Suppressed

__all__ = [
    "ReportFigure",
    "ReportTable",
    "Section",
    "fmt_ci",
    "fmt_num",
    "fmt_pct",
    "mask_small_numbers",
]


@dataclass(frozen=True, eq=False)
class ReportTable:
    """A table as printed: strings only; the index is printed as the first column.

    Attributes
    ----------
    key, title : str
    frame : DataFrame
        Display strings.
    note : str
        A line under the table (definitions, why cells are hidden).
    audit : tuple of Suppressed
        The suppressed count tables behind it.
    """

    key: str
    title: str
    frame: pd.DataFrame
    note: str = ""
    audit: tuple[Suppressed, ...] = ()

    def to_html(self) -> str:
        """The table as an HTML ``<table>`` (escaped): one header row, readable row names.

        The index becomes the first column, headed by its name; vocabulary keys in it
        (conditions, devices) are shown by their names.

        Examples
        --------
        >>> f = pd.DataFrame({"n": ["12"]}, index=pd.Index(["plantar_fasciitis"], name="condition"))
        >>> html = ReportTable("k", "T", f).to_html()
        >>> html.count("<tr"), "Plantar fasciitis" in html, "<th>Condition</th>" in html
        (2, True, True)
        >>> f.index.name = "clinic_id"
        >>> "<th>Clinic</th>" in ReportTable("k", "T", f).to_html()
        True
        """
        frame = self.frame.copy()
        name = display_name(frame.index.name) if frame.index.name else ""
        frame.index = [display_name(v) for v in frame.index]
        frame.index.name = name[:1].upper() + name[1:]
        frame.columns = [display_name(c) for c in frame.columns]
        frame = frame.map(lambda v: VOCABULARY_NAMES.get(v, v) if isinstance(v, str) else v)
        return frame.reset_index().to_html(
            classes="data", border=0, escape=True, index=False, na_rep="–"
        )


@dataclass(frozen=True, eq=False)
class ReportFigure:
    """A plotly figure with its heading and a caption."""

    key: str
    title: str
    figure: go.Figure
    caption: str = ""


@dataclass(frozen=True, eq=False)
class Section:
    """One section of the report.

    Attributes
    ----------
    key, title : str
    intro : str
        Plain-language paragraph(s) before the tables.
    tables, figures : tuple
    notes : tuple of str
        Caveats after the tables.
    values : dict
        Unsuppressed numbers for tests and the notebook's own checks; never rendered.
    """

    key: str
    title: str
    intro: str = ""
    tables: tuple[ReportTable, ...] = ()
    figures: tuple[ReportFigure, ...] = ()
    notes: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict, repr=False)


def fmt_num(value: float | None, digits: int = 1) -> str:
    """A number with ``digits`` decimals; missing as an en dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:,.{digits}f}"


def fmt_ci(low: float | None, high: float | None, digits: int = 1) -> str:
    """``"low to high"``; missing as an en dash."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "–"
    return f"{low:,.{digits}f} to {high:,.{digits}f}"


def fmt_pct(share: float | None, digits: int = 1) -> str:
    """A share (0-1) as a percentage."""
    if share is None or (isinstance(share, float) and not math.isfinite(share)):
        return "–"
    return f"{100 * share:.{digits}f}%"


_SMALL = re.compile(
    r"\b([1-9]|10)\b(?=\s*(?:\w+\s+)?(?:episode|patient|session|visit|outcome|measurement|"
    r"row|person|people|score))",
    re.IGNORECASE,
)


def mask_small_numbers(text: str) -> str:
    """Hide counts of 1-10 people or records quoted in a message.

    Examples
    --------
    >>> mask_small_numbers("3 session(s) left out; 6 clinics (< 20)")
    '<11 session(s) left out; 6 clinics (< 20)'
    """
    return _SMALL.sub(SUPPRESSED_TEXT, text)
