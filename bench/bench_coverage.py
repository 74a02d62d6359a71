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

Estimand. The grade is ``truth_w``, ``ground_truth.json``'s ``window_difference``: the
counterfactual mean change under one arm minus under the other *at the day the week-W
window selects* for each episode from its planned calendar (before dropout), by the rule
the analyses use (:mod:`data_schemas.windows`: week 2 = days 8–21, week 4 = 22–35, week 6 =
36–49, week 12 = 71–98, nearest day 7·W). ``truth`` (``difference``, the contrast at
exactly day 7·W) is printed beside it: where the arm effects still move inside the window
(iontophoresis peaks at week 2 and fades to 0 at week 5) the two differ, and an estimator is
only asked to estimate what its window measures. Runs made before the emulator wrote
``window_difference`` are regraded by ``regrade`` (it re-emulates each seed and checks that
the exact-day truths are unchanged).

Targets (issue 11): coverage within 93.5–96.5 % pooled and no cell below 90 % over ≥ 200
studies; standardized mean bias ``z = mean(est − truth) / (sd(est − truth) / √n)`` with
``|z| < 2.5`` in every cell. Over hundreds of cells an unbiased estimator misses a per-cell
threshold now and then by chance, so each count is printed beside the number expected by
chance (:func:`chance_failures`) and the grid's Bonferroni |z| (:func:`bonferroni_z`).

Run::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1   # threaded BLAS: 2-5x slower when loaded
    PYTHONPATH=. .venv/bin/python bench/bench_coverage.py run default core 200 1000 2 /tmp/c.csv
    PYTHONPATH=. .venv/bin/python bench/bench_coverage.py summary /tmp/c.csv [more.csv ...]

(``run SCENARIO GRID STUDIES PATIENTS WORKERS CSV [FIRST_SEED]``; ``GRID`` is ``core``
(:data:`CORE_GRID`) or ``all`` (every cell: 35 condition × instrument pairs × 10 arm pairs
= 350 cells, about half of them estimable; about 100 s of one core per 1,000-patient study
on a quiet machine, see bench/RESULTS.md).
Rows are appended to the CSV after every study, so a partial run is usable; ``summary
CSV ... [--cells OUT]`` prints the tables of whatever the CSVs hold (and writes the per-cell
table); ``regrade CSV OUT WORKERS`` adds ``truth_w`` to an older run.)
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


def planted(
    truth: dict[str, Any],
) -> dict[tuple[str, str, str, str, int], tuple[float, float]]:
    """``(difference, window_difference)`` of ``ground_truth.json`` by (condition, instrument,
    arm, versus, week): the planted contrast at exactly day 7·W and at the days the week-W
    window measures (NaN where no episode has a scheduled score in the window)."""
    return {
        (e["condition"], e["instrument"], e["arm"], e["versus"], int(e["week"])): (
            float(e["difference"]),
            float(e["window_difference"]) if e.get("window_n") else float("nan"),
        )
        for e in truth["effects"]
    }


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
    """A refusal (``InputError``: not estimable) or a failure (any other exception: a bug,
    recorded as ``status = error`` so that one cell cannot stop a run of hours)."""
    from ionto_analytics.errors import InputError

    if isinstance(err, InputError):
        return {"estimator": est, "status": "not_estimable", "reason": _refusal(err)}
    return {"estimator": est, "status": "error", "reason": f"{type(err).__name__}: {err}"[:200]}


def estimate_cell(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    cell: tuple[str, str, str, str],
) -> list[dict]:
    """Rows (one per estimator and week) of one condition × instrument × arm pair."""
    from ionto_analytics.compare.ancova import ancova
    from ionto_analytics.compare.frame import comparison_frame
    from ionto_analytics.compare.iptw import iptw
    from ionto_analytics.compare.mixed import mixed_model
    from ionto_analytics.compare.mmrm import mmrm

    cond, instr, a, b = cell
    rows: list[dict] = []
    frames: dict[int, Any] = {}
    for week in WEEKS:
        try:
            af = comparison_frame(episodes, outcomes, instr, week, (a, b), condition=cond)
        except Exception as err:  # refusal or bug, told apart by _refused
            rows += [{**_refused(e, err), "week": week} for e in ESTIMATORS]
            continue
        frames[week] = af
        for name in ("ancova", "iptw"):
            try:
                if name == "ancova":
                    r = ancova(af)
                    rows.append(
                        {
                            **_row(name, r.estimate, r.ci_low, r.ci_high, sum(r.n.values())),
                            "week": week,
                        }
                    )
                else:
                    r = iptw(af)
                    dx = r.diagnostics
                    rows.append(
                        {
                            **_row(name, r.estimate, r.ci_low, r.ci_high, sum(r.n.values())),
                            "week": week,
                            "iptw_status": dx.status,
                            "equipoise": dx.equipoise_share,
                            "c_statistic": dx.c_statistic,
                            "ess_min": min(dx.ess.values()),
                            "single_arm_clinics": len(dx.single_arm_strata),
                        }
                    )
            except Exception as err:  # refusal or bug, told apart by _refused
                rows.append({**_refused(name, err), "week": week})
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
        except Exception as err:  # refusal or bug, told apart by _refused
            rows += [{**_refused(name, err), "week": w} for w in WEEKS]
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
    from data_schemas.windows import BASELINE_MAX_DAY
    from ionto_analytics.instruments import get_instrument

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


