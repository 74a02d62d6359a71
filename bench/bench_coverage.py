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
* ``mmrm``: :func:`ia.mmrm` over the same windows (its default covariance: the converged
  one of smallest REML AIC), the dropout-valid estimator.

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
only asked to estimate what its window measures.

Targets (issue 11): coverage within 93.5–96.5 % pooled and no cell below 90 % over ≥ 200
studies; standardized mean bias ``z = mean(est − truth) / (sd(est − truth) / √n)`` with
``|z| < 2.5`` in every cell. Over hundreds of cells an unbiased estimator misses a per-cell
threshold now and then by chance, so each count is printed beside the number expected by
chance (:func:`coverage_tables.chance_failures`) and the grid's Bonferroni |z|
(:func:`coverage_tables.bonferroni_z`).

Run::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1   # threaded BLAS: 2-5x slower when loaded
    PYTHONPATH=. .venv/bin/python bench/bench_coverage.py run default core 200 1000 2 /tmp/c.csv
    PYTHONPATH=. .venv/bin/python bench/bench_coverage.py summary /tmp/c.csv [more ...] \
        [--cells cells.csv] [--sums sums.csv]
    PYTHONPATH=. .venv/bin/python bench/bench_coverage.py replicate AGAIN.csv FIRST.csv [...]
    PYTHONPATH=. .venv/bin/python bench/bench_coverage.py paired A.csv[,A2.csv] B.csv[,...]

(``run SCENARIO GRID STUDIES PATIENTS WORKERS CSV [FIRST_SEED] [--estimators a,b]``,
``--estimators`` a comma-separated subset of :data:`ESTIMATORS` and
:data:`OPTIONAL_ESTIMATORS`; ``GRID`` is ``core``
(:data:`CORE_GRID`), ``all`` (every cell: 35 condition × instrument pairs × 10 arm pairs
= 350 cells, about half of them estimable; about 90 s of one core per 1,000-patient study
on a quiet machine, see bench/RESULTS.md) or a CSV of cells (``condition, instrument, arm,
versus``), to replicate chosen cells on new seeds.
Rows are appended to the CSV after every study, so a partial run is usable; each row
carries the code fingerprint (:func:`coverage_tables.code_fingerprint`). ``summary`` prints
the tables of whatever its files hold: run rows, or per-cell sums written by an earlier
``--sums`` (``bench/results/coverage_*_sums.csv``), which add up with the rows of a new run
of the same code and other seeds: a grid of 200 studies can be run in parts.)
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from coverage_tables import (
    CELL,
    Z_MAX,
    cell_sums,
    code_fingerprint,
    combine,
    paired_table,
    print_tables,
    replication_table,
)

ESTIMATORS = ("ancova", "iptw", "mixed_model", "mmrm")
"""The estimators of the grid."""

OPTIONAL_ESTIMATORS = ("mmrm_unstructured", "mmrm_cr2")
"""Run only when named in ``--estimators``: ``mmrm_unstructured`` is :func:`ia.mmrm` with
``covariance="unstructured"`` (the unstructured matrix pre-specified, Kenward–Roger, the
fallback where it does not converge: the default until the twelfth round of
bench/RESULTS.md, whose sums name it ``mmrm``); ``mmrm_cr2`` the same with
``variance="robust"`` (CR2 for every fit, in place of Kenward–Roger). The sums of
``covariance="aic"`` before it became the default name it ``mmrm_aic``."""

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
    estimators: tuple[str, ...] = ESTIMATORS,
) -> list[dict]:
    """Rows (one per estimator of ``estimators`` and week) of one condition × instrument ×
    arm pair."""
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
            rows += [{**_refused(e, err), "week": week} for e in estimators]
            continue
        frames[week] = af
        for name in [e for e in ("ancova", "iptw") if e in estimators]:
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
    repeated = (
        ("mixed_model", mixed_model),
        ("mmrm", mmrm),
        ("mmrm_unstructured", partial(mmrm, covariance="unstructured")),
        ("mmrm_cr2", partial(mmrm, covariance="unstructured", variance="robust")),
    )
    for name, fit in repeated:
        if name not in estimators:
            continue
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
    """The (condition, instrument, first, second) cells of ``grid``: "core", "all", or the
    path of a CSV with columns ``condition, instrument, arm, versus`` (a replication of chosen
    cells, e.g. those a first run flagged, on new seeds)."""
    if grid == "core":
        return list(CORE_GRID)
    if grid.endswith(".csv"):
        listed = pd.read_csv(grid)[["condition", "instrument", "arm", "versus"]]
        unknown = [c for c in listed.itertuples(index=False) if (*c, 2) not in truths]
        if unknown:
            raise SystemExit(f"{grid}: cells not planted by the scenario: {unknown[:3]}")
        return [tuple(c) for c in listed.itertuples(index=False)]
    if grid != "all":
        raise SystemExit(f"grid must be 'core', 'all' or a cells .csv, got {grid!r}")
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


