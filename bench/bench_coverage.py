"""Coverage over the whole grid: do the 95 % intervals cover every planted effect? (not a test)

Each study emulates a clinic network (a shipped scenario, one seed), imports the EHR export
into a SQLite store with the real importer (:class:`device_import.pipeline.Importer`), loads
the frames with :mod:`ionto_analytics.loaders` and estimates **every cell** that
``ground_truth.json`` plants: condition × instrument collected for it × unordered arm pair
(one order: the arm later in ``ARMS`` first, e.g. ``ionto+exercise − exercise``) × truth
week (2, 4, 6, 12), zero-effect contrasts and secondary instruments included, with

* ``ancova``: :func:`ia.ancova` at the week's window (complete cases);
* ``iptw``: :func:`ia.iptw` (ATE weights, its default sandwich);
* ``mixed_model``: :func:`ia.mixed_model` over windows 2, 4, 6, 12 (one fit per condition ×
  instrument × arm pair gives all four weeks);
* ``mmrm``: :func:`ia.mmrm` over the same windows (unstructured covariance), the
  dropout-valid estimator.

Every estimator takes its defaults: the adjustment set of every intake score collected for
the condition (missing indicators), restricted cubic splines above the stated sample size,
clinic fixed effects, HC2 (fewer than 20 clinics). A cell an estimator refuses (an
``InputError``: empty or one-patient arm, a window without scores in one arm, GROC without
a baseline) is a row with ``status = not_estimable`` and the refusal's first words as
``reason``: never silently dropped. The **reported grid** of an estimator is its cells
estimable in at least :data:`REPORTED_SHARE` of the studies; the others are listed with
their most common reason.

Estimand. ``truth`` is ``ground_truth.json``'s ``difference``: the counterfactual mean
change at *exactly* day 7·W, averaged over all emulated patients of the condition scored
on the instrument. The analyses take, per episode, the score in the week-W window nearest
day 7·W (:mod:`ionto_analytics.windows`: week 2 = days 8–21, week 4 = 22–35, week 6 =
36–49, week 12 = 71–98), so they estimate the contrast *at the days measured*. Where the
arm effects still move inside the window (the iontophoresis effect peaks at week 2 and
fades to 0 at week 5; manual therapy rises with τ = 1.5 weeks) the two differ. ``gap`` is
that difference computed from the emulator's structural model
(:func:`emulator.truth.structural_smd`) at the follow-up days of the episodes analysed at
that week: ``gap = sign·SD·(mean_i [S_a(d_i/7) − S_b(d_i/7)] − [S_a(W) − S_b(W)])``.
``truth + gap`` is the windowed estimand. The tables grade against both (``cov`` /
``z`` against the planted truth, ``cov_w`` / ``z_w`` against the windowed one) so an
estimator bias and the estimand gap are told apart; the tolerance is never widened.

Targets (issue 11): coverage within 93.5–96.5 % pooled and no cell below 90 % over ≥ 200
studies; standardized mean bias ``z = mean(est − truth) / (sd(est − truth) / √n)`` with
``|z| < 2.5`` in every cell.

Run::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1   # threaded BLAS: 2-5x slower when loaded
    PYTHONPATH=. .venv/bin/python bench/bench_coverage.py run default core 200 1000 2 /tmp/c.csv
    PYTHONPATH=. .venv/bin/python bench/bench_coverage.py summary /tmp/c.csv [more.csv ...]

(``run SCENARIO GRID STUDIES PATIENTS WORKERS CSV [FIRST_SEED]``; ``GRID`` is ``core``
(:data:`CORE_GRID`) or ``all`` (every cell: 35 condition × instrument pairs × 10 arm pairs
= 350 cells; an estimable cell costs about 4 s on the loaded 2-core machine, so the whole
grid is up to about 20 min per study, see bench/RESULTS.md).
Rows are appended to the CSV after every study, so a partial run is usable; ``summary``
prints the tables of whatever the CSVs hold.)
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ESTIMATORS = ("ancova", "iptw", "mixed_model", "mmrm")
"""The estimators of the grid."""

WEEKS = (2, 4, 6, 12)
"""The truth weeks (``emulator.outcomes.TRUTH_WEEKS``), also the repeated models' windows."""

