"""IPTW by the size of its propensity model: where do its intervals stop covering? (not a test)

The whole grid of ``bench_coverage.py`` (default scenario) found IPTW's failing cells among
the small ones. This bench measures why: for every cell of the grid at weeks 4 and 12 it
estimates :func:`ia.iptw` with the propensity guard
(:func:`ionto_analytics.compare.iptw.check_propensity_size`) replaced by a recorder, so the
cells the guard refuses are estimated too, twice: with the plain logistic propensity and
with Firth's penalized one (:func:`ionto_analytics.compare.fit.logistic_coefficients`,
``firth=True``). Each estimate records the propensity model's parameters ``p``, the smaller
arm's episodes ``n_min`` and whether the plain fit separated (a propensity below 0.001 or
above 0.999); the summary gives coverage of the windowed truth by ``n_min / p``.

Run::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    PYTHONPATH=. .venv/bin/python bench/bench_propensity_size.py run 5000 40 2 /tmp/ps.csv
    PYTHONPATH=. .venv/bin/python bench/bench_propensity_size.py summary /tmp/ps.csv

(``run FIRST_SEED STUDIES WORKERS CSV``: 1,000 patients per study, about 80 s of a core per
study.)
"""

from __future__ import annotations

import sys
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from bench_coverage import early_refusal, grid_cells, load_study, planted
from scipy import special

import ionto_analytics.compare.iptw as iptw_module
from ionto_analytics.compare.fit import logistic_coefficients
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.errors import InputError

WEEKS = (4, 12)
PATIENTS = 1000
BINS = [0, 0.75, 1, 1.5, 2, 3, 4, np.inf]


class _FirthFit:
    """The plain propensity fit's design refitted by Firth's penalized likelihood."""

    def __init__(self, fit: object) -> None:
        self.model = fit.model  # type: ignore[attr-defined]
        x, y = self.model.exog, self.model.endog
        self._p = special.expit(x @ logistic_coefficients(x, y, firth=True))

    def predict(self) -> np.ndarray:
        return self._p


def _estimate(af: object, mode: str, seen: dict) -> dict:
    """One IPTW estimate with the guard recording instead of refusing."""
    plain_fit = iptw_module._propensity_fit

    def recording_fit(d: pd.DataFrame, covariates: object, clinic_effects: bool) -> tuple:
        fit, formula = plain_fit(d, covariates, clinic_effects)
        ps = np.asarray(fit.predict())
        seen["separated"] = bool((ps < 1e-3).any() or (ps > 1 - 1e-3).any())
        return (_FirthFit(fit) if mode == "firth" else fit), formula

    guard = iptw_module.check_propensity_size
    iptw_module.check_propensity_size = lambda n, p, f: seen.update(n_min=n, p=p)
    iptw_module._propensity_fit = recording_fit
    try:
        r = iptw_module.iptw(af)
    finally:
        iptw_module.check_propensity_size, iptw_module._propensity_fit = guard, plain_fit
    return {"mode": mode, "estimate": r.estimate, "ci_low": r.ci_low, "ci_high": r.ci_high}


def study(seed: int) -> list[dict]:
    """Every estimable grid cell of one default study at :data:`WEEKS`, both propensities."""
    episodes, outcomes, truth, _ = load_study(seed, PATIENTS, "default")
    truths = planted(truth)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cell in grid_cells(truths, "all"):
            cond, instr, a, b = cell
            ep = episodes[(episodes["condition"] == cond) & episodes["arm"].isin((a, b))]
            oc = outcomes[outcomes["episode_id"].isin(ep["episode_id"])]
            if early_refusal(ep, oc, cell):
                continue
            for week in WEEKS:
                try:
                    af = comparison_frame(ep, oc, instr, week, (a, b), condition=cond)
                except InputError:
                    continue
                for mode in ("plain", "firth"):
                    seen: dict = {}
                    try:
                        est = _estimate(af, mode, seen)
                    except InputError:  # refusals other than the guard's
                        continue
                    rows.append(
                        {"seed": seed, "condition": cond, "instrument": instr, "arm": a}
                        | {"versus": b, "week": week, "truth_w": truths[(*cell, week)][1]}
                        | est
                        | seen
                    )
    return rows


def summary(csv: Path) -> None:
    """Coverage and per-cell bias by smaller-arm episodes per propensity parameter."""
    d = pd.read_csv(csv)
    d = d[d["truth_w"].notna()].copy()
    d["covered"] = (d["ci_low"] <= d["truth_w"]) & (d["truth_w"] <= d["ci_high"])
    d["per_parameter"] = pd.cut(d["n_min"] / d["p"], BINS, right=False)
    d["err"] = d["estimate"] - d["truth_w"]
    print(f"{d['seed'].nunique()} studies, {len(d) // 2} estimates per propensity")
    by = d.groupby(["per_parameter", "mode"], observed=True)
    tab = by.agg(
        estimates=("covered", "size"), coverage=("covered", "mean"), separated=("separated", "mean")
    )
    print("\nby smaller-arm episodes per propensity parameter (n_min / p):")
    print(tab.unstack("mode").to_string(float_format=lambda v: f"{v:.3f}"))
    d["guard"] = np.where(d["n_min"] < d["p"], "refused", "kept")
    cell = ["mode", "guard", "condition", "instrument", "arm", "versus", "week"]
    c = d.groupby(cell)["err"].agg(["size", "mean", "std"])
    c = c[c["size"] >= 10]  # a z from a handful of estimates says nothing
    c["z2"] = (c["mean"] / (c["std"] / np.sqrt(c["size"]))) ** 2
    print("\ncells of >= 10 estimates the guard refuses (n_min < p) or keeps: mean z², |z| > 2.5")
    print(
        c.groupby(["mode", "guard"])["z2"]
        .agg(cells="size", mean_z2="mean", over=lambda s: int((s > 6.25).sum()))
        .to_string(float_format=lambda v: f"{v:.2f}")
    )


def main() -> None:
    """``run FIRST STUDIES WORKERS CSV`` or ``summary CSV``."""
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "summary":
        summary(Path(args[1]))
        return
    if len(args) != 5 or args[0] != "run":
        raise SystemExit(__doc__.split("Run::")[1])
    first, n, workers, csv = int(args[1]), int(args[2]), int(args[3]), Path(args[4])
    with ProcessPoolExecutor(workers) as pool:
        for i, part in enumerate(pool.map(study, range(first, first + n))):
            pd.DataFrame(part).to_csv(csv, mode="a", header=not csv.exists(), index=False)
            print(f"{i + 1}/{n} studies", flush=True)
    summary(csv)


if __name__ == "__main__":
    main()
