"""Which covariance structure and variance make the MMRM cover in small cells? (not a test)

The MMRM's whole default grid (200 studies, Kenward–Roger with the fallback) is about half
a point under nominal, most in cells of 21–60 episodes. This fits, on the same data, every
candidate an analysis plan could pre-specify and grades each against the planted truth:

* the four structures of ``ia.mmrm``'s unstructured-then-fallback list (unstructured,
  heterogeneous AR(1), heterogeneous CS, CS), each with its model-based covariance
  (Kenward–Roger where the structure is linear in its parameters, Satterthwaite otherwise)
  and with CR2 over episodes (Satterthwaite df);
* the REML log-likelihood and convergence certificate of each fit, so that rules that pick
  one fit per cell are graded on the same fits: ``current`` (the first of the order that
  converges, as ``ia.mmrm``'s default), ``aic`` (the converged one of smallest REML AIC, CR2
  unless unstructured: ``ia.mmrm(covariance="aic")``), ``bic``, and each structure always.

Every cell of the whole grid whose arm pair has between ``min`` (exclusive) and ``max``
episodes with a follow-up score, every week, the emulated study imported as in
``bench_coverage.py``. ``run`` appends one row per fit, variance and week to a CSV after each
study; ``summary`` prints, per rule, coverage by cell size, week and the unstructured fit's
smallest correlation eigenvalue, and the rule ``aic`` paired with ``current`` on the same
fits (coverage difference with its SE, the ratio of interval widths, which unlike a width
does not mix the instruments' units, the shift of the estimate in SE, cells with
|bias z| > 2.5).

Run::

    export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
    PYTHONPATH=. .venv/bin/python bench/bench_mmrm_structures.py run default 9501 20 0 60 /tmp/s.csv
    PYTHONPATH=. .venv/bin/python bench/bench_mmrm_structures.py summary /tmp/s.csv

(``run SCENARIO FIRST_SEED STUDIES MIN MAX CSV``; about 25 s of a core per 1,000-patient
default study for cells of at most 60 episodes.)
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from bench_coverage import early_refusal, grid_cells, load_study, planted
from scipy import stats

from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.mmrm import MMRM_FALLBACK
from ionto_analytics.compare.repeated import chosen_design, long_frame, window_contrasts
from ionto_analytics.errors import InputError
from ionto_analytics.lmm import cluster_robust, fit_mmrm

WEEKS = (2, 4, 6, 12)
STRUCTURES = ("unstructured", *MMRM_FALLBACK)
MODEL_DDF = {"unstructured": "kenward-roger", "cs": "kenward-roger"}
"""Kenward–Roger for the structures linear in their parameters, as ``ia.mmrm``'s default."""
COLUMNS = [
    "seed", "condition", "instrument", "arm", "versus", "week", "n_ep", "p", "structure",
    "variance", "converged", "loglik", "k", "mineig", "est", "se", "df", "truth_w",
]  # fmt: skip
CELL = ["seed", "condition", "instrument", "arm", "versus"]


def cell_rows(ep: pd.DataFrame, oc: pd.DataFrame, cell: tuple, seed: int, truths: dict) -> list:
    """Rows of every structure × variance × week of one cell (none if it cannot be fitted)."""
    cond, instr, a, b = cell
    try:
        af = comparison_frame(ep, oc, instr, 2, (a, b), condition=cond)
        long, _ = long_frame(af, list(WEEKS), "mmrm")
        design, _ = chosen_design(long, af.adjustment(None), True, list(WEEKS), None, "mmrm")
    except InputError:
        return []
    y, g = long["follow_up"].to_numpy(float), long["episode_id"].to_numpy()
    w = long["week"].to_numpy()
    rows = []
    for structure in STRUCTURES:
        model = fit_mmrm(
            y, design.X, g, w, structure, ddf=MODEL_DDF.get(structure, "satterthwaite")
        )
        plain = model if structure not in MODEL_DDF else fit_mmrm(y, design.X, g, w, structure)
        cert = model.convergence
        tables = {
            "model": window_contrasts(model, design, af, 0.05),
            "cr2": window_contrasts(cluster_robust(plain, y, design.X, g, w), design, af, 0.05),
        }
        mineig = float(np.linalg.eigvalsh(plain.correlation).min())
        for variance, tab in tables.items():
            for c in tab.itertuples():
                rows.append(
                    dict(
                        seed=seed, condition=cond, instrument=instr, arm=a, versus=b,
                        week=int(c.week), n_ep=long["episode_id"].nunique(), p=design.X.shape[1],
                        structure=structure, variance=variance,
                        converged=bool(cert.converged and not cert.at_boundary),
                        loglik=plain.loglik, k=plain.theta.size, mineig=mineig,
                        est=c.estimate, se=c.se, df=c.df,
                        truth_w=truths[(cond, instr, a, b, int(c.week))][1],
                    )
                )  # fmt: skip
    return rows


def run(scenario: str, first: int, studies: int, low: int, high: int, out: Path) -> None:
    """Append the rows of ``studies`` studies from seed ``first`` to ``out``."""
    for seed in range(first, first + studies):
        episodes, outcomes, truth, _ = load_study(seed, 1000, scenario)
        truths = planted(truth)
        rows: list[dict] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for cell in grid_cells(truths, "all"):
                ep = episodes[(episodes["condition"] == cell[0]) & episodes["arm"].isin(cell[2:])]
                oc = outcomes[outcomes["episode_id"].isin(ep["episode_id"])]
                if not low < len(ep) <= 1.6 * high or early_refusal(ep, oc, cell):
                    continue  # the episodes with a follow-up score are fewer: 1.6 x is ample
                part = cell_rows(ep, oc, cell, seed, truths)
                if part and low < part[0]["n_ep"] <= high:
                    rows += part
        pd.DataFrame(rows, columns=COLUMNS).to_csv(
            out, mode="a", header=not out.exists(), index=False
        )
        print(seed, len(rows), flush=True)


