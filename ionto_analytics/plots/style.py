"""The shared style: fixed arm colours, labels with units, the layout template, helpers.

Colours are the Okabe–Ito colour-blind-safe palette; the iontophoresis arms are warm, the
arms without iontophoresis cool, so the same arm has the same colour in every figure.

Examples
--------
>>> ARM_COLOURS["ionto+exercise"], ARM_COLOURS["exercise"]
('#D55E00', '#0072B2')
>>> set(ARM_COLOURS) == set(ARMS) == set(ARM_LABELS)
True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from data_schemas.vocabulary import ARMS
from ionto_analytics.instruments import get_instrument

__all__ = [
    "ARM_COLOURS",
    "ARM_LABELS",
    "DEVICE_PALETTE",
    "INSTRUMENT_SHORT_NAMES",
    "LIMIT_STYLES",
    "OTHER_COLOUR",
    "PHASE_COLOURS",
    "TEMPLATE",
    "VOCABULARY_NAMES",
    "arm_colour",
    "arm_label",
    "display_name",
    "fault_label",
    "fit_axis_titles",
    "instrument_axis_label",
    "instrument_short_name",
    "subtitled",
    "wrap_label",
]

ARM_COLOURS: dict[str, str] = {
    "exercise": "#0072B2",
    "exercise+manual": "#56B4E9",
    "ionto+exercise": "#D55E00",
    "ionto+exercise+manual": "#E69F00",
    "ionto": "#CC79A7",
}
"""One colour per arm key of :data:`data_schemas.vocabulary.ARMS` (Okabe–Ito)."""

ARM_LABELS: dict[str, str] = {
    "exercise": "Exercise",
    "exercise+manual": "Exercise + manual therapy",
    "ionto+exercise": "Iontophoresis + exercise",
    "ionto+exercise+manual": "Iontophoresis + exercise + manual therapy",
    "ionto": "Iontophoresis only",
}
"""Readable arm names for legends."""

INSTRUMENT_SHORT_NAMES: dict[str, str] = {
    "nprs": "NPRS",
    "vas": "VAS pain",
    "visa_a": "VISA-A",
    "prtee": "PRTEE",
    "quickdash": "QuickDASH",
    "dash": "DASH",
    "grip_pain_free_kg": "pain-free grip",
    "ffi": "FFI",
    "faam_adl": "FAAM ADL",
    "faam_sports": "FAAM Sports",
    "fhsq_pain": "FHSQ pain",
    "fhsq_function": "FHSQ function",
    "lefs": "LEFS",
    "psfs": "PSFS",
    "groc": "GROC",
}
"""Short names clinicians use, for axis titles and sentences."""

OTHER_COLOUR = "#7F7F7F"
"""Colour for anything that is not an arm (no arm, all patients, reference lines)."""

DEVICE_PALETTE: tuple[str, ...] = ("#009E73", "#0072B2", "#D55E00", "#CC79A7", "#E69F00", "#56B4E9")
"""Colours given to device models in sorted order of their names."""

PHASE_COLOURS: dict[str, str] = {
    "ramp_up": "rgba(86, 180, 233, 0.18)",
    "limited": "rgba(230, 159, 0, 0.25)",
    "paused": "rgba(204, 121, 167, 0.25)",
    "ramp_down": "rgba(0, 158, 115, 0.18)",
    "stopped": "rgba(127, 127, 127, 0.22)",
}
"""Shading of the session phases in :func:`trace_figure` (``treat`` is left unshaded)."""

LIMIT_STYLES: dict[float, dict[str, Any]] = {
    0.95: {"dash": "dash", "color": "#7F7F7F", "width": 1.5},
    0.998: {"dash": "solid", "color": "#404040", "width": 1.5},
}
"""Line style of the funnel plot's control limits by coverage."""