def load_study(
    seed: int, patients: int, scenario: str | Path
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any], float]:
    """Emulate one study, import its EHR export with the real importer into a SQLite store,
    load the episode and outcome frames; also ``ground_truth.json`` and the seconds the
    emulation took."""
    from data_schemas import store
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer
    from emulator import emulate
    from ionto_analytics.loaders import load_episodes, load_outcomes

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "emu"
        t0 = time.perf_counter()
        summary = emulate(out, scenario=scenario, seed=seed, patients=patients)
        truth = json.loads(Path(summary.ground_truth).read_text(encoding="utf-8"))
        emulate_s = time.perf_counter() - t0
        engine = store.connect(f"sqlite:///{Path(tmp) / 'store.db'}")
        store.upgrade(engine)
        Importer(engine, Keyer(b"coverage-study"), today=dt.date(2026, 6, 1)).run([out / "ehr"])
        episodes, outcomes = load_episodes(engine), load_outcomes(engine)
        engine.dispose()
    return episodes, outcomes, truth, emulate_s


def study(seed: int, patients: int, scenario_name: str, grid: str = "core") -> list[dict]:
    """One emulated study: emulate, import the EHR export, load, estimate every cell."""
    t0 = time.perf_counter()
    episodes, outcomes, truth, emulate_s = load_study(seed, patients, scenario_name)
    t2 = time.perf_counter()
    truths = planted(truth)
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
                part = estimate_cell(ep, oc, (cond, instr, a, b))
            for r in part:
                r["truth"], r["truth_w"] = truths[(cond, instr, a, b, r["week"])]
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
            emulate_s=emulate_s,
        )
    return rows


CELL = ["condition", "instrument", "arm", "versus", "week"]


