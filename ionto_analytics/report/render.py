"""Render a :class:`~ionto_analytics.report.QuarterlyReport` to one self-contained HTML file.

The page is a Jinja2 template (``templates/report.html.j2``, autoescaped). plotly.js is
embedded **once** in the page head (``plotly.offline.get_plotlyjs()``) and every figure is
written with ``include_plotlyjs=False``, so the file opens offline, loads nothing from a
CDN and stays small (≈ 4.7 MB for plotly.js, then a few kB per figure).

Examples
--------
A one-section report with one figure:

>>> import pandas as pd
>>> from ionto_analytics.report import QuarterlyReport
>>> from ionto_analytics.report.model import ReportFigure, ReportTable, Section
>>> from ionto_analytics.report.quarter import Quarter
>>> table = ReportTable("t", "T", pd.DataFrame({"n": ["<11"]}))
>>> figure = ReportFigure("f", "F", go.Figure(go.Bar(x=["a"], y=[1])))
>>> section = Section("s", "S", tables=(table,), figures=(figure,))
>>> report = QuarterlyReport(Quarter(2025, 3), None, (section,), {"code_version": "0"}, 0)
>>> html = render_html(report)
>>> html.count("Plotly.newPlot"), "<script src=" in html, html.count("plotly.js v")
(1, False, 1)
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jinja2
import plotly.graph_objects as go
import plotly.io as pio
import plotly.offline

from ionto_analytics.suppression import suppression_footnote

if TYPE_CHECKING:
    from ionto_analytics.report import QuarterlyReport

__all__ = ["figure_html", "plotly_js", "render_html"]


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("ionto_analytics.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )


@functools.cache
def plotly_js() -> str:
    """plotly.js itself, to inline once in a self-contained page."""
    return plotly.offline.get_plotlyjs()


def figure_html(fig: go.Figure, div_id: str) -> str:
    """One figure as a ``<div>`` for a page that inlines :func:`plotly_js` once."""
    return pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True, "displayModeBar": "hover"},
        default_width="100%",
        default_height=f"{int(fig.layout.height or 420)}px",
    )


def render_html(report: QuarterlyReport) -> str:
    """The report as one HTML document (a string).

    Parameters
    ----------
    report : QuarterlyReport

    Returns
    -------
    str
        UTF-8 HTML; plotly.js inlined once.
    """
    sections = []
    for s in report.sections:
        sections.append(
            {
                "key": s.key,
                "title": s.title,
                "intro": s.intro,
                "notes": s.notes,
                "tables": [
                    {"title": t.title, "note": t.note, "html": t.to_html()} for t in s.tables
                ],
                "figures": [
                    {
                        "key": f.key,
                        "caption": f.caption,
                        "html": figure_html(f.figure, f"fig-{s.key}-{f.key}"),
                    }
                    for f in s.figures
                ],
            }
        )
    scope = f"clinic {report.clinic}" if report.clinic else "all clinics"
    prov = report.provenance
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=f"Iontophoresis outcomes report, {report.quarter}",
            subtitle=f"{report.quarter.label}; {scope}; compared with {report.quarter.previous()}",
            privacy_note="No patient is named (CMS cell-suppression policy). "
            + suppression_footnote(),
            brief_items=list(report.brief.items) if report.brief else [],
            warning=report.brief.warning if report.brief else "",
            sections=sections,
            provenance=prov,
            provenance_rows=[(k.replace("_", " "), v) for k, v in prov.items()],
            plotly_js=plotly_js(),
        )
    )
