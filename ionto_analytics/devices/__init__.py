"""Device quality: delivered vs prescribed dose, faults, wrong polarity, skin reactions, traces.

Tidy session frame in (:data:`data_schemas.frames.SessionFrame`, optionally with the extra
columns of :func:`ionto_analytics.load_devices.load_session_details`), tidy DataFrames out;
nothing is modified. One module per concept: :mod:`~ionto_analytics.devices.rates`,
:mod:`~ionto_analytics.devices.dose`, :mod:`~ionto_analytics.devices.events`,
:mod:`~ionto_analytics.devices.traces`; their names are gathered here.

* :func:`dose_delivery` – one row per session: delivered / prescribed, dose flags.
* :func:`dose_summary` – per device model, clinic or both: dose delivered, share of
  sessions ending before the prescribed dose, current-limiting rate, flags.
* :func:`fault_pareto` – sessions per fault code, most frequent first, with the cumulative
  share (Pareto table), optionally by device model or clinic.
* :func:`event_rates` – skin reactions, burns, wrong-polarity set-ups, current limiting and
  early endings per 1,000 sessions with exact 95 % intervals (:func:`rate_ci`).
* :func:`session_trace` – the samples of one session with phases and faults marked, for
  :func:`ionto_analytics.plots.trace_figure`.

Definitions
-----------
*Ended before the prescribed dose*: delivered < (1 − ``tolerance``) × prescribed (5 % by
default). *Skin reaction*: ``skin_check_after`` is erythema, vesicles or burn; its
denominator is the sessions whose skin was checked (``not_checked`` and missing are
counted in ``n_not_assessed``, never silently dropped). *Dose flags*: ``ended_early``,
``over_prescribed`` (delivered > (1 + tolerance) × prescribed), ``above_ceiling``
(delivered > (1 + tolerance) × 80 mA·min, the electrode limit of DOMAIN.md 1.1, which
devices enforce as "80 mA·min ± 5 %"), ``device_vs_samples`` (the device's figure disagrees
with the dose recomputed from its samples, when those columns are present),
``no_prescription``.

Examples
--------
>>> import pandas as pd
>>> s = pd.DataFrame({"session_id": ["s1", "s2", "s3"], "device_model": "KD-400",
...                   "prescribed_dose_mA_min": [40.0, 40.0, 40.0],
...                   "delivered_dose_mA_min": [40.0, 23.3, 40.1],
...                   "skin_check_after": ["normal", "burn", "not_checked"],
...                   "wrong_polarity": [False, False, True],
...                   "current_limited": [False, True, False]})
>>> dose_delivery(s)["ended_early"].tolist()
[False, True, False]
>>> r = event_rates(s).set_index("event")
>>> r.loc["burn", ["n_events", "n_sessions", "n_not_assessed"]].tolist()
[1, 2, 1]
"""

from __future__ import annotations

from ionto_analytics.devices.dose import DOSE_CEILING_MA_MIN, dose_delivery, dose_summary
from ionto_analytics.devices.events import EVENTS, SKIN_REACTIONS, event_rates, fault_pareto
from ionto_analytics.devices.rates import rate_ci
from ionto_analytics.devices.traces import session_trace, trace_choices, trace_phases

__all__ = [
    "DOSE_CEILING_MA_MIN",
    "EVENTS",
    "SKIN_REACTIONS",
    "dose_delivery",
    "dose_summary",
    "event_rates",
    "fault_pareto",
    "rate_ci",
    "session_trace",
    "trace_choices",
    "trace_phases",
]
