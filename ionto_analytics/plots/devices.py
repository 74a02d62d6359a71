"""Device-quality figures: fault Pareto, delivered dose, event rates, session trace viewer.

Examples
--------
>>> import pandas as pd
>>> p = pd.DataFrame({"fault_code": ["PAUSED", "CURRENT_LIMITED"], "n_faults": [5, 12]})
>>> list(pareto_figure(p).data[0].x)
['Current limited', 'Paused']
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from data_schemas.frames import require_columns
from ionto_analytics.plots.style import (
    DEVICE_PALETTE,
    OTHER_COLOUR,
    PHASE_COLOURS,
    arm_colour,
    fault_label,
    finish_figure,
    ordered_groups,
)

__all__ = ["dose_delivery_figure", "pareto_figure", "rate_figure", "trace_figure"]

OTHER_FAULTS = "Other codes"
"""The Pareto's last bar: the codes hidden by suppression, together."""


def _device_colours(models: Iterable[object]) -> dict[object, str]:
    names = sorted({str(m) for m in models})
    return {m: DEVICE_PALETTE[i % len(DEVICE_PALETTE)] for i, m in enumerate(names)}


def pareto_figure(
    pareto: pd.DataFrame, *, by: str | None = None, title: str | None = None, other: int = 0
) -> go.Figure:
    """Pareto chart of device faults: counts, most frequent first, with the cumulative share.

    Parameters
    ----------
    pareto : DataFrame
        :func:`ionto_analytics.devices.fault_pareto`: ``fault_code``, ``n_faults`` and,
        with ``by``, a group column (bars are then stacked by group).
    by : str, optional
        Group column (e.g. ``"device_model"``).
    title : str, optional
    other : int
        Faults of the codes not in ``pareto`` (hidden by suppression): drawn last as one
        grey "other codes" bar, so the cumulative share ends at 100 % of **all** faults.

    Returns
    -------
    plotly.graph_objects.Figure
        Bar trace(s), then the ``cumulative %`` line on the right axis.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"fault_code": ["PAUSED", "CURRENT_LIMITED"], "n_faults": [5, 12]})
    >>> [t.name for t in pareto_figure(p).data]
    ['faults', 'cumulative %']
    >>> fig = pareto_figure(p, other=13)
    >>> [t.name for t in fig.data], [round(float(v)) for v in fig.data[-1].y]
    (['faults', 'other codes', 'cumulative %'], [40, 57, 100])
    """
    cols = ["fault_code", "n_faults"] + ([by] if by else [])
    p = require_columns(pareto, cols, "pareto")
    totals = p.groupby("fault_code", sort=False)["n_faults"].sum().sort_values(ascending=False)
    order = [fault_label(f) for f in totals.index]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if by:
        colours = _device_colours(p[by])
        for g in sorted(p[by].astype(str).unique()):
            part = p[p[by].astype(str) == g].set_index("fault_code")["n_faults"]
            y = [int(part.get(f, 0)) for f in totals.index]
            fig.add_trace(
                go.Bar(
                    x=order,
                    y=y,
                    name=g,
                    marker={"color": colours[g]},
                    hovertemplate=f"<b>{g}</b><br>%{{x}}: %{{y}} sessions<extra></extra>",
                ),
                secondary_y=False,
            )
        fig.update_layout(barmode="stack")
    else:
        fig.add_trace(
            go.Bar(
                x=order,
                y=totals.to_numpy(),
                name="faults",
                marker={"color": "#0072B2"},
                hovertemplate="%{x}: %{y} sessions<extra></extra>",
            ),
            secondary_y=False,
        )
    if other:
        fig.add_trace(
            go.Bar(
                x=[OTHER_FAULTS],
                y=[other],
                name="other codes",
                marker={"color": OTHER_COLOUR},
                hovertemplate="%{x}: %{y} sessions<extra></extra>",
            ),
            secondary_y=False,
        )
    counts = [*totals.to_numpy(float), *([float(other)] if other else [])]
    everything = sum(counts)
    cum = 100 * np.cumsum(counts) / everything if everything else np.zeros(len(counts))
    fig.add_trace(
        go.Scatter(
            x=[*order, *([OTHER_FAULTS] if other else [])],
            y=cum,
            mode="lines+markers",
            name="cumulative %",
            line={"color": "#222222"},
            hovertemplate="%{x}: %{y:.0f}% of all faults so far<extra></extra>",
        ),
        secondary_y=True,
    )
    fig.update_yaxes(
        title_text="Cumulative share of all faults (%)",
        range=[0, 105],
        tickvals=[0, 20, 40, 60, 80, 100],
        secondary_y=True,
        showgrid=False,
    )
    fig.update_yaxes(title_text="Sessions with the fault", secondary_y=False)
    fig.update_layout(  # below the chart: beside it, it runs over the right axis title
        legend={"orientation": "h", "x": 0, "y": -0.3, "yanchor": "top"},
        margin={"b": 120},
    )
    return finish_figure(fig, title or "Device faults, most frequent first", "Fault code", None)


