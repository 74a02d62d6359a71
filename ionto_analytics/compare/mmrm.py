"""Mixed model for repeated measures (MMRM), the dropout-valid primary analysis: :func:`mmrm`.

Under dropout that depends on what was observed before it (missing at random: the
emulator's patients leave on their observed early improvement), complete-case estimates at
late weeks are biased by design; an MMRM over all windows uses every score of every
episode and is valid. The model is the trial statisticians' standard for patient-reported
outcomes (Mallinckrodt et al. 2008; the FDA/EMA-accepted default in SAS ``PROC MIXED`` and
R ``mmrm``): REML, a covariance matrix over the windows, Kenward–Roger small-sample
inference for the unstructured matrix (the adjusted covariance and its degrees of freedom,
SAS ``DDFM=KR``).

The covariance is chosen by a pre-specified rule, ``covariance="aic"`` (:data:`BY_AIC`,
the default): the unstructured matrix and every structure of :data:`MMRM_FALLBACK` are
fitted, and the converged one with the smallest REML AIC is kept, with CR2 cluster-robust
SEs unless it is the unstructured one; the result names the structure, every candidate's
AIC and the ones that did not converge. Why: a 4-window unstructured matrix has 10
parameters, and in the cells a clinic network has (20-60 episodes) it is estimated poorly:
always fitted, its Kenward–Roger intervals covered 0.926 there, 0.897 in cells of 16-30
episodes. On the whole default grid (200 studies, 78,544 estimates) the selection covers
0.948 where the unstructured matrix with the fallback below covered 0.945, and 0.947 in
cells of 21-40 episodes where it covered 0.940, with 1 cell under 0.90 where that had 3;
paired on the same fits it moved no estimate by more than 0.01 SE at any week
(bench/RESULTS.md, eleventh and twelfth rounds).

``covariance="unstructured"`` pre-specifies the unstructured matrix, as a trial's analysis
plan may. When it cannot be estimated (a small cell: 20 episodes, 21 fixed effects over 4
windows can make it singular), the structures of :data:`MMRM_FALLBACK` are tried in the
order an analysis plan pre-specifies, and the first that converges is used with the CR2
cluster-robust variance; the result says so. ``variance="robust"`` takes CR2 for every fit.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from ionto_analytics.compare.frame import comparison_frame
>>> rng = np.random.default_rng(7)
>>> n = 120
>>> episodes = pd.DataFrame({
...     "episode_id": [f"e{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
...     "clinic_id": "c1", "condition": "lateral_epicondylitis",
...     "arm": np.where(np.arange(n) % 2 == 0, "ionto+exercise", "exercise"),
...     "age_years": 50.0, "sex": "female", "symptom_duration_weeks": 8.0, "n_visits": 8})
>>> days = np.tile([0, 28, 42, 84], n)
>>> treated = np.repeat(np.arange(n) % 2 == 0, 4)
>>> patient = np.repeat(rng.normal(0, 0.8, n), 4)
>>> score = 6 - days / 21 - 1.0 * treated * (days > 0) + patient + rng.normal(0, 0.7, 4 * n)
>>> outcomes = pd.DataFrame({"episode_id": np.repeat(episodes["episode_id"], 4),
...                          "instrument": "nprs", "days_from_intake": days,
...                          "score": np.clip(score, 0, 10)})
>>> af = comparison_frame(episodes, outcomes, "nprs", 12, ("ionto+exercise", "exercise"))
>>> r = mmrm(af, covariates=(), clinic_effects=False)
>>> bool(r.ci_low < -1.0 < r.ci_high), r.n, r.table["week"].tolist()[:3]
(True, {'ionto+exercise': 60, 'exercise': 60}, [4, 6, 12])
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd

from ionto_analytics.compare.fit import contrast_text
from ionto_analytics.compare.frame import AnalysisFrame
from ionto_analytics.compare.repeated import (
    CR2_INTERVAL,
    chosen_design,
    engine_fit,
    long_frame,
    window_contrasts,
)
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.lmm import STRUCTURES, MMRMFit, cluster_robust, fit_mmrm

__all__ = ["BY_AIC", "MMRM_FALLBACK", "MMRM_WINDOWS", "VARIANCES", "mmrm"]

MMRM_WINDOWS: tuple[int, ...] = (4, 6, 12)
"""Follow-up weeks of the MMRM besides the frame's own week."""

VARIANCES: tuple[str, ...] = ("model", "robust")
"""Variances of :func:`mmrm`'s contrasts: model-based (Kenward–Roger), CR2 over episodes."""