def cell_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per estimator and cell: studies, estimable share, coverage and z against the windowed
    estimand (``truth_w``, the grade) and against the exact-day one (``truth``)."""
    d = df.copy()
    d["ok"] = d["status"] == "ok"
    d["err"] = d["estimate"] - d["truth"]
    d["err_w"] = d["estimate"] - d["truth_w"]
    d["cov"] = (d["ci_low"] <= d["truth"]) & (d["truth"] <= d["ci_high"])
    d["cov_w"] = (d["ci_low"] <= d["truth_w"]) & (d["truth_w"] <= d["ci_high"])

    def agg(g: pd.DataFrame) -> pd.Series:
        ok = g[g["ok"]]
        k = len(ok)
        reason = g.loc[~g["ok"], "reason"].mode()

        def z(e: pd.Series) -> float:
            sd = e.std(ddof=1)
            return float(e.mean() / (sd / np.sqrt(k))) if k > 1 and sd > 0 else np.nan

        return pd.Series(
            {
                "studies": len(g),
                "estimable": k / len(g),
                "truth_w": g["truth_w"].mean(),
                "truth": g["truth"].mean(),
                "bias_w": ok["err_w"].mean() if k else np.nan,
                "cov_w": ok["cov_w"].mean() if k else np.nan,
                "z_w": z(ok["err_w"]),
                "cov": ok["cov"].mean() if k else np.nan,
                "z": z(ok["err"]),
                "reason": reason.iloc[0] if len(reason) else "",
            }
        )

    return d.groupby(["estimator", *CELL], sort=True).apply(agg, include_groups=False)


def chance_failures(studies: pd.Series) -> tuple[float, float]:
    """Cells expected to miss each per-cell target by chance alone, for unbiased estimators
    with exact 95 % intervals: ``(expected |z| > Z_MAX, expected coverage < 0.90)``.

    With hundreds of cells some miss a fixed per-cell threshold even when nothing is wrong:
    ``P(|t(k − 1)| > 2.5)`` is 1.3 % at 200 studies, so 744 cells expect about 10. The tables
    print these expectations beside the observed counts, and the Bonferroni reading
    (:func:`bonferroni_z`) that holds the whole grid to a 5 % family-wise error.

    Examples
    --------
    >>> z, c = chance_failures(pd.Series([200] * 100))
    >>> round(z, 2), round(c, 3)
    (1.32, 0.116)
    """
    from scipy import stats

    k = studies.to_numpy(dtype=int)
    p_z = 2 * stats.t.sf(Z_MAX, np.maximum(k - 1, 1))
    p_cov = stats.binom.cdf(np.ceil(COVERAGE_CELL_MIN * k) - 1, k, 0.95)
    return float(p_z.sum()), float(p_cov.sum())


def bonferroni_z(cells: int) -> float:
    """The |z| a cell may reach with a 5 % family-wise error over ``cells`` cells (normal).

    Examples
    --------
    >>> round(bonferroni_z(1), 2), round(bonferroni_z(744), 2)
    (1.96, 3.99)
    """
    from scipy import stats

    return float(stats.norm.isf(0.025 / max(cells, 1)))


def pooled_table(cells: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Per estimator over its reported grid: cells, coverage (windowed, exact-day), worst
    cell, per-cell failures beside the number expected by chance."""
    from ionto_analytics.compare.responders import wilson_interval

    rows = []
    for est, g in cells.groupby(level="estimator", sort=False):
        rep = g[g["estimable"] >= REPORTED_SHARE]
        keys = rep.index.droplevel("estimator")
        d = df[(df["estimator"] == est) & (df["status"] == "ok")].set_index(CELL)
        d = d[d.index.isin(keys)]
        kw = int(((d["ci_low"] <= d["truth_w"]) & (d["truth_w"] <= d["ci_high"])).sum())
        k = int(((d["ci_low"] <= d["truth"]) & (d["truth"] <= d["ci_high"])).sum())
        lo, hi = wilson_interval(kw, max(len(d), 1))
        exp_z, exp_cov = chance_failures(rep["estimable"] * rep["studies"])
        rows.append(
            {
                "estimator": est,
                "cells": len(rep),
                "not_reported": len(g) - len(rep),
                "estimates": len(d),
                "coverage_w": kw / max(len(d), 1),
                "wilson": f"{lo:.3f}–{hi:.3f}",
                "min_cell_cov_w": rep["cov_w"].min(),
                "cells_cov_w<0.90": int((rep["cov_w"] < COVERAGE_CELL_MIN).sum()),
                "expected<0.90": exp_cov,
                "cells_|z_w|>2.5": int((rep["z_w"].abs() > Z_MAX).sum()),
                "expected>2.5": exp_z,
                "max_|z_w|": rep["z_w"].abs().max(),
                "bonferroni_z": bonferroni_z(len(rep)),
                "cells_over_bonferroni": int((rep["z_w"].abs() > bonferroni_z(len(rep))).sum()),
                "coverage_exact_day": k / max(len(d), 1),
            }
        )
    return pd.DataFrame(rows).set_index("estimator")


def breakdown(cells: pd.DataFrame) -> pd.DataFrame:
    """Reported cells by estimator and week, split into planted-zero and non-zero contrasts:
    mean windowed coverage and the cells over |z| 2.5 beside the chance expectation."""
    rep = cells[cells["estimable"] >= REPORTED_SHARE].reset_index()
    rep["planted"] = np.where(rep["truth"].abs() < 1e-9, "zero", "non-zero")
    rows = []
    for key, g in rep.groupby(["estimator", "week", "planted"], sort=True):
        exp_z, _ = chance_failures(g["estimable"] * g["studies"])
        rows.append(
            {
                "estimator": key[0],
                "week": key[1],
                "planted": key[2],
                "cells": len(g),
                "mean_cov_w": g["cov_w"].mean(),
                "min_cov_w": g["cov_w"].min(),
                "mean_z_w": g["z_w"].mean(),
                "cells_|z_w|>2.5": int((g["z_w"].abs() > Z_MAX).sum()),
                "expected": exp_z,
            }
        )
    return pd.DataFrame(rows)