CORE_GRID: tuple[tuple[str, str, str, str], ...] = (
    ("lateral_epicondylitis", "prtee", "ionto+exercise", "exercise"),
    ("lateral_epicondylitis", "nprs", "ionto+exercise", "exercise"),
    ("achilles_tendinopathy", "visa_a", "exercise+manual", "exercise"),
)
"""The cells of ``grid = core`` (condition, instrument, first, second), each at every week:
the iontophoresis effect on a primary and on a secondary instrument (peak at week 2, planted
0 at weeks 6 and 12, strongly confounded by indication) and manual therapy on another
condition's primary instrument. ``grid = all`` is every cell."""

REPORTED_SHARE = 0.9
"""A cell is in an estimator's reported grid when estimable in this share of the studies."""

COVERAGE_POOLED = (0.935, 0.965)
COVERAGE_CELL_MIN = 0.90
Z_MAX = 2.5


def arm_pairs() -> list[tuple[str, str]]:
    """Every unordered pair of arms once: (later in ``ARMS``, earlier)."""
    from data_schemas.vocabulary import ARMS

    return [(ARMS[j], ARMS[i]) for i in range(len(ARMS)) for j in range(i + 1, len(ARMS))]


def planted(truth: dict[str, Any]) -> dict[tuple[str, str, str, str, int], float]:
    """``difference`` of ``ground_truth.json`` by (condition, instrument, arm, versus, week)."""
    return {
        (e["condition"], e["instrument"], e["arm"], e["versus"], int(e["week"])): float(
            e["difference"]
        )
        for e in truth["effects"]
    }


def mean_doses(truth: dict[str, Any]) -> dict[str, float]:
    """Mean potential iontophoresis dose per condition (the dose the truth's structure uses)."""
    eps = pd.DataFrame(truth["answer_key"]["episodes"])
    return eps.groupby("condition")["potential_dose_mA_min"].mean().to_dict()


def window_gap(
    scenario: dict[str, Any],
    cell: tuple[str, str, str, str],
    week: int,
    days: np.ndarray,
    mean_dose: float,
) -> float:
    """Structural contrast at the measured days minus at exactly day 7·week (points)."""
    from emulator.population import baseline_sd
    from emulator.truth import structural_smd

    cond, instr, a, b = cell
    if not len(days):
        return float("nan")
    sign = 1.0 if scenario["instruments"][instr]["better"] == "higher" else -1.0
    t = np.asarray(days, dtype=float) / 7.0
    at_days = structural_smd(scenario, a, t, mean_dose) - structural_smd(scenario, b, t, mean_dose)
    exact = structural_smd(scenario, a, float(week), mean_dose) - structural_smd(
        scenario, b, float(week), mean_dose
    )
    return float(sign * baseline_sd(scenario, cond, instr) * (at_days.mean() - float(exact)))


def _refusal(err: Exception) -> str:
    """The reason of a refusal, short enough to group by (numbers stripped)."""
    text = "".join("#" if ch.isdigit() else ch for ch in str(err))
    return text.split(";")[0][:90]


def _row(est: str, value: float, low: float, high: float, n: int, **extra: Any) -> dict:
    return {
        "estimator": est,
        "status": "ok",
        "reason": "",
        "estimate": float(value),
        "ci_low": float(low),
        "ci_high": float(high),
        "n": int(n),
        **extra,
    }


def _refused(est: str, err: Exception) -> dict:
    return {"estimator": est, "status": "not_estimable", "reason": _refusal(err)}


