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

Run: ``.venv/bin/python bench/bench_network.py [repetitions] [patients] [workers]``
(defaults 10, 800, 2). Prints the coverage of the fixed-effect and random-effects 95 % CIs
and of the site CIs, the mean bias and the mean CI width.
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


def main(reps: int = 10, patients: int = 800, workers: int = 2) -> None:
    """Run the repetitions and print the summary."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        rows = [r for rs in pool.map(repetition, range(reps), [patients] * reps) for r in rs]
    df = pd.DataFrame(rows)
    df["covered"] = (df["ci_low"] <= df["truth"]) & (df["truth"] <= df["ci_high"])
    df["bias"] = df["estimate"] - df["truth"]
    df["width"] = df["ci_high"] - df["ci_low"]
    summary = df.groupby(["contrast", "method"]).agg(
        results=("covered", "size"),
        coverage=("covered", "mean"),
        mean_bias=("bias", "mean"),
        mean_width=("width", "mean"),
        truth=("truth", "mean"),
        mean_sites=("sites", "mean"),
    )
    print(summary.round(3).to_string())
    print(
        f"\n{reps} repetitions x 3 sites x {patients} patients; "
        f"{time.perf_counter() - t0:.0f} s wall, {workers} workers"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:4]))