def print_summary(df: pd.DataFrame, cells_csv: Path | None = None) -> None:
    """The pooled table, the breakdown by week, the failing cells and the cells left out of
    the reported grid; ``cells_csv`` also gets the whole per-cell table."""
    pd.set_option("display.width", 250)
    pd.set_option("display.max_rows", 400)
    pd.set_option("display.max_colwidth", 90)
    ff = lambda v: f"{v:.3f}"  # noqa: E731
    tables = []
    for scen, g in df.groupby("scenario", sort=False):
        cells = cell_table(g)
        tables.append(cells.assign(scenario=scen))
        print(
            f"\n== scenario {scen}: {g['seed'].nunique()} studies, "
            f"{g['patients'].iloc[0]} patients each =="
        )
        print(pooled_table(cells, g).to_string(float_format=ff))
        print("\nby week, planted zero or not:")
        print(breakdown(cells).to_string(index=False, float_format=ff))
        rep = cells[cells["estimable"] >= REPORTED_SHARE].reset_index()
        badw = rep[(rep["cov_w"] < COVERAGE_CELL_MIN) | (rep["z_w"].abs() > Z_MAX)]
        print(f"\ncells failing a per-cell target against the windowed estimand ({len(badw)}):")
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
        errors = g[g["status"] == "error"]
        print(f"\nerrors (exceptions other than a refusal): {len(errors)}")
        if len(errors):
            print(errors.groupby(["estimator", "reason"]).size().to_string())
        per_study = g.drop_duplicates("seed")
        print(
            f"\nper study: emulate+import {per_study['emulate_import_s'].mean():.1f} s, "
            f"analyse {per_study['analyse_s'].mean():.1f} s (mean over studies)"
        )
    if cells_csv is not None:
        pd.concat(tables).reset_index().to_csv(cells_csv, index=False, float_format="%.4f")
        print(f"\nper-cell table: {cells_csv}")


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


def planted_again(seed: int, patients: int, scenario_name: str) -> dict:
    """Re-emulate one study (the emulator is deterministic per seed) for its planted truths."""
    from emulator import emulate

    with tempfile.TemporaryDirectory() as tmp:
        summary = emulate(Path(tmp) / "emu", scenario=scenario_name, seed=seed, patients=patients)
        return planted(json.loads(Path(summary.ground_truth).read_text(encoding="utf-8")))


def regrade(csv: Path, out: Path, workers: int) -> None:
    """Give the rows of a run whose emulator predates the windowed truth their ``truth_w``.

    Each study is emulated again with the current emulator; its exact-day ``difference``
    must equal the run's ``truth`` (same seed, same draws), otherwise the study's data
    changed and the run cannot be regraded.
    """
    df = pd.read_csv(csv)
    studies = df[["scenario", "seed", "patients"]].drop_duplicates().to_numpy().tolist()
    with ProcessPoolExecutor(workers) as pool:
        truths = pool.map(
            planted_again, [s[1] for s in studies], [s[2] for s in studies], [s[0] for s in studies]
        )
        by_study = {(sc, int(se)): t for (sc, se, _), t in zip(studies, truths, strict=True)}
    keys = list(zip(*(df[c] for c in ["scenario", "seed", *CELL]), strict=True))
    new = np.array([by_study[(k[0], int(k[1]))][(*k[2:6], int(k[6]))] for k in keys])
    drift = np.nanmax(np.abs(new[:, 0] - df["truth"].to_numpy()))
    if not drift < 1e-6:
        raise SystemExit(f"{csv}: re-emulated truths differ from the run's by {drift}")
    df["truth_w"] = new[:, 1]
    df.to_csv(out, index=False)
    print(f"{len(studies)} studies regraded (exact-day truths equal to {drift:.1e}); {out}")


def main() -> None:
    """Command line: ``run ...``, ``summary CSV ... [--cells OUT]`` or ``regrade CSV OUT W``."""
    if len(sys.argv) >= 3 and sys.argv[1] == "summary":
        args = sys.argv[2:]
        cells = Path(args[args.index("--cells") + 1]) if "--cells" in args else None
        paths = [a for i, a in enumerate(args) if a != "--cells" and args[i - 1] != "--cells"]
        print_summary(pd.concat([pd.read_csv(p) for p in paths], ignore_index=True), cells)
        return
    if len(sys.argv) == 5 and sys.argv[1] == "regrade":
        regrade(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    if len(sys.argv) < 8 or sys.argv[1] != "run":
        raise SystemExit(__doc__.split("Run::")[1])
    scenario, grid, n, patients, workers, csv = sys.argv[2:8]
    first = int(sys.argv[8]) if len(sys.argv) > 8 else 1000
    run(scenario, grid, int(n), int(patients), int(workers), Path(csv), first)


if __name__ == "__main__":
    main()
