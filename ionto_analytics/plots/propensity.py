"""Figure of propensity-score overlap: :func:`preference_figure` (Walker et al. 2013).

Examples
--------
>>> import pandas as pd
>>> pref = pd.DataFrame({"arm": ["ionto+exercise", "exercise"] * 3,
...                      "preference_score": [0.6, 0.4, 0.7, 0.2, 0.5, 0.5]})
>>> fig = preference_figure(pref)
>>> [t.name for t in fig.data], len(fig.layout.shapes)
(['Exercise', 'Iontophoresis + exercise'], 1)
"""

from __future__ import annotations

import textwrap

import pandas as pd
import plotly.graph_objects as go

from data_schemas.frames import require_columns
from ionto_analytics.plots.style import arm_colour, arm_label, finish_figure, ordered_groups

__all__ = ["preference_figure"]

WRAP = 50
"""Characters per title line before wrapping."""


def preference_figure(
    preference: pd.DataFrame,
    *,
    equipoise: tuple[float, float] = (0.3, 0.7),
    title: str | None = None,
    bins: int = 40,
) -> go.Figure:
    """Preference-score distribution per arm (overlaid densities) with the equipoise band.

    Parameters
    ----------
    preference : DataFrame
        ``arm``, ``preference_score`` (the ``preference`` of
        :class:`~ionto_analytics.compare.diagnostics.PositivityDiagnostics`).
    equipoise : (float, float)
        Shaded band; the share of episodes inside it is the equipoise share.
    title : str, optional
        Wrapped at :data:`WRAP` characters.
    bins : int
        Histogram bins on [0, 1].

    Returns
    -------
    plotly.graph_objects.Figure
        One histogram trace per arm (probability density, so arms of unequal size compare).
    """
    p = require_columns(preference, ["arm", "preference_score"], "preference")
    fig = go.Figure(
        [
            go.Histogram(
                x=p.loc[p["arm"] == arm, "preference_score"],
                name=arm_label(arm),
                marker_color=arm_colour(arm),
                opacity=0.6,
                histnorm="probability density",
                xbins={"start": 0.0, "end": 1.0, "size": 1.0 / bins},
                hovertemplate="preference %{x}: density %{y:.2f}<extra>" + str(arm) + "</extra>",
            )
            for arm in ordered_groups(p["arm"])
        ]
    )
    lo, hi = equipoise
    fig.add_vrect(x0=lo, x1=hi, fillcolor="#999999", opacity=0.15, line_width=0)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(range=[0, 1])
    text = "<br>".join(textwrap.wrap(title or "Preference score by arm", WRAP))
    return finish_figure(
        fig,
        text,
        f"Preference score (shaded: equipoise {lo:g}–{hi:g})",
        "Density",
    )
