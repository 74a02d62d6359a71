"""Session physics: properties with tolerances, not counts pinned to one seed."""

from __future__ import annotations

import numpy as np
import pytest

from emulator.scenario import load_scenario
from emulator.sessions import plan_sessions, session_events, simulate
from emulator.streams import streams


def _batch(kind: str, n: int, seed: int = 0):
    s, g = load_scenario(), streams(seed)
    plans = plan_sessions(g["session_plans"], s, np.zeros(n, int), np.full(n, kind, dtype=object))
    return s, plans, simulate(g["signals"], s, plans)


@pytest.mark.parametrize("kind", ["clinic_unit", "wearable_patch"])
def test_completed_sessions_deliver_target_within_5_percent(kind: str) -> None:
    _, plans, out = _batch(kind, 600)
    done = plans["end_reason"].to_numpy() == "DOSE_COMPLETE"
    ratio = out.delivered[done] / plans["prescribed_dose_mA_min"].to_numpy()[done]
    assert np.all(np.abs(ratio - 1.0) <= 0.05)
    # The delivered dose equals the integral of the logged current (the device's own figure).
    for i in np.flatnonzero(done)[:50]:
        a, b = out.start[i], out.start[i + 1]
        dt = plans["dt_s"].to_numpy()[i]
        assert out.current_mA[a:b].sum() * dt / 60 == pytest.approx(out.delivered[i], abs=0.01)


def test_impedance_falls_within_a_session() -> None:
    _, plans, out = _batch("clinic_unit", 300)
    done = np.flatnonzero(plans["end_reason"].to_numpy() == "DOSE_COMPLETE")
    falls = []
    for i in done:
        z = out.impedance_ohm[out.start[i] : out.start[i + 1]]
        falls.append(np.median(z[-60:]) / np.median(z[:5]))
    falls = np.asarray(falls)
    assert np.all(falls < 0.85)  # at least a 30 % fall less noise
    assert np.all(falls > 0.30)


def test_clinic_session_shape_is_plausible() -> None:
    _s, plans, out = _batch("clinic_unit", 300)
    done = np.flatnonzero(plans["end_reason"].to_numpy() == "DOSE_COMPLETE")
    dur_min = out.duration_s[done] / 60
    assert dur_min.min() > 9 and np.median(dur_min) < 25
    i = done[0]
    cur = out.current_mA[out.start[i] : out.start[i + 1]]
    assert cur[0] == 0.0 and cur[-1] == 0.0  # ramps up from and down to zero
    assert cur.max() <= plans["current_set_mA"].to_numpy()[i] * 1.05


def test_compliance_limit_forces_current_limiting_and_longer_sessions() -> None:
    s = load_scenario()
    plans = plan_sessions(
        np.random.default_rng(3), s, np.zeros(200, int), np.full(200, "clinic_unit", dtype=object)
    )
    plans["end_reason"] = "DOSE_COMPLETE"
    plans["stop_fraction"] = 1.0
    plans["current_set_mA"] = 4.0
    free = simulate(np.random.default_rng(4), s, plans.assign(compliance_V=100.0))
    tight = simulate(np.random.default_rng(4), s, plans.assign(compliance_V=30.0, z0_ohm=14000.0))
    assert np.isnan(free.limited_at_s).mean() > 0.9
    assert (~np.isnan(tight.limited_at_s)).all()
    assert np.median(tight.duration_s) > np.median(free.duration_s) * 1.1
    assert np.all(np.abs(tight.delivered - 40.0) <= 2.0)
    events = session_events(plans, tight)
    assert all(any(code == "CURRENT_LIMITED" for _, code in ev) for ev in events)


@pytest.mark.parametrize("kind", ["clinic_unit", "wearable_patch"])
def test_fault_rates_match_the_scenario(kind: str) -> None:
    s = load_scenario()
    n = 20_000
    plans = plan_sessions(
        np.random.default_rng(11), s, np.zeros(n, int), np.full(n, kind, dtype=object)
    )
    for reason, p in s["faults"][kind].items():
        observed = (plans["end_reason"] == reason).mean()
        tol = 4 * np.sqrt(p * (1 - p) / n)
        assert abs(observed - p) <= tol, reason
    p = s["faults"]["wrong_polarity"]
    assert abs(plans["wrong_polarity"].mean() - p) <= 4 * np.sqrt(p * (1 - p) / n)


def test_early_stops_deliver_less_and_electrode_reject_goes_open_circuit() -> None:
    s = load_scenario()
    plans = plan_sessions(
        np.random.default_rng(5), s, np.zeros(50, int), np.full(50, "clinic_unit", dtype=object)
    )
    plans["end_reason"] = "ELECTRODE_REJECT"
    plans["stop_fraction"] = 0.5
    out = simulate(np.random.default_rng(6), s, plans)
    assert np.all(out.delivered < 0.55 * 40) and np.all(out.delivered > 0.45 * 40)
    for i in range(50):
        z = out.impedance_ohm[out.start[i] : out.start[i + 1]]
        assert z[-1] > 500_000
