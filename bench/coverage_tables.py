"""The tables of the coverage bench, from per-cell sums that runs can add up (not a test).

A run of ``bench_coverage.py`` writes one row per study, estimator, cell and week. Those rows
are reduced here to **per-cell sums** (:func:`cell_sums`): estimates, covered intervals, sums
and sums of squares of the errors, per scenario, code version and estimator. Sums of
disjoint sets of studies made by the same code add up exactly (:func:`combine`), so a grid of
200 studies can be run in parts, on several machines or sessions, and one part's sums kept in
``bench/results/`` instead of hundreds of thousands of rows. ``code`` is a fingerprint of
the toolkit's source (:func:`code_fingerprint`): parts made by different code are never
added (a change to an estimator makes its earlier studies a different experiment).

Examples
--------
>>> rows = pd.DataFrame({"scenario": "s", "code": "c", "seed": [1, 2, 3], "estimator": "e",
...     "condition": "x", "instrument": "nprs", "arm": "a", "versus": "b", "week": 6,
...     "status": "ok", "reason": "", "estimate": [0.1, -0.2, 0.4], "ci_low": [-1, -1, 0.2],
...     "ci_high": [1, 1, 0.9], "n": 50, "truth": 0.0, "truth_w": 0.0})
>>> first, rest = cell_sums(rows[rows["seed"] == 1]), cell_sums(rows[rows["seed"] > 1])
>>> both = combine([first, rest])
>>> cells = cell_table(both)
>>> both["seeds"].iloc[0], int(cells["studies"].iloc[0]), round(float(cells["cov_w"].iloc[0]), 3)
('1-3', 3, 0.667)
>>> combine([first, first])
Traceback (most recent call last):
...
SystemExit: s/e: a seed occurs in two of the parts; drop one
>>> whole = cell_table(cell_sums(rows))
>>> bool(np.isclose(cells["z_w"].iloc[0], whole["z_w"].iloc[0]))
True
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ionto_analytics.compare.responders import wilson_interval

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("data_schemas", "device_import", "emulator", "ionto_analytics")
"""The packages whose source decides an estimate (emulator scenarios included)."""

CELL = ["condition", "instrument", "arm", "versus", "week"]
KEY = ["scenario", "code", "estimator", *CELL]

REPORTED_SHARE = 0.9
"""A cell is in an estimator's reported grid when estimable in this share of the studies."""

COVERAGE_POOLED = (0.935, 0.965)
COVERAGE_CELL_MIN = 0.90
Z_MAX = 2.5

SUMS = ["studies", "ok", "graded", "covered_w", "covered", "sum_err_w", "ss_err_w"]
SUMS += ["sum_err", "ss_err", "sum_n", "sum_truth_w", "sum_truth"]
"""The additive columns of :func:`cell_sums` (``graded``: estimates with a windowed truth)."""


def code_fingerprint(root: Path = ROOT) -> str:
    """12 hex digits of SHA-256 over the code of :data:`CODE_DIRS`, committed or not.

    A Python file counts by its syntax tree without docstrings (:func:`_code_only`): a
    corrected docstring, comment or line break does not make a new experiment, a changed
    expression does. Other files (scenarios, schemas) count byte for byte, Markdown not at
    all. The tree's text is that of the running Python's ``ast``, so parts made under
    another minor version of Python get another fingerprint.

    Examples
    --------
    >>> len(code_fingerprint()), code_fingerprint() == code_fingerprint()
    (12, True)
    """
    h = hashlib.sha256()
    for top in CODE_DIRS:
        for p in sorted((root / top).rglob("*")):
            if not p.is_file() or "__pycache__" in p.parts or p.suffix in (".pyc", ".md"):
                continue
            h.update(p.relative_to(root).as_posix().encode())
            h.update(_code_only(p.read_text("utf-8")) if p.suffix == ".py" else p.read_bytes())
    return h.hexdigest()[:12]


