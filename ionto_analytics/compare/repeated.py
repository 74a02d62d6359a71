"""What the repeated-measures estimators share: the long frame, its design, the contrasts.

:func:`long_frame` takes an :class:`~ionto_analytics.compare.frame.AnalysisFrame` to one
row per episode and follow-up window (the windows of :mod:`data_schemas.windows` never
overlap, so each score is in at most one row); :func:`repeated_design` builds the standard
fixed effects of a repeated-measures model of the follow-up score::

    follow_up ~ 0 + C(week) + C(week):treated + C(week):baseline
                + C(week):(adjustment set + clinic)

(a mean per window, the arm difference per window, a baseline slope per window, and the
frame's adjustment covariates and clinic fixed effects, each with its own coefficient per
window). Covariates by window is the observational counterpart of the trial standard
(which has them as main effects: harmless under randomization): the confounders' effects
grow with time (the natural history they modify does), and one coefficient shared by the
windows leaves residual confounding of opposite sign at early and late weeks. With the
same regressors in every window the unstructured MMRM on complete data then gives each
window's ANCOVA estimate, and under dropout it adds what the correlation over windows
carries. Columns the data cannot identify (a clinic without scores in a window) are
dropped. :func:`window_contrasts` turns a fit
of the :mod:`ionto_analytics.lmm` engine into the arm contrast at every window with
Satterthwaite degrees of freedom. Used by :func:`~ionto_analytics.compare.mixed.mixed_model`
and :func:`~ionto_analytics.compare.mmrm.mmrm`.

Examples
--------
>>> import pandas as pd
>>> long = pd.DataFrame({"episode_id": ["e1", "e1", "e2", "e2"], "week": [4, 6, 4, 6],
...                      "treated": [1, 1, 0, 0], "baseline": [7.0, 7.0, 6.0, 6.0],
...                      "follow_up": [5.0, 4.0, 5.5, 5.0], "age_years": 50.0})
>>> d = repeated_design(long, ("age_years",), clinic_effects=False, windows=(4, 6))
>>> d.names
['week 4', 'week 6', 'arm at week 4', 'arm at week 6', 'baseline at week 4', \
'baseline at week 6']
>>> d.formula
'follow_up ~ 0 + C(week) + C(week):treated + C(week):baseline'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
import patsy

from data_schemas.windows import window_label
from ionto_analytics.compare.fit import contrast_text
from ionto_analytics.compare.frame import AnalysisFrame, design_terms
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.lmm import ClusterRobust, FixedEffectsFit
from ionto_analytics.outcomes import change_from_baseline

__all__ = [
    "CR2_INTERVAL",
    "MIN_PER_ARM_AND_WINDOW",
    "MIN_RESIDUAL_DF_PER_WINDOW",
    "RepeatedDesign",
    "chosen_design",
    "engine_fit",
    "long_frame",
    "repeated_design",
    "window_contrasts",
]

FitT = TypeVar("FitT", bound=FixedEffectsFit)

MIN_PER_ARM_AND_WINDOW = 2
"""Fewest episodes with a score each arm needs in each window of a repeated-measures model."""

CR2_INTERVAL = "CR2 cluster-robust SE over episodes, t interval with Satterthwaite df"
"""How a result names the interval of :func:`ionto_analytics.lmm.cluster_robust`."""

MIN_RESIDUAL_DF_PER_WINDOW = 10
"""Fewest residual degrees of freedom (scores minus the window's own mean parameters) a
window needs: its variance in the covariance matrix rests on them. With per-window
adjustment a window of 15-30 scores can carry 15+ parameters; its residual variance then
collapses towards 0 and the REML covariance with it (the whole-grid coverage bench: MMRM
intervals covering 0-40 % in such cells, standard errors from 1e-6 to 1e148)."""


@dataclass(frozen=True)
class RepeatedDesign:
    """The fixed-effects design of a repeated-measures model.

    Attributes
    ----------
    X : numpy.ndarray
        Design matrix (rows of the long frame, columns of ``names``).
    names : list of str
        Column names: ``week W``, ``arm at week W``, ``baseline at week W``, then the
        adjustment terms as patsy names them.
    arm_columns : dict
        Window → column index of its arm effect (the contrast first − second arm).
    formula : str
        The model in formula notation (for the result's estimand).
    adjustment_set : tuple of str
        The terms adjusted for: baseline by window, then the covariate and clinic terms.
    residual_df : dict
        Window → its scores minus the columns that act on that window only (its own
        parameters; shared covariate columns are not counted).
    """

    X: np.ndarray
    names: list[str]
    arm_columns: dict[int, int]
    formula: str
    adjustment_set: tuple[str, ...]
    residual_df: dict[int, int]

    def require_residual_df(self, what: str, by_window: bool) -> None:
        """Refuse a window with fewer than :data:`MIN_RESIDUAL_DF_PER_WINDOW` residual
        degrees of freedom, saying what to do.

        Examples
        --------
        >>> d = RepeatedDesign(np.eye(2), ["week 4", "week 6"], {}, "", (), {4: 30, 6: 3})
        >>> d.require_residual_df("mmrm", True)
        Traceback (most recent call last):
        ...
        data_schemas.errors.InputError: mmrm: week 6 has 3 residual degree(s) of freedom for its own parameters; at least 10 are needed per window for its variance: pass covariates_by_window=False (one coefficient per covariate over the windows), adjust for fewer covariates, leave week 6 out of windows, or pool more episodes
        """  # noqa: E501
        for w, df in self.residual_df.items():
            if df < MIN_RESIDUAL_DF_PER_WINDOW:
                fix = (
                    "pass covariates_by_window=False (one coefficient per covariate over "
                    "the windows), adjust for fewer covariates"
                    if by_window
                    else "adjust for fewer covariates"
                )
                raise InputError(
                    f"{what}: week {w} has {df} residual degree(s) of freedom for its own "
                    f"parameters; at least {MIN_RESIDUAL_DF_PER_WINDOW} are needed per window "
                    f"for its variance: {fix}, leave week {w} out of windows, or pool more "
                    "episodes"
                )


def long_frame(
    frame: AnalysisFrame, windows: Sequence[int], what: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per episode and window with a score, and the exclusions.

    Parameters
    ----------
    frame : AnalysisFrame
        From :func:`~ionto_analytics.compare.frame.comparison_frame` (it carries the long
        outcomes); its week must be one of ``windows``. Not modified.
    windows : sequence of int
        Follow-up weeks of the model.
    what : str
        The estimator's name, for messages.

    Returns
    -------
    (DataFrame, dict)
        The frame's columns plus ``week`` (int), with ``follow_up``, ``follow_up_day``,
        ``change`` and ``improvement`` of that window (the rule of
        :func:`ionto_analytics.outcomes.change_from_baseline`); the frame's exclusions plus
        ``no_follow_up_in_any_window`` (episodes without a score in any of ``windows``).

    Raises
    ------
    InputError
        Not an AnalysisFrame, week not in ``windows``, or an arm with fewer than
        :data:`MIN_PER_ARM_AND_WINDOW` scored episodes in a window.
    """
    if not isinstance(frame, AnalysisFrame):
        raise InputError(
            f"{what} needs the AnalysisFrame of comparison_frame (it carries the long "
            f"outcomes), got {type(frame).__name__}"
        )
    weeks = sorted({int(w) for w in windows})
    if frame.week not in weeks:
        raise InputError(
            f"{what}: week {frame.week} must be one of windows {weeks}; add it to windows"
        )
    if frame.outcomes is None:
        raise InputError(
            f"{what}: this analysis frame has no long outcomes to take the other windows "
            "from; build it with comparison_frame(episodes, outcomes, ...)"
        )
    scores = change_from_baseline(frame.outcomes, windows=weeks, instrument=frame.instrument)
    scores = scores[scores["score"].notna().to_numpy()]
    scores = scores.assign(week=scores["window"].map({window_label(w): w for w in weeks}))
    per_episode = frame.data.drop(
        columns=["window", "follow_up", "follow_up_day", "change", "improvement", "has_follow_up"]
    )
    long = per_episode.merge(
        scores[["episode_id", "week", "score", "days_from_intake", "change", "improvement"]],
        on="episode_id",
        how="inner",
    ).rename(columns={"score": "follow_up", "days_from_intake": "follow_up_day"})
    for w in weeks:
        in_window = long["week"].to_numpy() == w
        for arm in frame.arms:
            k = int((in_window & (long["arm"] == arm).to_numpy()).sum())
            if k < MIN_PER_ARM_AND_WINDOW:
                raise InputError(
                    f"{what}: arm {arm!r} has {k} episode(s) with a {frame.instrument} score "
                    f"in week {w}; at least {MIN_PER_ARM_AND_WINDOW} needed in every window "
                    f"(windows {weeks}); leave week {w} out of windows"
                )
    excluded = dict(frame.excluded)
    n_none = len(frame.data) - int(long["episode_id"].nunique())  # long ⊂ frame.data
    if n_none:
        excluded["no_follow_up_in_any_window"] = n_none
    return long, excluded


def repeated_design(
    long: pd.DataFrame,
    covariates: Sequence[str],
    clinic_effects: bool,
    windows: Sequence[int],
    by_window: bool = True,
) -> RepeatedDesign:
    """Fixed effects: window means, arm x window, baseline x window, adjustment set, clinic.

    The adjustment terms come from :func:`~ionto_analytics.compare.frame.design_terms`
    (constant columns dropped; categorical ones as treatment-coded dummies beside the
    window means, so the design has full rank; numeric terms enter as given).

    Parameters
    ----------
    long : DataFrame
        From :func:`long_frame`; needs ``week``, ``treated``, ``baseline`` and the covariates.
    covariates : sequence of str
        Adjustment covariates besides baseline and clinic.
    clinic_effects : bool
        Include clinic fixed effects.
    windows : sequence of int
        The weeks, in the order of the columns.
    by_window : bool
        Covariates and clinic with a coefficient per window (default, see the module);
        False: one coefficient each (the trial specification, for checks against it).

    Returns
    -------
    RepeatedDesign
    """
    weeks = sorted({int(w) for w in windows})
    week = long["week"].to_numpy()
    onehot = (week[:, None] == np.array(weeks)[None, :]).astype(float)
    treated = long["treated"].to_numpy(dtype=float)[:, None]
    baseline = long["baseline"].to_numpy(dtype=float)[:, None]
    blocks = [onehot, onehot * treated, onehot * baseline]
    names = (
        [f"week {w}" for w in weeks]
        + [f"arm at week {w}" for w in weeks]
        + [f"baseline at week {w}" for w in weeks]
    )
    terms = design_terms(long, covariates, clinic_effects)
    for term in terms:
        block, block_names = _term_columns(long, term)
        if by_window:
            block = np.hstack([onehot[:, [i]] * block for i in range(len(weeks))])
            block_names = [f"{n} at week {w}" for w in weeks for n in block_names]
        blocks.append(block)
        names += block_names
    X = np.column_stack(blocks)
    keep = _identified_columns(X, 3 * len(weeks))
    base = "follow_up ~ 0 + C(week) + C(week):treated + C(week):baseline"
    if by_window and terms:
        formula = base + f" + C(week):({' + '.join(terms)})"
        adjusted = ("C(week):baseline", *(f"C(week):{t}" for t in terms))
    else:
        formula = base + "".join(f" + {t}" for t in terms)
        adjusted = ("C(week):baseline", *terms)
    arm_columns = {w: len(weeks) + i for i, w in enumerate(weeks)}
    X = X[:, keep]
    on = X != 0
    residual_df = {}
    for w in weeks:
        rows = week == w
        own = on[rows].any(axis=0) & ~on[~rows].any(axis=0)
        residual_df[w] = int(rows.sum() - own.sum())
    return RepeatedDesign(X, [names[j] for j in keep], arm_columns, formula, adjusted, residual_df)


def chosen_design(
    long: pd.DataFrame,
    covariates: Sequence[str],
    clinic_effects: bool,
    windows: Sequence[int],
    by_window: bool | None,
    what: str,
) -> tuple[RepeatedDesign, list[str]]:
    """The design of a repeated-measures estimator, and a note when the rule chose it.

    ``by_window`` None (the estimators' default): covariates and clinic by window where
    every window keeps :data:`MIN_RESIDUAL_DF_PER_WINDOW` residual degrees of freedom with
    them, otherwise one coefficient each over the windows (the trial specification; the
    arm and baseline stay by window), said in the returned note. True or False forces the
    choice. Either way a window left with too few residual degrees of freedom is refused
    (:meth:`RepeatedDesign.require_residual_df`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ep = np.repeat(np.arange(24), 2)
    >>> long = pd.DataFrame({"episode_id": ep, "week": np.tile([4, 6], 24),
    ...                      "treated": ep % 2, "age_years": rng.normal(50, 9, 24)[ep],
    ...                      "baseline": rng.normal(6, 1, 48), "follow_up": rng.normal(4, 1, 48)})
    >>> d, notes = chosen_design(long, ("age_years",), False, (4, 6), None, "mmrm")
    >>> d.names[-2:], notes
    (['age_years at week 4', 'age_years at week 6'], [])
    """
    per_window = by_window is not False
    design = repeated_design(long, covariates, clinic_effects, windows, per_window)
    notes: list[str] = []
    thin = [w for w, df in design.residual_df.items() if df < MIN_RESIDUAL_DF_PER_WINDOW]
    if by_window is None and thin:
        shared = repeated_design(long, covariates, clinic_effects, windows, False)
        if shared.formula != design.formula:  # there are covariates to share
            notes.append(
                f"{what}: week(s) {thin} have fewer than {MIN_RESIDUAL_DF_PER_WINDOW} "
                "residual degrees of freedom with a coefficient per window for every "
                "covariate and clinic, so these have one coefficient over the windows (the "
                "trial specification); the arm and the baseline stay by window"
            )
            design, per_window = shared, False
    design.require_residual_df(what, per_window)
    return design, notes


def _identified_columns(X: np.ndarray, n_fixed: int) -> list[int]:
    """The first ``n_fixed`` columns, then each later one that adds to the rank (in order).

    The ranks are those of ``numpy.linalg.matrix_rank`` on ``X``'s column subsets (the same
    tolerance: largest singular value x max(rows, columns) x machine epsilon), taken from the
    triangular factor ``R`` of ``X = QR``: ``Q`` has orthonormal columns, so every column
    subset of ``R`` has the singular values of the same subset of ``X``, and each check is
    a small p x k decomposition instead of one over every row.

    Examples
    --------
    >>> X = np.column_stack([np.ones(6), np.arange(6.0), 2 * np.arange(6.0), np.zeros(6),
    ...                      np.arange(6.0) ** 2])
    >>> _identified_columns(X, 1)
    [0, 1, 4]
    """
    rows = X.shape[0]
    R = np.linalg.qr(X, mode="r")
    eps = np.finfo(float).eps

    def rank(columns: list[int]) -> int:
        if not columns:
            return 0
        s = np.linalg.svd(R[:, columns], compute_uv=False)
        return int((s > s.max(initial=0.0) * max(rows, len(columns)) * eps).sum())

    keep = list(range(n_fixed))
    current = rank(keep)
    for j in range(n_fixed, X.shape[1]):
        if not X[:, j].any():
            continue
        r = rank([*keep, j])
        if r > current:
            keep.append(j)
            current = r
    return keep


def _term_columns(long: pd.DataFrame, term: str) -> tuple[np.ndarray, list[str]]:
    """Columns of one adjustment term: ``C(col)`` as treatment-coded dummies (reference =
    first sorted level, named as patsy names them), any other term through patsy."""
    if term.startswith("C(") and term.endswith(")") and term[2:-1] in long.columns:
        codes, levels = pd.factorize(long[term[2:-1]], sort=True)
        dummies = (codes[:, None] == np.arange(1, len(levels))[None, :]).astype(float)
        return dummies, [f"{term}[T.{level}]" for level in levels[1:]]
    extra = patsy.dmatrix(f"0 + {term}", long, return_type="dataframe")
    return extra.to_numpy(dtype=float), list(extra.columns)


def engine_fit(fit_call: Callable[[], FitT], what: str) -> tuple[FitT, list[str]]:
    """Run an engine fit, keeping its :class:`StatisticalWarning` messages as notes.

    A boundary estimate (a variance at 0, a correlation at +-1) is expected with small or
    nearly independent data and says nothing against the arm contrast: it becomes a note.
    A fit whose certificate says it did not converge is also warned about again.

    Parameters
    ----------
    fit_call : callable
        No-argument call returning a :class:`~ionto_analytics.lmm.FixedEffectsFit`.
    what : str
        The estimator's name, for the warning.

    Returns
    -------
    (FixedEffectsFit, list of str)

    Examples
    --------
    >>> import numpy as np
    >>> from ionto_analytics.lmm import fit_random_intercept
    >>> y = np.array([1.0, 2.0, 1.5, 2.5, 1.0, 2.0])
    >>> fit, notes = engine_fit(
    ...     lambda: fit_random_intercept(y, np.ones((6, 1)), [1, 1, 2, 2, 3, 3]), "mixed")
    >>> fit.convergence.at_boundary, notes[0][:35]
    (True, 'random intercept: the patient varia')
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        fit = fit_call()
    notes = []
    for c in caught:
        if issubclass(c.category, StatisticalWarning):
            notes.append(str(c.message))
        else:  # not expected: re-issue so the caller sees it
            warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
    if not fit.convergence.converged:
        msg = (
            f"{what} did not converge ({fit.convergence.message}); treat the estimate with caution"
        )
        warnings.warn(msg, StatisticalWarning, stacklevel=3)
        notes.append(msg)
    return fit, notes


def window_contrasts(
    fit: FixedEffectsFit | ClusterRobust,
    design: RepeatedDesign,
    frame: AnalysisFrame,
    alpha: float,
) -> pd.DataFrame:
    """The arm contrast at every window: estimate, SE, df, t interval, p (from ``fit``:
    an engine fit, Satterthwaite or Kenward–Roger as fitted, or its CR2 covariance).

    Returns
    -------
    DataFrame
        ``term`` ("first − second at week W"), ``week``, ``estimate``, ``se``, ``df``,
        ``ci_low``, ``ci_high``, ``p_value``.
    """
    weeks = sorted(design.arm_columns)
    L = np.zeros((len(weeks), design.X.shape[1]))
    L[np.arange(len(weeks)), [design.arm_columns[w] for w in weeks]] = 1.0
    c = fit.contrast(L, level=1 - alpha)
    return pd.DataFrame(
        {
            "term": [f"{contrast_text(frame)} at week {w}" for w in weeks],
            "week": weeks,
            "estimate": c.estimate,
            "se": c.se,
            "df": c.df,
            "ci_low": c.ci_low,
            "ci_high": c.ci_high,
            "p_value": c.p_value,
        }
    )