def estimate_cell(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    cell: tuple[str, str, str, str],
    scenario: dict[str, Any],
    mean_dose: float,
) -> list[dict]:
    """Rows (one per estimator and week) of one condition × instrument × arm pair."""
    from ionto_analytics.compare.ancova import ancova
    from ionto_analytics.compare.frame import comparison_frame
    from ionto_analytics.compare.iptw import iptw
    from ionto_analytics.compare.mixed import mixed_model
    from ionto_analytics.compare.mmrm import mmrm
    from ionto_analytics.errors import InputError

    cond, instr, a, b = cell
    rows: list[dict] = []
    frames: dict[int, Any] = {}
    for week in WEEKS:
        try:
            af = comparison_frame(episodes, outcomes, instr, week, (a, b), condition=cond)
        except InputError as err:
            rows += [{**_refused(e, err), "week": week} for e in ESTIMATORS]
            continue
        frames[week] = af
        days = af.data.loc[af.data["has_follow_up"], "follow_up_day"].to_numpy()
        gap = window_gap(scenario, cell, week, days, mean_dose)
        for name in ("ancova", "iptw"):
            try:
                if name == "ancova":
                    r = ancova(af)
                    rows.append(
                        {
                            **_row(name, r.estimate, r.ci_low, r.ci_high, sum(r.n.values())),
                            "week": week,
                            "gap": gap,
                        }
                    )
                else:
                    r = iptw(af)
                    dx = r.diagnostics
                    rows.append(
                        {
                            **_row(name, r.estimate, r.ci_low, r.ci_high, sum(r.n.values())),
                            "week": week,
                            "gap": gap,
                            "iptw_status": dx.status,
                            "equipoise": dx.equipoise_share,
                            "c_statistic": dx.c_statistic,
                            "ess_min": min(dx.ess.values()),
                            "single_arm_clinics": len(dx.single_arm_strata),
                        }
                    )
            except InputError as err:
                rows.append({**_refused(name, err), "week": week, "gap": gap})
    gaps = {r["week"]: r.get("gap", np.nan) for r in rows if r["estimator"] == "ancova"}
    for name, fit in (("mixed_model", mixed_model), ("mmrm", mmrm)):
        if 2 not in frames:
            rows += [
                {
                    "estimator": name,
                    "status": "not_estimable",
                    "week": w,
                    "reason": "no analysis frame at week #",
                }
                for w in WEEKS
            ]
            continue
        try:
            r = fit(frames[2], windows=WEEKS)
        except InputError as err:
            rows += [{**_refused(name, err), "week": w, "gap": gaps.get(w)} for w in WEEKS]
            continue
        tab = r.table.dropna(subset=["week"]).set_index("week")
        for w in WEEKS:
            c = tab.loc[w]
            if isinstance(c, pd.DataFrame):  # MMRM: contrast row, then residual-SD row
                c = c.iloc[0]
            rows.append(
                {
                    **_row(name, c["estimate"], c["ci_low"], c["ci_high"], sum(r.n.values())),
                    "week": w,
                    "gap": gaps.get(w),
                }
            )
    for r in rows:
        r.update(condition=cond, instrument=instr, arm=a, versus=b)
    return rows


def early_refusal(ep: pd.DataFrame, oc: pd.DataFrame, cell: tuple[str, str, str, str]) -> str:
    """Why no estimator can fit the cell at any week, found without fitting ("" if none).

    Two refusals are known before any frame is built and would otherwise cost a frame per
    week and estimator: a transition rating (GROC) has no baseline, and an arm with fewer
    than two episodes scored at intake (the ``ionto``-only arm: 1–8 episodes per condition)
    leaves nothing to compare. Every estimator refuses both with an ``InputError``
    (``arm ... has N analysable episode(s)``); the cells stay in the grid as
    ``not_estimable`` with this reason.
    """
    from ionto_analytics.instruments import get_instrument
    from ionto_analytics.windows import BASELINE_MAX_DAY

    _, instr, a, b = cell
    if get_instrument(instr).transition:
        return f"{instr} is a transition rating: no baseline to change from"
    scored = oc.loc[
        (oc["instrument"] == instr) & (oc["days_from_intake"] <= BASELINE_MAX_DAY), "episode_id"
    ]
    with_baseline = ep[ep["episode_id"].isin(scored)]
    for arm in (a, b):
        k = int((with_baseline["arm"] == arm).sum())
        if k < 2:
            return f"arm {arm!r} has {k} episode(s) with a baseline {instr} score"
    return ""


def grid_cells(
    truths: dict[tuple[str, str, str, str, int], float], grid: str
) -> list[tuple[str, str, str, str]]:
    """The (condition, instrument, first, second) cells of ``grid`` ("core" or "all")."""
    if grid == "core":
        return list(CORE_GRID)
    if grid != "all":
        raise SystemExit(f"grid must be 'core' or 'all', got {grid!r}")
    pairs = sorted({(c, i) for c, i, *_ in truths})
    return [(c, i, a, b) for c, i in pairs for a, b in arm_pairs()]