def _code_only(source: str) -> bytes:
    r"""The syntax tree of ``source`` without docstrings, as text (no line numbers).

    Examples
    --------
    >>> old = "def f():\n    'Old words.'\n    return 1  # one\n"
    >>> _code_only(old) == _code_only("def f():\n    return 1\n")
    True
    >>> _code_only("x = 1\n") == _code_only("x = 2\n")
    False
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        scoped = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
        if isinstance(node, scoped) and node.body:
            first = node.body[0]
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def seed_ranges(seeds: set[int]) -> str:
    """Seeds as ranges: ``{1, 2, 3, 7}`` → ``"1-3;7"``.

    Examples
    --------
    >>> seed_ranges({1000, 1001, 1002, 1010}), sorted(parse_seed_ranges("1-3;7"))
    ('1000-1002;1010', [1, 2, 3, 7])
    """
    out, run = [], []
    for s in sorted(seeds):
        if run and s != run[-1] + 1:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = []
        run.append(s)
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ";".join(out)


def parse_seed_ranges(text: str) -> set[int]:
    """The inverse of :func:`seed_ranges`."""
    seeds: set[int] = set()
    for part in str(text).split(";"):
        lo, _, hi = part.partition("-")
        seeds.update(range(int(lo), int(hi or lo) + 1))
    return seeds


def cell_sums(rows: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, code, estimator and cell: the additive sums of :data:`SUMS`, the seeds
    (:func:`seed_ranges`) and the most common refusal ``reason``."""
    d = rows.copy()
    if "code" not in d.columns:  # rows of a run made before the fingerprint
        d["code"] = "unrecorded"
    ok = d["status"] == "ok"
    graded = ok & d["truth_w"].notna()
    err_w = (d["estimate"] - d["truth_w"]).where(graded, 0.0)
    err = (d["estimate"] - d["truth"]).where(ok, 0.0)
    d = d.assign(
        studies=1,
        ok=ok.astype(int),
        graded=graded.astype(int),
        covered_w=(graded & (d["ci_low"] <= d["truth_w"]) & (d["truth_w"] <= d["ci_high"])),
        covered=(ok & (d["ci_low"] <= d["truth"]) & (d["truth"] <= d["ci_high"])),
        sum_err_w=err_w,
        ss_err_w=err_w**2,
        sum_err=err,
        ss_err=err**2,
        sum_n=d["n"].where(ok, 0.0),
        sum_truth_w=d["truth_w"].fillna(0.0),
        sum_truth=d["truth"],
    )
    g = d.groupby(KEY, sort=True)
    sums = g[SUMS].sum()
    refused = d[~ok].groupby(KEY)["reason"].agg(lambda s: s.mode().iloc[0])
    sums["reason"] = refused.reindex(sums.index).fillna("")
    seeds = d.groupby(["scenario", "code", "estimator"])["seed"].agg(lambda s: set(s.astype(int)))
    sums = sums.reset_index()
    keys = zip(sums["scenario"], sums["code"], sums["estimator"], strict=True)
    sums["seeds"] = [seed_ranges(seeds[k]) for k in keys]
    return sums


