"""The logic behind ``ionto compare``: store → frames → cohort → estimator → table or JSON.

:func:`run_compare` does the work and returns a :class:`CompareReport`; the CLI in
:mod:`ionto.cli` only parses options and prints :meth:`CompareReport.to_text` or
:meth:`CompareReport.to_json`.

The estimate is the difference in mean change from baseline at the chosen week, *first arm
minus second arm*, from ANCOVA (default), a linear mixed model over weeks 4, 6 and 12 (and
the chosen week), or inverse-probability-of-treatment weighting. The variance is
cluster-robust by clinic when there are at least 20 clinics, otherwise HC3 (chosen here
explicitly and stated in ``notes``). ``excluded`` merges the cohort's attrition (condition,
arm, per-protocol rules, ...) and the estimator's exclusions (no baseline, no follow-up in
the window, missing covariate).

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> run_compare(engine, condition="epicondylitis", instrument="prtee",
...             arms=("ionto+exercise", "exercise"))
Traceback (most recent call last):
...
data_schemas.errors.InputError: ionto compare: no episode is left to compare ...
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from sqlalchemy import Engine

from ionto_analytics.cohorts import Cohort, CohortResult
from ionto_analytics.compare import MIN_CLUSTERS, ancova, comparison_frame, iptw, mixed_model
from ionto_analytics.compare_result import ComparisonResult, jsonable
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.instruments import get_instrument
from ionto_analytics.load import load_episodes, load_outcomes, load_sessions

__all__ = ["METHODS", "CompareReport", "compare_frames", "run_compare"]

Method = Literal["ancova", "mixed", "iptw"]
METHODS: tuple[str, ...] = ("ancova", "mixed", "iptw")
"""Estimators ``ionto compare --method`` accepts."""
MIXED_WINDOWS: tuple[int, ...] = (4, 6, 12)
"""Weeks the mixed model uses besides the requested one."""


@dataclass(frozen=True, eq=False)
class CompareReport:
    """What ``ionto compare`` prints.

    Attributes
    ----------
    condition, instrument : str
    arms : tuple of (str, str)
    week : int
    method : str
        ``ancova``, ``mixed`` or ``iptw``.
    result : ComparisonResult
        The estimator's result (estimate = first − second).
    cohort : CohortResult
        The cohort with its attrition table.
    excluded : dict
        Cohort and estimator exclusions, reason → episodes.
    notes : tuple of str
        Caveats (variance choice, warnings raised while fitting).
    """

    condition: str
    instrument: str
    arms: tuple[str, str]
    week: int
    method: str
    result: ComparisonResult
    cohort: CohortResult = field(repr=False)
    excluded: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``ionto compare --json``.

        Keys: ``condition``, ``instrument``, ``arms``, ``weeks``, ``method``, ``estimate``,
        ``ci_low``, ``ci_high``, ``p_value``, ``n`` ({arm: n}), ``excluded`` ({reason: n}),
        plus ``estimand``, ``estimator``, ``conf_level`` and ``notes``.
        """
        r = self.result
        return jsonable(
            {
                "condition": self.condition,
                "instrument": self.instrument,
                "arms": list(self.arms),
                "weeks": self.week,
                "method": self.method,
                "estimate": r.estimate,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "p_value": r.p_value,
                "n": {a: int(r.n.get(a, 0)) for a in self.arms},
                "excluded": self.excluded,
                "estimand": r.estimand,
                "estimator": r.method,
                "conf_level": r.conf_level,
                "notes": list(self.notes),
            }
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict())

    def to_text(self) -> str:
        """A readable report: the contrast, per-arm counts and the exclusions."""
        r = self.result
        inst = get_instrument(self.instrument)
        better = "higher" if inst.higher_is_better else "lower"
        lines = [
            f"ionto compare: {self.condition}, {self.instrument} ({better} is better), "
            f"week {self.week}, {self.method}",
            "",
            f"  {'contrast':<44}{'estimate':>10}{'95% CI':>22}{'p':>9}",
            f"  {self.arms[0] + ' − ' + self.arms[1]:<44}{r.estimate:>10.2f}"
            f"{f'{r.ci_low:.2f} to {r.ci_high:.2f}':>22}{_p(r.p_value):>9}",
            "",
            "  estimate: difference in mean change from baseline, first arm minus second",
            f"  estimator: {r.method}",
            "",
            "  episodes analysed:",
        ]
        lines += [f"    {a:<30}{r.n.get(a, 0):>8,}" for a in self.arms]
        lines.append("  excluded:")
        if self.excluded:
            lines += [f"    {k:<30}{v:>8,}" for k, v in self.excluded.items()]
        else:
            lines.append("    none")
        if self.notes:
            lines.append("  notes:")
            lines += [f"    - {n}" for n in self.notes]
        return "\n".join(lines)


