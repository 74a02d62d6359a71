"""One plotly style for every figure: colours fixed per arm, labels with units, hover with n.

Each builder takes the tidy output of an analysis function and returns a
:class:`plotly.graph_objects.Figure`; none calls ``show()`` and none changes its input.

* :func:`trajectory_figure` – :func:`ionto_analytics.explorer.trajectories`;
* :func:`forest_figure` – ComparisonResult objects or their ``summary()`` frames;
* :func:`responder_figure` – :func:`ionto_analytics.outcomes.mcid_responders` plus ``arm``;
* :func:`responder_rate_figure` – :func:`ionto_analytics.explorer.responder_rates`;
* :func:`love_figure` – ``iptw(...).balance`` (``variable``, ``smd_before``, ``smd_after``);
* :func:`attrition_figure` – ``CohortResult.attrition``;
* :func:`dose_response_figure` – ``dose_response(...).curve``;
* :func:`preference_figure` – ``iptw(...).diagnostics.preference``;
* :func:`funnel_figure` – :func:`ionto_analytics.funnel.clinic_funnel`;
* :func:`pareto_figure` – :func:`ionto_analytics.devices.fault_pareto`;
* :func:`dose_delivery_figure` – :func:`ionto_analytics.devices.dose_delivery`;
* :func:`rate_figure` – :func:`ionto_analytics.devices.event_rates`;
* :func:`trace_figure` – :func:`ionto_analytics.devices.session_trace`.

Colours are the Okabe–Ito colour-blind-safe palette; the iontophoresis arms are warm, the
arms without iontophoresis cool, so the same arm has the same colour in every figure.

Modules: :mod:`~ionto_analytics.plots.style` (colours, template, labels),
:mod:`~ionto_analytics.plots.outcomes`, :mod:`~ionto_analytics.plots.comparisons`,
:mod:`~ionto_analytics.plots.devices`, :mod:`~ionto_analytics.plots.propensity`.

Examples
--------
>>> from ionto_analytics.plots import ARM_COLOURS, forest_figure
>>> ARM_COLOURS["ionto"]
'#CC79A7'
"""

from __future__ import annotations

from ionto_analytics.plots.comparisons import (
    attrition_figure,
    dose_response_figure,
    funnel_figure,
    love_figure,
)
from ionto_analytics.plots.devices import (
    dose_delivery_figure,
    pareto_figure,
    rate_figure,
    trace_figure,
)
from ionto_analytics.plots.outcomes import (
    forest_figure,
    responder_figure,
    responder_rate_figure,
    trajectory_figure,
)
from ionto_analytics.plots.propensity import preference_figure
from ionto_analytics.plots.style import (
    ARM_COLOURS,
    ARM_LABELS,
    DEVICE_PALETTE,
    INSTRUMENT_SHORT_NAMES,
    LIMIT_STYLES,
    OTHER_COLOUR,
    PHASE_COLOURS,
    TEMPLATE,
    arm_colour,
    arm_label,
    instrument_axis_label,
    instrument_short_name,
)

__all__ = [
    "ARM_COLOURS",
    "ARM_LABELS",
    "DEVICE_PALETTE",
    "INSTRUMENT_SHORT_NAMES",
    "LIMIT_STYLES",
    "OTHER_COLOUR",
    "PHASE_COLOURS",
    "TEMPLATE",
    "arm_colour",
    "arm_label",
    "attrition_figure",
    "dose_delivery_figure",
    "dose_response_figure",
    "forest_figure",
    "funnel_figure",
    "instrument_axis_label",
    "instrument_short_name",
    "love_figure",
    "pareto_figure",
    "preference_figure",
    "rate_figure",
    "responder_figure",
    "responder_rate_figure",
    "trace_figure",
    "trajectory_figure",
]
