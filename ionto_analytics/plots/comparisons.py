"""Figures of comparisons: Love plot, attrition diagram, dose response, clinic funnel.

Examples
--------
>>> import pandas as pd
>>> curve = pd.DataFrame({"x": [40.0, 120.0, 240.0], "estimate": [0.0, -1.0, -1.5],
...                       "ci_low": [-0.5, -2.0, -3.0], "ci_high": [0.5, 0.0, 0.0]})
>>> fig = dose_response_figure(curve, instrument="nprs")
>>> [t.name for t in fig.data], fig.layout.xaxis.title.text
(['95% band', 'estimate'], 'Cumulative delivered dose (mA·min)')
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from data_schemas.frames import require_columns
from data_schemas.windows import window_text
from ionto_analytics.errors import InputError
from ionto_analytics.plots.style import (
    ARM_COLOURS,
    LIMIT_STYLES,
    OTHER_COLOUR,
    finish_figure,
    instrument_axis_label,
    instrument_short_name,
    rgba,
    subtitled,
)

__all__ = ["attrition_figure", "dose_response_figure", "funnel_figure", "love_figure"]


def love_figure(balance: object, *, threshold: float = 0.1, title: str | None = None) -> go.Figure:
    """Love plot: absolute standardized mean difference per covariate, before and after.

    Parameters
    ----------
    balance : DataFrame or ComparisonResult
        ``variable``, ``smd_before``, ``smd_after`` (the ``balance`` of an IPTW result;
        a result object is accepted and its ``balance`` used).
    threshold : float
        Dashed reference line (|SMD| < 0.1 is the usual "balanced").
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        Traces ``before weighting`` (open grey circles) and ``after weighting``.

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.DataFrame({"variable": ["age_years", "baseline"], "smd_before": [0.3, -0.2],
    ...                   "smd_after": [0.02, 0.01]})
    >>> [t.name for t in love_figure(b).data]
    ['before weighting', 'after weighting']
    """
    if not isinstance(balance, pd.DataFrame):
        balance = getattr(balance, "balance", None)
        if balance is None:
            raise InputError("love_figure: the result has no balance table (use an IPTW result)")
    b = require_columns(balance, ["variable", "smd_before", "smd_after"], "balance")
    b = b.assign(_order=b["smd_before"].abs()).sort_values("_order")
    fig = go.Figure(
        [
            go.Scatter(
                x=b["smd_before"].abs(),
                y=b["variable"],
                mode="markers",
                marker={"symbol": "circle-open", "size": 11, "color": OTHER_COLOUR},
                name="before weighting",
                hovertemplate="%{y}: |SMD| %{x:.3f} before<extra></extra>",
            ),
            go.Scatter(
                x=b["smd_after"].abs(),
                y=b["variable"],
                mode="markers",
                marker={"symbol": "circle", "size": 11, "color": ARM_COLOURS["ionto+exercise"]},
                name="after weighting",
                hovertemplate="%{y}: |SMD| %{x:.3f} after<extra></extra>",
            ),
        ]
    )
    fig.add_vline(x=threshold, line={"dash": "dash", "color": "#444444"})
    fig.update_yaxes(automargin=True)
    fig.update_layout(height=max(300, 80 + 28 * len(b)))
    return finish_figure(
        fig,
        title or "Covariate balance before and after weighting",
        f"Absolute standardized mean difference (dashed: {threshold:g})",
        None,
    )


def attrition_figure(attrition: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Attrition (CONSORT-style) diagram: who remained after each step, who left and why.

    Steps that excluded nobody are folded away, except the first and the last.

    Parameters
    ----------
    attrition : DataFrame
        ``step``, ``excluded``, ``remaining``, ``reason`` (``CohortResult.attrition``).
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        Boxes drawn as shapes with annotations; one invisible marker trace carries the hover.

    Examples
    --------
    >>> import pandas as pd
    >>> a = pd.DataFrame({"step": ["all episodes", "condition", "arm"],
    ...                   "excluded": [0, 40, 0], "remaining": [100, 60, 60],
    ...                   "reason": ["", "condition not epicondylitis", ""]})
    >>> fig = attrition_figure(a)
    >>> [x.text for x in fig.layout.annotations]  # doctest: +NORMALIZE_WHITESPACE
    ['<b>all episodes</b><br>n = 100', '<b>condition</b><br>n = 60',
     'Excluded: 40<br>condition not epicondylitis', '<b>analysed</b><br>n = 60']
    """
    a = require_columns(attrition, ["step", "excluded", "remaining", "reason"], "attrition")
    if a.empty:
        raise InputError("attrition_figure: the attrition table is empty")
    keep = [i for i in range(len(a)) if i in (0, len(a) - 1) or int(a["excluded"].iloc[i]) > 0]
    d = a.iloc[keep].reset_index(drop=True)
    fig = go.Figure()
    box_w, box_h = 0.34, 0.32
    xs, ys, hover = [], [], []
    for i, r in d.iterrows():
        y = -float(i)
        last = i == len(d) - 1
        step = "analysed" if last and len(d) > 1 else str(r["step"])
        fig.add_shape(
            type="rect",
            x0=0.3 - box_w / 2,
            x1=0.3 + box_w / 2,
            y0=y - box_h,
            y1=y + box_h,
            line={"color": "#444444"},
            fillcolor="#DCEAF7" if not last else "#CDE8D8",
        )
        fig.add_annotation(
            x=0.3, y=y, text=f"<b>{step}</b><br>n = {int(r['remaining']):,}", showarrow=False
        )
        xs.append(0.3)
        ys.append(y)
        hover.append(f"{r['step']}: {int(r['remaining']):,} remaining")
        if i > 0:
            fig.add_shape(
                type="line",
                x0=0.3,
                x1=0.3,
                y0=y + 1 - box_h,
                y1=y + box_h,
                line={"color": "#444444"},
            )
        n_ex = int(r["excluded"])
        if i > 0 and n_ex > 0:
            ym = y + 0.5
            fig.add_shape(type="line", x0=0.3, x1=0.62, y0=ym, y1=ym, line={"color": "#444444"})
            fig.add_shape(
                type="rect",
                x0=0.62,
                x1=0.98,
                y0=ym - 0.22,
                y1=ym + 0.22,
                line={"color": "#B03A2E"},
                fillcolor="#F9E0DC",
            )
            fig.add_annotation(
                x=0.8,
                y=ym,
                text=f"Excluded: {n_ex:,}<br>{r['reason']}",
                showarrow=False,
                font={"size": 12},
            )
            xs.append(0.8)
            ys.append(ym)
            hover.append(f"{r['step']}: {n_ex:,} excluded ({r['reason']})")
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            marker={"opacity": 0, "size": 30},
            hovertext=hover,
            hoverinfo="text",
            showlegend=False,
            name="attrition",
        )
    )
    fig.update_xaxes(visible=False, range=[0, 1])
    fig.update_yaxes(visible=False, range=[-len(d) + 0.5, 0.6])
    fig.update_layout(height=max(300, 120 * len(d)), showlegend=False)
    return finish_figure(fig, title or "Who was analysed", None, None)


