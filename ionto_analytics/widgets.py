"""ipywidgets front ends of the notebooks: the outcomes :class:`Explorer` (notebook 01) and
the session :class:`TraceViewer` (notebook 03).

Each widget callback calls a plain, tested function (:func:`ionto_analytics.explorer.explore`,
:func:`ionto_analytics.devices.session_trace`) and redraws its output area in place.

Examples
--------
>>> TraceViewer(None, {})
Traceback (most recent call last):
...
data_schemas.errors.InputError: TraceViewer: no session to show (empty choices); pass ...
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML, Markdown, display
from sqlalchemy import Engine

from ionto_analytics.devices import session_trace
from ionto_analytics.errors import InputError
from ionto_analytics.explorer import ExplorerView, explore, explorer_options
from ionto_analytics.plain_language import ALL
from ionto_analytics.plots import trace_figure
from ionto_analytics.plots.style import display_name

__all__ = ["Explorer", "TraceViewer", "named"]


class Explorer:
    """ipywidgets front end: drop-downs and dates that redraw the view in place.

    Display it in a notebook (``Explorer(episodes, outcomes)`` as the last line of a cell).
    Every change of a control calls :meth:`update`, which calls :func:`explore` and
    replaces the output area's content; :attr:`view` keeps the last :class:`ExplorerView`.

    Parameters
    ----------
    episodes, outcomes : DataFrame
        Frames of :mod:`ionto_analytics.loaders`; not modified.
    condition, instrument : str, optional
        Initial choices (default: the first family, its most used instrument).
    week : int
        Initial follow-up week.
    """

    def __init__(
        self,
        episodes: pd.DataFrame,
        outcomes: pd.DataFrame,
        *,
        condition: str | None = None,
        instrument: str | None = None,
        week: int = 6,
    ) -> None:
        self.episodes = episodes
        self.outcomes = outcomes
        opts = explorer_options(episodes, outcomes)
        cond = condition or (opts["conditions"][1] if len(opts["conditions"]) > 1 else ALL)
        inst_opts = explorer_options(episodes, outcomes, cond)["instruments"] or ["nprs"]
        self.controls: dict[str, Any] = {
            "clinic": w.Dropdown(options=opts["clinics"], value=ALL, description="Clinic"),
            "condition": w.Dropdown(
                options=named(opts["conditions"]), value=cond, description="Condition"
            ),
            "instrument": w.Dropdown(
                options=named(inst_opts),
                value=instrument if instrument in inst_opts else inst_opts[0],
                description="Instrument",
            ),
            "week": w.Dropdown(options=[4, 6, 8, 12], value=week, description="Week"),
            "start": w.DatePicker(value=opts["start"], description="Intake from"),
            "end": w.DatePicker(value=opts["end"], description="to"),
        }
        self.output = w.Output()
        self.message = w.HTML()
        self.view: ExplorerView | None = None
        self._busy = False
        self.controls["condition"].observe(self._condition_changed, names="value")
        for name, c in self.controls.items():
            if name != "condition":
                c.observe(self.update, names="value")
        c = self.controls
        self.widget = w.VBox(
            [
                w.HBox([c["clinic"], c["condition"], c["instrument"]]),
                w.HBox([c["week"], c["start"], c["end"]]),
                self.message,
                self.output,
            ]
        )
        self.update()

    def _condition_changed(self, change: Any = None) -> None:
        opts = explorer_options(self.episodes, self.outcomes, self.controls["condition"].value)
        inst = self.controls["instrument"]
        choices = opts["instruments"] or ["nprs"]
        keep = inst.value if inst.value in choices else choices[0]
        self._busy = True  # one redraw for the new condition, not one per control change
        try:
            inst.options = named(choices)
            inst.value = keep
        finally:
            self._busy = False
        self.update()

    def update(self, change: Any = None) -> ExplorerView | None:
        """Recompute the view from the controls and redraw it (the widgets' callback)."""
        if self._busy:
            return self.view
        c = self.controls
        try:
            view = explore(
                self.episodes,
                self.outcomes,
                instrument=c["instrument"].value,
                clinic=c["clinic"].value,
                condition=c["condition"].value,
                start=c["start"].value,
                end=c["end"].value,
                week=int(c["week"].value),
            )
        except InputError as error:
            self.message.value = f"<b>Cannot show this choice:</b> {html.escape(str(error))}"
            return None
        self.message.value = ""
        self.view = view
        with self.output:
            self.output.clear_output(wait=True)
            display(Markdown(f"**{view.reading}**"))
            display(view.figure)
            display(HTML(view.table.to_html(index=False)))
        return view

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def named(keys: Any) -> list[tuple[str, Any]]:
    """Drop-down options: the readable name as the label, the key as the value.

    Examples
    --------
    >>> named(["nprs", "faam_adl", "all"])
    [('NPRS', 'nprs'), ('FAAM ADL', 'faam_adl'), ('all', 'all')]
    """
    return [(display_name(k), k) for k in keys]


class TraceViewer:
    """ipywidgets session trace viewer: pick a session, see its trace (notebook 03).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store (samples are read one session at a time).
    choices : dict
        Label → ``session_id``, e.g. :func:`ionto_analytics.devices.trace_choices`.
    """

    def __init__(self, engine: Engine, choices: dict[str, str]) -> None:
        if not choices:
            raise InputError(
                "TraceViewer: no session to show (empty choices); pass "
                "ionto_analytics.devices.trace_choices(sessions) for sessions of the store"
            )
        self.engine = engine
        self.session = w.Dropdown(
            options=list(choices.items()), description="Session", layout={"width": "640px"}
        )
        self.output = w.Output()
        self.figure: go.Figure | None = None
        self.session.observe(self.update, names="value")
        self.widget = w.VBox([self.session, self.output])
        self.update()

    def update(self, change: Any = None) -> go.Figure:
        """Read the chosen session's samples and redraw (the drop-down's callback)."""
        self.figure = trace_figure(session_trace(self.engine, self.session.value))
        with self.output:
            self.output.clear_output(wait=True)
            display(self.figure)
        return self.figure

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)
