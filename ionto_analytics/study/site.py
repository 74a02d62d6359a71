"""One site's run of a study: every contrast of the spec against the site's store, as safe
aggregate tables (nothing row-level, every count through :mod:`ionto_analytics.suppression`).

Tables (tidy DataFrames, one row per contrast and item; ``contrast`` is
:attr:`data_schemas.study.Contrast.key`):

* ``contrasts`` – status, estimate, SE, CI, p-value, n per arm, the E-values of the estimate
  and of its CI limit nearest the null (:mod:`ionto_analytics.compare.evalue`) and
  ``change_sd``, the pooled within-arm SD of the change that scales them (the coordinator
  needs it for the pooled estimate's E-value). ``status`` is ``ok``,
  ``empty_arm`` (an arm has no episode: reported, not estimable), ``small_arm`` (an arm has
  1 to threshold − 1 episodes: withheld, its estimate would describe a handful of people)
  or ``not_estimable`` (the estimator refused; the reason is in ``diagnostics``). The SE is
  ``(ci_high − ci_low) / (2 × z₀.₉₇₅)`` (Cochrane Handbook 6.3.1: the large-sample
  back-calculation; the site CIs use t references with N − K or G − 1 df).
* ``attrition`` – per contrast: every cohort exclusion, the estimator's exclusions, the
  episodes analysed per arm and the total, suppressed together (the total is their sum, so
  complementary suppression applies).
* ``table1`` – per contrast and arm: n, mean and SD of the continuous baseline variables
  (hidden when n is small); level counts of the categorical ones as a levels × arms grid
  with its totals, suppressed with complementary suppression. No medians or quartiles:
  with few episodes they are individual values.
* ``balance`` – SMD per variable (and IPTW's weighted SMD where it has one).
* ``diagnostics`` – the estimator and variance, clinics, notes and warnings;
* ``sufficient`` – for ANCOVA contrasts, X'X, X'y and y'y of the design
  (:mod:`~ionto_analytics.study.sufficient`), unless a count behind them is small.

Examples
--------
>>> from data_schemas import store
>>> from data_schemas.study import parse_study
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> spec = parse_study("name: s\\nversion: '1'\\ncohorts: [{condition: epicondylitis}]\\n"
...                    "arms: [ionto+exercise, exercise]\\ninstruments: [prtee]\\nweeks: [6]\\n"
...                    "estimators: [ancova]\\n")
>>> run_site(engine, spec, site="a")
Traceback (most recent call last):
...
data_schemas.errors.SchemaError: study s 1 cannot be answered at site a: ...
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import Engine

from data_schemas.errors import SchemaError
from data_schemas.study import Contrast, StudySpec
from data_schemas.vocabulary import conditions_in
from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.fit import choose_se
from ionto_analytics.compare.frame import AnalysisFrame, comparison_frame
from ionto_analytics.compare.iptw import iptw
from ionto_analytics.compare.mixed import mixed_model
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.compare.table1 import table1
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.loaders import load_episodes, load_outcomes
from ionto_analytics.study.sufficient import sufficient_statistics, to_table
from ionto_analytics.suppression import derived_mask, small, suppress_counts

__all__ = ["TABLES", "SiteResults", "check_site", "run_site"]

TABLES = ("contrasts", "attrition", "table1", "balance", "diagnostics", "sufficient")
"""The tables of a site's results, in package order."""

Z975 = float(stats.norm.ppf(0.975))
CONTINUOUS = ("age_years", "symptom_duration_weeks", "baseline")
CATEGORICAL = ("sex",)
MIXED_WINDOWS = (4, 6, 12)


@dataclass(frozen=True, eq=False)
class SiteResults:
    """The aggregate tables of one site's run (see the module docstring)."""

    site: str
    spec: StudySpec
    tables: dict[str, pd.DataFrame]


def check_site(spec: StudySpec, episodes: pd.DataFrame, outcomes: pd.DataFrame, site: str) -> None:
    """Refuse a spec the site cannot answer (a condition or instrument absent from its store),
    listing every gap, before any analysis runs.

    Examples
    --------
    >>> ep = pd.DataFrame({"condition": ["plantar_fasciitis"]})
    >>> from data_schemas.study import parse_study
    >>> spec = parse_study("name: s\\nversion: '1'\\ncohorts: [{condition: plantar_fasciitis}]\\n"
    ...     "arms: [ionto+exercise, exercise]\\ninstruments: [ffi]\\nweeks: [6]\\n"
    ...     "estimators: [ancova]\\n")
    >>> check_site(spec, ep, pd.DataFrame({"instrument": ["ffi"]}), "a") is None
    True
    """
    present = set(episodes["condition"].dropna())
    measured = set(outcomes["instrument"].dropna())
    gaps = [
        f"cohorts[{i}].condition: no episode of {c!r} in this store"
        for i, c in enumerate(spec.conditions)
        if not present & set(conditions_in(c))
    ]
    gaps += [
        f"instruments[{i}]: no {k!r} score in this store"
        for i, k in enumerate(spec.instruments)
        if k not in measured
    ]
    if gaps:
        raise SchemaError(
            f"study {spec.name} {spec.version} cannot be answered at site {site}: "
            + "; ".join(gaps)
            + "; remove these from the spec for this network or import the data"
        )