def choices(v: pd.DataFrame) -> dict[str, pd.Series]:
    """Per fit: the (structure, variance) each rule keeps."""
    fits = v.drop_duplicates(["fit", "structure"]).set_index(["fit", "structure"])
    conv = fits["converged"].unstack()[list(STRUCTURES)].astype(bool)
    n = fits["n_ep"].unstack().max(axis=1)
    ll, k = fits["loglik"].unstack(), fits["k"].unstack()
    aic = (-2 * ll + 2 * k).where(conv)
    bic = (-2 * ll + k.mul(np.log(n), axis=0)).where(conv)
    rule = {"unstructured": "model", **{s: "cr2" for s in MMRM_FALLBACK}}
    current = conv.idxmax(axis=1).where(conv.any(axis=1))
    out = {
        name: chosen.map(lambda s: f"{s}|{rule[s]}" if isinstance(s, str) else None)
        for name, chosen in (
            ("current", current), ("aic", aic.idxmin(axis=1)), ("bic", bic.idxmin(axis=1))
        )
    }  # fmt: skip
    for s in STRUCTURES:
        for variance in ("model", "cr2"):
            out[f"{s} {variance}, always"] = pd.Series(f"{s}|{variance}", index=conv.index)
    return out


def summary(paths: list[Path]) -> None:
    """Print the rules side by side and ``aic`` paired with ``current``."""
    v = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    v = v[np.isfinite(v["truth_w"])].copy()
    v["fit"] = v.groupby(CELL, sort=False).ngroup()
    v["kept"] = v["structure"] + "|" + v["variance"]
    v["covered"] = np.abs(v["est"] - v["truth_w"]) <= stats.t.ppf(0.975, v["df"]) * v["se"]
    cuts = np.unique(np.quantile(v["n_ep"], [0, 1 / 3, 2 / 3, 1]))
    v["episodes"] = pd.cut(v["n_ep"], cuts, include_lowest=True)
    un = v[v["structure"] == "unstructured"].drop_duplicates("fit").set_index("fit")["mineig"]
    v["eigenvalue"] = pd.cut(v["fit"].map(un), [-1, 0.05, 0.1, 0.2, 1])
    kept = choices(v)
    picked = {
        name: v[v["kept"].to_numpy() == v["fit"].map(c).to_numpy()] for name, c in kept.items()
    }
    print(f"{v['seed'].nunique()} studies, {v['fit'].nunique()} cell fits")
    table = []
    for name, d in picked.items():
        row = {"rule": name, "estimates": len(d), "coverage": d["covered"].mean()}
        for by in ("episodes", "week", "eigenvalue"):
            row |= {f"{by} {k}": g.mean() for k, g in d.groupby(by, observed=True)["covered"]}
        table.append(row)
    print(pd.DataFrame(table).round(3).to_string(index=False))
    a = picked["current"].set_index(["fit", "week"])
    b = picked["aic"].set_index(["fit", "week"])
    j = a.join(b[["covered", "est", "se", "df"]].add_suffix("_aic"), how="inner")
    diff = j["covered_aic"].astype(int) - j["covered"].astype(int)
    ratio = (stats.t.ppf(0.975, j["df_aic"]) * j["se_aic"]) / (
        stats.t.ppf(0.975, j["df"]) * j["se"]
    )
    print(
        f"aic - current, paired on {len(j)} estimates: coverage {diff.mean():+.4f} "
        f"(SE {diff.std() / np.sqrt(len(j)):.4f}); interval width ratio median "
        f"{ratio.median():.3f} (quartiles {ratio.quantile(0.25):.3f}-{ratio.quantile(0.75):.3f}); "
        "estimate shift in current SEs by week "
        + ", ".join(
            f"{w}: {g.mean():+.3f}"
            for w, g in ((j["est_aic"] - j["est"]) / j["se"]).groupby(level=1)
        )
    )
    share = kept["aic"].str.split("|").str[0].value_counts(normalize=True).round(3)
    print("structures aic keeps:", share.to_dict())
    keys = ["condition", "instrument", "arm", "versus", "week"]
    for name, d in (("current", a), ("aic", b)):
        e = (d["est"] - d["truth_w"]).groupby(
            [d[k] for k in keys[:-1]] + [d.index.get_level_values(1)]
        )
        m = e.agg(["mean", "std", "size"])
        m = m[m["size"] >= 5]
        z = m["mean"] / (m["std"] / np.sqrt(m["size"]))
        print(
            f"{name}: {len(z)} cells with >= 5 estimates, |bias z| > 2.5 in "
            f"{int((z.abs() > 2.5).sum())} ({len(z) * 2 * stats.norm.sf(2.5):.1f} by chance)"
        )


def main() -> None:
    """``run SCENARIO FIRST_SEED STUDIES MIN MAX CSV`` or ``summary CSV [CSV ...]``."""
    if len(sys.argv) >= 3 and sys.argv[1] == "summary":
        summary([Path(p) for p in sys.argv[2:]])
    elif len(sys.argv) == 8 and sys.argv[1] == "run":
        scenario, first, studies, low, high, out = sys.argv[2:]
        run(scenario, int(first), int(studies), int(low), int(high), Path(out))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
