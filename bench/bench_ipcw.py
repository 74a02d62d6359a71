"""IPCW against complete-case ANCOVA and the MMRM under the stress scenario's dropout (not a test).

The ``stress`` scenario (``emulator/scenarios/stress.yaml``) drops patients out with a
probability that depends on their NPRS improvement at visit 3
(``emulator.outcomes.apply_dropout``): missing at random given the observed history of
every instrument, not given the analysed instrument's windows alone. Each study emulates
the network (one seed, from 2000 up), imports the EHR export with the real importer and
loads the frames (as ``bench_coverage.study``), then estimates the lateral epicondylitis
contrast ionto+exercise − exercise on the PRTEE and the NPRS at weeks 6 and 12 with

* ``ancova``: :func:`ia.ancova` (complete cases at the week);
* ``mmrm``: :func:`ia.mmrm` over windows 2, 4, 6 and 12;
* ``ipcw``: :func:`ia.ipcw` (censoring models over the windows up to the week);

every estimator with its defaults. Each is graded against ``ground_truth.json``'s
``window_difference`` (the windowed estimand, see ``bench_coverage``): mean bias,
``z = mean(est − truth) / (sd / √n)`` and the coverage of the 95 % interval. IPCW's largest
weight and smallest effective sample size per arm are in the CSV.

Run::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    PYTHONPATH=. nice -n 5 .venv/bin/python bench/bench_ipcw.py run 60 1000 /tmp/ipcw.csv
    PYTHONPATH=. .venv/bin/python bench/bench_ipcw.py summary /tmp/ipcw.csv
    sed 's/^  rate: 0.35$/  rate: 0.0/' emulator/scenarios/stress.yaml > /tmp/stress_no_dropout.yaml
    PYTHONPATH=. nice -n 5 .venv/bin/python bench/bench_ipcw.py run 60 1000 /tmp/none.csv \
        2000 /tmp/stress_no_dropout.yaml
    PYTHONPATH=. .venv/bin/python bench/bench_ipcw.py paired /tmp/ipcw.csv /tmp/none.csv

(``run STUDIES PATIENTS CSV [FIRST_SEED [SCENARIO]]``, one process; rows are appended
after every study, so a partial run is usable. ``SCENARIO`` is a scenario name or YAML
file, e.g. a copy of ``stress.yaml`` with ``dropout.rate: 0``: the emulator draws the
dropout whatever the rate, so the same seed gives the same patients and scores without
dropout, and the paired difference measures what the dropout did to each estimator.)
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from bench_coverage import load_study, planted
from coverage_tables import paired_table

from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.ipcw import ipcw
from ionto_analytics.compare.mmrm import mmrm
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError

CONDITION = "lateral_epicondylitis"
ARMS = ("ionto+exercise", "exercise")
INSTRUMENTS = ("prtee", "nprs")
WEEKS = (6, 12)
MMRM_WINDOWS = (2, 4, 6, 12)
FIRST_SEED = 2000


def attempt(fit: Callable[[], ComparisonResult]) -> ComparisonResult | InputError:
    """The result of ``fit()``, or the refusal it raised."""
    try:
        return fit()
    except InputError as err:
        return err


def grade_row(name: str, week: int, r: ComparisonResult | InputError) -> dict:
    """One row: the estimate at ``week`` and its interval (or the refusal)."""
    if isinstance(r, InputError):
        return {"estimator": name, "week": week, "status": str(r)[:80]}
    row = {"estimator": name, "week": week, "status": "ok", "n": sum(r.n.values())}
    if name == "mmrm":
        c = r.table.dropna(subset=["df"]).set_index("week").loc[week]
        row.update(estimate=c["estimate"], ci_low=c["ci_low"], ci_high=c["ci_high"])
    else:
        row.update(estimate=r.estimate, ci_low=r.ci_low, ci_high=r.ci_high)
    if name == "ipcw":
        t = r.table.set_index("term")["estimate"]
        row["largest_weight"] = t["largest weight (before truncation)"]
        row["ess_min"] = min(t[f"effective sample size {a}"] for a in ARMS)
    return row


def estimate(episodes: pd.DataFrame, outcomes: pd.DataFrame, instrument: str) -> list[dict]:
    """Rows (estimator, week, estimate, interval, IPCW weights) of one instrument."""
    ep = episodes[(episodes["condition"] == CONDITION) & episodes["arm"].isin(ARMS)]
    oc = outcomes[outcomes["episode_id"].isin(ep["episode_id"])]
    frames = {w: comparison_frame(ep, oc, instrument, w, ARMS, condition=CONDITION) for w in WEEKS}
    mm = attempt(lambda: mmrm(frames[max(WEEKS)], windows=MMRM_WINDOWS))
    rows: list[dict] = []
    for week, af in frames.items():
        rows.append(grade_row("ancova", week, attempt(lambda af=af: ancova(af))))
        rows.append(grade_row("ipcw", week, attempt(lambda af=af: ipcw(af))))
        rows.append(grade_row("mmrm", week, mm))
    return rows


def run(
    studies: int,
    patients: int,
    csv: Path,
    first_seed: int = FIRST_SEED,
    scenario: str | Path = "stress",
) -> None:
    """Run ``studies`` studies of ``scenario`` and append their rows to ``csv``."""
    for seed in range(first_seed, first_seed + studies):
        t0 = time.perf_counter()
        episodes, outcomes, truth, _ = load_study(seed, patients, scenario)
        truths = planted(truth)
        rows: list[dict] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for instrument in INSTRUMENTS:
                for r in estimate(episodes, outcomes, instrument):
                    r.update(
                        seed=seed,
                        scenario=str(scenario),
                        instrument=instrument,
                        truth_w=truths[(CONDITION, instrument, *ARMS, r["week"])][1],
                    )
                    rows.append(r)
        pd.DataFrame(rows).to_csv(csv, mode="a", header=not csv.exists(), index=False)
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)


def summary(csvs: list[Path]) -> pd.DataFrame:
    """Bias, z, coverage per instrument × week × estimator, and the paired difference from
    the ANCOVA of the same study (``minus_ancova``, with its z over the studies): what an
    estimator changes, with much less noise than two biases side by side."""
    df = pd.concat([pd.read_csv(c) for c in csvs], ignore_index=True)
    ok = df[df["status"] == "ok"].assign(error=lambda x: x["estimate"] - x["truth_w"])
    ok = ok.assign(covered=(ok["ci_low"] <= ok["truth_w"]) & (ok["truth_w"] <= ok["ci_high"]))
    g = ok.groupby(["instrument", "week", "estimator"])
    out = pd.DataFrame(
        {
            "studies": g.size(),
            "truth_w": g["truth_w"].mean(),
            "bias": g["error"].mean(),
            "sd": g["error"].std(),
            "z": g["error"].mean() / (g["error"].std() / np.sqrt(g.size())),
            "coverage": g["covered"].mean(),
            "ci_width": g.apply(lambda x: (x["ci_high"] - x["ci_low"]).mean()),
            "refused": df[df["status"] != "ok"].groupby(["instrument", "week", "estimator"]).size(),
        }
    )
    paired = ok.pivot_table(
        index=["seed", "instrument", "week"], columns="estimator", values="estimate"
    )
    minus = paired.sub(paired["ancova"], axis=0).stack().rename("minus_ancova").reset_index()
    h = minus.groupby(["instrument", "week", "estimator"])["minus_ancova"]
    out["minus_ancova"] = h.mean()
    out["minus_ancova_z"] = h.mean() / (h.std() / np.sqrt(h.size()))
    return out.fillna({"refused": 0})


def paired(with_dropout: Path, without: Path) -> pd.DataFrame:
    """What the dropout did: per cell and estimator, the mean over the seeds of both runs of
    the estimate with dropout minus the estimate of the same patients without (its z), and
    the bias of the estimates without dropout (the part the dropout is not to blame for)."""
    a, b = (pd.read_csv(c) for c in (with_dropout, without))
    t = paired_table(a, b, ["instrument", "week", "estimator"])
    return t.rename(
        columns={
            "difference": "dropout_effect",
            "difference_z": "dropout_effect_z",
            "bias_b": "bias_without_dropout",
            "z_b": "z_without_dropout",
        }
    )[
        [
            "studies",
            "dropout_effect",
            "dropout_effect_z",
            "bias_without_dropout",
            "z_without_dropout",
        ]
    ]


def main(argv: list[str]) -> None:
    if argv[:1] == ["run"] and len(argv) in (4, 5, 6):
        seed = int(argv[4]) if len(argv) > 4 else FIRST_SEED
        run(int(argv[1]), int(argv[2]), Path(argv[3]), seed, *argv[5:])
    elif argv[:1] == ["summary"] and len(argv) > 1:
        with pd.option_context(
            "display.width", 200, "display.max_columns", 20, "display.precision", 3
        ):
            print(summary([Path(a) for a in argv[1:]]))
    elif argv[:1] == ["paired"] and len(argv) == 3:
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(paired(Path(argv[1]), Path(argv[2])).round(3))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
