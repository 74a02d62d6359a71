"""Outcome figures: trajectories by arm, responder waterfall and rates, forest plot.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"arm": ["ionto+exercise"] * 2, "week": [0, 6], "n": [30, 25],
...                   "mean": [6.0, 3.5], "ci_low": [5.5, 3.0], "ci_high": [6.5, 4.0]})
>>> trajectory_figure(t, instrument="nprs").layout.yaxis.title.text
'NPRS score (0–10 points,<br>lower is better)'
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from data_schemas.frames import require_columns
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument
from ionto_analytics.plots.style import (
    OTHER_COLOUR,
    arm_colour,
    arm_label,
    finish_figure,
    instrument_axis_label,
    instrument_short_name,
    n_text,
    ordered_groups,
    rgba,
)

__all__ = ["forest_figure", "responder_figure", "responder_rate_figure", "trajectory_figure"]


def trajectory_figure(
    trajectories: pd.DataFrame,
    *,
    group: str = "arm",
    instrument: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Mean outcome over weeks by arm, each with its confidence band.

    Parameters
    ----------
    trajectories : DataFrame
        ``group`` column, ``week``, ``n``, ``mean``, ``ci_low``, ``ci_high``; optional
        ``n_label`` (text shown for n, e.g. ``"<11"``), ``instrument`` and ``measure``
        (``"score"``, ``"change"`` or ``"improvement"``), as from
        :func:`ionto_analytics.explorer.trajectories`.
    group : str
        Column with one line per value (arms get their fixed colours).
    instrument : str or None
        Instrument key for the axis label (default: the frame's ``instrument`` column).
    title : str or None

    Returns
    -------
    plotly.graph_objects.Figure
        Per group: a band trace (``legendgroup`` = the group, not in the legend) then a line.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"arm": ["exercise"] * 2, "week": [0, 6], "n": [30, 25],
    ...                   "mean": [50.0, 35.0], "ci_low": [45.0, 30.0],
    ...                   "ci_high": [55.0, 40.0]})
    >>> fig = trajectory_figure(t, instrument="prtee")
    >>> fig.data[1].name, fig.data[1].line.color
    ('Exercise', '#0072B2')
    """
    require_columns(trajectories, [group, "week", "n", "mean", "ci_low", "ci_high"], "trajectories")
    if instrument is None and "instrument" in trajectories.columns and len(trajectories):
        instrument = str(trajectories["instrument"].iloc[0])
    measure = (
        str(trajectories["measure"].iloc[0])
        if "measure" in trajectories.columns and len(trajectories)
        else "score"
    )
    fig = go.Figure()
    for g in ordered_groups(trajectories[group]):
        d = trajectories[trajectories[group] == g].sort_values("week")
        colour = arm_colour(g)
        x = d["week"].to_numpy(float)
        lo, hi = d["ci_low"].to_numpy(float), d["ci_high"].to_numpy(float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        fig.add_trace(
            go.Scatter(
                x=np.concatenate([x[ok], x[ok][::-1]]),
                y=np.concatenate([hi[ok], lo[ok][::-1]]),
                fill="toself",
                fillcolor=rgba(colour, 0.15),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=str(g),
                name=f"{arm_label(g)} 95% CI",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=d["mean"],
                mode="lines+markers",
                line={"color": colour, "width": 2.5},
                marker={"size": 7},
                name=arm_label(g),
                legendgroup=str(g),
                customdata=np.column_stack([n_text(d), lo, hi]),
                hovertemplate=(
                    f"<b>{arm_label(g)}</b><br>week %{{x}}<br>mean %{{y:.1f}}"
                    " (95% CI %{customdata[1]:.1f} to %{customdata[2]:.1f})"
                    "<br>n = %{customdata[0]}<extra></extra>"
                ),
            )
        )
    return finish_figure(
        fig,
        title,
        "Weeks since intake",
        instrument_axis_label(instrument, measure),
    )


def _forest_rows(results: object) -> pd.DataFrame:
    items: list[object]
    if isinstance(results, pd.DataFrame) or hasattr(results, "estimate"):
        items = [results]
    else:
        items = list(results)  # type: ignore[call-overload]
    frames = []
    for it in items:
        if isinstance(it, pd.DataFrame):
            frames.append(it)
        elif hasattr(it, "summary") and hasattr(it, "estimate"):
            frames.append(it.summary())  # type: ignore[attr-defined]
        else:
            raise InputError(
                f"forest_figure: expected ComparisonResult objects or summary DataFrames, "
                f"got {type(it).__name__}"
            )
    if not frames:
        raise InputError("forest_figure: nothing to plot (empty list of results)")
    rows = pd.concat(frames, ignore_index=True)
    return require_columns(rows, ["estimate", "ci_low", "ci_high"], "forest_figure rows")


def _favoured(arms: Sequence[str], *, first: bool) -> str:
    """Who a side of the forest plot favours, in words, for the rows' first or second arms."""
    named = sorted(set(arms))
    if first and named and all(a.startswith("ionto") for a in named):
        return "iontophoresis"
    if len(named) == 1:
        return arm_label(named[0]).lower()
    if not first and named and not any(a.startswith("ionto") for a in named):
        return "without iontophoresis"
    return "the first arm" if first else "the second arm"


def _direction_panels(rows: pd.DataFrame) -> list[tuple[bool | None, np.ndarray]]:
    """Row positions per instrument direction (True: higher is better; None: unknown),
    lower-is-better first: instruments of opposite directions never share an axis."""
    inst = rows["instrument"] if "instrument" in rows else pd.Series(None, index=rows.index)
    higher = [
        get_instrument(str(i)).higher_is_better if isinstance(i, str) and i else None for i in inst
    ]
    keys = sorted(set(higher), key=lambda h: {False: 0, True: 1, None: 2}[h])
    return [(k, np.flatnonzero([h is k for h in higher])) for k in keys]


def _panel_range(part: pd.DataFrame, null: float) -> list[float]:
    """An x range holding every interval and the null line, with room on both sides of the
    null line for its "favours" labels."""
    lo = min(float(np.nanmin(part["ci_low"])), null)
    hi = max(float(np.nanmax(part["ci_high"])), null)
    pad = 0.08 * (hi - lo) or 1.0
    width = hi - lo + 2 * pad
    return [min(lo - pad, null - 0.3 * width), max(hi + pad, null + 0.3 * width)]


def forest_figure(
    results: object,
    *,
    labels: Sequence[str] | None = None,
    null: float = 0.0,
    xaxis_title: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Forest plot: one row per comparison, estimate with its 95 % confidence interval.

    Estimates stay on their instrument's own scale (first arm − second arm), as in the
    tables, so a lower-is-better and a higher-is-better instrument never share an axis:
    each direction gets its own panel, and each panel says which side favours which arm
    ("← favours iontophoresis" left of the null line for a lower-is-better instrument).

    Parameters
    ----------
    results : ComparisonResult, DataFrame, or a list of them
        Result objects (their ``summary()`` is used) or summary frames with ``estimate``,
        ``ci_low``, ``ci_high`` and optionally ``contrast``, ``instrument``, ``week``,
        ``method``, ``n``, ``n_<arm>``, ``label``.
    labels : sequence of str, optional
        Row labels (default: the ``label`` column, else contrast · instrument · week · method).
    null : float
        Position of the no-difference line.
    xaxis_title, title : str, optional
        ``xaxis_title`` is given to every panel, with the panel's instruments and direction.

    Returns
    -------
    plotly.graph_objects.Figure
        One scatter trace per panel (lower-is-better first), marker colours the first arm
        of each contrast; two "favours" annotations per panel whose direction is known.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = pd.DataFrame({"contrast": ["ionto+exercise − exercise"], "instrument": "nprs",
    ...                      "week": 6, "estimator": "ANCOVA", "estimate": [-0.8],
    ...                      "ci_low": [-1.5], "ci_high": [-0.1], "n": [120]})
    >>> fig = forest_figure(rows)
    >>> list(fig.data[0].y), fig.data[0].marker.color[0]
    (['ionto+exercise − exercise · nprs · week 6 · ANCOVA'], '#D55E00')
    >>> [a.text for a in fig.layout.annotations]
    ['← favours iontophoresis', 'favours exercise →']
    """
    rows = _forest_rows(results)
    if labels is not None:
        if len(labels) != len(rows):
            raise InputError(f"forest_figure: {len(labels)} labels for {len(rows)} rows")
        lab = [str(v) for v in labels]
    elif "label" in rows.columns:
        lab = rows["label"].astype(str).tolist()
    else:
        lab = []
        for _, r in rows.iterrows():
            parts = [str(r[c]) for c in ("contrast", "instrument") if c in rows and pd.notna(r[c])]
            if "week" in rows and pd.notna(r["week"]):
                w = r["week"]
                parts.append(f"week {w}" if str(w).isdigit() else str(w))
            if "estimator" in rows and pd.notna(r["estimator"]):
                parts.append(str(r["estimator"]).split(",")[0])
            lab.append(" · ".join(parts) or "estimate")
    contrasts = [
        str(c).split(" − ") if isinstance(c, str) and " − " in c else [None, None]
        for c in (rows["contrast"] if "contrast" in rows else [None] * len(rows))
    ]
    colours = [arm_colour(c[0]) for c in contrasts]
    n_cols = [c for c in rows.columns if c.startswith("n_")]
    hover = []
    for _, r in rows.iterrows():
        ns = ", ".join(f"{c[2:]}: {int(r[c])}" for c in n_cols if pd.notna(r[c]))
        total = f"n = {int(r['n']):,}" if "n" in rows and pd.notna(r["n"]) else ""
        hover.append("; ".join(p for p in (total, ns) if p))
    panels = _direction_panels(rows)
    sizes = [len(idx) for _, idx in panels]
    gap = 160  # px between panels: tick labels, the axis title, the next panel's labels
    frame_px = 170  # the title above and the last axis below the plotting area
    height = max(260, frame_px + 45 * len(rows) + gap * (len(panels) - 1))
    fig = make_subplots(  # the spacing is a fraction of the plotting area, not the figure
        rows=len(panels),
        cols=1,
        row_heights=[k / len(rows) for k in sizes],
        vertical_spacing=gap / (height - frame_px) if len(panels) > 1 else 0.0,
    )
    for row, (higher, idx) in enumerate(panels, start=1):
        part = rows.iloc[idx]
        e = part["estimate"].to_numpy(float)
        fig.add_trace(
            go.Scatter(
                x=e,
                y=[lab[i] for i in idx],
                mode="markers",
                marker={"color": [colours[i] for i in idx], "size": 11, "symbol": "square"},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": part["ci_high"].to_numpy(float) - e,
                    "arrayminus": e - part["ci_low"].to_numpy(float),
                    "color": "#444444",
                    "thickness": 1.6,
                },
                customdata=np.column_stack(
                    [
                        part["ci_low"].to_numpy(float),
                        part["ci_high"].to_numpy(float),
                        [hover[i] for i in idx],
                    ]
                ),
                hovertemplate=(
                    "<b>%{y}</b><br>estimate %{x:.2f} (95% CI %{customdata[0]:.2f} to "
                    "%{customdata[1]:.2f})<br>%{customdata[2]}<extra></extra>"
                ),
                name="estimate (95% CI)",
                showlegend=False,
            ),
            row=row,
            col=1,
        )
        fig.add_vline(x=null, line={"dash": "dash", "color": OTHER_COLOUR}, row=row, col=1)
        inst = part["instrument"].dropna().unique().tolist() if "instrument" in part else []
        fig.update_xaxes(
            title_text=_forest_axis_title(inst, higher, xaxis_title),
            range=_panel_range(part, null),
            row=row,
            col=1,
        )
        fig.update_yaxes(autorange="reversed", automargin=True, row=row, col=1)
        if higher is None:
            continue
        first = _favoured([c[0] for c in (contrasts[i] for i in idx) if c[0]], first=True)
        second = _favoured([c[1] for c in (contrasts[i] for i in idx) if c[1]], first=False)
        left, right = (second, first) if higher else (first, second)
        domain = "y domain" if row == 1 else f"y{row} domain"
        axis = "x" if row == 1 else f"x{row}"
        for text, anchor in ((f"← favours {left}", "right"), (f"favours {right} →", "left")):
            fig.add_annotation(
                x=null, xref=axis, y=1.0, yref=domain, yanchor="bottom", xanchor=anchor,
                xshift=-6 if anchor == "right" else 6, text=text, showarrow=False,
                font={"size": 12, "color": "#444444"},
            )  # fmt: skip
    # room on the right for a "favours ... →" label that runs past the plotting area
    fig.update_layout(height=height, margin={"r": 100 if fig.layout.annotations else 30})
    return finish_figure(fig, title or "Comparisons (estimate and 95% CI)", None, None)


def _forest_axis_title(instruments: list[str], higher: bool | None, given: str | None) -> str:
    """A panel's x title: the difference, its instruments and their direction."""
    if higher is None:
        return given or "Difference, first arm − second arm (95% CI)"
    names = ", ".join(instrument_short_name(i) for i in instruments)
    better = "higher" if higher else "lower"
    if given:
        return f"{given}: {names} ({better} is better)"
    if len(instruments) == 1:
        label = instrument_axis_label(instruments[0], "difference")
        return f"{label}, first − second arm ({better} is better)"
    return f"Difference in {names}, first − second arm ({better} is better)"


def responder_figure(
    responders: pd.DataFrame,
    *,
    group: str = "arm",
    instrument: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Waterfall of each episode's improvement, coloured by arm, with the MCID line.

    Episodes are sorted from most to least improved within each arm; bars at or above the
    dashed MCID line are responders. Baseline-dependent MCIDs (NPRS "2 points or 30 %")
    make the line step with each episode's threshold. Episodes with no follow-up in the
    window are not drawn and are counted in the title.

    Parameters
    ----------
    responders : DataFrame
        :func:`ionto_analytics.outcomes.mcid_responders` output with a ``group`` column:
        ``improvement``, ``mcid_threshold`` and ``group``.
    group : str
    instrument : str or None
    title : str or None

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace per arm, then the ``MCID`` line trace.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"arm": ["exercise", "exercise", "ionto+exercise"],
    ...                   "improvement": [3.0, 0.5, 2.5], "mcid_threshold": 2.0})
    >>> [t.name for t in responder_figure(d, instrument="nprs").data]
    ['Exercise', 'Iontophoresis + exercise', 'MCID']
    """
    require_columns(responders, [group, "improvement", "mcid_threshold"], "responders")
    if instrument is None and "instrument" in responders.columns and len(responders):
        instrument = str(responders["instrument"].iloc[0])
    has = responders["improvement"].notna()
    missing = int((~has).sum())
    d = responders[has.to_numpy()]
    fig = go.Figure()
    xs, thr = [], []
    start = 0
    for g in ordered_groups(d[group]):
        part = d[d[group] == g].sort_values("improvement", ascending=False)
        x = np.arange(start, start + len(part))
        start += len(part) + 2
        flags = part["improvement"].to_numpy(float) >= part["mcid_threshold"].to_numpy(float)
        fig.add_trace(
            go.Bar(
                x=x,
                y=part["improvement"],
                marker={"color": arm_colour(g), "line": {"width": 0}},
                name=arm_label(g),
                legendgroup=str(g),
                customdata=np.column_stack(
                    [part["mcid_threshold"].to_numpy(float), np.where(flags, "yes", "no")]
                ),
                hovertemplate=(
                    f"<b>{arm_label(g)}</b> (n = {len(part):,})<br>improvement %{{y:.1f}}"
                    "<br>MCID %{customdata[0]:.1f}; responder: %{customdata[1]}<extra></extra>"
                ),
            )
        )
        xs += [*x.tolist(), None]
        thr += [*part["mcid_threshold"].tolist(), None]
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=thr,
            mode="lines",
            line={"dash": "dash", "color": "#222222", "width": 1.5, "shape": "hvh"},
            name="MCID",
            hoverinfo="skip",
        )
    )
    fig.add_hline(y=0, line={"color": "#444444", "width": 1})
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_layout(bargap=0.05)
    note = f" ({missing} without a follow-up not shown)" if missing else ""
    return finish_figure(
        fig,
        (title or "Improvement per episode and the MCID") + note,
        "Episodes, most to least improved within each arm",
        instrument_axis_label(instrument, "improvement"),
    )


def responder_rate_figure(
    rates: pd.DataFrame,
    *,
    group: str = "arm",
    mcid_text: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Share of MCID responders per arm with Wilson 95% intervals.

    Parameters
    ----------
    rates : DataFrame
        ``group``, ``n``, ``proportion``, ``ci_low``, ``ci_high``; optional ``n_label`` and
        ``suppressed`` (True: the bar is not drawn, small cells), as from
        :func:`ionto_analytics.explorer.responder_rates`.
    group : str
    mcid_text : str, optional
        E.g. ``"MCID 11 points (PRTEE)"``, written on the axis.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One bar trace, bar colours by arm.

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"arm": ["exercise", "ionto+exercise"], "n": [40, 38],
    ...                   "proportion": [0.4, 0.55], "ci_low": [0.26, 0.39],
    ...                   "ci_high": [0.55, 0.70]})
    >>> list(responder_rate_figure(r).data[0].marker.color)
    ['#0072B2', '#D55E00']
    """
    require_columns(rates, [group, "n", "proportion", "ci_low", "ci_high"], "rates")
    order = ordered_groups(rates[group])
    d = rates.set_index(group).loc[order].reset_index()
    sup = d["suppressed"].to_numpy(bool) if "suppressed" in d else np.zeros(len(d), bool)
    p = np.where(sup, np.nan, d["proportion"].to_numpy(float))
    lo = np.where(sup, np.nan, d["ci_low"].to_numpy(float))
    hi = np.where(sup, np.nan, d["ci_high"].to_numpy(float))
    n_txt = n_text(d)
    text = [
        f"hidden (n = {n})" if s else f"{100 * v:.0f}% (n = {n})"
        for s, v, n in zip(sup, p, n_txt, strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=[arm_label(g) for g in d[group]],
            y=100 * p,
            marker={"color": [arm_colour(g) for g in d[group]]},
            error_y={
                "type": "data",
                "symmetric": False,
                "array": 100 * (hi - p),
                "arrayminus": 100 * (p - lo),
                "color": "#444444",
            },
            text=text,
            textposition="outside",
            customdata=np.column_stack([n_txt, 100 * lo, 100 * hi]),
            hovertemplate=(
                "<b>%{x}</b><br>%{y:.0f}% responders (95% CI %{customdata[1]:.0f}–"
                "%{customdata[2]:.0f}%)<br>n = %{customdata[0]}<extra></extra>"
            ),
            name="responders",
            showlegend=False,
        )
    )
    fig.update_yaxes(range=[0, 105])
    y = "Responders (%)" + (f": improved ≥ {mcid_text}" if mcid_text else " (improved ≥ MCID)")
    return finish_figure(fig, title or "MCID responders by arm", None, y)
