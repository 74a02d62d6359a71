"""Speed of the comparisons against statsmodels called directly on the same frame (not a test).

Synthetic confounded data from ``tests/analysis_sim.py`` (NPRS, 20 clinics). For each size:

* ``comparison_frame`` (windowing, baseline, exclusions) timed on its own;
* ANCOVA (HC3) vs ``smf.ols(same formula).fit(cov_type="HC3")`` on the same complete cases;
* IPTW (ATE, HC3) vs ``smf.glm(logit propensity)`` + ``smf.wls(...).fit(cov_type="HC3")``;
* the mixed model on 20,000 episodes / 200,000 outcome rows vs ``smf.mixedlm(...).fit()`` on
  the same long frame.

Targets: ANCOVA and IPTW < 10 s at 100,000 episodes; mixed model < 60 s; each within 1.3x of
statsmodels alone. Run: ``.venv/bin/python bench/bench_compare.py [max_n]``.

``bench/bench_compare.py cli URL [URL ...]`` times ``ionto compare --json`` end to end (a
new process, from its start to the JSON on stdout) with ANCOVA, the mixed model and the
MMRM on each store, beside the bare read of every episode and outcome row of that store
with the fastest reader measured (the driver's own cursor: ``sqlite3``, or psycopg
``fetchall`` with text and with binary transfer, the faster counted; no SQLAlchemy, no
pandas), and prints the ratios. Best of 3, wall and CPU seconds each (CPU = user + sys of
the child process; on PostgreSQL the server's CPU is in neither figure, only in the wall
time), and the load average: on a shared machine the wall time drifts. Build the large
stores with ``bench/make_scale_store.py``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.analysis_sim

ARMS = ("ionto+exercise", "exercise")


def _best(fn, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def linear(n: int) -> dict[str, float]:
    """Seconds for the frame, ANCOVA, IPTW and their statsmodels equivalents at ``n``."""
    from ionto_analytics.compare.ancova import ancova
    from ionto_analytics.compare.frame import comparison_frame, design_terms
    from ionto_analytics.compare.iptw import iptw
    from tests.analysis_sim import simulate

    episodes, outcomes = simulate(n, seed=1, n_clinics=20)
    repeats = 5 if n <= 10_000 else 2
    t_frame = _best(lambda: comparison_frame(episodes, outcomes, "nprs", 6, ARMS), repeats)
    af = comparison_frame(episodes, outcomes, "nprs", 6, ARMS)
    d, _ = af.complete_cases()
    terms = design_terms(d)
    rhs = "".join(f" + {t}" for t in terms)
    t_anc = _best(lambda: ancova(af, se="hc3"), repeats)
    t_ols = _best(
        lambda: smf.ols("follow_up ~ treated + baseline" + rhs, d).fit(cov_type="HC3"), repeats
    )

    def direct_iptw() -> None:
        ps = smf.glm("treated ~ baseline" + rhs, d, family=sm.families.Binomial()).fit()
        e = np.clip(np.asarray(ps.predict(d)), 0.01, 0.99)
        w = np.where(d["treated"] == 1, 1 / e, 1 / (1 - e))
        smf.wls("follow_up ~ treated + baseline", d, weights=w).fit(cov_type="HC3")

    t_ipw = _best(lambda: iptw(af, se="hc3"), repeats)
    t_direct_ipw = _best(direct_iptw, repeats)
    return {
        "episodes": n,
        "comparison_frame_s": t_frame,
        "ancova_s": t_anc,
        "statsmodels_ols_s": t_ols,
        "ancova_ratio": t_anc / t_ols,
        "iptw_s": t_ipw,
        "statsmodels_iptw_s": t_direct_ipw,
        "iptw_ratio": t_ipw / t_direct_ipw,
    }


def mixed(n: int = 20_000, rows_target: int = 200_000) -> dict[str, float]:
    """Seconds for :func:`mixed_model` and ``smf.mixedlm`` on the same long frame."""
    from ionto_analytics.compare.frame import comparison_frame, design_terms
    from ionto_analytics.compare.mixed import mixed_model
    from tests.analysis_sim import simulate

    episodes, outcomes = simulate(n, seed=2, n_clinics=20)
    extra = max(0, rows_target - len(outcomes)) // n + 1
    filler = pd.DataFrame(  # week-2 scores: outside every window the model uses
        {
            "episode_id": np.repeat(episodes["episode_id"].to_numpy(), extra),
            "instrument": "nprs",
            "score": 5.0,
            "days_from_intake": np.tile(np.arange(8, 8 + extra), n).astype("int64"),
        }
    )
    outcomes = pd.concat([outcomes, filler], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        mixed_model(comparison_frame(episodes, outcomes, "nprs", 6, ARMS))
        t_ours = time.perf_counter() - t0
        parts = []
        for w in (4, 6, 12):
            af = comparison_frame(episodes, outcomes, "nprs", w, ARMS)
            p = af.data[af.data["has_follow_up"]].copy()
            p["window"] = f"w{w}"
            parts.append(p)
        long = pd.concat(parts, ignore_index=True)
        arm_terms = []
        for w in (4, 6, 12):
            col = f"arm_at_week_{w}"
            long[col] = ((long["treated"] == 1) & (long["window"] == f"w{w}")).astype(float)
            arm_terms.append(col)
        rhs = "".join(f" + {t}" for t in design_terms(long))
        formula = "follow_up ~ 0 + C(window) + " + " + ".join(arm_terms) + " + baseline" + rhs
        t0 = time.perf_counter()
        smf.mixedlm(formula, long, groups=long["patient_id"]).fit(reml=True)
        t_sm = time.perf_counter() - t0
    return {
        "episodes": n,
        "outcome_rows": len(outcomes),
        "model_rows": len(long),
        "mixed_model_s": t_ours,
        "statsmodels_mixedlm_s": t_sm,
        "ratio": t_ours / t_sm,
    }


COMPARE = ["compare", "--condition", "epicondylitis", "--instrument", "prtee",
           "--arms", "ionto+exercise", "exercise", "--json"]  # fmt: skip
METHODS = ("ancova", "mixed", "mmrm")


def _bare_read(url: str, binary: bool = False) -> tuple[float, float, int]:
    """Wall and CPU seconds to fetch every episode and outcome row with the driver itself,
    and the number of rows (``binary``: psycopg's binary transfer, PostgreSQL only)."""
    if url.startswith("sqlite"):
        import sqlite3

        connection = sqlite3.connect(url.split("///", 1)[1])
        cursor = connection.cursor()
    else:
        import psycopg

        connection = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
        cursor = connection.cursor(binary=binary)
    t0, c0 = time.perf_counter(), time.process_time()
    rows = len(cursor.execute("SELECT * FROM episode").fetchall())
    rows += len(cursor.execute("SELECT * FROM outcome_measurement").fetchall())
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    connection.close()
    return elapsed, cpu, rows


def _cli(url: str, method: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of the child) of ``ionto compare --json`` in a new
    process, from its start to the JSON on stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ionto.cli", "--db", url, *COMPARE, "--method", method],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"ionto compare failed on {url}: {done.stdout}{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def end_to_end(urls: list[str], repeats: int = 3) -> pd.DataFrame:
    """Best of ``repeats`` (wall and CPU each) for the bare read and for ``ionto compare``
    with each of :data:`METHODS` on each store; the 1-minute load average before each store."""
    rows = []
    for url in urls:
        load = os.getloadavg()[0]
        binary = (False,) if url.startswith("sqlite") else (False, True)
        reads = [_bare_read(url, b) for _ in range(repeats) for b in binary]
        bare, bare_cpu, n_rows = min(r[0] for r in reads), min(r[1] for r in reads), reads[0][2]
        for method in METHODS:
            runs = [_cli(url, method) for _ in range(repeats)]
            wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
            rows.append(
                {"store": url.rsplit("/", 1)[-1], "backend": url.split(":", 1)[0],
                 "load": load, "rows": n_rows, "bare_wall_s": bare, "bare_cpu_s": bare_cpu,
                 "method": method, "wall_s": wall, "cpu_s": cpu,
                 "ratio_wall": wall / bare, "ratio_cpu": cpu / bare_cpu}
            )  # fmt: skip
            print(pd.DataFrame(rows).iloc[[-1]].to_string(index=False), flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    if sys.argv[1:2] == ["cli"]:
        pd.set_option("display.width", 200)
        print(end_to_end(sys.argv[2:]).to_string(index=False, float_format="%.3f"))
        return
    max_n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    sizes = [s for s in (1_000, 3_000, 10_000, 30_000, 100_000) if s <= max_n]
    pd.set_option("display.width", 200)
    linear(1_000)  # warm-up: imports and first-call costs are not what we measure
    rows = []
    for n in sizes:
        rows.append(linear(n))
        print(pd.DataFrame(rows).iloc[[-1]].to_string(index=False, float_format="%.3f"))
    print("\nANCOVA and IPTW")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\nMixed model")
    print(pd.DataFrame([mixed()]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
