"""The logic behind ``ionto compare``: store → frames → cohort → estimator → table or JSON.

:func:`run_compare` does the work and returns a :class:`CompareReport`; the CLI in
:mod:`ionto.cli` only parses options and prints :meth:`CompareReport.to_text` or
:meth:`CompareReport.to_json`.

The estimate is the difference in mean change from baseline at the chosen week, *first arm
minus second arm*, from ANCOVA (default), a linear mixed model over weeks 4, 6 and 12 (and
the chosen week), inverse-probability-of-treatment weighting, an MMRM over the same
weeks, or inverse-probability-of-censoring weighting. For ANCOVA, IPTW and IPCW the
variance is cluster-robust by clinic when there are at least 20 clinics, otherwise HC2
(chosen here explicitly and stated in ``notes``); the mixed model uses CR2 cluster-robust
standard errors over episodes (its random intercept is a working model) and the MMRM
Kenward–Roger adjusted ones, each with its degrees of freedom (the MMRM's covariance is
the converged one of the unstructured matrix and simpler structures with the smallest REML
AIC; a simpler one takes CR2 SEs; said in ``notes``).
``excluded`` merges the cohort's attrition (condition, arm, per-protocol rules, ...) and the
estimator's exclusions (no baseline, no follow-up in the window, missing covariate).

Which estimator is valid under which missingness of the follow-up scores:

* ``ancova``, ``iptw`` (complete cases at the week): missing completely at random, or
  missing at random given the baseline set only (missingness independent of the outcome
  given the covariates adjusted for). Dropout that depends on the improvement already seen
  (missing at random given the history) biases them at late weeks.
* ``mixed``, ``mmrm`` (every score of every episode, over all windows): missing at random
  given the analysed instrument's windows (baseline, earlier windows) and the covariates.
  ``mmrm`` is the dropout-valid analysis when the dropout follows that instrument and its
  covariance (chosen by AIC, the unstructured matrix where the data support it) holds; the
  random-intercept ``mixed`` model is valid under MAR only if its equal-correlation
  assumption holds. Dropout driven by *another* instrument's scores
  (in the emulator: the NPRS at visit 3, for a PRTEE analysis) biases both.
* ``ipcw`` (complete cases at the week, weighted by the inverse probability of still being
  under observation, :mod:`ionto_analytics.compare.ipcw`): missing at random given the
  observed history of every instrument (their latest scores before each window) and the
  baseline set, assuming the censoring models are right.
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
data_schemas.errors.InputError: the store has 0 episodes; ...
"""

from __future__ import annotations

import difflib
import json
import textwrap
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import pandas as pd
from sqlalchemy import Engine

from data_schemas.vocabulary import ARMS, CONDITION_FAMILIES, CONDITIONS, conditions_in
from data_schemas.windows import window_days, window_text
from ionto_analytics.cohorts import CohortResult
from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.fit import MIN_CLUSTERS, choose_se
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.ipcw import ipcw
from ionto_analytics.compare.iptw import iptw
from ionto_analytics.compare.mixed import mixed_model
from ionto_analytics.compare.mmrm import mmrm
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.instruments import REGISTRY, Mcid, get_instrument, select_mcid
from ionto_analytics.jsonable import jsonable
from ionto_analytics.loaders import load_episodes, load_ledger, load_outcomes, load_sessions
from ionto_analytics.provenance import code_version, ledger_sha256