def _p(p: float) -> str:
    if p != p:  # NaN
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def compare_frames(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    sessions: pd.DataFrame | None,
    *,
    condition: str,
    instrument: str,
    arms: Sequence[str],
    week: int = 6,
    method: str = "ancova",
    per_protocol: bool = False,
    intention_to_treat: bool = False,
) -> CompareReport:
    """Compare two arms on frames already loaded (what :func:`run_compare` does after loading).

    Parameters
    ----------
    episodes, outcomes, sessions : DataFrame
        Frames of :mod:`ionto_analytics.load`; not modified.
    condition : str
        Condition or family key.
    instrument : str
        Instrument key.
    arms : (str, str)
        First and second arm; the estimate is first − second.
    week : int
        Follow-up week (window rule of :mod:`ionto_analytics.outcomes`).
    method : {"ancova", "mixed", "iptw"}
    per_protocol, intention_to_treat : bool
        Cohort rules (:class:`ionto_analytics.cohorts.Cohort`).

    Returns
    -------
    CompareReport
    """
    if method not in METHODS:
        raise InputError(f"method must be one of {list(METHODS)}, got {method!r}")
    arms_t = tuple(arms)
    if len(arms_t) != 2:
        raise InputError(f"ionto compare needs exactly two arms (first, second), got {arms_t}")
    try:
        week_i = int(week)
    except (TypeError, ValueError):
        raise InputError(f"week must be a whole number of weeks, got {week!r}") from None
    if week_i <= 1:
        raise InputError(f"week must be 2 or more (week 1 overlaps the baseline), got {week!r}")
    cohort = Cohort(
        condition,
        instrument,
        arms_t,
        per_protocol=per_protocol,
        intention_to_treat=intention_to_treat,
    ).build(episodes, outcomes, sessions)
    n = cohort.n
    if not all(n.values()):
        raise InputError(
            f"ionto compare: no episode is left to compare in arm(s) "
            f"{[a for a, k in n.items() if not k]} ({condition}, {instrument}); "
            f"exclusions: {cohort.excluded or 'none'}; check the condition, instrument and "
            "arm keys, or import more data"
        )
    notes: list[str] = []
    n_clinics = int(cohort.episodes["clinic_id"].nunique())
    se: Literal["cluster", "hc3"] = "cluster" if n_clinics >= MIN_CLUSTERS else "hc3"
    if se == "hc3" and method != "mixed":
        notes.append(
            f"{n_clinics} clinics (< {MIN_CLUSTERS}): HC3 robust variance with clinic fixed "
            "effects instead of clinic-clustered standard errors"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        result = _estimate(cohort, instrument, arms_t, week_i, method, se)
    notes += [str(c.message) for c in caught if issubclass(c.category, StatisticalWarning)]
    notes += list(result.notes)
    excluded = {**cohort.excluded, **result.excluded}
    return CompareReport(
        condition=condition,
        instrument=instrument,
        arms=(arms_t[0], arms_t[1]),
        week=week_i,
        method=method,
        result=result,
        cohort=cohort,
        excluded=excluded,
        notes=tuple(dict.fromkeys(notes)),
    )


def _estimate(
    cohort: CohortResult,
    instrument: str,
    arms: tuple[str, ...],
    week: int,
    method: str,
    se: Literal["cluster", "hc3"],
) -> ComparisonResult:
    ep, out = cohort.episodes, cohort.outcomes
    if method == "mixed":
        windows = tuple(sorted({*MIXED_WINDOWS, week}))
        return mixed_model(ep, out, instrument, week, arms, windows=windows)
    af = comparison_frame(ep, out, instrument, week, arms)
    if method == "iptw":
        return iptw(af, se=se)
    return ancova(af, se=se)


def run_compare(
    engine: Engine,
    *,
    condition: str,
    instrument: str,
    arms: Sequence[str],
    week: int = 6,
    method: str = "ancova",
    per_protocol: bool = False,
    intention_to_treat: bool = False,
) -> CompareReport:
    """Load the store and compare two arms (see :func:`compare_frames`).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.
    condition, instrument, arms, week, method, per_protocol, intention_to_treat
        As in :func:`compare_frames`.

    Returns
    -------
    CompareReport
    """
    Cohort(condition, instrument, tuple(arms))  # check the keys before reading the store
    sessions = load_sessions(engine) if per_protocol else None
    return compare_frames(
        load_episodes(engine),
        load_outcomes(engine),
        sessions,
        condition=condition,
        instrument=instrument,
        arms=arms,
        week=week,
        method=method,
        per_protocol=per_protocol,
        intention_to_treat=intention_to_treat,
    )
