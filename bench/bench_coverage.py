"""Coverage study: do the 95 % intervals cover the emulator's planted effects? (not a test)

Each study: emulate a clinic network (default scenario, one seed), import the EHR export into
an in-memory SQLite store with the real importer, load the frames with
:mod:`ionto_analytics.loaders`, and estimate every target contrast with the unadjusted Welch
difference, ANCOVA (HC3, clinic fixed effects) and IPTW (ATE weights, HC3). Each estimate is
compared with ``ground_truth.json``'s ``difference`` for the same condition, instrument, arm
pair and week.

Estimand choice. The truth is the counterfactual mean change at exactly week W, averaged over
all emulated patients of the condition scored on the instrument. The analysis picks, per
episode, the measurement nearest day 7·W within ±7 days (W ≤ 6; module
:mod:`ionto_analytics.outcomes`). The targets are at week 6, where every arm component of
the emulator's outcome model is at (manual therapy, τ = 1.5 wk: ≥ 96 % from day 35) or
common to both arms at (exercise) its plateau, and the transient iontophoresis effect has
faded (0 after week 5), so the measurement-day spread within the window barely moves the
contrast; week 6 also has many more measurements than week 12, which only the post-discharge
follow-up visit reaches. Only primary instruments are used: the emulator assigns arms on the
baseline of the condition's primary instrument, so a secondary instrument's ANCOVA (which
adjusts for its own baseline) is left with residual confounding. The contrasts are
``ionto+exercise+manual − exercise`` (planted: the manual-therapy effect, strongly
confounded by indication because iontophoresis goes to more severe patients) and
``exercise+manual − exercise`` (planted: the manual-therapy effect, mildly confounded).

Run: ``.venv/bin/python bench/bench_coverage.py [n_studies] [patients] [workers]``
(defaults 200, 1500, 2). Prints per estimator: coverage of the 95 % CI (with its Wilson
interval), mean bias relative to the planted effect, and per target.
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

import pandas as pd

TARGETS: tuple[tuple[str, str, str, str, int], ...] = (
    ("lateral_epicondylitis", "prtee", "ionto+exercise+manual", "exercise", 6),
    ("plantar_fasciitis", "ffi", "ionto+exercise+manual", "exercise", 6),
    ("achilles_tendinopathy", "visa_a", "ionto+exercise+manual", "exercise", 6),
    ("lateral_epicondylitis", "prtee", "exercise+manual", "exercise", 6),
    ("plantar_fasciitis", "ffi", "exercise+manual", "exercise", 6),
    ("achilles_tendinopathy", "visa_a", "exercise+manual", "exercise", 6),
)
"""(condition, instrument, first arm, second arm, week) of every target contrast."""


def truth_of(truth: dict, condition: str, instrument: str, a: str, b: str, week: int) -> float:
    """The planted ``difference`` of ``ground_truth.json`` for one contrast."""
    for e in truth["effects"]:
        if (e["condition"], e["instrument"], e["arm"], e["versus"], float(e["week"])) == (
            condition,
            instrument,
            a,
            b,
            float(week),
        ):
            return float(e["difference"])
    raise KeyError((condition, instrument, a, b, week))


def estimate_targets(
    episodes: pd.DataFrame, outcomes: pd.DataFrame, truth: dict, targets=TARGETS
) -> list[dict]:
    """Unadjusted, ANCOVA and IPTW estimates of every target, with the planted truth."""
    from ionto_analytics.compare.ancova import ancova
    from ionto_analytics.compare.frame import comparison_frame
    from ionto_analytics.compare.iptw import iptw

    rows = []
    for cond, inst, a, b, week in targets:
        af = comparison_frame(episodes, outcomes, inst, week, (a, b), condition=cond)
        anc = ancova(af, se="hc3")
        ipw = iptw(af, se="hc3")
        naive = anc.table.iloc[-1]
        base = {"condition": cond, "instrument": inst, "arms": f"{a} − {b}", "week": week}
        t = truth_of(truth, cond, inst, a, b, week)
        for name, est, lo, hi in (
            ("unadjusted", naive["estimate"], naive["ci_low"], naive["ci_high"]),
            ("ancova", anc.estimate, anc.ci_low, anc.ci_high),
            ("iptw", ipw.estimate, ipw.ci_low, ipw.ci_high),
        ):
            rows.append(
                {
                    **base,
                    "estimator": name,
                    "truth": t,
                    "estimate": float(est),
                    "ci_low": float(lo),
                    "ci_high": float(hi),
                    "n": int(sum(anc.n.values())),
                }
            )
    return rows


def study(seed: int, patients: int = 1500) -> list[dict]:
    """One emulated study: emulate, import the EHR export, load, estimate every target."""
    from data_schemas import store
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer
    from emulator import emulate
    from ionto_analytics.loaders import load_episodes, load_outcomes

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "emu"
        t0 = time.perf_counter()
        summary = emulate(out, seed=seed, patients=patients)
        truth = json.loads(Path(summary.ground_truth).read_text(encoding="utf-8"))
        t1 = time.perf_counter()
        engine = store.connect(f"sqlite:///{Path(tmp) / 'store.db'}")
        store.upgrade(engine)
        Importer(engine, Keyer(b"coverage-study"), today=dt.date(2026, 6, 1)).run([out / "ehr"])
        t2 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = estimate_targets(load_episodes(engine), load_outcomes(engine), truth)
        engine.dispose()
    t3 = time.perf_counter()
    for r in rows:
        r.update(seed=seed, emulate_s=t1 - t0, import_s=t2 - t1, analyse_s=t3 - t2)
    return rows


def summarize(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per estimator and per (target, estimator): coverage, Wilson CI, relative bias."""
    from ionto_analytics.compare.responders import wilson_interval

    d = df.assign(
        covered=(df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"]),
        rel_bias=(df["estimate"] - df["truth"]) / df["truth"],  # > 0: effect overstated
    )

    def agg(g: pd.DataFrame) -> pd.Series:
        k, n = int(g["covered"].sum()), len(g)
        lo, hi = wilson_interval(k, n)
        return pd.Series(
            {
                "studies": n,
                "coverage": k / n,
                "coverage_ci": f"{lo:.3f}–{hi:.3f}",
                "mean_rel_bias": g["rel_bias"].mean(),
                "mean_truth": g["truth"].mean(),
                "mean_estimate": g["estimate"].mean(),
                "mean_ci_width": (g["ci_high"] - g["ci_low"]).mean(),
            }
        )

    overall = d.groupby("estimator", sort=False).apply(agg, include_groups=False)
    per = d.groupby(["condition", "instrument", "arms", "estimator"], sort=False).apply(
        agg, include_groups=False
    )
    return overall, per


def main() -> None:
    n_studies = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    patients = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    t0 = time.perf_counter()
    rows: list[dict] = []
    log = Path(tempfile.gettempdir()) / "ionto_coverage_rows.csv"
    pd.set_option("display.width", 200)
    with ProcessPoolExecutor(workers) as pool:
        seeds = range(1000, 1000 + n_studies)
        for i, part in enumerate(pool.map(study, seeds, [patients] * n_studies)):
            rows += part
            pd.DataFrame(rows).to_csv(log, index=False)
            if (i + 1) % 25 == 0 and i + 1 < n_studies:
                print(f"{i + 1}/{n_studies} studies, {time.perf_counter() - t0:.0f} s", flush=True)
                print(summarize(pd.DataFrame(rows))[0].to_string(), flush=True)
    df = pd.DataFrame(rows)
    overall, per = summarize(df)
    print(
        f"\n{n_studies} studies × {len(TARGETS)} targets, {patients} patients each, "
        f"{time.perf_counter() - t0:.0f} s (rows in {log})"
    )
    print(overall.to_string(float_format=lambda v: f"{v:.3f}"))
    print(per.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