def _estimate(af: AnalysisFrame, c: Contrast, spec: StudySpec, se: Any) -> ComparisonResult:
    if c.estimator == "mixed":
        windows = tuple(sorted({*MIXED_WINDOWS, c.week}))
        return mixed_model(af, windows=windows, covariates=spec.covariates)
    if c.estimator == "iptw":
        return iptw(af, covariates=spec.covariates, se=se)
    return ancova(af, covariates=spec.covariates, se=se)


def _attrition(
    c: Contrast,
    cohort_attrition: pd.DataFrame,
    analysed: dict[str, int],
    estimator_excluded: dict[str, int],
    arms: tuple[str, str],
    threshold: int,
) -> pd.DataFrame:
    steps = cohort_attrition.iloc[1:]
    rows = {f"excluded: {k}": int(n) for k, n in zip(steps["key"], steps["excluded"], strict=True)}
    remaining = int(cohort_attrition["remaining"].iloc[-1])
    not_analysed = remaining - sum(analysed.values())
    if estimator_excluded and sum(estimator_excluded.values()) == not_analysed:
        rows.update({f"not analysed: {k}": int(n) for k, n in estimator_excluded.items()})
    else:
        rows["not analysed: estimator exclusions"] = not_analysed
    rows.update({f"analysed: {a}": int(analysed.get(a, 0)) for a in arms})
    s = suppress_counts(
        pd.DataFrame({"n": list(rows.values())}, index=list(rows)),
        total_row=True,
        threshold=threshold,
        total_label="all episodes",
    )
    out = s.published().reset_index(names="step")
    out.insert(0, "contrast", c.key)
    return out