TEMPLATE = go.layout.Template(
    layout={
        "font": {"family": "Arial, Helvetica, sans-serif", "size": 14, "color": "#222222"},
        "title": {"font": {"size": 17}, "x": 0.0, "xanchor": "left"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {
            "automargin": True,
            "showline": True,
            "linecolor": "#444444",
            "ticks": "outside",
            "zeroline": False,
            "gridcolor": "#EBEBEB",
            "showgrid": True,
        },
        "yaxis": {
            "automargin": True,
            "showline": True,
            "linecolor": "#444444",
            "ticks": "outside",
            "zeroline": False,
            "gridcolor": "#EBEBEB",
            "showgrid": True,
        },
        "legend": {"bgcolor": "rgba(255,255,255,0.8)"},
        "hoverlabel": {"font": {"size": 13}},
        "margin": {"l": 70, "r": 30, "t": 70, "b": 60},
    }
)
"""The layout template every builder applies (never set as plotly's global default).

Axes have ``automargin``: the margins grow to hold the tick labels and axis titles, so a
category label wrapped over two or three lines (:func:`wrap_label`) is never clipped at the
bottom of the chart."""


def arm_colour(arm: object) -> str:
    """The fixed colour of an arm key (grey for anything else).

    Examples
    --------
    >>> arm_colour("ionto"), arm_colour(None)
    ('#CC79A7', '#7F7F7F')
    """
    return ARM_COLOURS.get(arm, OTHER_COLOUR) if isinstance(arm, str) else OTHER_COLOUR


def arm_label(arm: object) -> str:
    """Readable name of an arm key (the value itself when it is not an arm).

    Examples
    --------
    >>> arm_label("exercise+manual"), arm_label(None)
    ('Exercise + manual therapy', 'no arm')
    """
    if not isinstance(arm, str):
        return "no arm"
    return ARM_LABELS.get(arm, arm)


def instrument_axis_label(instrument: str | None, what: str = "score") -> str:
    """Axis title with the instrument's name, range and direction.

    Parameters
    ----------
    instrument : str or None
        Instrument key.
    what : {"score", "change", "improvement", "difference"}
        What the axis shows.

    Examples
    --------
    >>> instrument_axis_label("prtee")
    'PRTEE score (0–100 points, lower is better)'
    >>> instrument_axis_label("visa_a", "improvement")
    'Improvement in VISA-A (points, higher = better)'
    """
    if not instrument:
        return {"score": "Score", "change": "Change from baseline (points)"}.get(
            what, "Difference (points)"
        )
    inst = get_instrument(instrument)
    name = instrument_short_name(inst.key)
    lo, hi = inst.range
    if what == "score":
        return f"{name} score ({lo:g}–{hi:g} {inst.unit}, {inst.direction} is better)"
    if what == "change":
        return f"Change in {name} from baseline ({inst.unit}; {inst.direction} is better)"
    if what == "improvement":
        return f"Improvement in {name} ({inst.unit}, higher = better)"
    return f"Difference in {name} ({inst.unit})"


def instrument_short_name(instrument: str) -> str:
    """Short display name of an instrument key (the key itself when unknown).

    Examples
    --------
    >>> instrument_short_name("visa_a"), instrument_short_name("prtee")
    ('VISA-A', 'PRTEE')
    """
    return INSTRUMENT_SHORT_NAMES.get(instrument, instrument)


NAMES: dict[str, str] = {
    "tendinopathy": "Tendinopathy (Achilles and other)",
    "epicondylitis": "Epicondylitis (lateral and medial)",
    "achilles_tendinopathy": "Achilles tendinopathy",
    "other_tendinopathy": "Other tendinopathy",
    "lateral_epicondylitis": "Lateral epicondylitis (tennis elbow)",
    "medial_epicondylitis": "Medial epicondylitis (golfer's elbow)",
    "plantar_fasciitis": "Plantar fasciitis",
    "bursitis": "Bursitis",
    "rheumatoid": "Rheumatoid arthritis",
    "clinic_unit": "Clinic unit",
    "wearable_patch": "Wearable patch",
    "not linked to an episode": "Not linked to an episode",
    "clinic_id": "Clinic",
}
"""Readable names of vocabulary keys that are not arms or instruments."""

VOCABULARY_NAMES: dict[str, str] = {**ARM_LABELS, **INSTRUMENT_SHORT_NAMES, **NAMES}
"""Every key with a readable name (tables show these names in place of the keys)."""


def display_name(key: object) -> str:
    """The readable name of a vocabulary key: arm, instrument, condition, device, format.

    Unknown keys are shown with spaces for underscores and a capital first letter (an
    export format ``dermapatch_log`` reads "Dermapatch log"); clinic keys stay as they are.

    Examples
    --------
    >>> display_name("achilles_tendinopathy"), display_name("faam_adl")
    ('Achilles tendinopathy', 'FAAM ADL')
    >>> display_name("ionto+exercise"), display_name("dermapatch_log"), display_name("clinic_03")
    ('Iontophoresis + exercise', 'Dermapatch log', 'clinic_03')
    """
    text = str(key)
    if text in VOCABULARY_NAMES:
        return VOCABULARY_NAMES[text]
    if text.startswith("clinic") or "_" not in text:
        return text
    words = text.replace("_", " ")
    return words[0].upper() + words[1:]


def fault_label(code: object) -> str:
    """A device fault code in words: ``CURRENT_LIMITED`` → ``"Current limited"``.

    Examples
    --------
    >>> fault_label("CURRENT_LIMITED"), fault_label("PAUSED"), fault_label("E12")
    ('Current limited', 'Paused', 'E12')
    """
    text = str(code)
    if not text.isupper():
        return text
    words = text.replace("_", " ").lower()
    return words[0].upper() + words[1:]


_KEEP_TOGETHER = re.compile(r"\b(?:lower|higher) (?:is|=) better\b")
"""Phrases a line break never splits: the direction of an instrument reads as one."""


def wrap_label(text: object, width: int = 16) -> str:
    """Break a category label into lines of about ``width`` characters (plotly ``<br>``).

    "lower is better" and "higher = better" stay on one line.

    Examples
    --------
    >>> wrap_label("Lateral epicondylitis (tennis elbow)")
    'Lateral<br>epicondylitis<br>(tennis elbow)'
    >>> wrap_label("Bursitis")
    'Bursitis'
    >>> wrap_label("NPRS score (0–10 points, lower is better)", 30)
    'NPRS score (0–10 points,<br>lower is better)'
    """
    kept = _KEEP_TOGETHER.sub(lambda m: m.group(0).replace(" ", "\0"), str(text))
    lines: list[str] = []
    for word in kept.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines).replace("\0", " ")