MMRM_FALLBACK: tuple[str, ...] = ("heterogeneous_ar1", "heterogeneous_cs", "cs")
"""Covariance structures tried in this order when the requested one does not converge to an
interior optimum (a statistical analysis plan's pre-specified sequence: from the most to the
least flexible); a fallback structure's contrasts take the CR2 variance, which holds when
the simpler structure does not."""


BY_AIC = "aic"
"""``covariance=BY_AIC`` (the default): fit the unstructured matrix and every structure of
``fallback``, keep the converged one with the smallest REML AIC (``-2 log L + 2 k``, k
covariance parameters; the fixed effects are the same in every candidate, so REML AICs
compare). The unstructured matrix keeps ``ddf`` and ``variance``; a simpler structure takes
CR2, as a fallback does. A pre-specified selection of the kind analysis plans write for small
trials: with 20-60 episodes the 10 parameters of a 4-window unstructured matrix are
estimated poorly and its Kenward–Roger intervals run short (bench/RESULTS.md, eleventh
round)."""


@dataclass(frozen=True)
class _Fitted:
    """The fit that was kept: structure, variance, the fit and its notes."""

    covariance: str
    variance: str
    fit: MMRMFit
    notes: list[str]


def _attempt(
    fit_one: Callable[[str, str], MMRMFit],
    structure: str,
    as_requested: bool,
    ddf: str,
    variance: str,
) -> tuple[_Fitted, str, list[warnings.WarningMessage]]:
    """Fit one structure: the fit, why it cannot be kept ("" if it can), its warnings.

    ``as_requested``: the structure keeps ``ddf`` and ``variance``; otherwise it takes
    Satterthwaite on the model-based covariance and CR2. A fit is kept when it converged
    away from the boundary.
    """
    chosen_variance = variance if as_requested else "robust"
    chosen_ddf = ddf if as_requested and chosen_variance == "model" else "satterthwaite"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit, notes = engine_fit(partial(fit_one, structure, chosen_ddf), f"MMRM ({structure})")
    cert = fit.convergence
    why = ""
    if not cert.converged or cert.at_boundary:
        reason = "a boundary optimum" if cert.at_boundary else cert.message.split("; ")[-1]
        why = f"the {structure} covariance did not converge ({reason})"
    return _Fitted(structure, chosen_variance, fit, notes), why, caught


def _told(caught: Sequence[warnings.WarningMessage]) -> None:
    """Warn again what the kept fit said beyond its notes."""
    for c in caught:
        warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)


def _candidates(requested: str, fallback: Sequence[str]) -> list[str]:
    """``requested`` then the structures of ``fallback``, each once."""
    return list(dict.fromkeys([requested, *fallback]))


def _fit_in_order(
    fit_one: Callable[[str, str], MMRMFit],
    requested: str,
    fallback: Sequence[str],
    ddf: str,
    variance: str,
) -> _Fitted:
    """The first of ``requested`` then ``fallback`` that converges away from the boundary.

    ``fit_one(structure, ddf)`` fits one structure. The requested structure keeps ``ddf``
    and ``variance``; a fallback one takes Satterthwaite on the model-based covariance and
    CR2. Refuses (InputError) when none converges.
    """
    failures = []
    for structure in _candidates(requested, fallback):
        fitted, why, caught = _attempt(fit_one, structure, structure == requested, ddf, variance)
        if why:
            failures.append(why)
            continue
        _told(caught)
        if failures:
            note = (
                f"mmrm: {'; '.join(failures)}; fitted {structure} instead (the "
                f"pre-specified order {' > '.join([requested, *fallback])}), with CR2 "
                f"cluster-robust SEs"
            )
            warnings.warn(note, StatisticalWarning, stacklevel=3)
            fitted.notes.insert(0, note)
        return fitted
    raise _not_identified(fitted.fit, failures)


def _not_identified(fit: MMRMFit, failures: Sequence[str]) -> InputError:
    """The refusal when no structure converged (``fit``: the last one tried)."""
    return InputError(
        f"mmrm: no covariance structure converged on these data ({'; '.join(failures)}): "
        f"with {fit.n_groups} episodes and {fit.beta.size} fixed effects over "
        f"{fit.windows.size} windows the covariance is not identified: fit fewer windows or "
        f"covariates, or use ancova at one week"
    )


