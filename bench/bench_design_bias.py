"""What the emulator's own data imply, before any export: two oracle analyses at large N.

The coverage study (``bench_coverage.py``) grades the toolkit's estimators on exported,
imported studies of about 1,000 episodes. Where a cell's bias is shared by every estimator,
it may lie in the data-generating process rather than in the estimators. This bench asks
the data directly, on millions of episodes drawn in memory with
:func:`emulator.draw_episodes` (the same episodes, arms, visits and scores :func:`emulate`
exports for a seed, nothing written), and grades two analyses that know what no analysis of
the exports can:

* ``ols``: the change from baseline at the week-W score (the window rule of
  :mod:`data_schemas.windows`) regressed on the five arms and the *true* assignment
  covariates, each entered linearly: the analysed instrument's baseline, ``severity_z``
  (the primary instrument's standardized baseline), age, sex, log symptom duration and the
  clinic. It is what a linear ANCOVA with a correct adjustment set estimates.
* ``ipw``: Hájek means of the change per arm weighted by 1 / the *true* probability of the
  delivered arm (:func:`emulator.assignment.true_arm_probabilities`), so no outcome model
  at all. With complete data it estimates the planted ``window_difference`` wherever the
  arms' propensities are positive.

Each is run on two versions of the same draws: ``observed`` (the visits that happen:
dropout and follow-up response) and ``complete`` (every planned score, nobody lost). The
truth is the ``window_difference`` of ``ground_truth.json``, accumulated from the same
draws by :class:`emulator.outcomes.TruthAccumulator`. Standard errors: classical for
``ols``; for ``ipw`` the Hájek linearization with the weights taken as known.

Reading: ``ipw`` on ``complete`` tests the emulator's planted truth against its own data
(it should hold in every cell); ``ols`` on ``complete`` shows what a linear outcome model
leaves under confounding when the instrument's floor or ceiling bends the outcome; the
``observed`` − ``complete`` difference of either is what the dropout alone does to a
complete-case analysis. ``z_study`` rescales each bias to the coverage study's precision
(``studies`` studies of ``patients`` episodes), to compare with its per-cell z.

A third subcommand, ``package``, runs the toolkit's own :func:`ia.ancova` and
:func:`ia.iptw` (defaults: restricted cubic splines, every intake score, clinic) on one
large frame of the same draws for the planted-0 cells of chosen conditions: the episode
and outcome frames are built from the draws in the loaders' shape (no export, no import),
so what the linear oracle leaves there can be compared with what the toolkit leaves.
Beside them, on the same frame, ``ancova_tensor``: the change regressed on the arm and a
tensor of the baseline's spline with every other confounder (:func:`tensor_ancova`), to
ask whether the toolkit's additive spline basis leaves what an instrument's ceiling makes
non-additive.

Run::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    PYTHONPATH=. nice -n 5 .venv/bin/python bench/bench_design_bias.py run \\
        default 2000 200 10000 2 /tmp/design_bias.csv
    PYTHONPATH=. .venv/bin/python bench/bench_design_bias.py summary /tmp/design_bias.csv
    PYTHONPATH=. nice -n 5 .venv/bin/python bench/bench_design_bias.py package \
        default 3000 50 10000 complete plantar_fasciitis,achilles_tendinopathy /tmp/pkg.csv

(``run SCENARIO FIRST_SEED SEEDS PATIENTS WORKERS CSV``: seeds ``FIRST_SEED`` onwards, each a
network of the scenario's clinics with ``PATIENTS`` episodes; ``summary CSV [STUDIES
[PATIENTS]]`` prints the tables, by default at 200 studies of 1,000 episodes; ``package
SCENARIO FIRST_SEED SEEDS PATIENTS MODE CONDITIONS CSV``, ``MODE`` one of :data:`MODES`.)
"""

from __future__ import annotations

import itertools
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import ionto_analytics as ia
from data_schemas.vocabulary import ARMS
from data_schemas.windows import nearest_in_window
from device_import.parsers.ehr_csv import WEEKS_PER_MONTH
from emulator import draw_episodes, load_scenario
from emulator.assignment import covariates, true_arm_probabilities
from emulator.outcomes import TRUTH_WEEKS, TruthAccumulator
from emulator.scenario import resolve_clinics
from emulator.truth import effect_table
from ionto_analytics.compare.adjustment import continuous_columns
from ionto_analytics.compare.frame import AnalysisFrame

