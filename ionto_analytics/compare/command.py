"""The logic behind ``ionto compare``: store → frames → cohort → estimator → table or JSON.

:func:`run_compare` does the work and returns a :class:`CompareReport`; the CLI in
:mod:`ionto.cli` only parses options and prints :meth:`CompareReport.to_text` or
:meth:`CompareReport.to_json`.

The estimate is the difference in mean change from baseline at the chosen week, *first arm
minus second arm*, from ANCOVA (default), a linear mixed model over weeks 4, 6 and 12 (and
the chosen week), inverse-probability-of-treatment weighting, or an MMRM over the same
weeks. For ANCOVA and IPTW the variance is cluster-robust by clinic when there are at least
20 clinics, otherwise HC3 (chosen here explicitly and stated in ``notes``); the mixed model
and the MMRM use model-based standard errors with Satterthwaite degrees of freedom.
``excluded`` merges the cohort's attrition (condition, arm, per-protocol rules, ...) and the
estimator's exclusions (no baseline, no follow-up in the window, missing covariate).

Which estimator is valid under which missingness of the follow-up scores:

* ``ancova``, ``iptw`` (complete cases at the week): missing completely at random, or
  missingness independent of the outcome given the covariates adjusted for. Dropout that
  depends on the improvement already seen (missing at random) biases them at late weeks.
* ``mixed``, ``mmrm`` (every score of every episode, over all windows): missing at random
  given the observed history (baseline, earlier windows) and the covariates. ``mmrm``
  (unstructured covariance) is the dropout-valid primary analysis; the random-intercept
  ``mixed`` model is valid under MAR only if its equal-correlation assumption holds.
* ``mice_sensitivity`` (:mod:`ionto_analytics.compare.mice`): missing at random given the
  imputation model's variables.

None is valid when the dropout depends on the unobserved score itself (missing not at
random); that needs a sensitivity analysis.

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> run_compare(engine, ComparisonSpec("epicondylitis", "prtee", ("ionto+exercise", "exercise")))
Traceback (most recent call last):
...
data_schemas.errors.InputError: ionto compare: no episode is left to compare ...
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from sqlalchemy import Engine

from ionto_analytics.cohorts import CohortResult
from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.fit import MIN_CLUSTERS, choose_se
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.iptw import iptw
from ionto_analytics.compare.mixed import mixed_model
from ionto_analytics.compare.mmrm import mmrm
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.instruments import get_instrument
from ionto_analytics.jsonable import jsonable
from ionto_analytics.loaders import load_episodes, load_outcomes, load_sessions

__all__ = ["CompareReport", "compare_frames", "run_compare"]

MIXED_WINDOWS: tuple[int, ...] = (4, 6, 12)
"""Weeks the mixed model and the MMRM use besides the requested one."""


@dataclass(frozen=True, eq=False)
class CompareReport:
    """What ``ionto compare`` prints.

    Attributes
    ----------
    spec : ComparisonSpec
        What was compared (condition, instrument, arms, week, method, cohort rules).
    result : ComparisonResult
        The estimator's result (estimate = first − second).
    cohort : CohortResult
        The cohort with its attrition table.
    excluded : dict
        Cohort and estimator exclusions, reason → episodes.
    notes : tuple of str
        Caveats (variance choice, warnings raised while fitting).
    """

    spec: ComparisonSpec
    result: ComparisonResult
    cohort: CohortResult = field(repr=False)
    excluded: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``ionto compare --json``.

        Keys: ``condition``, ``instrument``, ``arms``, ``week``, ``method``, ``estimate``,
        ``ci_low``, ``ci_high``, ``p_value``, ``n`` ({arm: n}), ``excluded`` ({reason: n}),
        plus ``estimand``, ``estimator``, ``conf_level``, ``e_value``, ``e_value_ci`` (E-values
        of the estimate and of the CI limit nearest the null; see
        :meth:`ComparisonResult.from_fit`), ``notes`` and ``adjustment_set`` (the model terms
        adjusted for).
        """
        r, spec = self.result, self.spec
        return jsonable(
            {
                "condition": spec.condition,
                "instrument": spec.instrument,
                "arms": list(spec.arms),
                "week": spec.week,
                "method": spec.method,
                "estimate": r.estimate,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "p_value": r.p_value,
                "n": {a: int(r.n.get(a, 0)) for a in spec.arms},
                "excluded": self.excluded,
                "estimand": r.estimand,
                "estimator": r.estimator,
                "conf_level": r.conf_level,
                "e_value": r.e_value,
                "e_value_ci": r.e_value_ci,
                "notes": list(self.notes),
                "adjustment_set": list(r.adjustment_set),
            }
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict())

    def to_text(self) -> str:
        """A readable report: the contrast, per-arm counts and the exclusions."""
        r, spec = self.result, self.spec
        inst = get_instrument(spec.instrument)
        better = "higher" if inst.higher_is_better else "lower"
        lines = [
            f"ionto compare: {spec.condition}, {spec.instrument} ({better} is better), "
            f"week {spec.week}, {spec.method}",
            "",
            f"  {'contrast':<44}{'estimate':>10}{'95% CI':>22}{'p':>9}",
            f"  {spec.arms[0] + ' − ' + spec.arms[1]:<44}{r.estimate:>10.2f}"
            f"{f'{r.ci_low:.2f} to {r.ci_high:.2f}':>22}{_p(r.p_value):>9}",
            "",
            "  estimate: difference in mean change from baseline, first arm minus second",
            f"  estimator: {r.estimator}",
            f"  E-value: {_e(r.e_value)} for the estimate, {_e(r.e_value_ci)} for the CI limit "
            "nearest the null",
            "    (the risk ratio an unmeasured confounder would need with both arm and outcome",
            "    to explain it away; VanderWeele & Ding 2017, via estimate / pooled SD of the",
            "    change from baseline)",
            f"  adjusted for: {', '.join(r.adjustment_set) or 'nothing'}",
            "",
            "  episodes analysed:",
        ]
        lines += [f"    {a:<30}{r.n.get(a, 0):>8,}" for a in spec.arms]
        lines.append("  excluded:")
        if self.excluded:
            lines += [f"    {k:<30}{v:>8,}" for k, v in self.excluded.items()]
        else:
            lines.append("    none")
        if self.notes:
            lines.append("  notes:")
            lines += [f"    - {n}" for n in self.notes]
        return "\n".join(lines)