def _fit_by_aic(
    fit_one: Callable[[str, str], MMRMFit],
    requested: str,
    fallback: Sequence[str],
    ddf: str,
    variance: str,
) -> _Fitted:
    """The converged one of ``requested`` and ``fallback`` with the smallest REML AIC.

    ``fit_one(structure, ddf)`` fits one structure. The requested structure keeps ``ddf``
    and ``variance``; any other takes Satterthwaite on the model-based covariance and CR2.
    Refuses (InputError) when none converges.
    """
    kept: list[tuple[float, _Fitted, list[warnings.WarningMessage]]] = []
    failures = []
    for structure in _candidates(requested, fallback):
        fitted, why, caught = _attempt(fit_one, structure, structure == requested, ddf, variance)
        if why:
            failures.append(why)
        else:
            aic = -2.0 * fitted.fit.loglik + 2.0 * fitted.fit.theta.size
            kept.append((aic, fitted, caught))
    if not kept:
        raise _not_identified(fitted.fit, failures)
    _, best, caught = min(kept, key=lambda k: k[0])
    _told(caught)
    listed = ", ".join(f"{f.covariance} {a:.1f}" for a, f, _ in kept)
    robust = "" if best.covariance == requested else ", with CR2 cluster-robust SEs"
    failed = "".join(f"; {f}" for f in failures)
    note = (
        f"mmrm: covariance chosen by the smallest REML AIC: {best.covariance}{robust} "
        f"(AIC {listed}{failed})"
    )
    return _Fitted(best.covariance, best.variance, best.fit, [note, *best.notes])