MODES = ("observed", "complete")
"""``observed``: the visits that happen; ``complete``: every planned visit."""

Key = tuple[str, str, str, int]
"""(mode, condition, instrument, week)."""


class Sums:
    """Sufficient statistics of both oracle analyses, per mode, condition, instrument, week."""

    def __init__(self) -> None:
        self.xtx: dict[Key, np.ndarray] = {}
        self.xty: dict[Key, np.ndarray] = {}
        self.yty: dict[Key, float] = defaultdict(float)
        self.n: dict[Key, int] = defaultdict(int)
        # Per key and arm: sum w, w·y, w², w²·y, w²·y².
        self.ipw: dict[Key, np.ndarray] = {}

    def add(self, key: Key, x: np.ndarray, y: np.ndarray, arm: np.ndarray, w: np.ndarray) -> None:
        """Add the rows of one cell (design ``x``, change ``y``, arm index, IPW weight)."""
        if key not in self.xtx:
            self.xtx[key] = np.zeros((x.shape[1], x.shape[1]))
            self.xty[key] = np.zeros(x.shape[1])
            self.ipw[key] = np.zeros((len(ARMS), 5))
        self.xtx[key] += x.T @ x
        self.xty[key] += x.T @ y
        self.yty[key] += float(y @ y)
        self.n[key] += len(y)
        for j in range(len(ARMS)):
            m = arm == j
            wj, yj = w[m], y[m]
            self.ipw[key][j] += [wj.sum(), wj @ yj, wj @ wj, (wj * wj) @ yj, (wj * wj) @ (yj * yj)]

    def merge(self, other: Sums) -> None:
        """Add another worker's sums."""
        for key in other.xtx:
            if key not in self.xtx:
                self.xtx[key] = np.zeros_like(other.xtx[key])
                self.xty[key] = np.zeros_like(other.xty[key])
                self.ipw[key] = np.zeros_like(other.ipw[key])
            self.xtx[key] += other.xtx[key]
            self.xty[key] += other.xty[key]
            self.ipw[key] += other.ipw[key]
            self.yty[key] += other.yty[key]
            self.n[key] += other.n[key]


def _design(e: pd.DataFrame, instr: str, arm: np.ndarray, n_clinics: int) -> np.ndarray:
    """Five arm indicators (no intercept), the true covariates linearly, clinic indicators."""
    x = covariates(e)
    clinic = e["clinic"].to_numpy()
    cols = [(arm == j).astype(float) for j in range(len(ARMS))]
    cols += [e[f"baseline_{instr}"].to_numpy(float), *x.values()]
    cols += [(clinic == c).astype(float) for c in range(1, n_clinics)]
    return np.column_stack(cols)


def seed_sums(scenario: str, seed: int, patients: int) -> tuple[Sums, TruthAccumulator]:
    """Both analyses' sums and the planted truth over one seed's network."""
    s = load_scenario(scenario)
    clinics = resolve_clinics(s, s["defaults"]["clinics"])
    sums, truth = Sums(), TruthAccumulator(s)
    for chunk in draw_episodes(scenario=scenario, seed=seed, patients=patients):
        eps = chunk.episodes
        truth.add(chunk.truth_rng, clinics, eps, chunk.dose, chunk.calendar)
        p = true_arm_probabilities(s, clinics, eps)
        arm = eps["true_arm"].map(ARMS.index).to_numpy()
        weight = 1.0 / p[np.arange(len(eps)), arm]
        scores = chunk.scores[chunk.scores["instrument"] != "groc"]
        day = chunk.calendar["day"].to_numpy()[scores["visit_row"].to_numpy()]
        kept = chunk.kept[scores["visit_row"].to_numpy()]
        for mode in MODES:
            sub = scores[kept] if mode == "observed" else scores
            sub_day = day[kept] if mode == "observed" else day
            for instr, idx in sub.groupby("instrument").indices.items():
                rows, days = sub["episode_row"].to_numpy()[idx], sub_day[idx]
                values = sub["score"].to_numpy()[idx]
                for week in TRUTH_WEEKS:
                    pick = nearest_in_window(rows, days, int(week))
                    r = rows[pick]
                    e = eps.iloc[r]
                    y = values[pick] - e[f"baseline_{instr}"].to_numpy(float)
                    x = _design(e, instr, arm[r], len(clinics))
                    cond = e["condition"].to_numpy()
                    for c in np.unique(cond):
                        m = cond == c
                        key = (mode, str(c), str(instr), int(week))
                        sums.add(key, x[m], y[m], arm[r][m], weight[r][m])
    return sums, truth