def dose_delivery_figure(
    delivery: pd.DataFrame,
    *,
    by: str = "device_model",
    tolerance: float = 0.05,
    title: str | None = None,
) -> go.Figure:
    """Delivered dose as a percentage of the prescribed dose, one box per group.

    Parameters
    ----------
    delivery : DataFrame
        :func:`ionto_analytics.devices.dose_delivery`: ``delivered_fraction`` and ``by``.
    by : str
    tolerance : float
        The shortfall counted as "ended before the prescribed dose" (dotted line).
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One box trace per group.
    """
    d = require_columns(delivery, ["delivered_fraction", by], "delivery")
    d = d[d["delivered_fraction"].notna().to_numpy()]
    colours = _device_colours(d[by]) if by == "device_model" else {}
    fig = go.Figure()
    for g in ordered_groups(sorted(d[by].astype(str).unique())):
        part = d[d[by].astype(str) == g]
        colour = colours.get(g, arm_colour(g))
        fig.add_trace(
            go.Box(
                y=100 * part["delivered_fraction"],
                name=f"{g} (n = {len(part):,})",
                marker={"color": colour, "size": 4},
                boxpoints="outliers",
                hovertemplate=f"<b>{g}</b><br>%{{y:.0f}}% of prescribed<extra></extra>",
            )
        )
    fig.add_hline(y=100, line={"dash": "dash", "color": "#222222"})
    fig.add_hline(y=100 * (1 - tolerance), line={"dash": "dot", "color": "#B03A2E"})
    fig.update_layout(showlegend=False)
    return finish_figure(
        fig,
        title or "Delivered dose as a share of the prescribed dose",
        None,
        "Delivered / prescribed dose (%)",
    )