def rgba(colour: str, alpha: float) -> str:
    h = colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def fit_axis_titles(fig: go.Figure) -> go.Figure:
    """Wrap every axis title to fit beside its plot (y) or under it (x); in place.

    A vertical title longer than the plot is tall runs into the chart title above it, so
    y titles are wrapped to about one character per 8 px of the plot's height (the figure's
    less its top and bottom margins), x titles at 60.

    Examples
    --------
    >>> fig = go.Figure(layout={"height": 330, "yaxis_title": "Points on NPRS 0-10 "
    ...                         "(higher = more relief)"})
    >>> fit_axis_titles(fig).layout.yaxis.title.text
    'Points on NPRS 0-10<br>(higher = more relief)'
    """
    height = int(fig.layout.height or 450)
    margin = TEMPLATE.layout.margin
    top = fig.layout.margin.t if fig.layout.margin.t is not None else margin.t
    bottom = fig.layout.margin.b if fig.layout.margin.b is not None else margin.b
    y_width = max(16, int((height - top - bottom) / 8))
    for axis in (*fig.select_xaxes(), *fig.select_yaxes()):
        text = axis.title.text
        if text and "<br>" not in text:
            width = 60 if axis.plotly_name.startswith("xaxis") else y_width
            axis.title.text = wrap_label(text, width)
    return fig


def subtitled(title: str, *lines: str) -> str:
    """A chart title with a smaller second line: the window, the cohort (empty parts left out).

    Examples
    --------
    >>> subtitled("Clinics", "week 6 = days 36–49, nearest to day 42", "")
    'Clinics<br><sup>week 6 = days 36–49, nearest to day 42</sup>'
    >>> subtitled("Clinics")
    'Clinics'
    """
    sub = "; ".join(x for x in lines if x)
    return f"{title}<br><sup>{sub}</sup>" if sub else title


TITLE_MARGIN = {1: 70, 2: 95}
"""Top margin (px) for a one- and a two-line chart title (the second is a subtitle)."""


def finish_figure(fig: go.Figure, title: str | None, x: str | None, y: str | None) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title={"text": title or ""})
    if title and "<br>" in title and (fig.layout.margin.t or 0) < TITLE_MARGIN[2]:
        fig.update_layout(margin={"t": TITLE_MARGIN[2]})
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fit_axis_titles(fig)


def ordered_groups(values: Iterable[object]) -> list[object]:
    """Arms in vocabulary order first, then anything else in order of appearance."""
    seen = list(dict.fromkeys(v for v in values))
    arms = [a for a in ARMS if a in seen]
    return arms + [v for v in seen if v not in ARMS]


def n_text(df: pd.DataFrame) -> list[str]:
    if "n_label" in df.columns:
        return [str(v) for v in df["n_label"]]
    return [f"{int(v):,}" if pd.notna(v) else "?" for v in df["n"]]