def _seed_job(args: tuple[str, int, int]) -> tuple[Sums, TruthAccumulator]:
    return seed_sums(*args)


def estimates(sums: Sums, truth: TruthAccumulator, scenario: str) -> pd.DataFrame:
    """One row per mode, cell and arm pair: truth, both analyses' estimate, SE and n."""
    planted = {
        (r["condition"], r["instrument"], r["arm"], r["versus"], int(r["week"])): r
        for r in effect_table(load_scenario(scenario), truth)
    }
    out = []
    for key in sorted(sums.xtx):
        mode, cond, instr, week = key
        xtx, xty = sums.xtx[key], sums.xty[key]
        used = np.diag(xtx) > 0
        inv = np.linalg.pinv(xtx[np.ix_(used, used)])
        beta = inv @ xty[used]
        dof = sums.n[key] - np.linalg.matrix_rank(xtx[np.ix_(used, used)])
        sigma2 = (sums.yty[key] - beta @ xty[used]) / max(dof, 1)
        col = {j: int(used[:j].sum()) for j in range(len(ARMS)) if used[j]}
        sw, swy, sw2, sw2y, sw2y2 = sums.ipw[key].T
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = swy / sw
            var = (sw2y2 - 2 * mean * sw2y + mean**2 * sw2) / sw**2
        for a, b in itertools.permutations(col, 2):
            row = planted.get((cond, instr, ARMS[a], ARMS[b], week))
            if row is None or row["window_difference"] is None:
                continue
            d = np.zeros(len(beta))
            d[col[a]], d[col[b]] = 1.0, -1.0
            out.append(
                {
                    "mode": mode,
                    "condition": cond,
                    "instrument": instr,
                    "arm": ARMS[a],
                    "versus": ARMS[b],
                    "week": week,
                    "truth": row["window_difference"],
                    "ols": float(d @ beta),
                    "ols_se": float(np.sqrt(sigma2 * d @ inv @ d)),
                    "ipw": float(mean[a] - mean[b]),
                    "ipw_se": float(np.sqrt(var[a] + var[b])),
                    "n": sums.n[key],
                }
            )
    return pd.DataFrame(out)


def run(
    scenario: str, first: int, seeds: int, patients: int, workers: int, csv: Path
) -> pd.DataFrame:
    """Draw ``seeds`` networks, add their sums, write and return the per-cell table."""
    t0 = time.perf_counter()
    jobs = [(scenario, first + i, patients) for i in range(seeds)]
    sums, truth = Sums(), TruthAccumulator(load_scenario(scenario))
    with ProcessPoolExecutor(workers) as pool:
        for k, (s, t) in enumerate(pool.map(_seed_job, jobs), 1):
            sums.merge(s)
            truth.merge(t)
            print(f"  seed {k}/{seeds}: {time.perf_counter() - t0:.0f} s", flush=True)
    table = estimates(sums, truth, scenario)
    table.insert(0, "episodes", seeds * patients)
    table.insert(0, "seeds", f"{first}-{first + seeds - 1}")
    table.insert(0, "scenario", scenario)
    table.to_csv(csv, index=False, float_format="%.6g")
    print(f"{seeds} seeds x {patients} episodes in {time.perf_counter() - t0:.0f} s -> {csv}")
    return table


ZERO_PAIRS = {("ionto+exercise", "exercise"), ("ionto+exercise+manual", "exercise+manual")}
"""Pairs that differ by iontophoresis alone: planted 0 for every patient from week 5 on."""