def rate_figure(
    rates: pd.DataFrame,
    *,
    by: str,
    event: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Event rates per 1,000 sessions with exact 95% intervals, one marker per group.

    Parameters
    ----------
    rates : DataFrame
        :func:`ionto_analytics.devices.event_rates` with ``by``: ``event``, ``n_events``,
        ``n_sessions``, ``rate_per_1000``, ``ci_low``, ``ci_high``.
    by : str
        Group column (one row on the y axis per group).
    event : str, optional
        Keep this event only (default: all, one colour each).
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        One scatter trace per event.
    """
    cols = [by, "event", "n_events", "n_sessions", "rate_per_1000", "ci_low", "ci_high"]
    r = require_columns(rates, cols, "rates")
    if event is not None:
        r = r[r["event"] == event]
    palette = ("#D55E00", "#0072B2", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
    fig = go.Figure()
    for i, ev in enumerate(pd.unique(r["event"])):
        part = r[r["event"] == ev]
        est = part["rate_per_1000"].to_numpy(float)
        fig.add_trace(
            go.Scatter(
                x=est,
                y=part[by].astype(str),
                mode="markers",
                name=str(ev),
                marker={"size": 10, "color": palette[i % len(palette)]},
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": part["ci_high"].to_numpy(float) - est,
                    "arrayminus": est - part["ci_low"].to_numpy(float),
                },
                customdata=np.column_stack([part["n_events"], part["n_sessions"]]),
                hovertemplate=(
                    f"<b>{ev}</b> %{{y}}<br>%{{x:.1f}} per 1,000 sessions"
                    "<br>%{customdata[0]} of %{customdata[1]} sessions<extra></extra>"
                ),
            )
        )
    fig.update_yaxes(automargin=True)
    return finish_figure(
        fig, title or "Events per 1,000 sessions (exact 95% CI)", "Per 1,000 sessions", None
    )


def trace_figure(trace: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Session trace viewer: current, voltage and impedance on one shared time axis.

    Ramp-up, current-limited, ramp-down and stopped phases are shaded; fault and end
    events are vertical lines labelled with their code.

    Parameters
    ----------
    trace : DataFrame
        :func:`ionto_analytics.devices.session_trace`: ``t_s``, ``current_mA``,
        ``voltage_V``, ``impedance_ohm``, ``phase``, ``event``; optional ``setpoint_mA``
        and ``session_id``.
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        Three rows; traces ``current (mA)``, [``setpoint (mA)``], ``voltage (V)``,
        ``impedance (kΩ)``.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"t_s": [0.0, 30.0, 60.0, 90.0], "current_mA": [0.0, 2.0, 2.0, 0.0],
    ...                   "voltage_V": [0.0, 16.0, 15.0, 0.0],
    ...                   "impedance_ohm": [8000.0, 8000.0, 7500.0, 7400.0],
    ...                   "phase": ["ramp_up", "treat", "treat", "ramp_down"],
    ...                   "event": [None, None, None, "DOSE_COMPLETE"]})
    >>> [tr.name for tr in trace_figure(t).data]
    ['current (mA)', 'voltage (V)', 'impedance (kΩ)']
    """
    t = require_columns(
        trace, ["t_s", "current_mA", "voltage_V", "impedance_ohm", "phase", "event"], "trace"
    )
    minutes = t["t_s"].to_numpy(float) / 60.0
    z = t["impedance_ohm"].to_numpy(float)
    z_k = np.where(np.isfinite(z) & (z < 1e6), z / 1000.0, np.nan)
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.05,
        subplot_titles=("Current", "Voltage", "Skin + electrode impedance"),
    )
    fig.add_trace(
        go.Scatter(
            x=minutes,
            y=t["current_mA"],
            mode="lines",
            name="current (mA)",
            line={"color": "#D55E00"},
            hovertemplate="%{x:.2f} min: %{y:.3f} mA<extra></extra>",
        ),
        row=1,
        col=1,
    )
    if "setpoint_mA" in t and t["setpoint_mA"].notna().any():
        fig.add_trace(
            go.Scatter(
                x=minutes,
                y=t["setpoint_mA"],
                mode="lines",
                name="setpoint (mA)",
                line={"color": "#222222", "dash": "dash", "width": 1},
                hoverinfo="skip",
            ),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=minutes,
            y=t["voltage_V"],
            mode="lines",
            name="voltage (V)",
            line={"color": "#0072B2"},
            hovertemplate="%{x:.2f} min: %{y:.1f} V<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=minutes,
            y=z_k,
            mode="lines",
            name="impedance (kΩ)",
            line={"color": "#009E73"},
            hovertemplate="%{x:.2f} min: %{y:.1f} kΩ<extra></extra>",
        ),
        row=3,
        col=1,
    )
    phases = t["phase"].astype(str).to_numpy()
    labelled: set[str] = set()
    if len(phases):
        starts = np.flatnonzero(np.r_[True, phases[1:] != phases[:-1]])
        ends = np.r_[starts[1:], len(phases)]
        for s, e in zip(starts, ends, strict=True):
            ph = phases[s]
            if ph not in PHASE_COLOURS:
                continue
            x1 = minutes[e] if e < len(minutes) else minutes[-1]
            # One paper-height shape per phase instead of one per row: fast with long traces.
            fig.add_shape(
                type="rect",
                xref="x",
                yref="paper",
                x0=minutes[s],
                x1=x1,
                y0=0,
                y1=1,
                fillcolor=PHASE_COLOURS[ph],
                line_width=0,
                layer="below",
            )
            if ph not in labelled:
                fig.add_annotation(
                    x=minutes[s],
                    y=1.0,
                    xref="x",
                    yref="paper",
                    text=ph.replace("_", " "),
                    showarrow=False,
                    xanchor="left",
                    yanchor="bottom",
                    font={"size": 11},
                )
            labelled.add(ph)
    ev = t[t["event"].notna().to_numpy()]
    for _, r in ev.iterrows():
        x = float(r["t_s"]) / 60.0
        fig.add_shape(
            type="line",
            xref="x",
            yref="paper",
            x0=x,
            x1=x,
            y0=0,
            y1=1,
            line={"color": "#B03A2E", "dash": "dot"},
        )
        fig.add_annotation(
            x=x,
            y=0.995,
            xref="x",
            yref="paper",
            text=str(r["event"]),
            showarrow=False,
            xanchor="right",
            yanchor="top",
            textangle=-90,
            font={"color": "#B03A2E", "size": 11},
        )
    fig.update_yaxes(title_text="mA", row=1, col=1)
    fig.update_yaxes(title_text="V", row=2, col=1)
    fig.update_yaxes(title_text="kΩ", row=3, col=1)
    fig.update_xaxes(title_text="Minutes since the start of the session", row=3, col=1)
    fig.update_layout(height=720, hovermode="x unified")
    if title is None and "session_id" in t and len(t):
        title = f"Session {str(t['session_id'].iloc[0])[:12]}…"
    return finish_figure(fig, title or "Session trace", None, None)
