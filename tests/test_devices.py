"""Device quality: rates and exact CIs checked against scipy independently, dose flags,
Pareto counts, phase inference and the store round trip of a session trace."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from sqlalchemy import insert
from sqlmodel import SQLModel

from data_schemas import store
from data_schemas.samples import SessionSamples, pack_samples
from ionto_analytics import devices
from ionto_analytics.errors import InputError
from ionto_analytics.loaders import load_session_details
from tests.store_rows import valid_rows

TABLES = SQLModel.metadata.tables


def _poisson_exact(x: int, alpha: float = 0.05) -> tuple[float, float]:
    """Garwood interval by root finding on the Poisson cdf (independent of the χ² identity
    the module uses): P(X ≥ x | lo) = α/2 and P(X ≤ x | hi) = α/2. Tolerance 1e-8."""
    lo = (
        0.0
        if x == 0
        else optimize.brentq(
            lambda m: stats.poisson.sf(x - 1, m) - alpha / 2, 1e-12, 10 * x + 10, xtol=1e-12
        )
    )
    hi = optimize.brentq(
        lambda m: stats.poisson.cdf(x, m) - alpha / 2, 1e-12, 10 * x + 50, xtol=1e-12
    )
    return lo, hi


@pytest.mark.parametrize(("x", "n"), [(0, 250), (1, 1121), (3, 1000), (27, 981), (50, 50)])
def test_rate_ci_matches_scipy_binomtest_exact_interval(x: int, n: int) -> None:
    """Reference: scipy.stats.binomtest(x, n).proportion_ci(method="exact"), the
    Clopper–Pearson interval; ×1000. Tolerance 1e-9 per 1,000 (floating point only)."""
    rate, lo, hi = devices.rate_ci(x, n)
    ci = stats.binomtest(x, n).proportion_ci(confidence_level=0.95, method="exact")
    assert rate == pytest.approx(1000 * x / n)
    assert lo == pytest.approx(1000 * ci.low, abs=1e-9)
    assert hi == pytest.approx(1000 * ci.high, abs=1e-9)


@pytest.mark.parametrize(("x", "n"), [(0, 500), (1, 1121), (10, 981), (40, 2000)])
def test_rate_ci_poisson_matches_root_finding(x: int, n: int) -> None:
    _rate, lo, hi = devices.rate_ci(x, n, method="poisson")
    ref_lo, ref_hi = _poisson_exact(x)
    assert lo == pytest.approx(1000 * ref_lo / n, rel=1e-7, abs=1e-9)
    assert hi == pytest.approx(1000 * ref_hi / n, rel=1e-7)


def test_rate_ci_edge_cases() -> None:
    assert all(np.isnan(v) for v in devices.rate_ci(0, 0))
    with pytest.raises(InputError, match="events"):
        devices.rate_ci(5, 3)
    with pytest.raises(InputError, match="method"):
        devices.rate_ci(1, 3, method="wald")  # type: ignore[arg-type]


def _sessions() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 400
    skin = rng.choice(
        ["normal", "erythema", "vesicles", "burn", "not_checked", None],
        n,
        p=[0.6, 0.2, 0.03, 0.01, 0.1, 0.06],
    )
    pres = np.where(rng.random(n) < 0.2, 80.0, 40.0)
    deliv = pres * np.where(rng.random(n) < 0.1, rng.uniform(0.1, 0.9, n), 1.0)
    pres[:5] = np.nan
    faults = rng.choice(
        ["", "PAUSED", "CURRENT_LIMITED;RESISTANCE_LIMIT", "ELECTRODE_REJECT"],
        n,
        p=[0.8, 0.08, 0.07, 0.05],
    )
    return pd.DataFrame(
        {
            "session_id": [f"s{i}" for i in range(n)],
            "clinic_id": rng.choice(["c1", "c2", "c3"], n),
            "device_model": rng.choice(["KD-400", "PS-2 Auto"], n),
            "prescribed_dose_mA_min": pres,
            "delivered_dose_mA_min": np.round(deliv, 2),
            "skin_check_after": pd.Series(skin, dtype=object),
            "wrong_polarity": rng.random(n) < 0.02,
            "current_limited": rng.random(n) < 0.05,
            "fault_codes": pd.Series(np.where(faults == "", None, faults), dtype=object),
            "end_reason": "DOSE_COMPLETE",
            "started_at_utc": pd.Timestamp("2025-01-01", tz="UTC")
            + pd.to_timedelta(np.arange(n), unit="h"),
        }
    )


def test_event_rates_per_1000_with_exact_cis_by_clinic() -> None:
    s = _sessions()
    before = s.copy(deep=True)
    r = devices.event_rates(s, by="clinic_id")
    pd.testing.assert_frame_equal(s, before)
    assert list(r.columns[:2]) == ["clinic_id", "event"]
    assert set(r["event"]) == set(devices.EVENTS)
    for _, row in r.iterrows():
        g = s[s["clinic_id"] == row["clinic_id"]]
        skin = g["skin_check_after"]
        checked = skin.notna() & (skin != "not_checked")
        if row["event"] in ("skin_reaction", "erythema", "vesicles", "burn"):
            hits = (
                skin.isin(devices.SKIN_REACTIONS)
                if row["event"] == "skin_reaction"
                else (skin == row["event"])
            )
            x, n = int((hits & checked).sum()), int(checked.sum())
            assert row["n_not_assessed"] == len(g) - n
        elif row["event"] == "ended_early":
            known = g["prescribed_dose_mA_min"].notna()
            early = g["delivered_dose_mA_min"] < 0.95 * g["prescribed_dose_mA_min"]
            x, n = int((early & known).sum()), int(known.sum())
        else:
            x, n = int(g[row["event"]].sum()), len(g)
        assert (row["n_events"], row["n_sessions"]) == (x, n)
        ci = stats.binomtest(x, n).proportion_ci(method="exact")
        assert row["rate_per_1000"] == pytest.approx(1000 * x / n)
        assert row["ci_low"] == pytest.approx(1000 * ci.low, abs=1e-9)
        assert row["ci_high"] == pytest.approx(1000 * ci.high, abs=1e-9)


def test_event_rates_poisson_and_subset() -> None:
    r = devices.event_rates(_sessions(), events=["burn"], method="poisson")
    assert r["event"].tolist() == ["burn"] and r["method"].iloc[0] == "poisson"
    with pytest.raises(InputError, match="unknown event"):
        devices.event_rates(_sessions(), events=["fainting"])


def test_dose_delivery_flags() -> None:
    s = pd.DataFrame(
        {
            "session_id": list("abcdef"),
            "prescribed_dose_mA_min": [40.0, 40.0, 40.0, 80.0, np.nan, 40.0],
            "delivered_dose_mA_min": [40.01, 37.9, 43.0, 88.0, 40.0, 40.0],
            "recomputed_dose_mA_min": [40.0, 37.9, 43.0, 88.0, 40.0, 30.0],
        }
    )
    before = s.copy(deep=True)
    d = devices.dose_delivery(s)
    pd.testing.assert_frame_equal(s, before)
    assert d["dose_flags"].tolist() == [
        "",
        "ended_early",
        "over_prescribed",
        "over_prescribed;above_ceiling",
        "no_prescription",
        "device_vs_samples",
    ]
    assert d["ended_early"].isna().tolist() == [False] * 4 + [True, False]
    assert d["delivered_fraction"].iloc[1] == pytest.approx(37.9 / 40)


def test_dose_summary_by_model_and_clinic() -> None:
    s = _sessions()
    out = devices.dose_summary(s, by=["device_model", "clinic_id"])
    assert out["n_sessions"].sum() == len(s)
    row = out.iloc[0]
    g = s[(s["device_model"] == row["device_model"]) & (s["clinic_id"] == row["clinic_id"])]
    assert row["n_current_limited"] == g["current_limited"].sum()
    ci = stats.binomtest(int(row["n_ended_early"]), int(row["n_with_prescription"]))
    assert row["ended_early_ci_high"] == pytest.approx(100 * ci.proportion_ci().high)
    overall = devices.dose_summary(s, by=None)
    assert overall["group"].tolist() == ["all sessions"]


def test_fault_pareto_counts_each_code_of_a_session() -> None:
    s = _sessions()
    p = devices.fault_pareto(s)
    codes = s["fault_codes"].dropna().str.split(";").explode()
    assert dict(zip(p["fault_code"], p["n_faults"], strict=True)) == codes.value_counts().to_dict()
    assert p["n_faults"].is_monotonic_decreasing
    assert p["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    by = devices.fault_pareto(s, by="device_model")
    for model, g in by.groupby("device_model"):
        assert g["cumulative_share"].iloc[-1] == pytest.approx(1.0)
        assert (g["n_sessions"] == (s["device_model"] == model).sum()).all()
    empty = devices.fault_pareto(s.assign(fault_codes=None))
    assert empty.empty and "cumulative_share" in empty.columns


def _samples(current: np.ndarray, z: np.ndarray | float = 8000.0) -> pd.DataFrame:
    z = np.broadcast_to(z, current.shape).astype(float)
    return pd.DataFrame(
        {
            "t_s": np.arange(len(current), dtype=float),
            "current_mA": current,
            "voltage_V": np.where(
                np.isfinite(z),
                np.minimum(current * np.where(np.isfinite(z), z, 0.0) / 1000, 60.0),
                0.0,
            ),
            "impedance_ohm": z,
        }
    )


def test_trace_phases_complete_reject_and_limited() -> None:
    ramp = np.linspace(0, 2, 30)
    done = np.r_[ramp, np.full(100, 2.0), ramp[::-1]]
    p = devices.trace_phases(_samples(done), setpoint_mA=2.0, end_reason="DOSE_COMPLETE")
    assert p["phase"].iloc[0] == "ramp_up" and p["phase"].iloc[-1] == "ramp_down"
    assert set(p["phase"]) == {"ramp_up", "treat", "ramp_down"}
    assert p["event"].dropna().tolist() == ["DOSE_COMPLETE"]

    reject = np.r_[ramp, np.full(50, 2.0), np.zeros(3)]
    z = np.r_[np.full(80, 8000.0), np.full(3, np.inf)]
    p = devices.trace_phases(
        _samples(reject, z),
        setpoint_mA=2.0,
        fault_codes="ELECTRODE_REJECT",
        end_reason="ELECTRODE_REJECT",
    )
    assert p["event"].dropna().tolist() == ["ELECTRODE_REJECT"]  # placed once, at open circuit
    assert p.loc[p["event"].notna(), "t_s"].item() == 80.0
    assert p["phase"].iloc[-1] == "stopped"

    limited = np.r_[np.linspace(0, 1.2, 40), np.full(30, 1.2), [0.0]]
    p = devices.trace_phases(
        _samples(limited, 50_000.0),
        setpoint_mA=4.0,
        fault_codes="CURRENT_LIMITED;RESISTANCE_LIMIT",
        end_reason="HIGH_IMPEDANCE",
    )
    assert "limited" in set(p["phase"])
    assert p["event"].dropna().tolist() == ["CURRENT_LIMITED / RESISTANCE_LIMIT", "HIGH_IMPEDANCE"]


def test_session_trace_reads_the_store() -> None:
    engine = store.connect("sqlite://")
    store.upgrade(engine)
    rows = valid_rows()
    t = np.arange(0.0, 661.0)
    cur = np.clip(np.minimum(t, 660 - t) / 30.0, 0, 1) * 4.0
    samples = SessionSamples(
        t_s=t, current_mA=cur, voltage_V=cur * 8.0, impedance_ohm=np.full(len(t), 8000.0)
    )
    rows["session_trace"] = {
        "session_id": 1,
        "sample_count": len(t),
        "packed_samples": pack_samples(samples),
    }
    with engine.begin() as connection:
        for table, row in rows.items():
            if table != "adverse_event":
                connection.execute(insert(TABLES[table]), [row])
    trace = devices.session_trace(engine, "s" * 64)
    assert len(trace) == len(t) and trace["setpoint_mA"].eq(4.0).all()
    assert trace["dose_mA_min"].iloc[-1] == pytest.approx(
        np.sum(cur[1:] * np.diff(t)) / 60, rel=1e-9
    )
    assert trace["phase"].iloc[0] == "ramp_up" and trace["phase"].iloc[-1] == "ramp_down"
    assert trace["event"].dropna().tolist() == ["DOSE_COMPLETE"]
    assert trace["device_model"].iloc[0] == "IontoPro 2"
    details = load_session_details(engine)
    assert details.loc[0, "peak_density_mA_per_cm2"] == pytest.approx(0.4)
    assert devices.trace_choices(details) == {
        f"IontoPro 2 · DOSE_COMPLETE · 2026-03-02 09:30 · {'s' * 8}": "s" * 64
    }
    with pytest.raises(InputError, match="not in the store"):
        devices.session_trace(engine, "missing")
