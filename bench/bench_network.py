"""Network-study recovery: do pooled intervals over three emulated sites cover the planted
effects? (not a test)

Each repetition emulates three clinic networks (the default scenario, different seeds and
clinic counts: 4, 6 and 8 clinics), imports each EHR export into its own SQLite store with the
real importer, runs one study spec at every site (``ionto_analytics.study.command.run_study``:
ANCOVA, HC3 with clinic fixed effects, default adjustment set, threshold 11) and pools the
three packages (``pool_study``: fixed effect and Paule–Mandel random effects). The planted
truth of a contrast is the mean of the three networks' ``ground_truth.json`` differences
(each network's truth is its own emulated patients' counterfactual mean, so they differ a
little). Targets: ``exercise+manual − exercise`` at week 6 on the condition's primary
instrument (``bench_coverage.py`` explains the estimand and why week 6).

Run: ``.venv/bin/python bench/bench_network.py [repetitions] [patients] [workers] [rows.csv]``
(defaults 10, 800, 1). Prints the coverage of the fixed-effect and random-effects 95 % CIs
and of the site CIs with its Wilson 95 % interval, the mean bias and the mean CI width. With
``rows.csv`` every repetition's rows are appended to that file as soon as it finishes (a long
run stopped early keeps what it did) and the summary covers every row in the file.
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
from statsmodels.stats.proportion import proportion_confint

TARGETS = {
    "lateral_epicondylitis/prtee/w6/ancova": ("lateral_epicondylitis", "prtee"),
    "plantar_fasciitis/ffi/w6/ancova": ("plantar_fasciitis", "ffi"),
}
ARMS = ("exercise+manual", "exercise")
SPEC = """\
name: bench-network
version: "1"
cohorts: [{condition: lateral_epicondylitis}, {condition: plantar_fasciitis}]
arms: [exercise+manual, exercise]
instruments: [prtee, ffi]
weeks: [6]
estimators: [ancova]
"""
CLINICS = (4, 6, 8)


def truth_of(truth: dict, condition: str, instrument: str) -> float:
    """The planted week-6 ``difference`` of the target contrast."""
    for e in truth["effects"]:
        if (e["condition"], e["instrument"], e["arm"], e["versus"], float(e["week"])) == (
            condition,
            instrument,
            *ARMS,
            6.0,
        ):
            return float(e["difference"])
    raise KeyError((condition, instrument))


def repetition(rep: int, patients: int = 800) -> list[dict]:
    """Three emulated sites, one package each, pooled; one row per target and method."""
    from data_schemas import store
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer
    from emulator import emulate
    from ionto_analytics.study.command import pool_study, run_study

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "study.yaml").write_text(SPEC)
        packages, truths = [], []
        for j, clinics in enumerate(CLINICS):
            out = root / f"emu{j}"
            summary = emulate(out, seed=1000 * rep + j, patients=patients, clinics=clinics)
            truths.append(json.loads(Path(summary.ground_truth).read_text(encoding="utf-8")))
            engine = store.connect(f"sqlite:///{root / f'site{j}.db'}")
            store.upgrade(engine)
            Importer(
                engine, Keyer(b"bench-network-site-key-0123456"), today=dt.date(2026, 6, 1)
            ).run([out / "ehr"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                packages.append(
                    run_study(engine, root / "study.yaml", root / "results", site=f"site{j}")
                )
            engine.dispose()
        pooled, _ = pool_study(packages, root / "pooled")
    rows = []
    for key, (cond, inst) in TARGETS.items():
        t = sum(truth_of(tr, cond, inst) for tr in truths) / len(truths)
        p = pooled.pooled.set_index("contrast").loc[key]
        site_rows = pooled.per_site[
            pooled.per_site["contrast"].eq(key) & pooled.per_site["status"].eq("ok")
        ]
        for method in ("fixed", "random"):
            rows.append(
                {
                    "rep": rep,
                    "contrast": key,
                    "method": method,
                    "truth": t,
                    "sites": int(p["sites"]),
                    "estimate": p[f"{method}_estimate"],
                    "ci_low": p[f"{method}_ci_low"],
                    "ci_high": p[f"{method}_ci_high"],
                }
            )
        for _, s in site_rows.iterrows():
            rows.append(
                {
                    "rep": rep,
                    "contrast": key,
                    "method": "single site",
                    "truth": t,
                    "sites": 1,
                    "estimate": s["estimate"],
                    "ci_low": s["ci_low"],
                    "ci_high": s["ci_high"],
                }
            )
    for r in rows:
        r["seconds"] = time.perf_counter() - t0
    return rows


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Coverage (with its Wilson 95 % interval), bias and width per contrast and method."""
    df = df.assign(
        covered=(df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"]),
        bias=df["estimate"] - df["truth"],
        width=df["ci_high"] - df["ci_low"],
    )
    summary = df.groupby(["contrast", "method"]).agg(
        results=("covered", "size"),
        covered=("covered", "sum"),
        mean_bias=("bias", "mean"),
        sd_estimate=("estimate", "std"),
        mean_width=("width", "mean"),
        truth=("truth", "mean"),
        mean_sites=("sites", "mean"),
    )
    low, high = proportion_confint(summary["covered"], summary["results"], method="wilson")
    summary.insert(2, "coverage", summary["covered"] / summary["results"])
    summary.insert(3, "wilson_low", low)
    summary.insert(4, "wilson_high", high)
    return summary


def main(reps: int = 10, patients: int = 800, workers: int = 1, rows_csv: str = "") -> None:
    """Run the repetitions and print the summary (see the module docstring)."""
    t0 = time.perf_counter()
    rows: list[dict] = []
    with ProcessPoolExecutor(workers) as pool:
        for rs in pool.map(repetition, range(reps), [patients] * reps):
            rows += rs
            if rows_csv:
                path = Path(rows_csv)
                pd.DataFrame(rs).to_csv(path, mode="a", header=not path.exists(), index=False)
            print(
                f"repetition {rs[0]['rep']}: {rs[0]['seconds']:.0f} s, "
                f"{time.perf_counter() - t0:.0f} s so far",
                flush=True,
            )
    df = pd.read_csv(rows_csv) if rows_csv else pd.DataFrame(rows)
    print(summarize(df).round(3).to_string())
    print(
        f"\n{df['rep'].nunique()} repetitions x 3 sites x {patients} patients; "
        f"{time.perf_counter() - t0:.0f} s wall, {workers} workers"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]), *sys.argv[4:5])