def study(seed: int, patients: int, scenario_name: str, grid: str = "core") -> list[dict]:
    """One emulated study: emulate, import the EHR export, load, estimate every cell."""
    from data_schemas import store
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer
    from emulator import emulate
    from emulator.scenario import load_scenario
    from ionto_analytics.loaders import load_episodes, load_outcomes

    scenario = load_scenario(scenario_name)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "emu"
        t0 = time.perf_counter()
        summary = emulate(out, scenario=scenario_name, seed=seed, patients=patients)
        truth = json.loads(Path(summary.ground_truth).read_text(encoding="utf-8"))
        t1 = time.perf_counter()
        engine = store.connect(f"sqlite:///{Path(tmp) / 'store.db'}")
        store.upgrade(engine)
        Importer(engine, Keyer(b"coverage-study"), today=dt.date(2026, 6, 1)).run([out / "ehr"])
        episodes, outcomes = load_episodes(engine), load_outcomes(engine)
        engine.dispose()
    t2 = time.perf_counter()
    truths, doses = planted(truth), mean_doses(truth)
    rows: list[dict] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cond, instr, a, b in grid_cells(truths, grid):
            # the episodes of the condition and the two arms (the frame would exclude the
            # others anyway; filtering first keeps the window rule from scanning them all)
            ep = episodes[(episodes["condition"] == cond) & episodes["arm"].isin((a, b))]
            oc = outcomes[outcomes["episode_id"].isin(ep["episode_id"])]
            why = early_refusal(ep, oc, (cond, instr, a, b))
            if why:
                part = [
                    {
                        "estimator": e,
                        "status": "not_estimable",
                        "week": w,
                        "reason": _refusal(Exception(why)),
                        "condition": cond,
                        "instrument": instr,
                        "arm": a,
                        "versus": b,
                    }
                    for e in ESTIMATORS
                    for w in WEEKS
                ]
            else:
                part = estimate_cell(ep, oc, (cond, instr, a, b), scenario, doses.get(cond, 0.0))
            for r in part:
                r["truth"] = truths[(cond, instr, a, b, r["week"])]
            rows += part
    t3 = time.perf_counter()
    for r in rows:
        r.update(
            scenario=scenario_name,
            grid=grid,
            seed=seed,
            patients=patients,
            emulate_import_s=t2 - t0,
            analyse_s=t3 - t2,
            emulate_s=t1 - t0,
        )
    return rows


CELL = ["condition", "instrument", "arm", "versus", "week"]


def cell_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per estimator and cell: studies, estimable share, coverage and z (planted and windowed)."""
    d = df.copy()
    d["ok"] = d["status"] == "ok"
    d["err"] = d["estimate"] - d["truth"]
    d["err_w"] = d["err"] - d["gap"].fillna(0.0)
    d["cov"] = (d["ci_low"] <= d["truth"]) & (d["truth"] <= d["ci_high"])
    tw = d["truth"] + d["gap"].fillna(0.0)
    d["cov_w"] = (d["ci_low"] <= tw) & (tw <= d["ci_high"])

    def agg(g: pd.DataFrame) -> pd.Series:
        ok = g[g["ok"]]
        k = len(ok)
        reason = g.loc[~g["ok"], "reason"].mode()

        def z(e: pd.Series) -> float:
            s = e.std(ddof=1)
            return float(e.mean() / (s / np.sqrt(k))) if k > 1 and s > 0 else np.nan

        return pd.Series(
            {
                "studies": len(g),
                "estimable": k / len(g),
                "truth": g["truth"].mean(),
                "gap": ok["gap"].mean() if k else np.nan,
                "bias": ok["err"].mean() if k else np.nan,
                "cov": ok["cov"].mean() if k else np.nan,
                "z": z(ok["err"]),
                "cov_w": ok["cov_w"].mean() if k else np.nan,
                "z_w": z(ok["err_w"]),
                "reason": reason.iloc[0] if len(reason) else "",
            }
        )

    return d.groupby(["estimator", *CELL], sort=True).apply(agg, include_groups=False)


def pooled_table(cells: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Per estimator over its reported grid: cells, coverage (planted, windowed), worst cell."""
    from ionto_analytics.compare.responders import wilson_interval

    rows = []
    for est, g in cells.groupby(level="estimator", sort=False):
        rep = g[g["estimable"] >= REPORTED_SHARE]
        keys = rep.index.droplevel("estimator")
        d = df[(df["estimator"] == est) & (df["status"] == "ok")].set_index(CELL)
        d = d[d.index.isin(keys)]
        tw = d["truth"] + d["gap"].fillna(0.0)
        k = int(((d["ci_low"] <= d["truth"]) & (d["truth"] <= d["ci_high"])).sum())
        kw = int(((d["ci_low"] <= tw) & (tw <= d["ci_high"])).sum())
        lo, hi = wilson_interval(k, max(len(d), 1))
        rows.append(
            {
                "estimator": est,
                "cells": len(rep),
                "not_reported": len(g) - len(rep),
                "estimates": len(d),
                "coverage": k / max(len(d), 1),
                "wilson": f"{lo:.3f}–{hi:.3f}",
                "min_cell_cov": rep["cov"].min(),
                "cells_cov<0.90": int((rep["cov"] < COVERAGE_CELL_MIN).sum()),
                "cells_|z|>2.5": int((rep["z"].abs() > Z_MAX).sum()),
                "coverage_w": kw / max(len(d), 1),
                "cells_w_cov<0.90": int((rep["cov_w"] < COVERAGE_CELL_MIN).sum()),
                "cells_w_|z|>2.5": int((rep["z_w"].abs() > Z_MAX).sum()),
            }
        )
    return pd.DataFrame(rows).set_index("estimator")