def mmrm(
    frame: AnalysisFrame,
    *,
    windows: Sequence[int] | None = None,
    covariance: str = BY_AIC,
    covariates: Sequence[str] | None = None,
    clinic_effects: bool = True,
    covariates_by_window: bool | None = None,
    ddf: str | None = None,
    variance: Literal["model", "robust"] = "model",
    fallback: Sequence[str] = MMRM_FALLBACK,
    alpha: float = 0.05,
) -> ComparisonResult:
    """MMRM over all follow-up windows; the arm contrast at the frame's week.

    Model (REML, :func:`ionto_analytics.lmm.fit_mmrm`), one row per episode and window with
    a score::

        follow_up ~ 0 + C(week) + C(week):treated + C(week):baseline
                    + C(week):(covariates + clinic)
        Cov(follow-up scores of one episode over the windows) = Sigma

    Episodes with any pattern of missing windows contribute all their scores. The
    contrast is the coefficient of ``C(week)[W]:treated``, the adjusted difference in mean
    change at week W. By default Sigma is the converged one of the unstructured matrix and
    :data:`MMRM_FALLBACK` with the smallest REML AIC (:data:`BY_AIC`). The t interval takes
    the Kenward–Roger adjusted SE and df (:mod:`ionto_analytics.lmm.kenward_roger`) for the
    unstructured matrix, the CR2 SE and its Satterthwaite df for a structure chosen by AIC
    or by the fallback. Valid when follow-up scores are missing
    at random given the observed history (baseline, earlier windows, covariates).

    Parameters
    ----------
    frame : AnalysisFrame
        From :func:`comparison_frame` (it carries the long outcomes); not modified.
    windows : sequence of int or None
        Follow-up weeks of the model; None: :data:`MMRM_WINDOWS` and the frame's week.
    covariance : str
        ``"aic"`` (:data:`BY_AIC`, default): the converged one of ``"unstructured"`` and
        ``fallback`` with the smallest REML AIC, said in ``notes`` and ``estimator``; or
        one pre-specified structure: ``"unstructured"``, ``"cs"`` (compound symmetry),
        ``"ar1"``, ``"heterogeneous_cs"``, ``"heterogeneous_ar1"`` or ``"diagonal"``.
    covariates : sequence of str or None
        Adjustment covariates besides baseline and clinic; None: the frame's own
        (:attr:`AnalysisFrame.adjust_for`).
    clinic_effects : bool
        Include clinic fixed effects.
    covariates_by_window : bool or None
        True: the covariates and clinic get a coefficient per window (their effects grow
        over time, and a shared one leaves residual confounding, see
        :mod:`~ionto_analytics.compare.repeated`); False: one each (the trial
        specification); None (default): by window where every window keeps
        :data:`~ionto_analytics.compare.repeated.MIN_RESIDUAL_DF_PER_WINDOW` residual
        degrees of freedom, otherwise one each, said in ``notes``
        (:func:`~ionto_analytics.compare.repeated.chosen_design`).
    ddf : {"kenward-roger", "satterthwaite"} or None
        Small-sample inference; None (default): Kenward–Roger for the structures linear in
        their parameters (unstructured, cs, diagonal), Satterthwaite on the model-based SE
        for the others.
    variance : {"model", "robust"}
        ``"model"`` (default): the model-based covariance of the fixed effects, adjusted by
        ``ddf``; ``"robust"``: the CR2 cluster-robust covariance over episodes with its
        Satterthwaite df (:func:`ionto_analytics.lmm.cluster_robust`; the estimate is the
        same), valid when the one covariance matrix does not hold for both arms.
    fallback : sequence of str
        With ``covariance="aic"``: the candidates besides the unstructured matrix. With a
        pre-specified structure: those tried in order when it does not converge to an
        interior optimum (with few episodes an unstructured matrix can be singular).
        :data:`MMRM_FALLBACK` by default, their contrasts with the CR2 variance; said in
        ``notes`` and ``estimator``. ``()``: the requested structure only. When none
        converges the call is refused (InputError).
    alpha : float
        1 − confidence level.

    Returns
    -------
    ComparisonResult
        ``table`` holds the arm contrast at every window (with ``df``) and the estimated
        SD of the scores at each window.
    """
    if covariance not in STRUCTURES and covariance != BY_AIC:
        raise InputError(
            f"mmrm: covariance must be one of {sorted(STRUCTURES)} or {BY_AIC!r}, got "
            f"{covariance!r}"
        )
    if variance not in VARIANCES or (variance == "robust" and ddf not in (None, "satterthwaite")):
        raise InputError(
            f"mmrm: variance must be one of {list(VARIANCES)} (CR2 brings its own df: no "
            f"ddf with variance='robust'), got variance={variance!r}, ddf={ddf!r}"
        )
    unknown = [f for f in fallback if f not in STRUCTURES]
    if unknown:
        raise InputError(f"mmrm: fallback structures {unknown} are not among {sorted(STRUCTURES)}")
    requested = "unstructured" if covariance == BY_AIC else covariance
    if ddf is None:
        linear = STRUCTURES[requested].linear_basis is not None
        ddf = "kenward-roger" if linear and variance == "model" else "satterthwaite"
    week = getattr(frame, "week", None)
    weeks = sorted({*MMRM_WINDOWS, week} if isinstance(week, int) else MMRM_WINDOWS)
    if windows is not None:
        weeks = list(windows)
    long, excluded = long_frame(frame, weeks, "mmrm")
    adjust = frame.adjustment(covariates)
    design, chosen = chosen_design(
        long, adjust, clinic_effects, weeks, covariates_by_window, "mmrm"
    )
    y, groups = long["follow_up"].to_numpy(dtype=float), long["episode_id"].to_numpy()
    windows_of_rows = long["week"].to_numpy()

    def fit_one(structure: str, chosen_ddf: str) -> MMRMFit:
        return fit_mmrm(
            y, design.X, groups, windows_of_rows, structure, method="REML", ddf=chosen_ddf
        )

    choose = _fit_by_aic if covariance == BY_AIC else _fit_in_order
    kept = choose(fit_one, requested, fallback, ddf, variance)
    fit = kept.fit
    if kept.variance == "robust":
        robust = cluster_robust(fit, y, design.X, groups, windows_of_rows)
        table = window_contrasts(robust, design, frame, alpha)
        interval = CR2_INTERVAL
    else:
        table = window_contrasts(fit, design, frame, alpha)
        interval = (
            "t interval with the Kenward–Roger adjusted SE and df"
            if fit.ddf == "kenward-roger"
            else "t interval with Satterthwaite df"
        )
    sd = pd.DataFrame(
        {
            "term": [f"residual SD at week {w}" for w in fit.windows],
            "week": fit.windows.astype(int),
            "estimate": np.sqrt(np.diag(fit.covariance)),
        }
    )
    main = table.set_index("week").loc[frame.week]
    return ComparisonResult.from_fit(
        frame,
        long,
        estimate=main["estimate"],
        ci_low=main["ci_low"],
        ci_high=main["ci_high"],
        p_value=main["p_value"],
        excluded=excluded,
        estimator=(
            f"MMRM (REML), {kept.covariance} covariance"
            f"{' (the smallest AIC)' if covariance == BY_AIC else ''} over weeks "
            f"{list(fit.windows.tolist())}, "
            f"{interval}"
        ),
        estimand=(
            f"adjusted difference in mean change at week {frame.week}, {contrast_text(frame)}, "
            f"valid under missing at random given the observed history; model: {design.formula}"
        ),
        alpha=alpha,
        table=pd.concat([table, sd], ignore_index=True),
        notes=[*chosen, *kept.notes],
        adjustment_set=design.adjustment_set,
    )