def dose_response_figure(
    curve: object,
    *,
    instrument: str | None = None,
    doses: Sequence[float] | pd.Series | None = None,
    conf_level: float | None = None,
    title: str | None = None,
) -> go.Figure:
    """Dose–response curve (adjusted difference vs a reference dose) with its band.

    Parameters
    ----------
    curve : DataFrame or ComparisonResult
        ``x`` (cumulative delivered mA·min), ``estimate``, ``ci_low``, ``ci_high``; a
        result object of :func:`ionto_analytics.compare.dose_response.dose_response` is accepted.
    instrument : str, optional
    doses : array-like, optional
        Episode doses drawn as a rug under the curve.
    conf_level : float, optional
        Band coverage for the legend (default: the result's, else 0.95).
    title : str, optional

    Returns
    -------
    plotly.graph_objects.Figure
        ``<level> band``, ``estimate`` [, ``episodes``] traces.
    """
    if not isinstance(curve, pd.DataFrame):
        res = curve
        curve = getattr(res, "curve", None)
        if curve is None:
            raise InputError("dose_response_figure: the result has no curve")
        instrument = instrument or getattr(res, "instrument", None)
        conf_level = conf_level or getattr(res, "conf_level", None)
        title = title or getattr(res, "estimand", None)
    c = require_columns(curve, ["x", "estimate", "ci_low", "ci_high"], "curve").sort_values("x")
    level = conf_level or 0.95
    colour = ARM_COLOURS["ionto+exercise"]
    x = c["x"].to_numpy(float)
    fig = go.Figure(
        [
            go.Scatter(
                x=np.concatenate([x, x[::-1]]),
                y=np.concatenate([c["ci_high"].to_numpy(float), c["ci_low"].to_numpy(float)[::-1]]),
                fill="toself",
                fillcolor=rgba(colour, 0.18),
                line={"width": 0},
                hoverinfo="skip",
                name=f"{level:.0%} band",
            ),
            go.Scatter(
                x=x,
                y=c["estimate"],
                mode="lines",
                line={"color": colour, "width": 2.5},
                name="estimate",
                customdata=np.column_stack([c["ci_low"], c["ci_high"]]),
                hovertemplate=(
                    "%{x:.0f} mA·min: %{y:.2f} (%{customdata[0]:.2f} to %{customdata[1]:.2f})"
                    "<extra></extra>"
                ),
            ),
        ]
    )
    if doses is not None:
        dv = np.asarray(doses, dtype=float)
        ymin = float(np.nanmin(c["ci_low"])) if len(c) else 0.0
        fig.add_trace(
            go.Scatter(
                x=dv,
                y=np.full(len(dv), ymin),
                mode="markers",
                marker={"symbol": "line-ns-open", "size": 10, "color": "#444444"},
                name=f"episodes (n = {len(dv):,})",
                hovertemplate="%{x:.0f} mA·min<extra></extra>",
            )
        )
    fig.add_hline(y=0, line={"dash": "dash", "color": OTHER_COLOUR})
    return finish_figure(
        fig,
        title or "Dose response",
        "Cumulative delivered dose (mA·min)",
        f"{instrument_axis_label(instrument, 'difference')} vs the reference dose",
    )