def print_summary(df: pd.DataFrame) -> None:
    """The pooled table, the worst cells and the cells left out of the reported grid."""
    pd.set_option("display.width", 250)
    pd.set_option("display.max_rows", 400)
    pd.set_option("display.max_colwidth", 90)
    ff = lambda v: f"{v:.3f}"  # noqa: E731
    for scen, g in df.groupby("scenario", sort=False):
        cells = cell_table(g)
        print(
            f"\n== scenario {scen}: {g['seed'].nunique()} studies, "
            f"{g['patients'].iloc[0]} patients each =="
        )
        print(pooled_table(cells, g).to_string(float_format=ff))
        rep = cells[cells["estimable"] >= REPORTED_SHARE].reset_index()
        bad = rep[(rep["cov"] < COVERAGE_CELL_MIN) | (rep["z"].abs() > Z_MAX)]
        print(f"\ncells failing a target against the planted truth ({len(bad)}):")
        print(bad.drop(columns=["reason"]).to_string(index=False, float_format=ff))
        badw = rep[(rep["cov_w"] < COVERAGE_CELL_MIN) | (rep["z_w"].abs() > Z_MAX)]
        print(f"\ncells failing a target against the windowed estimand ({len(badw)}):")
        print(badw.drop(columns=["reason"]).to_string(index=False, float_format=ff))
        out = cells[cells["estimable"] < REPORTED_SHARE].reset_index()
        why = out.groupby(["estimator", "reason"]).size().rename("cells").reset_index()
        print(f"\ncells not in the reported grid ({len(out)}), by estimator and reason:")
        print(why.to_string(index=False))
        if "iptw_status" in g.columns:
            ip = g[(g["estimator"] == "iptw") & (g["status"] == "ok")]
            print("\nIPTW diagnostics: share of estimates flagged")
            print(
                ip.groupby("condition")
                .agg(
                    estimates=("seed", "size"),
                    imbalanced=("iptw_status", lambda s: (s == "imbalanced").mean()),
                    single_arm_clinic=("single_arm_clinics", lambda s: (s > 0).mean()),
                    equipoise=("equipoise", "mean"),
                    c_statistic=("c_statistic", "mean"),
                )
                .to_string(float_format=ff)
            )
        per_study = g.drop_duplicates("seed")
        print(
            f"\nper study: emulate+import {per_study['emulate_import_s'].mean():.1f} s, "
            f"analyse {per_study['analyse_s'].mean():.1f} s (mean over studies)"
        )


def run(
    scenario: str, grid: str, n_studies: int, patients: int, workers: int, csv: Path, first: int
) -> None:
    """Run the studies in a process pool, appending each study's rows to ``csv``."""
    t0 = time.perf_counter()
    seeds = list(range(first, first + n_studies))
    n = n_studies
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(study, seeds, [patients] * n, [scenario] * n, [grid] * n)
        for i, part in enumerate(parts):
            pd.DataFrame(part).to_csv(csv, mode="a", header=not csv.exists(), index=False)
            if (i + 1) % 10 == 0:
                print(f"{i + 1}/{n_studies} studies, {time.perf_counter() - t0:.0f} s", flush=True)
    print(
        f"{scenario}: {n_studies} studies, {patients} patients, {workers} workers, "
        f"{time.perf_counter() - t0:.0f} s wall; rows in {csv}",
        flush=True,
    )
    print_summary(pd.read_csv(csv, keep_default_na=True))


def main() -> None:
    """Command line: ``run ...`` or ``summary CSV`` (see the module docstring)."""
    if len(sys.argv) >= 3 and sys.argv[1] == "summary":
        print_summary(pd.concat([pd.read_csv(p) for p in sys.argv[2:]], ignore_index=True))
        return
    if len(sys.argv) < 8 or sys.argv[1] != "run":
        raise SystemExit(__doc__.split("Run::")[1])
    scenario, grid, n, patients, workers, csv = sys.argv[2:8]
    first = int(sys.argv[8]) if len(sys.argv) > 8 else 1000
    run(scenario, grid, int(n), int(patients), int(workers), Path(csv), first)


if __name__ == "__main__":
    main()