__all__ = [
    "WIDTH",
    "CompareReport",
    "compare_frames",
    "comparison_keys",
    "known_key",
    "run_compare",
]

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
    data_hash : str or None
        :func:`~ionto_analytics.provenance.ledger_sha256` of the store compared (None when
        the frames did not come from a store).
    """

    spec: ComparisonSpec
    result: ComparisonResult
    cohort: CohortResult = field(repr=False)
    excluded: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    data_hash: str | None = None

    @property
    def mcid(self) -> Mcid:
        """The instrument's MCID for this condition and week (:func:`select_mcid`)."""
        condition = self.spec.condition if self.spec.condition in CONDITIONS else None
        return select_mcid(
            self.spec.instrument, condition=condition, week=self.spec.week, allow_unverified=True
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``ionto compare --json``.

        Keys: ``condition``, ``instrument``, ``arms``, ``week``, ``method``, ``estimate``,
        ``ci_low``, ``ci_high``, ``p_value``, ``n`` ({arm: n}), ``excluded`` ({reason: n}),
        plus ``estimand``, ``estimator``, ``conf_level``, ``e_value``, ``e_value_ci`` (E-values
        of the estimate and of the CI limit nearest the null; see
        :meth:`ComparisonResult.from_fit`), ``notes``, ``adjustment_set`` (the model terms
        adjusted for), ``analysis_set``, ``higher_is_better``, ``mcid`` (points, percent,
        source, note), ``window`` (week, first and last day, in words), ``data_hash`` and
        ``code_version``.
        """
        r, spec, mcid = self.result, self.spec, self.mcid
        first, last = window_days(spec.week)
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
                "analysis_set": _analysis_set(spec),
                "higher_is_better": get_instrument(spec.instrument).higher_is_better,
                "mcid": {
                    "points": mcid.points,
                    "percent": mcid.percent,
                    "source": mcid.source,
                    "note": mcid.note,
                },
                "window": {
                    "week": spec.week,
                    "first_day": first,
                    "last_day": last,
                    "text": window_text(spec.week),
                },
                "data_hash": self.data_hash,
                "code_version": code_version(),
            }
        )

    def to_json(self) -> str:
        """:meth:`to_dict` as one line of JSON."""
        return json.dumps(self.to_dict())

    def to_text(self) -> str:
        """A readable report, at most :data:`WIDTH` columns: the window, the analysis set,
        the MCID, the contrast, per-arm counts and the exclusions."""
        r, spec, mcid = self.result, self.spec, self.mcid
        better = "higher" if get_instrument(spec.instrument).higher_is_better else "lower"
        share = f" or {mcid.percent:.0%} of baseline" if mcid.percent else ""
        label = f"{spec.arms[0]} − {spec.arms[1]}"
        ci = f"{r.ci_low:.2f} to {r.ci_high:.2f}"
        numbers = f"{r.estimate:>9.2f}{ci:>22}{_p(r.p_value):>9}"
        row = (
            [f"  {label:<{_LABEL}}{numbers}"]
            if len(label) <= _LABEL
            else [f"  {label}", f"  {'':<{_LABEL}}{numbers}"]
        )
        title = f"ionto compare: {spec.condition}, {spec.instrument} ({better} is better)"
        lines = [
            *_wrap(f"{title}, {spec.method}", indent=""),
            *_wrap(f"window: {window_text(spec.week)}"),
            *_wrap(f"analysis set: {_analysis_set(spec)}"),
            *_wrap(f"MCID: {mcid.points:g} points{share} {mcid.source}"),
            *(_wrap(f"MCID note: {mcid.note}") if mcid.note else []),
            "",
            f"  {'contrast':<{_LABEL}}{'estimate':>9}{f'{r.conf_level:.0%} CI':>22}{'p':>9}",
            *row,
            "",
            *_wrap("estimate: difference in mean change from baseline, first arm minus second"),
            *_wrap(f"estimator: {r.estimator}"),
            *_wrap(
                f"E-value: {_e(r.e_value)} for the estimate, {_e(r.e_value_ci)} for the CI "
                "limit nearest the null (the risk ratio an unmeasured confounder would need "
                "with both arm and outcome to explain it away; VanderWeele & Ding 2017, via "
                "estimate / pooled SD of the change from baseline)"
            ),
            *_wrap(f"adjusted for: {', '.join(r.adjustment_set) or 'nothing'}"),
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
            for n in self.notes:
                lines += _wrap(f"- {n}", indent="    ")
        return "\n".join(lines)


def _e(e: float) -> str:
    return "n/a" if e != e else f"{e:.2f}"  # NaN: no E-value for this estimate


WIDTH = 80
"""Columns of the text report (a terminal's default width)."""
_LABEL = 36


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
    )


def _analysis_set(spec: ComparisonSpec) -> str:
    if spec.per_protocol:
        return "per protocol (device-log rules applied)"
    if spec.intention_to_treat:
        return "intention to treat (planned arm)"
    return "as treated, not per protocol (every episode in the two arms)"


def _p(p: float) -> str:
    if p != p:  # NaN
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def known_key(value: str, known: Iterable[str], what: str) -> str:
    """The vocabulary key ``value`` names, matched without regard to case, ``-`` or spaces.

    Raises
    ------
    InputError
        When no key matches, with the closest keys (:mod:`difflib`) and every key.

    Examples
    --------
    >>> known_key("PRTEE", ["prtee", "nprs"], "instrument")
    'prtee'
    >>> known_key("Plantar-Fasciitis", ["plantar_fasciitis"], "condition")
    'plantar_fasciitis'
    >>> known_key("prte", ["prtee", "nprs"], "instrument")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: unknown instrument 'prte'; did you mean prtee? ...
    """
    keys = list(known)
    by_fold = {_folded(k): k for k in keys}
    if _folded(value) in by_fold:
        return by_fold[_folded(value)]
    close = [by_fold[c] for c in difflib.get_close_matches(_folded(value), by_fold, n=3)]
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise InputError(f"unknown {what} {value!r}; {hint}expected one of: {', '.join(keys)}")


def _folded(key: str) -> str:
    return key.strip().lower().replace("-", "_").replace(" ", "_")


def comparison_keys(
    condition: str, instrument: str, arms: Iterable[str]
) -> tuple[str, str, tuple[str, ...]]:
    """Condition, instrument and arm keys as the vocabulary spells them (:func:`known_key`).

    Examples
    --------
    >>> comparison_keys("Epicondylitis", "PRTEE", ["Ionto+Exercise", "exercise"])
    ('epicondylitis', 'prtee', ('ionto+exercise', 'exercise'))
    """
    return (
        known_key(condition, (*CONDITIONS, *CONDITION_FAMILIES), "condition"),
        known_key(instrument, REGISTRY, "instrument"),
        tuple(known_key(a, ARMS, "arm") for a in arms),
    )


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
    if episodes.empty:
        raise InputError(
            "the store has 0 episodes; import the clinics' exports first "
            "(ionto import FOLDER) or choose another store with --db"
        )
    cohort = spec.cohort().build(episodes, outcomes, sessions)
    n = cohort.n
    if not all(n.values()):
        raise InputError(
            f"no episode is left to compare in arm(s) "
            f"{', '.join(a for a, k in n.items() if not k)} ({spec.condition}, "
            f"{spec.instrument}) out of {len(episodes):,} episodes in the store; excluded: "
            f"{_counts(cohort.excluded)}; choose other keys, or import more data"
        )
    notes: list[str] = []
    n_clinics = int(cohort.episodes["clinic_id"].nunique())
    se = choose_se(n_clinics)
    if se == "hc2" and spec.method in ("ancova", "iptw", "ipcw"):
        notes.append(
            f"{n_clinics} clinics (< {MIN_CLUSTERS}): HC2 robust variance with clinic fixed "
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
    se: Literal["cluster", "hc2"],
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
    has = af.data["has_follow_up"].astype(bool)
    lacking = [
        a
        for a, t in zip(spec.arms, (1, 0), strict=True)
        if not (af.data["treated"][has] == t).any()
    ]
    if lacking:
        raise InputError(
            f"no episode of arm(s) {', '.join(lacking)} has a {spec.instrument} "
            f"score in the window {window_text(spec.week)} ({int((~has).sum()):,} of "
            f"{len(has):,} episodes lack one); choose an earlier --at-weeks"
        )
    if spec.method == "mixed":
        return mixed_model(af, windows=tuple(sorted({*MIXED_WINDOWS, spec.week})))
    if spec.method == "mmrm":
        chosen = {} if spec.covariance is None else {"covariance": spec.covariance}
        return mmrm(af, windows=tuple(sorted({*MIXED_WINDOWS, spec.week})), **chosen)
    if spec.method == "iptw":
        return iptw(af, se=se)
    if spec.method == "ipcw":
        return ipcw(af, se=se)
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

    Notes
    -----
    Every episode is read, for the attrition table; of the outcome rows only those the
    cohort can use: its condition, clinics and intake dates go into the query, and so do the
    episodes in the compared arms (delivered, or planned for intention to treat), the only
    ones whose scores any later step looks at; every instrument is read, as the intake
    scores of the others are in the adjustment set.
    """
    cohort = spec.cohort()
    episodes = load_episodes(engine)
    conditions = conditions_in(cohort.condition)
    arm = episodes["planned_arm" if cohort.intention_to_treat else "arm"]
    compared = arm.isin(cohort.arms) & episodes["condition"].isin(conditions)
    outcomes = load_outcomes(
        engine,
        conditions=conditions,
        clinics=cohort.clinics,
        start=cohort.start,
        end=cohort.end,
        episodes=episodes.loc[compared, "episode_id"],
    )
    sessions = load_sessions(engine) if spec.per_protocol else None
    report = compare_frames(episodes, outcomes, sessions, spec)
    return replace(report, data_hash=ledger_sha256(load_ledger(engine)))