def combine(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Add per-cell sums of disjoint runs of the same code.

    Refuses (``SystemExit``) two codes for one scenario and estimator, and a seed counted
    twice; the sums of an estimator made by one code and those of another estimator made by
    another are kept side by side (each estimator's studies are one experiment).
    """
    allsums = pd.concat([p.assign(part=i) for i, p in enumerate(parts)], ignore_index=True)
    allsums["reason"] = allsums["reason"].fillna("").astype(str)  # "" reads back as NaN
    for (scen, est), g in allsums.groupby(["scenario", "estimator"]):
        if g["code"].nunique() > 1:
            raise SystemExit(
                f"{scen}/{est}: sums of different code ({', '.join(sorted(g['code'].unique()))})"
                " cannot be added; rerun the older part with the current code"
            )
        runs = [parse_seed_ranges(s) for s in g.drop_duplicates("part")["seeds"]]
        if sum(map(len, runs)) != len(set().union(*runs)):
            raise SystemExit(f"{scen}/{est}: a seed occurs in two of the parts; drop one")
    seeds = allsums.groupby(["scenario", "code", "estimator"])["seeds"].agg(
        lambda s: seed_ranges(set().union(*(parse_seed_ranges(v) for v in s.unique())))
    )
    out = allsums.groupby(KEY, sort=True).agg(
        {**dict.fromkeys(SUMS, "sum"), "reason": lambda s: max(s, key=len)}
    )
    out = out.reset_index()
    keys = zip(out["scenario"], out["code"], out["estimator"], strict=True)
    out["seeds"] = [seeds[k] for k in keys]
    return out


def _z(total: pd.Series, squares: pd.Series, k: pd.Series) -> pd.Series:
    """``mean / (sd / √k)`` from sums (NaN below 2 estimates or at zero spread)."""
    mean = total / k
    var = (squares - k * mean**2) / (k - 1)
    sd = np.sqrt(var.clip(lower=0))
    return (mean / (sd / np.sqrt(k))).where((k > 1) & (sd > 0))


def cell_table(sums: pd.DataFrame) -> pd.DataFrame:
    """Per estimator and cell: studies, estimable share, mean episodes, coverage and z against
    the windowed estimand (``truth_w``, the grade) and the exact-day one (``truth``)."""
    s = sums.set_index(["estimator", *CELL])
    g, ok = s["graded"].where(s["graded"] > 0), s["ok"].where(s["ok"] > 0)
    return pd.DataFrame(
        {
            "studies": s["studies"],
            "estimable": s["ok"] / s["studies"],
            "n": s["sum_n"] / ok,
            "truth_w": s["sum_truth_w"] / s["studies"],
            "truth": s["sum_truth"] / s["studies"],
            "bias_w": s["sum_err_w"] / g,
            "cov_w": s["covered_w"] / g,
            "z_w": _z(s["sum_err_w"], s["ss_err_w"], g),
            "cov": s["covered"] / ok,
            "z": _z(s["sum_err"], s["ss_err"], ok),
            "graded": s["graded"],
            "covered_w": s["covered_w"],
            "ok": s["ok"],
            "covered": s["covered"],
            "reason": s["reason"],
        }
    )


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
    return float(stats.norm.isf(0.025 / max(cells, 1)))


def wilson(k: int, n: int) -> str:
    """Wilson 95 % interval of ``k`` of ``n`` as text."""
    lo, hi = wilson_interval(k, max(n, 1))
    return f"{lo:.3f}–{hi:.3f}"


def pooled_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per estimator over its reported grid: cells, coverage (windowed, exact-day), worst
    cell, per-cell failures beside the number expected by chance."""
    rows = []
    for est, g in cells.groupby(level="estimator", sort=False):
        rep = g[g["estimable"] >= REPORTED_SHARE]
        kw, nw = int(rep["covered_w"].sum()), int(rep["graded"].sum())
        exp_z, exp_cov = chance_failures(rep["graded"])
        zb = bonferroni_z(len(rep))
        rows.append(
            {
                "estimator": est,
                "studies": int(g["studies"].max()),
                "cells": len(rep),
                "not_reported": len(g) - len(rep),
                "estimates": nw,
                "coverage_w": kw / max(nw, 1),
                "wilson": wilson(kw, nw),
                "min_cell_cov_w": rep["cov_w"].min(),
                "cells_cov_w<0.90": int((rep["cov_w"] < COVERAGE_CELL_MIN).sum()),
                "expected<0.90": exp_cov,
                "cells_|z_w|>2.5": int((rep["z_w"].abs() > Z_MAX).sum()),
                "expected>2.5": exp_z,
                "max_|z_w|": rep["z_w"].abs().max(),
                "bonferroni_z": zb,
                "cells_over_bonferroni": int((rep["z_w"].abs() > zb).sum()),
                "coverage_exact_day": rep["covered"].sum() / max(rep["ok"].sum(), 1),
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
        exp_z, _ = chance_failures(g["graded"])
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


def by_size(cells: pd.DataFrame) -> pd.DataFrame:
    """Pooled windowed coverage of the reported cells by mean episodes analysed per cell."""
    rep = cells[cells["estimable"] >= REPORTED_SHARE].reset_index()
    labels = ["a) ≤ 20", "b) 21–40", "c) 41–80", "d) 81–160", "e) > 160"]
    rep["episodes"] = pd.cut(rep["n"], [0, 20, 40, 80, 160, np.inf], labels=labels)
    g = rep.groupby(["episodes", "estimator"], observed=True)
    out = (g["covered_w"].sum() / g["graded"].sum()).rename("coverage_w").to_frame()
    out["cells"] = g.size()
    return out.reset_index()


def print_tables(sums: pd.DataFrame, cells_csv: Path | None = None) -> None:
    """The pooled table, the breakdowns by week and by cell size, the failing cells and the
    cells left out of the reported grid, per scenario; ``cells_csv`` gets every cell."""
    pd.set_option("display.width", 250)
    pd.set_option("display.max_rows", 400)
    pd.set_option("display.max_colwidth", 90)
    ff = lambda v: f"{v:.3f}"  # noqa: E731
    tables = []
    for scen, s in sums.groupby("scenario", sort=False):
        cells = cell_table(s)
        tables.append(cells.assign(scenario=scen))
        runs = s.drop_duplicates(["code", "estimator"])
        print(f"\n== scenario {scen} ==")
        print(runs[["estimator", "code", "seeds"]].to_string(index=False))
        print(pooled_table(cells).to_string(float_format=ff))
        print("\nby week, planted zero or not:")
        print(breakdown(cells).to_string(index=False, float_format=ff))
        print("\nby mean episodes analysed per cell:")
        print(by_size(cells).to_string(index=False, float_format=ff))
        rep = cells[cells["estimable"] >= REPORTED_SHARE].reset_index()
        bad = rep[(rep["cov_w"] < COVERAGE_CELL_MIN) | (rep["z_w"].abs() > Z_MAX)]
        cols = [*CELL, "estimator", "studies", "n", "truth_w", "bias_w", "z_w", "cov_w"]
        print(f"\ncells failing a per-cell target against the windowed estimand ({len(bad)}):")
        print(bad[cols].to_string(index=False, float_format=ff))
        out = cells[cells["estimable"] < REPORTED_SHARE].reset_index()
        why = out.groupby(["estimator", "reason"]).size().rename("cells").reset_index()
        print(f"\ncells not in the reported grid ({len(out)}), by estimator and reason:")
        print(why.to_string(index=False))
    if cells_csv is not None:
        pd.concat(tables).reset_index().to_csv(cells_csv, index=False, float_format="%.4f")
        print(f"\nper-cell table: {cells_csv}")


def replication_table(first: pd.DataFrame, again: pd.DataFrame) -> pd.DataFrame:
    """Each (estimator, cell, week) of the reported grid that ``first`` flagged (|z_w| >
    :data:`Z_MAX`), beside the same estimator, cell and week in ``again``, a run on new seeds.

    Both are per-cell sums (:func:`cell_sums`). ``z_expected`` is the z the new run would
    show if the first run's bias were the true one (``bias_first / (sd_again / √graded)``).
    A real bias replicates with the first run's sign and about that size; a cell that
    crossed the threshold by chance (over hundreds of cells some do) shows a ``z_again`` of
    either sign, spread as a standard normal.

    Examples
    --------
    >>> def sums(seed0, errs):
    ...     return cell_sums(pd.DataFrame({"scenario": "s", "code": "c", "estimator": "e",
    ...         "seed": range(seed0, seed0 + len(errs)), "condition": "x", "instrument": "nprs",
    ...         "arm": "a", "versus": "b", "week": 6, "status": "ok", "reason": "",
    ...         "estimate": errs, "ci_low": -9.0, "ci_high": 9.0, "n": 50, "truth": 0.0,
    ...         "truth_w": 0.0}))
    >>> t = replication_table(sums(0, [1.0, 1.2, 0.9, 1.1]), sums(10, [1.0, -1.0, 0.5, -0.4]))
    >>> t[["z_first", "z_again", "z_expected"]].round(2).values.tolist()
    [[16.27, 0.06, 2.34]]
    """
    keys = ["estimator", *CELL]
    a = cell_table(first).reset_index()
    a = a[(a["estimable"] >= REPORTED_SHARE) & (a["z_w"].abs() > Z_MAX)]
    b = cell_table(again).reset_index()
    sd = (b["bias_w"] / b["z_w"]) * np.sqrt(b["graded"])
    b = b.assign(sd_again=sd)[[*keys, "graded", "bias_w", "z_w", "cov_w", "sd_again"]]
    out = a[[*keys, "graded", "bias_w", "z_w"]].merge(
        b, on=keys, how="left", suffixes=("_first", "_again")
    )
    out["z_expected"] = out["bias_w_first"] / (out["sd_again"] / np.sqrt(out["graded_again"]))
    return out.drop(columns="sd_again").rename(
        columns={"z_w_first": "z_first", "z_w_again": "z_again", "cov_w": "cov_again"}
    )


def paired_table(a: pd.DataFrame, b: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Two runs on the same seeds (rows of ``bench_coverage`` or ``bench_ipcw``), e.g. with
    and without dropout: per group of ``by``, the mean over the seeds both estimated of
    ``a``'s estimate minus ``b``'s (what the scenario change did, with its paired z), and the
    bias and z of each run against its windowed truth.

    Examples
    --------
    >>> run = lambda est: pd.DataFrame({"seed": [1, 2, 3], "week": 6, "status": "ok",
    ...     "estimate": est, "truth_w": 0.0})
    >>> t = paired_table(run([1.0, 1.5, 0.5]), run([0.1, 0.4, -0.2]), ["week"])
    >>> t[["studies", "difference", "bias_a", "bias_b"]].round(2).values.tolist()
    [[3.0, 0.9, 1.0, 0.1]]
    """
    keys = ["seed", *by]
    ok = [r[r["status"] == "ok"] for r in (a, b)]
    both = ok[0].merge(ok[1], on=keys, suffixes=("_a", "_b"))
    both = both.assign(
        difference=both["estimate_a"] - both["estimate_b"],
        error_a=both["estimate_a"] - both["truth_w_a"],
        error_b=both["estimate_b"] - both["truth_w_b"],
    )
    g = both.groupby(by)

    def z(col: str) -> pd.Series:
        return g[col].mean() / (g[col].std() / np.sqrt(g.size()))

    return pd.DataFrame(
        {
            "studies": g.size(),
            "difference": g["difference"].mean(),
            "difference_z": z("difference"),
            "bias_a": g["error_a"].mean(),
            "z_a": z("error_a"),
            "bias_b": g["error_b"].mean(),
            "z_b": z("error_b"),
        }
    )
