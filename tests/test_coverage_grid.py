"""A small coverage grid in the test suite (the full one is ``bench/bench_coverage.py``).

Three seeds of a small default network (800 episodes each), emulated, imported with the
real importer (EHR export) and loaded; three cells (the iontophoresis effect on lateral
epicondylitis PRTEE and on its secondary instrument NPRS, planted 0 from week 6, and manual
therapy on Achilles VISA-A) at weeks 2, 4, 6 and 12 for ANCOVA, IPTW, the mixed model and
the MMRM, graded against ``ground_truth.json``'s ``window_difference``: the planted contrast
at the days each week's window selects (week 2's window, days 8–21, straddles the
iontophoresis peak at day 14, where the exact-day ``difference`` is not what any window
measures).

Tolerances are wide (36 contrasts per estimator) but still reject a bias of one standard
error: the mean standardized error must lie within ±:data:`MAX_MEAN_Z`, and the test shows
that the same estimates shifted by ±1 SE fail the criterion.
"""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data_schemas import store
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from emulator import emulate
from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.iptw import iptw
from ionto_analytics.compare.mixed import mixed_model
from ionto_analytics.compare.mmrm import mmrm
from ionto_analytics.loaders import load_episodes, load_outcomes

SEEDS = (11, 12, 13)
PATIENTS = 800
WEEKS = (2, 4, 6, 12)
CELLS = (
    ("lateral_epicondylitis", "prtee", "ionto+exercise", "exercise"),
    ("lateral_epicondylitis", "nprs", "ionto+exercise", "exercise"),
    ("achilles_tendinopathy", "visa_a", "exercise+manual", "exercise"),
)
MAX_MEAN_Z = 0.5
"""Largest accepted |mean standardized error| per estimator (a 1-SE bias moves it by 1)."""
MIN_COVERAGE = 0.75
"""Smallest accepted share of 95 % intervals covering the planted effect (36 per estimator)."""


def _se(low: float, high: float, df: float) -> float:
    q = stats.norm.ppf(0.975) if not np.isfinite(df) else stats.t.ppf(0.975, df)
    return (high - low) / (2 * q)


def _one_study(base: Path, seed: int) -> list[dict]:
    out = base / f"emu{seed}"
    summary = emulate(out, seed=seed, patients=PATIENTS)
    truth = json.loads(Path(summary.ground_truth).read_text(encoding="utf-8"))
    planted = {
        (e["condition"], e["instrument"], e["arm"], e["versus"], int(e["week"])): e[
            "window_difference"
        ]
        for e in truth["effects"]
    }
    engine = store.connect(f"sqlite:///{base / f'store{seed}.db'}")
    store.upgrade(engine)
    Importer(engine, Keyer(b"grid-test"), today=dt.date(2026, 6, 1)).run([out / "ehr"])
    episodes, outcomes = load_episodes(engine), load_outcomes(engine)
    engine.dispose()
    rows = []
    for cond, instr, a, b in CELLS:
        frames = {
            w: comparison_frame(episodes, outcomes, instr, w, (a, b), condition=cond) for w in WEEKS
        }
        for w, af in frames.items():
            for name, fit in (("ancova", ancova), ("iptw", iptw)):
                r = fit(af)
                df = len(af.data) - 2  # t reference of the HC2 fit, close enough for an SE
                rows.append(
                    {
                        "estimator": name,
                        "estimate": r.estimate,
                        "se": _se(r.ci_low, r.ci_high, df),
                        "covered": r.ci_low <= planted[(cond, instr, a, b, w)] <= r.ci_high,
                        "truth": planted[(cond, instr, a, b, w)],
                    }
                )
        for name, fit in (("mixed_model", mixed_model), ("mmrm", mmrm)):
            table = fit(frames[2], windows=WEEKS).table.dropna(subset=["df"])
            for c in table.itertuples():
                t = planted[(cond, instr, a, b, int(c.week))]
                rows.append(
                    {
                        "estimator": name,
                        "estimate": c.estimate,
                        "se": c.se,
                        "covered": c.ci_low <= t <= c.ci_high,
                        "truth": t,
                    }
                )
    return rows


@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Every estimate of the small grid with its planted truth and SE."""
    base = tmp_path_factory.mktemp("grid")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = [r for seed in SEEDS for r in _one_study(base, seed)]
    return pd.DataFrame(rows)


def grid_verdict(err: np.ndarray, se: np.ndarray, covered: np.ndarray) -> tuple[bool, float]:
    """Whether estimates with errors ``err`` (estimate − truth) hold: mean z and coverage."""
    mean_z = float(np.mean(err / se))
    return abs(mean_z) < MAX_MEAN_Z and float(np.mean(covered)) >= MIN_COVERAGE, mean_z


def test_the_criterion_rejects_a_one_se_bias() -> None:
    """Unbiased standardized errors pass; the same shifted by ±1 SE fail."""
    rng = np.random.default_rng(0)
    se = rng.uniform(0.5, 2.0, 36)
    err = se * rng.standard_normal(36)
    covered = np.abs(err / se) < 1.96
    assert grid_verdict(err, se, covered)[0]
    for shift in (-1.0, 1.0):
        moved = err + shift * se
        assert not grid_verdict(moved, se, np.abs(moved / se) < 1.96)[0]


@pytest.mark.parametrize("estimator", ["ancova", "iptw", "mixed_model", "mmrm"])
def test_small_grid_covers_the_planted_effects(grid: pd.DataFrame, estimator: str) -> None:
    g = grid[grid["estimator"] == estimator]
    assert len(g) == len(SEEDS) * len(CELLS) * len(WEEKS)
    err, se = (g["estimate"] - g["truth"]).to_numpy(), g["se"].to_numpy()
    ok, mean_z = grid_verdict(err, se, g["covered"].to_numpy())
    assert ok, (estimator, mean_z, g["covered"].mean())
    for shift in (-1.0, 1.0):  # the same estimates biased by one SE would fail
        moved = err + shift * se
        assert not grid_verdict(moved, se, np.abs(moved / se) < 1.96)[0], (estimator, shift)