def funnel_figure(
    funnel: object,
    limits: pd.DataFrame | None = None,
    *,
    instrument: str | None = None,
    title: str | None = None,
) -> go.Figure:
    """Clinic funnel plot: risk-adjusted outcome (observed − expected) against volume.

    Parameters
    ----------
    funnel : ClinicFunnel or DataFrame
        :func:`ionto_analytics.funnel.clinic_funnel` result, or its ``clinics``
        frame (``clinic_id``, ``n``, ``difference``, ``flag``) with ``limits`` given.
    limits : DataFrame, optional
        ``n``, ``level``, ``lower``, ``upper`` (the result's ``limits``).
    instrument, title : str, optional
        The default title names the instrument, and under it the window
        (:func:`data_schemas.windows.window_text`) and the result's ``cohort``.

    Returns
    -------
    plotly.graph_objects.Figure
        Clinic markers, then an upper and a lower line per control-limit level.
    """
    window, cohort = None, ""
    if not isinstance(funnel, pd.DataFrame):
        limits = getattr(funnel, "limits", limits)
        instrument = instrument or getattr(funnel, "instrument", None)
        window, cohort = getattr(funnel, "week", None), getattr(funnel, "cohort", "")
        funnel = funnel.clinics  # type: ignore[attr-defined]
    clinics = require_columns(funnel, ["clinic_id", "n", "difference"], "clinics")
    if limits is None:
        raise InputError("funnel_figure: pass the control limits (or a ClinicFunnel result)")
    lim = require_columns(limits, ["n", "level", "lower", "upper"], "limits")
    flag = clinics["flag"] if "flag" in clinics else pd.Series("", index=clinics.index)
    flag_colour = {
        "above 99.8%": "#009E73",
        "above 95%": "#56B4E9",
        "below 95%": "#E69F00",
        "below 99.8%": "#B03A2E",
    }
    colours = [flag_colour.get(str(f), "#333333") for f in flag]
    fig = go.Figure(
        go.Scatter(
            x=clinics["n"],
            y=clinics["difference"],
            mode="markers+text",
            text=clinics["clinic_id"],
            textposition="top center",
            marker={"size": 11, "color": colours, "line": {"color": "white", "width": 1}},
            customdata=np.column_stack([flag.astype(str).replace("", "within limits")]),
            hovertemplate=(
                "<b>%{text}</b><br>n = %{x}<br>observed − expected %{y:.2f}"
                "<br>%{customdata[0]}<extra></extra>"
            ),
            name="clinics",
        )
    )
    for level in sorted(lim["level"].unique()):
        part = lim[lim["level"] == level].sort_values("n")
        style = LIMIT_STYLES.get(float(level), {"dash": "dot", "color": "#444444"})
        for side in ("upper", "lower"):
            fig.add_trace(
                go.Scatter(
                    x=part["n"],
                    y=part[side],
                    mode="lines",
                    line=style,
                    name=f"{float(level):.1%} limits".replace(".0%", "%"),
                    legendgroup=str(level),
                    showlegend=side == "upper",
                    hoverinfo="skip",
                )
            )
    for key, colour in {"": "#333333", **flag_colour}.items():  # a legend for every colour
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker={"size": 11, "color": colour},
                name=f"clinic {key} limits" if key else "clinic within the 95% limits",
                hoverinfo="skip",
            )
        )
    fig.update_traces(showlegend=False, selector={"name": "clinics"})
    fig.add_hline(y=0, line={"color": "#222222", "width": 1})
    label = instrument_axis_label(instrument, "improvement")
    what = f"{instrument_short_name(instrument)} improvement" if instrument else "outcome"
    default = subtitled(
        f"Clinics: risk-adjusted {what} against volume",
        window_text(window) if window is not None else "",
        cohort,
    )
    return finish_figure(
        fig,
        title or default,
        "Episodes with a follow-up (clinic volume)",
        f"Observed − expected {label[:1].lower()}{label[1:]}",
    )