def graded(table: pd.DataFrame, studies: int, patients: int) -> pd.DataFrame:
    """Long table: per mode, method and cell the bias, its z at this size, and ``z_study``
    (the bias over the SE a coverage study of ``studies`` × ``patients`` would have)."""
    parts = []
    for method in ("ols", "ipw"):
        t = table[["mode", "condition", "instrument", "arm", "versus", "week", "truth"]].copy()
        t["method"] = method
        t["bias"] = table[method] - table["truth"]
        t["z"] = t["bias"] / table[f"{method}_se"]
        scale = np.sqrt(studies * patients / table["episodes"])
        t["z_study"] = t["z"] * scale
        t["zero"] = [
            (a, b) in ZERO_PAIRS and w >= 6 for a, b, w in zip(t.arm, t.versus, t.week, strict=True)
        ]
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def summary(csv: Path, studies: int = 200, patients: int = 1000) -> None:
    """Print the pooled z distributions and the cells a coverage study would flag."""
    g = graded(pd.read_csv(csv), studies, patients)
    g = g[np.isfinite(g["z"])]
    pd.set_option("display.width", 200)
    rows = []
    for (mode, method, zero), t in g.groupby(["mode", "method", "zero"]):
        rows.append(
            {
                "mode": mode,
                "method": method,
                "cells": "planted 0 (ionto pairs, weeks 6-12)" if zero else "all other",
                "n": len(t),
                "sd(z)": round(t["z"].std(), 2),
                "|z|>3": int((t["z"].abs() > 3).sum()),
                "|z_study|>1": int((t["z_study"].abs() > 1).sum()),
                "max|z_study|": round(t["z_study"].abs().max(), 2),
            }
        )
    print(
        f"\nAt this size z ~ N(0, 1) if the analysis is unbiased; z_study at {studies} x "
        f"{patients}:\n"
    )
    print(pd.DataFrame(rows).to_string(index=False))
    worst = g[g["z_study"].abs() > 1].sort_values("z_study")
    cols = [
        "mode",
        "method",
        "condition",
        "instrument",
        "arm",
        "versus",
        "week",
        "truth",
        "bias",
        "z",
        "z_study",
    ]
    print(f"\nCells with |z_study| > 1 ({len(worst)}):\n")
    print(worst[cols].round(3).to_string(index=False))


