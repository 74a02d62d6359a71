"""The one-row-per-episode analysis frame every estimator takes: :func:`comparison_frame`.

Examples
--------
>>> import pandas as pd
>>> episodes = pd.DataFrame({
...     "episode_id": ["e1", "e2", "e3"], "patient_id": ["p1", "p2", "p3"],
...     "clinic_id": "c1", "condition": "lateral_epicondylitis",
...     "arm": ["ionto+exercise", "exercise", None], "age_years": [40.0, 50.0, 60.0],
...     "sex": "female", "symptom_duration_weeks": 8.0, "n_visits": 10})
>>> outcomes = pd.DataFrame({"episode_id": ["e1", "e1", "e2", "e2", "e3"],
...                          "instrument": "nprs", "score": [7.0, 3.0, 6.0, 4.0, 5.0],
...                          "days_from_intake": [0, 41, 0, 44, 0]})
>>> af = comparison_frame(episodes, outcomes, "nprs", 6, ("ionto+exercise", "exercise"))
>>> af.data[["arm", "treated", "baseline", "follow_up", "change"]].to_numpy().tolist()
[['ionto+exercise', 1, 7.0, 3.0, -4.0], ['exercise', 0, 6.0, 4.0, -2.0]]
>>> af.excluded
{'no_arm': 1}

The adjustment set (:attr:`AnalysisFrame.adjust_for`) is every baseline characteristic that
can drive the treatment choice: age, sex, symptom duration (clinic by ``clinic_effects``) and
the intake score of every other instrument collected for the condition (``intake_<key>``;
:func:`~ionto_analytics.compare.adjustment.intake_scores` states the missing-indicator
rule).

>>> af.adjust_for
('age_years', 'sex', 'symptom_duration_weeks')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import patsy

from data_schemas.vocabulary import ARMS, conditions_in
from data_schemas.windows import window_label
from ionto_analytics.compare.adjustment import (
    MIN_PER_SPLINE_DF,
    SPLINE_DF,
    continuous_columns,
    intake_scores,
)
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument
from ionto_analytics.outcomes import change_from_baseline

__all__ = [
    "ANALYSIS_COLUMNS",
    "DEFAULT_COVARIATES",
    "AnalysisFrame",
    "as_analysis_frame",
    "comparison_frame",
    "design_terms",
    "with_categories",
]

DEFAULT_COVARIATES: tuple[str, ...] = ("age_years", "sex", "symptom_duration_weeks")
"""Episode covariates of every adjustment set, besides the baseline score and clinic."""

ANALYSIS_COLUMNS: tuple[str, ...] = (
    "episode_id",
    "patient_id",
    "clinic_id",
    "condition",
    "arm",
    "treated",
    "age_years",
    "sex",
    "symptom_duration_weeks",
    "n_visits",
    "instrument",
    "window",
    "baseline",
    "baseline_day",
    "follow_up",
    "follow_up_day",
    "change",
    "improvement",
    "has_follow_up",
)
"""Columns of :attr:`AnalysisFrame.data`."""

_EPISODE_NEEDS = (
    "episode_id",
    "patient_id",
    "clinic_id",
    "condition",
    "arm",
    "age_years",
    "sex",
    "symptom_duration_weeks",
    "n_visits",
)


@dataclass(frozen=True, eq=False)
class AnalysisFrame:
    """One row per episode in the two compared arms, with the exclusions tally.

    Attributes
    ----------
    data : DataFrame
        :data:`ANALYSIS_COLUMNS`; ``treated`` = 1 for ``arms[0]``; rows without a follow-up
        in the window are kept (``has_follow_up`` False) for missing-data methods.
    instrument : str
    week : int or "discharge"
    arms : tuple of (str, str)
        (first, second): estimates are first − second.
    excluded : dict
        Reason → episodes not in ``data`` (other arm, no arm, other condition, no baseline,
        missing covariate).
    condition : str or None
    outcomes : DataFrame or None
        The long outcomes (every day measured) of the episodes in ``data`` on every
        instrument they were scored on, not only ``instrument``: :meth:`at_week` and the
        repeated-measures models take ``instrument``'s other windows from them, and
        :func:`~ionto_analytics.compare.ipcw.ipcw` the observed history of all of them;
        None for a frame made from a plain DataFrame.
    covariates : tuple of str
        Covariates whose missing values excluded an episode.
    adjust_for : tuple of str
        The adjustment set besides the baseline score and clinic: columns of ``data`` every
        estimator adjusts for unless told otherwise (``intake_<key>`` columns and their
        ``intake_<key>_missing`` indicators included).
    imputed : dict
        ``intake_<key>`` → episodes whose missing intake score was mean-filled (indicator 1).
    """

    data: pd.DataFrame
    instrument: str
    week: int | str | None
    arms: tuple[str, str]
    excluded: dict[str, int] = field(default_factory=dict)
    condition: str | None = None
    outcomes: pd.DataFrame | None = field(default=None, repr=False)
    covariates: tuple[str, ...] = DEFAULT_COVARIATES
    adjust_for: tuple[str, ...] = DEFAULT_COVARIATES
    imputed: dict[str, int] = field(default_factory=dict)

    def adjustment(self, covariates: Sequence[str] | None) -> tuple[str, ...]:
        """The covariates an estimator adjusts for: ``covariates``, or the frame's set.

        Examples
        --------
        >>> af = AnalysisFrame(pd.DataFrame(), "nprs", 6, ("ionto+exercise", "exercise"))
        >>> af.adjustment(None), af.adjustment(["age_years"])
        (('age_years', 'sex', 'symptom_duration_weeks'), ('age_years',))
        """
        return self.adjust_for if covariates is None else tuple(covariates)

    def complete_cases(self, columns: Sequence[str] = ()) -> tuple[pd.DataFrame, dict[str, int]]:
        """Rows with a follow-up and every one of ``columns``, and the exclusions with them.

        Rows without a baseline are counted ``no_baseline``, without a value of a column
        ``missing_covariate:<column>``, without a follow-up ``no_follow_up_in_window``
        (in that order; each row counted once).

        Examples
        --------
        >>> af = AnalysisFrame(pd.DataFrame({"has_follow_up": [True, False, True],
        ...                                  "baseline": 5.0, "age_years": [40, 50, None]}),
        ...                    "nprs", 6, ("ionto+exercise", "exercise"))
        >>> len(af.complete_cases()[0]), af.complete_cases()[1]
        (2, {'no_follow_up_in_window': 1})
        >>> af.complete_cases(["age_years"])[1]
        {'missing_covariate:age_years': 1, 'no_follow_up_in_window': 1}
        """
        excluded = dict(self.excluded)
        keep = pd.Series(True, index=self.data.index)
        checks = [("baseline", "no_baseline")] if "baseline" in self.data.columns else []
        for c in dict.fromkeys(columns):
            if c not in self.data.columns:
                raise InputError(
                    f"covariate {c!r} is not a column of the analysis frame; columns: "
                    f"{list(self.data.columns)}"
                )
            checks.append((c, f"missing_covariate:{c}"))
        for c, reason in checks:
            gone = keep & self.data[c].isna()
            if gone.any():
                excluded[reason] = excluded.get(reason, 0) + int(gone.sum())
                keep &= ~gone
        gone = keep & ~self.data["has_follow_up"].astype(bool)
        if gone.any():
            excluded["no_follow_up_in_window"] = int(gone.sum())
            keep &= ~gone
        return self.data[keep.to_numpy()].reset_index(drop=True), excluded

    def n_per_arm(self, data: pd.DataFrame) -> dict[str, int]:
        """Distinct episodes per arm of :attr:`arms` in ``data`` (the rows an estimator used).

        Episodes are counted by ``episode_id`` (a long frame has several rows per episode);
        without that column every row is one episode.

        Examples
        --------
        >>> af = AnalysisFrame(pd.DataFrame(), "nprs", 6, ("ionto+exercise", "exercise"))
        >>> long = pd.DataFrame({"episode_id": ["e1", "e1", "e2"],
        ...                      "arm": ["ionto+exercise", "ionto+exercise", "exercise"]})
        >>> af.n_per_arm(long), af.n_per_arm(long.drop(columns="episode_id"))
        ({'ionto+exercise': 1, 'exercise': 1}, {'ionto+exercise': 2, 'exercise': 1})
        """
        d = data.drop_duplicates("episode_id") if "episode_id" in data.columns else data
        return {arm: int((d["arm"] == arm).sum()) for arm in self.arms}

    def at_week(self, week: int | str) -> AnalysisFrame:
        """The same episodes and exclusions with the follow-up taken at another window.

        Examples
        --------
        >>> episodes = pd.DataFrame({
        ...     "episode_id": ["e1", "e2"], "patient_id": ["p1", "p2"], "clinic_id": "c1",
        ...     "condition": "lateral_epicondylitis", "arm": ["ionto+exercise", "exercise"],
        ...     "age_years": 40.0, "sex": "female", "symptom_duration_weeks": 8.0,
        ...     "n_visits": 10})
        >>> outcomes = pd.DataFrame({"episode_id": ["e1"] * 3 + ["e2"] * 3,
        ...                          "instrument": "nprs", "score": [7.0, 4.0, 2.0, 6.0, 5.0, 4.0],
        ...                          "days_from_intake": [0, 28, 84, 0, 27, 85]})
        >>> af = comparison_frame(episodes, outcomes, "nprs", 4, ("ionto+exercise", "exercise"))
        >>> af.at_week(12).data["follow_up"].tolist(), af.at_week(12).week
        ([2.0, 4.0], 12)
        """
        if self.outcomes is None:
            raise InputError(
                "this analysis frame has no long outcomes to take another week from; "
                "build it with comparison_frame(episodes, outcomes, ...)"
            )
        again = comparison_frame(
            self.data[list(_EPISODE_NEEDS)],
            self.outcomes,
            self.instrument,
            week,
            self.arms,
            covariates=self.covariates,
            adjust_for=(),
        )
        intake = [c for c in self.data.columns if c.startswith("intake_")]
        # the intake columns are this frame's (same values; its imputation tally stays)
        data = again.data[list(ANALYSIS_COLUMNS)].merge(
            self.data[["episode_id", *intake]], on="episode_id", how="left"
        )
        return replace(
            again,
            data=data,
            excluded=dict(self.excluded),
            condition=self.condition,
            adjust_for=self.adjust_for,
            imputed=dict(self.imputed),
        )


def _check_arms(arms: Sequence[str]) -> tuple[str, str]:
    if isinstance(arms, str) or len(arms) != 2 or arms[0] == arms[1]:
        raise InputError(f"arms must be two different arm keys (first, second), got {arms!r}")
    bad = [a for a in arms if a not in ARMS]
    if bad:
        raise InputError(f"unknown arm(s) {bad}; expected keys from {list(ARMS)}")
    return (arms[0], arms[1])


def comparison_frame(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    instrument: str,
    week: int | str,
    arms: Sequence[str],
    *,
    condition: str | None = None,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    adjust_for: Sequence[str] | None = None,
) -> AnalysisFrame:
    """Build the one-row-per-episode analysis frame (baseline, follow-up, change, covariates).

    Window rule: see :mod:`ionto_analytics.outcomes` (baseline at day ≤ 7 nearest day 0;
    week W nearest day 7·W within ±7 days for W ≤ 6, ±14 days otherwise; ties earlier).

    Exclusions are counted, never silent: ``other_condition``, ``no_arm`` (arm null),
    ``other_arm``, ``no_baseline``, ``missing_covariate:<column>``. Episodes without a
    follow-up in the window stay in the frame (``has_follow_up`` False); complete-case
    estimators count them as ``no_follow_up_in_window``.

    Parameters
    ----------
    episodes : DataFrame
        Episode frame (:data:`data_schemas.frames.EpisodeFrame`); not modified.
    outcomes : DataFrame
        Long outcome frame (:data:`data_schemas.frames.OutcomeFrame`); not modified.
    instrument : str
        Instrument key.
    week : int or "discharge"
        Follow-up window.
    arms : (str, str)
        Arms compared; estimates are first − second.
    condition : str or None
        A condition or family key to restrict to.
    covariates : sequence of str
        Covariate columns that must be present (missing values exclude the episode).
    adjust_for : sequence of str or None
        The adjustment set (:attr:`AnalysisFrame.adjust_for`); None: ``covariates`` plus
        the intake score (and missing indicator) of every other instrument collected for
        the condition (:func:`~ionto_analytics.compare.adjustment.intake_scores`). Names
        may be any episode column or ``intake_<instrument>``.

    Returns
    -------
    AnalysisFrame
    """
    arms_t = _check_arms(arms)
    inst = get_instrument(instrument)
    label = window_label(week)
    if not isinstance(episodes, pd.DataFrame):
        raise InputError("episodes must be a DataFrame")
    missing = [c for c in _EPISODE_NEEDS if c not in episodes.columns]
    if missing:
        raise InputError(f"episodes: missing column(s) {missing}")
    if episodes["episode_id"].duplicated().any():
        dup = episodes.loc[episodes["episode_id"].duplicated(), "episode_id"].iloc[0]
        raise InputError(f"episodes: episode_id {dup!r} appears more than once")
    ep = episodes[list(_EPISODE_NEEDS)].copy()
    excluded: dict[str, int] = {}

    def drop(mask: pd.Series, reason: str) -> None:
        nonlocal ep
        k = int(mask.sum())
        if k:
            excluded[reason] = excluded.get(reason, 0) + k
            ep = ep[~mask.to_numpy()]

    if condition is not None:
        drop(~ep["condition"].isin(conditions_in(condition)), "other_condition")
    drop(ep["arm"].isna(), "no_arm")
    drop(~ep["arm"].isin(arms_t), "other_arm")
    changes = change_from_baseline(outcomes, windows=(week,), instrument=inst.key)
    changes = changes[changes["episode_id"].isin(ep["episode_id"])]
    merged = ep.merge(changes, on="episode_id", how="left")
    merged["instrument"] = inst.key
    merged["window"] = label
    ep = merged
    drop(ep["baseline"].isna(), "no_baseline")
    for c in covariates:
        if c not in ep.columns:
            raise InputError(f"covariate {c!r} is not an episode column")
        drop(ep[c].isna(), f"missing_covariate:{c}")
    data = pd.DataFrame(
        {
            "episode_id": ep["episode_id"],
            "patient_id": ep["patient_id"],
            "clinic_id": ep["clinic_id"].astype(str),
            "condition": ep["condition"],
            "arm": ep["arm"],
            "treated": (ep["arm"] == arms_t[0]).astype(int),
            "age_years": ep["age_years"].astype(float),
            "sex": ep["sex"],
            "symptom_duration_weeks": ep["symptom_duration_weeks"].astype(float),
            "n_visits": ep["n_visits"],
            "instrument": inst.key,
            "window": label,
            "baseline": ep["baseline"].astype(float),
            "baseline_day": ep["baseline_day"].astype(float),
            "follow_up": ep["score"].astype(float),
            "follow_up_day": ep["days_from_intake"].astype(float),
            "change": ep["change"].astype(float),
            "improvement": ep["improvement"].astype(float),
            "has_follow_up": ep["score"].notna().to_numpy(),
        }
    ).reset_index(drop=True)
    intake, imputed = intake_scores(outcomes, data, inst.key)
    data = data.merge(intake, on="episode_id", how="left") if len(intake.columns) > 1 else data
    if adjust_for is None:
        adjust_for = (*covariates, *intake.columns[1:])
    unknown = [c for c in adjust_for if c not in data.columns]
    if unknown:
        raise InputError(
            f"adjust_for: {unknown} are not columns of the analysis frame; choose from "
            f"{[c for c in data.columns if c not in ('treated', 'follow_up', 'change')]}"
        )
    kept = outcomes["episode_id"].isin(data["episode_id"])
    return AnalysisFrame(
        data=data,
        instrument=inst.key,
        week=week,
        arms=arms_t,
        excluded=excluded,
        condition=condition,
        outcomes=outcomes[kept.to_numpy()].reset_index(drop=True),
        covariates=tuple(covariates),
        adjust_for=tuple(adjust_for),
        imputed=imputed,
    )


def as_analysis_frame(
    frame: AnalysisFrame | pd.DataFrame,
    arms: Sequence[str] | None = None,
    instrument: str | None = None,
    week: int | str | None = None,
) -> AnalysisFrame:
    """Accept an :class:`AnalysisFrame` or a plain DataFrame with the analysis columns.

    A plain DataFrame needs ``arm``, ``baseline``, ``follow_up`` (and the covariates used);
    ``arms`` is then required. ``treated`` and ``has_follow_up`` are derived when absent.

    Examples
    --------
    >>> df = pd.DataFrame({"arm": ["ionto+exercise", "exercise"], "baseline": [6.0, 6.0],
    ...                    "follow_up": [3.0, 4.0]})
    >>> as_analysis_frame(df, arms=("ionto+exercise", "exercise")).data["treated"].tolist()
    [1, 0]
    """
    if isinstance(frame, AnalysisFrame):
        return frame
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"expected an AnalysisFrame or a DataFrame, got {type(frame).__name__}")
    if arms is None:
        raise InputError("a plain DataFrame needs arms=(first, second)")
    arms_t = _check_arms(arms)
    missing = [c for c in ("arm", "baseline", "follow_up") if c not in frame.columns]
    if missing:
        raise InputError(f"analysis frame: missing column(s) {missing}")
    data = frame.copy()
    excluded: dict[str, int] = {}
    other = ~data["arm"].isin(arms_t)
    if other.any():
        excluded["other_arm"] = int(other.sum())
        data = data[~other.to_numpy()]
    data["treated"] = (data["arm"] == arms_t[0]).astype(int)
    if "has_follow_up" not in data.columns:
        data["has_follow_up"] = data["follow_up"].notna().to_numpy()
    if "change" not in data.columns:
        data["change"] = data["follow_up"] - data["baseline"]
    if "clinic_id" in data.columns:
        data["clinic_id"] = data["clinic_id"].astype(str)
    inst = instrument or (
        str(data["instrument"].iloc[0]) if "instrument" in data.columns and len(data) else ""
    )
    return AnalysisFrame(
        data=data.reset_index(drop=True), instrument=inst, week=week, arms=arms_t, excluded=excluded
    )


def design_terms(
    data: pd.DataFrame,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    clinic_effects: bool = True,
    *,
    splines_n: int | None = None,
) -> list[str]:
    """Formula terms for the adjustment set: categorical columns as ``C(col)``, constant
    columns dropped (a single sex or clinic would make the design singular).

    With ``splines_n`` (the episodes, or the smaller arm for a propensity model) of at
    least ``MIN_PER_SPLINE_DF`` per spline degree of freedom, continuous confounders
    (numeric, with :data:`~ionto_analytics.compare.adjustment.MIN_SPLINE_VALUES`+ distinct
    values) enter as restricted cubic splines
    ``cr(col, df=3, constraints="center")`` (``SPLINE_DF``; :mod:`.adjustment` states the
    rule); otherwise linearly.

    Examples
    --------
    >>> df = pd.DataFrame({"age_years": [40.0, 50.0], "sex": ["female", "female"],
    ...                    "clinic_id": ["a", "b"]})
    >>> design_terms(df, ("age_years", "sex"))
    ['age_years', 'C(clinic_id)']
    >>> df = pd.DataFrame({"age_years": range(60), "clinic_id": "a"})
    >>> design_terms(df, ("age_years",), splines_n=60), design_terms(df, ("age_years",))
    (['cr(age_years, df=3, constraints="center")'], ['age_years'])
    """
    terms: list[str] = []
    cols = list(covariates) + (["clinic_id"] if clinic_effects else [])
    for c in cols:
        if c not in data.columns:
            raise InputError(f"covariate {c!r} is not a column of the analysis frame")
    continuous = continuous_columns(data, cols)
    flexible = splines_n is not None and splines_n >= MIN_PER_SPLINE_DF * SPLINE_DF * len(
        continuous
    )
    for c in cols:
        if data[c].nunique(dropna=True) < 2:
            continue
        numeric = pd.api.types.is_numeric_dtype(data[c]) and not pd.api.types.is_bool_dtype(data[c])
        if flexible and c in continuous:
            terms.append(f'cr({c}, df={SPLINE_DF}, constraints="center")')
        else:
            terms.append(c if numeric else f"C({c})")
    return _without_redundant_indicators(terms, data)


def _without_redundant_indicators(terms: list[str], data: pd.DataFrame) -> list[str]:
    # A missing-intake indicator that the other terms already determine (two forms missed
    # together, a clinic that never collects a form) adds no information: it is left out.
    flags = [t for t in terms if t.endswith("_missing")]
    if not flags:
        return terms
    kept = [t for t in terms if t not in flags]
    data = with_categories(data, " + ".join(terms))
    columns = _columns_by_term(terms, data)

    def rank(ts: list[str]) -> int:
        if columns is None:
            design = np.asarray(patsy.dmatrix(" + ".join(["1", *ts]), data))
        else:  # the columns dmatrix("1 + ts") would build, in its order (patsy's term order)
            design = columns[0][:, np.sort(np.concatenate([columns[1][t] for t in ["1", *ts]]))]
        return int(np.linalg.matrix_rank(design))

    for t in flags:
        if rank([*kept, t]) > rank(kept):
            kept.append(t)
    return [t for t in terms if t in kept]


def _columns_by_term(
    terms: list[str], data: pd.DataFrame
) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    # One design of every term (each term's columns do not depend on the other terms: main
    # effects beside an intercept); None when rows have missing values, as each smaller
    # design would then drop its own incomplete rows.
    try:
        design = patsy.dmatrix(" + ".join(["1", *terms]), data, NA_action="raise")
    except patsy.PatsyError:
        return None
    slices = {"1": design.design_info.slice("Intercept")}
    for t in terms:
        if t not in design.design_info.term_name_slices:
            return None
        slices[t] = design.design_info.term_name_slices[t]
    by_term = {t: np.arange(sl.start, sl.stop) for t, sl in slices.items()}
    return np.asarray(design), by_term


def with_categories(data: pd.DataFrame, formula: str) -> pd.DataFrame:
    """``data`` with the column of every ``C(column)`` term of ``formula`` as a pandas
    categorical, for patsy.

    patsy then takes a column's levels from its categories instead of probing every row in
    Python; the levels are the same sorted values, so the design matrix is the same.
    ``data`` is not modified.

    Examples
    --------
    >>> df = pd.DataFrame({"clinic_id": ["b", "a"], "age_years": [40.0, 50.0]})
    >>> with_categories(df, "y ~ age_years + C(clinic_id)").dtypes.astype(str).tolist()
    ['category', 'float64']
    """
    names = {m for m in re.findall(r"\bC\((\w+)\)", formula) if m in data.columns}
    return data.assign(**{c: data[c].astype("category") for c in sorted(names)})
