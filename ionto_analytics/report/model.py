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

import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ionto_analytics.plots.style import (
    INSTRUMENT_SHORT_NAMES,
    VOCABULARY_NAMES,
    display_name,
)
from ionto_analytics.suppression import SUPPRESSED_TEXT, Suppressed

__all__ = [
    "ReportFigure",
    "ReportTable",
    "Section",
    "column_heading",
    "fmt_ci",
    "fmt_num",
    "fmt_pct",
    "mask_small_numbers",
    "readable_note",
    "reads_as_number",
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
        (conditions, devices) are shown by their names. Reading text is left-aligned and
        numbers right-aligned: a column is numeric (class ``num``) when at least half of its
        cells read as numbers (:func:`reads_as_number`), else text (class ``text``); the first
        column is always text.

        Examples
        --------
        >>> f = pd.DataFrame({"n": ["12"]}, index=pd.Index(["plantar_fasciitis"], name="condition"))
        >>> html = ReportTable("k", "T", f).to_html()
        >>> html.count("<tr"), "Plantar fasciitis" in html
        (2, True)
        >>> '<th class="text">Condition</th>' in html
        True
        >>> '<td class="num">12</td>' in html
        True
        >>> f.index.name = "clinic_id"
        >>> '<th class="text">Clinic</th>' in ReportTable("k", "T", f).to_html()
        True
        """
        frame = self.frame.copy()
        name = display_name(frame.index.name) if frame.index.name else ""
        frame.index = [display_name(v) for v in frame.index]
        frame.index.name = name[:1].upper() + name[1:]
        frame.columns = [column_heading(c) for c in frame.columns]
        frame = frame.map(lambda v: VOCABULARY_NAMES.get(v, v) if isinstance(v, str) else v)
        frame = frame.reset_index().fillna("–").astype(str)
        kinds = ["text"] + [
            "num" if _numeric_column(frame.iloc[:, j]) else "text" for j in range(1, frame.shape[1])
        ]
        esc = html.escape
        head = "".join(
            f'<th class="{k}">{esc(str(c))}</th>' for k, c in zip(kinds, frame.columns, strict=True)
        )
        body = "\n".join(
            "<tr>"
            + "".join(f'<td class="{k}">{esc(v)}</td>' for k, v in zip(kinds, row, strict=True))
            + "</tr>"
            for row in frame.itertuples(index=False)
        )
        return (
            f'<table class="data">\n<thead>\n<tr>{head}</tr>\n</thead>\n'
            f"<tbody>\n{body}\n</tbody>\n</table>"
        )


_WORD = re.compile(r"[A-Za-z]{3,}")


def column_heading(column: object) -> str:
    """A column's heading as printed: its readable name, a first word capitalized
    (a statistic's letter such as ``n`` or ``p``, and a clinic key, stay as they are).

    Examples
    --------
    >>> [column_heading(c) for c in ("instrument", "n", "p (Holm)", "faam_adl", "clinic_03")]
    ['Instrument', 'n', 'p (Holm)', 'FAAM ADL', 'clinic_03']
    """
    text = display_name(column)
    first = text.split(" ")[0]
    return text[:1].upper() + text[1:] if len(first) >= 3 and "_" not in first else text


def reads_as_number(text: str) -> bool:
    """True for a count, share, estimate or interval, or a suppression mark or dash.

    Examples
    --------
    >>> [reads_as_number(t) for t in ("1,204", "<11", "‡", "–", "-2.1 (-3.0 to -1.2)", "12.5%")]
    [True, True, True, True, True, True]
    >>> reads_as_number("within 95% limits"), reads_as_number("ANCOVA")
    (False, False)
    """
    return not _WORD.search(text)


def _numeric_column(values: pd.Series) -> bool:
    filled = [v for v in values if v.strip()]
    return bool(filled) and 2 * sum(map(reads_as_number, filled)) >= len(filled)


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
    r"row|person|people|score)|\s+in\s+(?:ionto|exercise))",
    re.IGNORECASE,
)


def mask_small_numbers(text: str) -> str:
    """Hide counts of 1-10 people or records quoted in a message.

    Examples
    --------
    >>> mask_small_numbers("3 session(s) left out; 6 clinics (< 20)")
    '<11 session(s) left out; 6 clinics (< 20)'
    >>> mask_small_numbers("clinic_02 (all 10 in exercise) has one arm")
    'clinic_02 (all <11 in exercise) has one arm'
    """
    return _SMALL.sub(SUPPRESSED_TEXT, text)


_COLUMN_WORDS: dict[str, str] = {
    "age_years": "age",
    "symptom_duration_weeks": "symptom duration",
    "clinic_id": "clinic",
}
_COLUMN = re.compile(r"\b(" + "|".join(_COLUMN_WORDS) + r")\b")
_INTAKE = re.compile(
    r"\bintake_("
    + "|".join(sorted(map(re.escape, INSTRUMENT_SHORT_NAMES), key=len, reverse=True))
    + r")(_missing)?\b"
)


def readable_note(text: str) -> str:
    """An estimator's note as the report prints it: column keys in words, small counts hidden.

    Examples
    --------
    >>> readable_note("confounders (baseline, age_years, symptom_duration_weeks) entered linearly")
    'confounders (baseline, age, symptom duration) entered linearly'
    >>> readable_note("|SMD| > 0.1: intake_visa_a +0.2, intake_nprs_missing -0.3, clinic_id +0.4")
    '|SMD| > 0.1: intake VISA-A +0.2, intake NPRS missing -0.3, clinic +0.4'
    >>> readable_note("clinic_05 (all 4 in exercise)")
    'clinic_05 (all <11 in exercise)'
    """
    text = _COLUMN.sub(lambda m: _COLUMN_WORDS[m.group(1)], text)
    text = _INTAKE.sub(
        lambda m: (
            f"intake {INSTRUMENT_SHORT_NAMES[m.group(1)]}" + (" missing" if m.group(2) else "")
        ),
        text,
    )
    return mask_small_numbers(text)
