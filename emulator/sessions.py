"""Device-session physics: plans (scalars per session) and vectorized sample generation.

A session is planned for every potential iontophoresis visit of every episode (cheap
scalars), so the outcome model can use each patient's counterfactual delivered dose; samples
are generated only for the sessions that happen. Early stops are defined in dose terms (the
session stops when ``stop_fraction`` of the target dose has been delivered), so the delivered
dose follows from the plan and the samples agree with it.

Model (DOMAIN.md 1.3 [A]): ``Z(t) = Z0 (1 - fall (1 - exp(-t / tau)))`` with ~2 % noise;
current ramps to the setpoint over ``ramp_s`` and is capped at ``V_compliance / Z``; a
completed session starts its ramp-down when the dose so far plus the ramp-down dose reaches
the target, so the device runs longer when current is limited.

Examples
--------
>>> import numpy as np
>>> from emulator.scenario import load_scenario
>>> s = load_scenario()
>>> plans = plan_sessions(np.random.default_rng(0), s, np.zeros(20, int),
...                       np.full(20, "clinic_unit", dtype=object))
>>> out = simulate(np.random.default_rng(1), s, plans)
>>> done = plans["end_reason"].to_numpy() == "DOSE_COMPLETE"
>>> bool(np.all(np.abs(out.delivered[done] - 40.0) < 2.0))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

STATE_CODES = ("RAMP_UP", "TREAT", "LIMITED", "RAMP_DOWN", "STOPPED")
"""Per-sample device states (index = code in ``Samples.state``)."""

OPEN_CIRCUIT_OHM = 999_999.0

_TAIL = {
    # end reason -> (number of tail samples in clinic units, current shape)
    "DOSE_COMPLETE": (None, "ramp"),
    "EARLY_STOP_PATIENT": (5, "ramp"),
    "EARLY_STOP_CLINICIAN": (5, "ramp"),
    "ELECTRODE_REJECT": (3, "open"),
    "HIGH_IMPEDANCE": (2, "zero"),
    "LOW_BATTERY": (3, "zero"),
    "BATTERY_DEPLETED": (1, "zero"),
    "OVERCURRENT": (2, "zero"),
    "POWER_LOSS": (0, "zero"),
}

FAULT_EVENT = {
    "ELECTRODE_REJECT": "ELECTRODE_REJECT",
    "HIGH_IMPEDANCE": "RESISTANCE_LIMIT",
    "LOW_BATTERY": "LOW_BATTERY",
    "BATTERY_DEPLETED": "BATTERY_DEPLETED",
    "OVERCURRENT": "OVERCURRENT",
    "EARLY_STOP_PATIENT": "PAUSED",
    "EARLY_STOP_CLINICIAN": "PAUSED",
}
"""Alarm the device raises when a session ends for a reason (POWER_LOSS leaves none)."""


def plan_sessions(
    rng: np.random.Generator,
    scenario: dict[str, Any],
    episode_row: np.ndarray,
    kind: np.ndarray,
) -> pd.DataFrame:
    """Draw the scalar plan of each potential session.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    scenario : dict
        A validated scenario.
    episode_row : numpy.ndarray of int
        Row (within the chunk) of the episode each session belongs to.
    kind : numpy.ndarray of str
        ``clinic_unit`` or ``wearable_patch`` per session.

    Returns
    -------
    pandas.DataFrame
        One row per session: setpoint, target, impedance parameters, end reason, stop
        fraction, polarity error, skin finding and the effective (correct-polarity) dose.
    """
    n = len(episode_row)
    cols: dict[str, np.ndarray] = {
        k: np.zeros(n)
        for k in (
            "current_set_mA",
            "prescribed_dose_mA_min",
            "ramp_s",
            "dt_s",
            "z0_ohm",
            "fall",
            "tau_s",
            "noise",
            "current_noise_mA",
            "compliance_V",
            "area_cm2",
            "stop_fraction",
        )
    }
    end_reason = np.full(n, "DOSE_COMPLETE", dtype=object)
    skin = np.full(n, "normal", dtype=object)
    for k in ("clinic_unit", "wearable_patch"):
        m = kind == k
        nk = int(m.sum())
        if nk == 0:
            continue
        p = scenario["physics"][k]
        w = np.asarray(p["current_mA_weights"], float)
        cols["current_set_mA"][m] = rng.choice(p["current_mA_choices"], nk, p=w / w.sum())
        cols["prescribed_dose_mA_min"][m] = p["dose_mA_min"]
        cols["ramp_s"][m] = p["ramp_s"]
        cols["dt_s"][m] = p["sample_interval_s"]
        cols["z0_ohm"][m] = 1000.0 * rng.uniform(*p["impedance_initial_kohm"], nk)
        cols["fall"][m] = rng.uniform(*p["impedance_fall_fraction"], nk)
        cols["tau_s"][m] = 60.0 * rng.uniform(*p["impedance_tau_min"], nk)
        cols["noise"][m] = p["impedance_noise"]
        cols["current_noise_mA"][m] = p["current_noise_mA"]
        cols["compliance_V"][m] = rng.uniform(*p["compliance_V"], nk)
        cols["area_cm2"][m] = rng.choice(p["electrode_area_cm2"], nk)
        reasons = [r for r in scenario["faults"][k] if r != "source"]
        probs = np.array([scenario["faults"][k][r] for r in reasons])
        draw = rng.random(nk)
        cum = np.cumsum(probs)
        j = np.searchsorted(cum, draw, side="right")
        er = np.array([*reasons, "DOSE_COMPLETE"], dtype=object)[j]
        end_reason[m] = er
        sk = scenario["skin"][k]
        sdraw = rng.random(nk)
        sfind = np.full(nk, "normal", dtype=object)
        edge = 0.0
        for finding in ("burn", "vesicles", "erythema"):
            sfind[(sdraw >= edge) & (sdraw < edge + sk.get(finding, 0.0))] = finding
            edge += sk.get(finding, 0.0)
        skin[m] = sfind
    f = rng.uniform(0.05, 0.9, n)
    f = np.where(end_reason == "HIGH_IMPEDANCE", rng.uniform(0.01, 0.08, n), f)
    f = np.where(end_reason == "OVERCURRENT", rng.uniform(0.02, 0.3, n), f)
    cols["stop_fraction"] = np.where(end_reason == "DOSE_COMPLETE", 1.0, f)
    cols["z0_ohm"] = np.where(
        end_reason == "HIGH_IMPEDANCE", cols["z0_ohm"] * rng.uniform(4, 8, n), cols["z0_ohm"]
    )
    not_checked = (rng.random(n) < scenario["skin"]["not_checked"]) & (kind == "clinic_unit")
    skin = np.where(not_checked & (skin == "normal"), "not_checked", skin)
    wrong = rng.random(n) < scenario["faults"]["wrong_polarity"]
    drug = scenario["drug"]
    df = pd.DataFrame(
        {
            "episode_row": episode_row,
            "kind": kind,
            **cols,
            "end_reason": end_reason,
            "wrong_polarity": wrong,
            "skin_after": skin,
            "volume_mL": np.round(rng.uniform(*drug["volume_mL"], n) * 2) / 2,
        }
    )
    df["planned_dose_mA_min"] = df["prescribed_dose_mA_min"] * df["stop_fraction"]
    df["effective_dose_mA_min"] = np.where(wrong, 0.0, df["planned_dose_mA_min"])
    return df


@dataclass(frozen=True)
class Samples:
    """Samples of a batch of sessions, flat; session ``i`` spans ``start[i]:start[i+1]``."""

    start: np.ndarray
    t_s: np.ndarray
    current_mA: np.ndarray
    impedance_ohm: np.ndarray
    voltage_V: np.ndarray
    dose_mA_min: np.ndarray
    state: np.ndarray
    delivered: np.ndarray
    duration_s: np.ndarray
    limited_at_s: np.ndarray
    fault_at_s: np.ndarray

    @property
    def n_samples(self) -> int:
        """Total samples in the batch."""
        return int(self.start[-1])


def simulate(rng: np.random.Generator, scenario: dict[str, Any], plans: pd.DataFrame) -> Samples:
    """Generate the samples of every planned session, vectorized over the whole batch.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of measurement noise.
    scenario : dict
        A validated scenario (unused beyond the plans; kept for symmetry).
    plans : pandas.DataFrame
        Output of :func:`plan_sessions` (any subset of rows).

    Returns
    -------
    Samples
        Flat sample arrays and per-session summaries (delivered dose is the device's own
        integral of its measured current; ``limited_at_s`` is NaN when never limited).
    """
    n = len(plans)
    iset = plans["current_set_mA"].to_numpy(float)
    target = plans["prescribed_dose_mA_min"].to_numpy(float)
    ramp = plans["ramp_s"].to_numpy(float)
    dt = plans["dt_s"].to_numpy(float)
    z0 = plans["z0_ohm"].to_numpy(float)
    vmax = plans["compliance_V"].to_numpy(float)
    stopf = plans["stop_fraction"].to_numpy(float)
    reason = plans["end_reason"].to_numpy(object)
    done = reason == "DOSE_COMPLETE"
    nr = np.maximum(np.round(ramp / dt).astype(np.int64), 1)
    tail = np.array([_TAIL[r][0] if _TAIL[r][0] is not None else 0 for r in reason], np.int64)
    tail = np.where(done, nr, np.minimum(tail, np.where(dt > 1.5, 1, tail)))
    # Upper bound on samples: ramp + dose at the lowest possible current + tail.
    i_low = np.minimum(iset, vmax / z0 * 1000.0) * 0.97
    n_max = np.ceil((ramp + stopf * target / i_low * 60.0 + ramp) / dt).astype(np.int64) + tail + 3
    off = np.zeros(n + 1, np.int64)
    np.cumsum(n_max, out=off[1:])
    total = int(off[-1])
    sess = np.repeat(np.arange(n), n_max)
    k = np.arange(total) - off[sess]
    t = k * dt[sess]
    zs = z0[sess] * (
        1.0
        - plans["fall"].to_numpy(float)[sess]
        * (1.0 - np.exp(-t / plans["tau_s"].to_numpy(float)[sess]))
    )
    zs *= 1.0 + plans["noise"].to_numpy(float)[sess] * rng.standard_normal(total)
    i_target = iset[sess] * np.minimum(1.0, t / ramp[sess])
    i_cap = vmax[sess] / zs * 1000.0
    cur = np.minimum(i_target, i_cap)
    cur = np.maximum(
        cur
        + plans["current_noise_mA"].to_numpy(float)[sess] * rng.standard_normal(total) * (k > 0),
        0.0,
    )
    inc = cur * dt[sess] / 60.0
    cum = np.cumsum(inc)
    cum -= np.concatenate(([0.0], cum[off[1:-1] - 1]))[sess]
    # Crossing: completion anticipates the ramp-down dose; faults stop at a dose fraction.
    crit = np.where(
        done[sess], cum + cur * ramp[sess] / 120.0 >= target[sess], cum >= (stopf * target)[sess]
    )
    crit[off[1:] - 1] = True
    hit = np.flatnonzero(crit)
    first = np.full(n, -1, np.int64)
    first_pos = np.searchsorted(hit, off[:-1])
    first = hit[first_pos] - off[:-1]
    keep_n = first + 1 + tail
    keep_n = np.minimum(keep_n, n_max)
    valid = k < keep_n[sess]
    j = k - first[sess]
    in_tail = j > 0
    c_at = cur[off[:-1] + first]
    shape_ramp = np.array([_TAIL[r][1] == "ramp" for r in reason])
    shape_open = np.array([_TAIL[r][1] == "open" for r in reason])
    factor = np.where(shape_ramp[sess], np.clip(1.0 - j / tail[sess].clip(1), 0.0, 1.0), 0.0)
    cur = np.where(in_tail, c_at[sess] * factor, cur)
    zs = np.where(in_tail & shape_open[sess], OPEN_CIRCUIT_OHM, zs)
    over = reason == "OVERCURRENT"
    spike = in_tail & (j == 1) & over[sess]
    cur = np.where(spike, iset[sess] * 1.35, cur)
    state = np.where(t < ramp[sess], 0, np.where(cur < 0.9 * i_target, 2, 1)).astype(np.int8)
    state = np.where(in_tail, np.where(done[sess], 3, 4), state).astype(np.int8)
    # Compact to the valid samples.
    sess_v = sess[valid]
    t_v, cur_v, z_v = t[valid], np.round(cur[valid], 3), np.round(zs[valid], 0)
    inc_v = cur_v * dt[sess_v] / 60.0
    cum_v = np.cumsum(inc_v)
    start = np.zeros(n + 1, np.int64)
    np.cumsum(keep_n, out=start[1:])
    cum_v -= np.concatenate(([0.0], cum_v[start[1:-1] - 1]))[sess_v]
    delivered = cum_v[start[1:] - 1]
    limited = state[valid] == 2
    lim_idx = np.flatnonzero(limited)
    lim_first = np.full(n, np.nan)
    if lim_idx.size:
        pos = np.searchsorted(lim_idx, start[:-1])
        okp = pos < lim_idx.size
        cand = np.where(okp, lim_idx[np.minimum(pos, lim_idx.size - 1)], -1)
        good = okp & (cand < start[1:])
        lim_first[good] = t_v[cand[good]]
    fault_at = np.where(done, np.nan, first * dt)
    return Samples(
        start=start,
        t_s=t_v,
        current_mA=cur_v,
        impedance_ohm=z_v,
        voltage_V=np.round(cur_v * z_v / 1000.0, 2),
        dose_mA_min=np.round(cum_v, 3),
        state=state[valid],
        delivered=np.round(delivered, 3),
        duration_s=(keep_n - 1) * dt,
        limited_at_s=lim_first,
        fault_at_s=fault_at,
    )


def session_events(plans: pd.DataFrame, samples: Samples) -> list[list[tuple[float, str]]]:
    """Alarm events ``(t_s, code)`` each device logs, in time order.

    Examples
    --------
    >>> import numpy as np
    >>> from emulator.scenario import load_scenario
    >>> s = load_scenario()
    >>> plans = plan_sessions(np.random.default_rng(0), s, np.zeros(3, int),
    ...                       np.full(3, "clinic_unit", dtype=object))
    >>> plans["end_reason"] = "ELECTRODE_REJECT"
    >>> ev = session_events(plans, simulate(np.random.default_rng(0), s, plans))
    >>> ev[0][-1][1]
    'ELECTRODE_REJECT'
    """
    out: list[list[tuple[float, str]]] = []
    for i, reason in enumerate(plans["end_reason"].tolist()):
        ev: list[tuple[float, str]] = []
        lim = samples.limited_at_s[i]
        if not np.isnan(lim):
            ev.append((float(lim), "CURRENT_LIMITED"))
        fault_t = samples.fault_at_s[i]
        if reason == "LOW_BATTERY":
            ev.append((float(np.floor(fault_t * 0.7)), "LOW_BATTERY"))
        elif reason in FAULT_EVENT:
            ev.append((float(fault_t), FAULT_EVENT[reason]))
        ev.sort()
        out.append(ev)
    return out
