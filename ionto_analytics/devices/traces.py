"""Session traces: the samples of one session with phases and faults marked, and the
sessions worth opening in the trace viewer.

Examples
--------
>>> import pandas as pd
>>> s = pd.DataFrame({"t_s": [0.0, 1, 2], "current_mA": [0, 2, 0.0], "voltage_V": 1.0,
...                   "impedance_ohm": 8000.0})
>>> trace_phases(s, setpoint_mA=2.0, end_reason="DOSE_COMPLETE")["phase"].tolist()
['ramp_up', 'treat', 'ramp_down']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from data_schemas.frames import require_columns
from ionto_analytics.loaders import load_session_samples

__all__ = ["session_trace", "trace_choices", "trace_phases"]


def trace_phases(
    samples: pd.DataFrame,
    *,
    setpoint_mA: float | None = None,
    fault_codes: str | None = None,
    end_reason: str | None = None,
) -> pd.DataFrame:
    """Mark the phase of every sample and place the session's faults on the time axis.

    The store keeps which faults a session raised, not when, so the times are inferred
    from the samples: ramp-up until the current first reaches 90 % of the setpoint (or,
    when it never does, until the voltage reaches the compliance plateau); ``limited``
    where the current is below 90 % of the setpoint in between (``paused`` below 10 %);
    after the last sample at the setpoint, ``ramp_down`` for a completed dose, else
    ``stopped``. Current limiting is placed at the first limited sample, an electrode
    reject at the first open-circuit sample (impedance ≥ 1 MΩ), an overcurrent at the
    current peak, a pause at the first paused sample, battery and power faults where the
    current stops; the end reason at the last sample.

    Parameters
    ----------
    samples : DataFrame
        ``t_s``, ``current_mA``, ``voltage_V``, ``impedance_ohm``; not modified.
    setpoint_mA : float, optional
        Prescribed current (default: the 95th percentile of the current).
    fault_codes : str, optional
        ';'-joined fault codes of the session.
    end_reason : str, optional

    Returns
    -------
    DataFrame
        ``samples`` plus ``phase`` and ``event`` (code(s) at that sample, else None).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"t_s": [0.0, 1, 2, 3, 4, 5], "current_mA": [0, 1, 2, 2, 1, 0.0],
    ...                   "voltage_V": 1.0, "impedance_ohm": 8000.0})
    >>> trace_phases(s, setpoint_mA=2.0, end_reason="DOSE_COMPLETE")["phase"].tolist()
    ['ramp_up', 'ramp_up', 'treat', 'treat', 'ramp_down', 'ramp_down']
    """
    require_columns(samples, ["t_s", "current_mA", "voltage_V", "impedance_ohm"], "samples")
    out = samples.copy()
    n = len(out)
    out["phase"] = pd.Series(["treat"] * n, index=out.index, dtype=object)
    out["event"] = pd.Series([None] * n, index=out.index, dtype=object)
    if n == 0:
        return out
    cur = out["current_mA"].to_numpy(float)
    volt = out["voltage_V"].to_numpy(float)
    z = out["impedance_ohm"].to_numpy(float)
    ref = (
        float(setpoint_mA) if setpoint_mA and setpoint_mA > 0 else float(np.nanpercentile(cur, 95))
    )
    idx = np.arange(n)
    above = cur >= 0.9 * ref
    if above.any():
        first = int(np.argmax(above))
        last = int(n - 1 - np.argmax(above[::-1]))
    else:
        vmax = float(np.nanmax(volt)) if np.isfinite(volt).any() else 0.0
        plateau = volt >= 0.95 * vmax if vmax > 0 else np.zeros(n, bool)
        first = int(np.argmax(plateau)) if plateau.any() else n
        on = cur > 0.1 * max(float(np.nanmax(cur)), 1e-9)
        last = int(n - 1 - np.argmax(on[::-1])) if on.any() else n - 1
    phase = np.full(n, "treat", dtype=object)
    phase[idx < first] = "ramp_up"
    mid = (idx >= first) & (idx <= last)
    phase[mid & (cur < 0.9 * ref)] = "limited"
    phase[mid & (cur < 0.1 * ref)] = "paused"
    phase[idx > last] = "ramp_down" if end_reason == "DOSE_COMPLETE" else "stopped"
    out["phase"] = phase
    events: dict[int, list[str]] = {}
    stop_at = min(last + 1, n - 1)

    def first_of(mask: np.ndarray, default: int) -> int:
        return int(np.argmax(mask)) if mask.any() else default

    for code in [c for c in (fault_codes or "").split(";") if c]:
        if code in ("CURRENT_LIMITED", "RESISTANCE_LIMIT"):
            at = first_of(phase == "limited", first_of(mid, stop_at))
        elif code == "ELECTRODE_REJECT":
            at = first_of(~np.isfinite(z) | (z >= 1e6), stop_at)
        elif code == "OVERCURRENT":
            at = int(np.nanargmax(cur)) if np.nanmax(cur) > 1.1 * ref else stop_at
        elif code == "PAUSED":
            at = first_of(phase == "paused", stop_at)
        else:
            at = stop_at
        events.setdefault(at, []).append(code)
    placed = {c for codes in events.values() for c in codes}
    if end_reason and end_reason not in placed:
        events.setdefault(n - 1, []).append(end_reason)
    ev = np.full(n, None, dtype=object)
    for at, codes in events.items():
        ev[at] = " / ".join(dict.fromkeys(codes))
    out["event"] = ev
    return out


def session_trace(engine: Engine, session_id: str) -> pd.DataFrame:
    """The samples of one session, with phases, faults and the cumulative dose.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.
    session_id : str
        ``session_id`` of the session frame (the store's ``session_key``); the current
        version is read.

    Returns
    -------
    DataFrame
        ``session_id``, ``t_s``, ``t_min``, ``current_mA``, ``voltage_V``,
        ``impedance_ohm`` (inf = open circuit), ``dose_mA_min`` (cumulative, from the
        samples), ``setpoint_mA``, ``phase`` and ``event`` (:func:`trace_phases`),
        ``device_model``, ``end_reason``.

    Raises
    ------
    InputError
        When the session, or its samples, are not in the store
        (:func:`ionto_analytics.loaders.load_session_samples`).

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> session_trace(engine, "nope")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: session 'nope' is not in the store ...
    """
    stored = load_session_samples(engine, session_id)
    setpoint = stored.prescribed_current_mA
    out = trace_phases(
        stored.samples,
        setpoint_mA=setpoint,
        fault_codes=stored.fault_codes,
        end_reason=stored.end_reason,
    )
    t = out["t_s"].to_numpy(float)
    dt = np.diff(t, prepend=t[0] if len(t) else 0.0)
    out["dose_mA_min"] = np.cumsum(out["current_mA"].to_numpy(float) * dt / 60.0)
    out["t_min"] = t / 60.0
    out["setpoint_mA"] = np.nan if setpoint is None else setpoint
    out["device_model"] = stored.device_model
    out["end_reason"] = stored.end_reason
    out.insert(0, "session_id", str(session_id))
    cols = [
        "session_id",
        "t_s",
        "t_min",
        "current_mA",
        "voltage_V",
        "impedance_ohm",
        "dose_mA_min",
        "setpoint_mA",
        "phase",
        "event",
        "device_model",
        "end_reason",
    ]
    return out[cols]


def trace_choices(sessions: pd.DataFrame, limit: int = 60) -> dict[str, str]:
    """Sessions worth opening in the trace viewer: label → ``session_id``.

    Sessions with a fault or an early end come first (most recent first), then completed
    ones, up to ``limit``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"session_id": ["s1", "s2"], "device_model": "KD-400",
    ...                   "end_reason": ["DOSE_COMPLETE", "ELECTRODE_REJECT"],
    ...                   "fault_codes": [None, "ELECTRODE_REJECT"],
    ...                   "started_at_utc": pd.to_datetime(["2025-01-02", "2025-01-03"], utc=True)})
    >>> list(trace_choices(s).values())
    ['s2', 's1']
    """
    require_columns(
        sessions,
        ["session_id", "device_model", "end_reason", "fault_codes", "started_at_utc"],
        "sessions",
    )
    d = sessions.assign(
        _fault=(sessions["fault_codes"].fillna("") != "")
        | (sessions["end_reason"] != "DOSE_COMPLETE")
    ).sort_values(["_fault", "started_at_utc"], ascending=[False, False], kind="stable")
    d = d.head(limit)
    return {
        f"{r.device_model} · {r.end_reason} · {r.started_at_utc:%Y-%m-%d %H:%M} · "
        f"{str(r.session_id)[:8]}": str(r.session_id)
        for r in d.itertuples()
    }