def _e(e: float) -> str:
    return "n/a" if e != e else f"{e:.2f}"  # NaN: no E-value for this estimate


def _p(p: float) -> str:
    if p != p:  # NaN
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def compare_frames(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    sessions: pd.DataFrame | None,
    spec: ComparisonSpec,
) -> CompareReport:
    """Compare two arms on frames already loaded (what :func:`run_compare` does after loading).

    Parameters
    ----------
    episodes, outcomes, sessions : DataFrame
        Frames of :mod:`ionto_analytics.loaders`; not modified (``sessions`` may be None unless
        ``spec.per_protocol``).
    spec : ComparisonSpec
        What to compare.

    Returns
    -------
    CompareReport
    """
    cohort = spec.cohort().build(episodes, outcomes, sessions)
    n = cohort.n
    if not all(n.values()):
        raise InputError(
            f"ionto compare: no episode is left to compare in arm(s) "
            f"{[a for a, k in n.items() if not k]} ({spec.condition}, {spec.instrument}); "
            f"exclusions: {cohort.excluded or 'none'}; check the condition, instrument and "
            "arm keys, or import more data"
        )
    notes: list[str] = []
    n_clinics = int(cohort.episodes["clinic_id"].nunique())
    se = choose_se(n_clinics)
    if se == "hc3" and spec.method in ("ancova", "iptw"):
        notes.append(
            f"{n_clinics} clinics (< {MIN_CLUSTERS}): HC3 robust variance with clinic fixed "
            "effects instead of clinic-clustered standard errors"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        result = _estimate(cohort, outcomes, spec, se)
    notes += [str(c.message) for c in caught if issubclass(c.category, StatisticalWarning)]
    notes += list(result.notes)
    excluded = {**cohort.excluded, **result.excluded}
    return CompareReport(
        spec=spec,
        result=result,
        cohort=cohort,
        excluded=excluded,
        notes=tuple(dict.fromkeys(notes)),
    )


def _estimate(
    cohort: CohortResult,
    outcomes: pd.DataFrame,
    spec: ComparisonSpec,
    se: Literal["cluster", "hc3"],
) -> ComparisonResult:
    # every instrument's outcomes: the intake scores of the others are in the adjustment set
    af = comparison_frame(
        cohort.episodes,
        outcomes[outcomes["episode_id"].isin(cohort.episodes["episode_id"])],
        spec.instrument,
        spec.week,
        spec.arms,
        adjust_for=spec.adjust_for,
    )
    if spec.method == "mixed":
        return mixed_model(af, windows=tuple(sorted({*MIXED_WINDOWS, spec.week})))
    if spec.method == "mmrm":
        return mmrm(af, windows=tuple(sorted({*MIXED_WINDOWS, spec.week})))
    if spec.method == "iptw":
        return iptw(af, se=se)
    return ancova(af, se=se)


def run_compare(engine: Engine, spec: ComparisonSpec) -> CompareReport:
    """Load the store and compare two arms (see :func:`compare_frames`).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.
    spec : ComparisonSpec
        What to compare (its keys were checked when it was made, before the store is read).

    Returns
    -------
    CompareReport
    """
    sessions = load_sessions(engine) if spec.per_protocol else None
    return compare_frames(load_episodes(engine), load_outcomes(engine), sessions, spec)