def package_frames(
    scenario: str, first: int, seeds: int, patients: int, mode: str, conditions: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Episode and outcome frames of the draws of ``conditions``, in the loaders' shape."""
    episodes, outcomes = [], []
    for seed in range(first, first + seeds):
        for chunk in draw_episodes(scenario=scenario, seed=seed, patients=patients):
            e = chunk.episodes[chunk.episodes["condition"].isin(conditions)]
            ids = f"s{seed}e" + e["episode_index"].astype(str)
            episodes.append(
                pd.DataFrame(
                    {
                        "episode_id": ids.to_numpy(),
                        "patient_id": (f"s{seed}p" + e["person_index"].astype(str)).to_numpy(),
                        "clinic_id": e["clinic"].map("clinic_{:02d}".format).to_numpy(),
                        "condition": e["condition"].to_numpy(),
                        "arm": e["true_arm"].to_numpy(),
                        "age_years": e["age"].to_numpy(float),
                        "sex": e["sex"].astype(str).to_numpy(),
                        "symptom_duration_weeks": (
                            e["symptom_duration_months"].to_numpy(float) * WEEKS_PER_MONTH
                        ).round(2),
                        "n_visits": e["n_visits"].to_numpy(),
                    }
                )
            )
            sc = chunk.scores
            row = sc["episode_row"].to_numpy()
            keep = chunk.episodes["condition"].isin(conditions).to_numpy()[row]
            keep &= (sc["instrument"] != "groc").to_numpy()
            if mode == "observed":
                keep &= chunk.kept[sc["visit_row"].to_numpy()]
            sc = sc[keep]
            index = chunk.episodes["episode_index"].to_numpy()[sc["episode_row"].to_numpy()]
            row_ids = f"s{seed}e" + pd.Series(index).astype(str)
            outcomes.append(
                pd.DataFrame(
                    {
                        "episode_id": row_ids.astype(str).to_numpy(),
                        "instrument": sc["instrument"].to_numpy(),
                        "score": sc["score"].to_numpy(float),
                        "days_from_intake": chunk.calendar["day"].to_numpy()[
                            sc["visit_row"].to_numpy()
                        ],
                    }
                )
            )
    return pd.concat(episodes, ignore_index=True), pd.concat(outcomes, ignore_index=True)


def tensor_ancova(frame: AnalysisFrame) -> tuple[float, float]:
    """Estimate and HC1 SE of the arm in an ANCOVA whose baseline spline interacts with
    every other confounder.

    ``change ~ treated + cr(baseline, 4) * (cr(age) + cr(log duration) + sex + clinic +
    cr(other intake scores))``: an instrument's floor or ceiling clips the score at
    ``baseline + change``, so the mean change is a non-additive function of the baseline
    and every prognostic factor, which an additive basis (the toolkit's) bends.
    """
    d = frame.data[frame.data["has_follow_up"]].copy()
    d["log_duration"] = np.log(d["symptom_duration_weeks"])
    spline = 'cr({}, df={}, constraints="center")'.format
    others = [spline("age_years", 3), spline("log_duration", 3), "C(sex)", "C(clinic_id)"]
    intakes = [c for c in frame.adjust_for if c.startswith("intake_")]
    others += [spline(c, 3) for c in continuous_columns(d, intakes)]
    formula = f"change ~ treated + {spline('baseline', 4)} * ({' + '.join(others)})"
    fit = smf.ols(formula, data=d).fit(cov_type="HC1")
    return float(fit.params["treated"]), float(fit.bse["treated"])


def _toolkit_estimate(estimator: Callable[..., Any], frame: AnalysisFrame) -> tuple[float, float]:
    """Estimate and SE (from the 95 % interval) of a toolkit estimator with its defaults."""
    with warnings.catch_warnings():  # the few-clusters notes, every cell alike
        warnings.simplefilter("ignore")
        r = estimator(frame).to_dict()
    return r["estimate"], (r["ci_high"] - r["ci_low"]) / (2 * 1.959964)


PACKAGE_ESTIMATORS: dict[str, Callable[[AnalysisFrame], tuple[float, float]]] = {
    "ancova": partial(_toolkit_estimate, ia.ancova),
    "iptw": partial(_toolkit_estimate, ia.iptw),
    "ancova_tensor": tensor_ancova,
}
"""What ``package`` fits on each cell's frame: name → (estimate, SE)."""


def package(
    scenario: str,
    first: int,
    seeds: int,
    patients: int,
    mode: str,
    conditions: list[str],
    csv: Path,
) -> pd.DataFrame:
    """The toolkit's ANCOVA and IPTW on the planted-0 cells of one large frame."""
    t0 = time.perf_counter()
    episodes, outcomes = package_frames(scenario, first, seeds, patients, mode, conditions)
    print(f"{len(episodes)} episodes, {len(outcomes)} scores: {time.perf_counter() - t0:.0f} s")
    rows = []
    for cond in conditions:
        ids = episodes.loc[episodes["condition"] == cond, "episode_id"]
        instruments = sorted(outcomes.loc[outcomes["episode_id"].isin(ids), "instrument"].unique())
        for instr, (a, b), week in itertools.product(instruments, sorted(ZERO_PAIRS), (6, 12)):
            af = ia.comparison_frame(episodes, outcomes, instr, week, (a, b), condition=cond)
            for name, fit in PACKAGE_ESTIMATORS.items():
                estimate, se = fit(af)
                rows.append(
                    {
                        "mode": mode,
                        "estimator": name,
                        "condition": cond,
                        "instrument": instr,
                        "arm": a,
                        "versus": b,
                        "week": week,
                        "estimate": estimate,
                        "se": se,
                        "z": estimate / se,
                        "episodes": seeds * patients,
                    }
                )
                print(" ".join(str(v) for v in rows[-1].values()), flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(csv, index=False, float_format="%.6g")
    print(f"{len(table)} estimates in {time.perf_counter() - t0:.0f} s -> {csv}")
    return table


def main(args: list[str]) -> None:
    """Command line: see the module docstring."""
    if len(args) >= 2 and args[1] == "run" and len(args) == 8:
        scenario, first, seeds, patients, workers, csv = args[2:8]
        run(scenario, int(first), int(seeds), int(patients), int(workers), Path(csv))
    elif len(args) == 9 and args[1] == "package" and args[6] in MODES:
        scenario, first, seeds, patients, mode, conditions, csv = args[2:9]
        package(
            scenario, int(first), int(seeds), int(patients), mode, conditions.split(","), Path(csv)
        )
    elif len(args) >= 3 and args[1] == "summary":
        summary(Path(args[2]), *(int(a) for a in args[3:5]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