def study(
    seed: int,
    patients: int,
    scenario_name: str,
    grid: str = "core",
    estimators: tuple[str, ...] = ESTIMATORS,
) -> list[dict]:
    """One emulated study: emulate, import the EHR export, load, estimate every cell with
    each of ``estimators``."""
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
                    for e in estimators
                    for w in WEEKS
                ]
            else:
                part = estimate_cell(ep, oc, (cond, instr, a, b), estimators)
            for r in part:
                r["truth"], r["truth_w"] = truths[(cond, instr, a, b, r["week"])]
            rows += part
    t3 = time.perf_counter()
    code = code_fingerprint()
    for r in rows:
        r.update(
            scenario=scenario_name,
            code=code,
            grid=grid,
            seed=seed,
            patients=patients,
            emulate_import_s=t2 - t0,
            analyse_s=t3 - t2,
            emulate_s=emulate_s,
        )
    return rows


def load_sums(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The per-cell sums of ``paths`` (files of run rows or of sums, told apart by their
    columns) added up (:func:`coverage_tables.combine`), and the run rows if any."""
    frames = [pd.read_csv(p, keep_default_na=True) for p in paths]
    parts = [f for f in frames if "graded" in f.columns]
    runs = [f for f in frames if "status" in f.columns]
    rows = pd.concat(runs, ignore_index=True) if runs else None
    if rows is not None:
        parts.append(cell_sums(rows))
    return combine(parts), rows


def replicate(again: Path, firsts: list[Path]) -> None:
    """Print, for each first run (a file of rows or sums), the cells it flagged beside the
    same cells in ``again`` (a run of them on new seeds, e.g. ``GRID`` =
    ``bench/results/replication_cells.csv``), then how the flagged cells replicated."""
    pd.set_option("display.width", 250)
    new, _ = load_sums([again])
    for path in firsts:
        first, _ = load_sums([path])
        tab = replication_table(first, new)
        print(
            f"\n== {path.name}: {len(tab)} flagged (estimator, cell, week), again on "
            f"{new['seeds'].iloc[0]} =="
        )
        print(tab.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        sign = np.sign(tab["z_first"])
        print(
            f"same sign again {float((sign == np.sign(tab['z_again'])).mean()):.2f} "
            f"(chance 0.50); mean signed z again {float((sign * tab['z_again']).mean()):+.2f} "
            f"(if the first biases were real {float((sign * tab['z_expected']).mean()):+.2f}, "
            f"if chance 0); |z again| > {Z_MAX}: {int((tab['z_again'].abs() > Z_MAX).sum())}"
        )


def paired(a: list[Path], b: list[Path]) -> None:
    """Print what changed between two runs of the same seeds and cells (files of rows, e.g.
    the default scenario and a copy with ``dropout.rate: 0``, whose patients and scores are
    the same): per estimator and cell, the mean paired difference of the estimates (its z)
    and each run's bias against the windowed truth."""
    pd.set_option("display.width", 250)
    pd.set_option("display.max_rows", 400)
    rows = [pd.concat([pd.read_csv(f) for f in files], ignore_index=True) for files in (a, b)]
    t = paired_table(*rows, ["estimator", *CELL])
    print(f"a = {', '.join(map(str, a))}\nb = {', '.join(map(str, b))}")
    print(t.to_string(float_format=lambda v: f"{v:.3f}"))
    t = t.reset_index()
    t["predicted"] = dropout_direction(t)
    late = t[(t["week"] >= 6) & (t["predicted"] != 0)]
    signed = late["predicted"] * late["difference_z"]
    print(
        "\nweeks 6 and 12, pairs whose arms differ in early improvement: mean of the paired z "
        "signed in the direction dropout on early improvement predicts (against the arm that "
        "improves more by week 1), per estimator (0 if the dropout changed nothing):"
    )
    print(
        late.assign(signed_z=signed)
        .groupby("estimator")["signed_z"]
        .agg(["size", "mean", lambda s: float((s > 0).mean())])
        .rename(columns={"size": "cell_weeks", "<lambda_0>": "share_positive"})
        .to_string(float_format=lambda v: f"{v:.2f}")
    )


def dropout_direction(t: pd.DataFrame, scenario: str = "default") -> pd.Series:
    """Sign of the change a dropout on early improvement predicts in each row's estimate
    (``arm − versus`` of the change from baseline): +1, −1, or 0 where the arms improve
    alike by week 1.

    The emulator drops more of the patients who improved most by visit 3 (about week 1).
    The arm whose structural improvement at week 1 is larger
    (:func:`emulator.truth.structural_smd`: iontophoresis peaks at week 2, manual therapy's
    time constant is 1.5 weeks) loses more of its best responders, so among the patients
    still measured later it looks worse: its change is less negative on a lower-is-better
    instrument (+) and less positive on a higher-is-better one (−).
    """
    from emulator.scenario import load_scenario
    from emulator.truth import structural_smd
    from ionto_analytics.instruments import get_instrument

    s = load_scenario(scenario)
    ref = s["effects"]["dose_reference_mA_min"]
    early = {a: float(structural_smd(s, a, 1.0, ref)) for a in set(t["arm"]) | set(t["versus"])}
    ahead = np.sign([early[a] - early[b] for a, b in zip(t["arm"], t["versus"], strict=True)])
    lower = [-1.0 if get_instrument(i).higher_is_better else 1.0 for i in t["instrument"]]
    return pd.Series(ahead * np.asarray(lower), index=t.index)


def summary(paths: list[Path], cells_csv: Path | None, sums_csv: Path | None) -> None:
    """Print the tables of run rows and/or per-cell sums (``paths``: files of either kind,
    told apart by their columns): the rows are reduced to sums, every part is added
    (:func:`coverage_tables.combine` refuses different code or a seed counted twice), the
    total optionally written to ``sums_csv``; then what only rows tell (:func:`row_notes`)."""
    total, rows = load_sums(paths)
    if sums_csv is not None:
        total.to_csv(sums_csv, index=False, float_format="%.10g")
        print(f"per-cell sums: {sums_csv}")
    print_tables(total, cells_csv)
    if rows is not None:
        row_notes(rows)


def row_notes(rows: pd.DataFrame) -> None:
    """What per-cell sums do not keep: the IPTW diagnostics, exceptions other than a
    refusal, seconds per study."""
    ff = lambda v: f"{v:.3f}"  # noqa: E731
    for scen, g in rows.groupby("scenario", sort=False):
        print(f"\n== scenario {scen}: {g['seed'].nunique()} studies, rows only ==")
        if "iptw_status" in g.columns:
            ip = g[(g["estimator"] == "iptw") & (g["status"] == "ok")]
            print("IPTW diagnostics: share of estimates flagged")
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


def run(
    scenario: str,
    grid: str,
    n_studies: int,
    patients: int,
    workers: int,
    csv: Path,
    first: int,
    estimators: tuple[str, ...] = ESTIMATORS,
) -> None:
    """Run the studies in a process pool, appending each study's rows to ``csv``."""
    t0 = time.perf_counter()
    seeds = list(range(first, first + n_studies))
    n = n_studies
    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(study, seeds, [patients] * n, [scenario] * n, [grid] * n, [estimators] * n)
        for i, part in enumerate(parts):
            pd.DataFrame(part).to_csv(csv, mode="a", header=not csv.exists(), index=False)
            if (i + 1) % 10 == 0:
                print(f"{i + 1}/{n_studies} studies, {time.perf_counter() - t0:.0f} s", flush=True)
    print(
        f"{scenario}: {n_studies} studies, {patients} patients, {workers} workers, "
        f"{time.perf_counter() - t0:.0f} s wall; rows in {csv}",
        flush=True,
    )
    summary([csv], None, None)


def main() -> None:
    """Command line: ``run ...`` or ``summary FILE ... [--cells OUT] [--sums OUT]``."""
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "paired":
        a, b = ([Path(f) for f in arg.split(",")] for arg in args[1:])
        paired(a, b)
        return
    if len(args) >= 3 and args[0] == "replicate":
        replicate(Path(args[1]), [Path(a) for a in args[2:]])
        return
    if len(args) >= 2 and args[0] == "summary":
        flags = [f for f in ("--cells", "--sums") if f in args]
        outs = {f: Path(args[args.index(f) + 1]) for f in flags}
        taken = {i for flag in outs for i in (args.index(flag), args.index(flag) + 1)}
        paths = [Path(a) for i, a in enumerate(args[1:], 1) if i not in taken]
        summary(paths, outs.get("--cells"), outs.get("--sums"))
        return
    estimators = ESTIMATORS
    if "--estimators" in args:
        i = args.index("--estimators")
        estimators = tuple(args[i + 1].split(","))
        args = args[:i] + args[i + 2 :]
    known = set(ESTIMATORS + OPTIONAL_ESTIMATORS)
    if len(args) < 7 or args[0] != "run" or not set(estimators) <= known:
        raise SystemExit(__doc__.split("Run::")[1])
    scenario, grid, n, patients, workers, csv = args[1:7]
    first = int(args[7]) if len(args) > 7 else 1000
    run(scenario, grid, int(n), int(patients), int(workers), Path(csv), first, estimators)


if __name__ == "__main__":
    main()