def _table1(
    c: Contrast, af: AnalysisFrame, arms: tuple[str, str], threshold: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = af.data.drop_duplicates("episode_id")
    t1 = table1(data, by="arm", variables=[*CONTINUOUS, *CATEGORICAL], groups=arms)
    rows: list[dict[str, Any]] = []
    cont = t1.data[t1.data["variable"].isin(CONTINUOUS)]
    hide = small(cont["n"], threshold)
    for (_, r), h in zip(cont.iterrows(), hide, strict=True):
        rows.append(
            {
                "variable": r["variable"],
                "level": "",
                "arm": r["group"],
                "n": np.nan if h else r["n"],
                "mean": np.nan if h else r["mean"],
                "sd": np.nan if h else r["sd"],
            }
        )
    for var in CATEGORICAL:
        grid = (
            data.assign(level=data[var].astype(str))
            .pivot_table(
                index="level", columns="arm", values="episode_id", aggfunc="count", fill_value=0
            )
            .reindex(columns=list(arms), fill_value=0)
        )
        s = suppress_counts(
            grid, total_row=True, total_col=True, threshold=threshold, total_label="all"
        )
        pub = s.published()
        for level in pub.index:
            for arm in pub.columns:
                rows.append(
                    {
                        "variable": var,
                        "level": str(level),
                        "arm": str(arm),
                        "n": pub.loc[level, arm],
                        "mean": np.nan,
                        "sd": np.nan,
                    }
                )
    t = pd.DataFrame(rows)
    t.insert(0, "contrast", c.key)
    hidden = t1.data.groupby("variable")["n"].min()
    smd = t1.smd.assign(
        smd=t1.smd["smd"].where(
            ~derived_mask(small(hidden.reindex(t1.smd["variable"]).to_numpy(), threshold))
        )
    )
    bal = smd.rename(columns={"smd": "smd_before"}).assign(smd_after=np.nan)
    bal.insert(0, "contrast", c.key)
    return t, bal


def _contrast_row(
    c: Contrast, spec: StudySpec, status: str, n: dict[str, float], result: ComparisonResult | None
) -> dict[str, Any]:
    ok = status == "ok" and result is not None
    est = result.estimate if ok else np.nan
    lo = result.ci_low if ok else np.nan
    hi = result.ci_high if ok else np.nan
    return {
        "contrast": c.key,
        "condition": c.condition,
        "instrument": c.instrument,
        "week": c.week,
        "estimator": c.estimator,
        "arm_first": spec.arms[0],
        "arm_second": spec.arms[1],
        "status": status,
        "estimate": est,
        "se": (hi - lo) / (2 * Z975) if ok else np.nan,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": result.p_value if ok else np.nan,
        "e_value": result.e_value if ok else np.nan,
        "e_value_ci": result.e_value_ci if ok else np.nan,
        "change_sd": result.change_sd if ok else np.nan,
        "n_first": n[spec.arms[0]],
        "n_second": n[spec.arms[1]],
    }


def _one_contrast(
    c: Contrast, spec: StudySpec, episodes: pd.DataFrame, outcomes: pd.DataFrame
) -> dict[str, list[Any]]:
    arms, thr = spec.arms, spec.threshold
    cohort = (
        ComparisonSpec(c.condition, c.instrument, arms, week=c.week, method=c.estimator)
        .cohort()
        .build(episodes, outcomes, None)
    )
    af = comparison_frame(cohort.episodes, cohort.outcomes, c.instrument, c.week, arms)
    clinics = int(cohort.episodes["clinic_id"].nunique())
    se = choose_se(clinics)
    counts = {a: int(cohort.n.get(a, 0)) for a in arms}
    result, notes, est_text = None, [], ""
    if not all(counts.values()):
        status = "empty_arm"
    elif small(list(counts.values()), thr).any():
        status = "small_arm"
    else:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", StatisticalWarning)
                result = _estimate(af, c, spec, se)
            notes = [str(w.message) for w in caught if issubclass(w.category, StatisticalWarning)]
            notes += list(result.notes)
            est_text = result.estimator
            counts = {a: int(result.n.get(a, 0)) for a in arms}
            status = "small_arm" if small(list(counts.values()), thr).any() else "ok"
        except InputError as error:
            status, notes = "not_estimable", [str(error).split(" (exclusions")[0]]
    attrition = _attrition(
        c,
        cohort.attrition,
        counts if result else {a: 0 for a in arms},
        result.excluded if result else {},
        arms,
        thr,
    )
    shown = attrition.set_index("step")["n"]
    n = {a: shown[f"analysed: {a}"] for a in arms}
    out: dict[str, list[Any]] = {
        "contrasts": [_contrast_row(c, spec, status, n, result)],
        "attrition": [attrition],
        "diagnostics": [
            {
                "contrast": c.key,
                "estimator_detail": est_text,
                "clinics": clinics,
                "variance": se,
                "notes": " | ".join(dict.fromkeys(notes)),
            }
        ],
        "table1": [],
        "balance": [],
        "sufficient": [],
    }
    if status == "ok" and result is not None:
        t, bal = _table1(c, af, arms, thr)
        if result.balance is not None and "smd_after" in result.balance.columns:
            after = result.balance.set_index("variable")["smd_after"]
            bal["smd_after"] = bal["variable"].map(after)
        out["table1"], out["balance"] = [t], [bal]
        if c.estimator == "ancova":
            try:
                out["sufficient"] = [
                    to_table(sufficient_statistics(af, arms, spec.covariates, thr), c.key)
                ]
            except InputError as error:
                diag = out["diagnostics"][0]
                diag["notes"] = " | ".join(x for x in (diag["notes"], str(error)) if x)
    return out


def run_site(engine: Engine, spec: StudySpec, site: str) -> SiteResults:
    """Run every contrast of ``spec`` on the store behind ``engine``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The site's migrated store.
    spec : StudySpec
        The validated study spec.
    site : str
        The site's name in the package and the pooled results.

    Returns
    -------
    SiteResults
        Tables not yet checked: :func:`ionto_analytics.study.package.write_package` checks
        them before anything is written.
    """
    episodes, outcomes = load_episodes(engine), load_outcomes(engine)
    check_site(spec, episodes, outcomes, site)
    parts: dict[str, list[Any]] = {k: [] for k in TABLES}
    for c in spec.contrasts():
        for k, v in _one_contrast(c, spec, episodes, outcomes).items():
            parts[k] += v
    tables = {}
    for k, v in parts.items():
        frames = [x if isinstance(x, pd.DataFrame) else pd.DataFrame([x]) for x in v]
        tables[k] = (
            pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"contrast": []})
        )
    return SiteResults(site=site, spec=spec, tables=tables)
