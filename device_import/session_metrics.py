"""Figures every device session gets from its samples, whatever the vendor's format.

The delivered dose is recomputed from the samples (trapezoidal integral of current over
time, in mA·min) and compared with the device's own figure; the session is flagged when
they disagree by more than :data:`DOSE_TOLERANCE_MA_MIN` or :data:`DOSE_TOLERANCE_FRACTION`,
whichever is larger. Polarity is checked against the drug's charge
(:data:`data_schemas.vocabulary.DRUG_POLARITY`).

Examples
--------
>>> import numpy as np
>>> t = np.arange(0.0, 601.0)
>>> recomputed_dose_mA_min(t, np.full(t.size, 4.0))
40.0
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from data_schemas import vocabulary as v
from data_schemas.records import SessionRecord
from data_schemas.samples import SessionSamples

DOSE_TOLERANCE_MA_MIN = 1.0
DOSE_TOLERANCE_FRACTION = 0.05
LIMITED_FRACTION_OF_SETPOINT = 0.9
"""A session is current-limited when its mid-session median current is below this share
of the setpoint (the compliance voltage held the current down), or the device said so."""


def recomputed_dose_mA_min(t_s: np.ndarray, current_mA: np.ndarray) -> float:
    """Dose delivered according to the samples, mA·min (trapezoidal rule)."""
    if len(t_s) < 2:
        return 0.0
    return float(np.trapezoid(current_mA, t_s) / 60.0)


def median(values: np.ndarray) -> float:
    """The median of a non-empty array, as ``np.median`` gives it, at a third of its cost.

    >>> median(np.array([3.0, 1.0, 2.0, 10.0]))
    2.5
    """
    half = values.size // 2
    if values.size % 2:
        return float(np.partition(values, half)[half])
    low, high = np.partition(values, (half - 1, half))[half - 1 : half + 1]
    return float((low + high) / 2)


def wrong_polarity(drug: str, active_polarity: str) -> bool:
    """Whether the active electrode contradicts the drug's charge (unknown drug: False)."""
    expected = v.DRUG_POLARITY.get(drug)
    return expected is not None and expected != active_polarity


def _current_limited(fields: dict, samples: SessionSamples) -> bool:
    if {"CURRENT_LIMITED", "RESISTANCE_LIMIT"} & set(fields.get("fault_codes", ())):
        return True
    setpoint = fields.get("prescribed_current_mA")
    if not setpoint or len(samples) < 10:
        return False
    middle = samples.current_mA[len(samples) // 10 : len(samples) * 9 // 10]
    return bool(median(middle) < LIMITED_FRACTION_OF_SETPOINT * setpoint)


def finish_session(fields: dict, samples: SessionSamples) -> SessionRecord:
    """Add the sample-derived figures and the content hash, then validate the session.

    Parameters
    ----------
    fields : dict
        The session's fields in store units, as read from the device file.
    samples : SessionSamples
        Its samples in store units.
    """
    recomputed = recomputed_dose_mA_min(samples.t_s, samples.current_mA)
    device_dose = fields.get("delivered_dose_mA_min")
    mismatch = device_dose is not None and abs(device_dose - recomputed) > max(
        DOSE_TOLERANCE_MA_MIN, DOSE_TOLERANCE_FRACTION * max(device_dose, recomputed)
    )
    impedance = samples.impedance_ohm[np.isfinite(samples.impedance_ohm)]
    derived = {
        "wrong_polarity": wrong_polarity(fields["drug"], fields["active_polarity"]),
        "peak_current_mA": float(samples.current_mA.max()) if len(samples) else None,
        "recomputed_dose_mA_min": round(recomputed, 4),
        "dose_mismatch": bool(mismatch),
        "current_limited": _current_limited(fields, samples),
        "impedance_start_ohm": float(impedance[0]) if impedance.size else None,
        "impedance_end_ohm": float(impedance[-1]) if impedance.size else None,
        "impedance_median_ohm": median(impedance) if impedance.size else None,
    }
    content = {key: value for key, value in fields.items() if key != "export_revision"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode())
    for column in ("t_s", "current_mA", "voltage_V", "impedance_ohm"):
        digest.update(np.ascontiguousarray(getattr(samples, column), dtype=np.float64).data)
    return SessionRecord(**fields, **derived, content_sha256=digest.hexdigest())
