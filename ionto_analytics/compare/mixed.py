"""Linear mixed model over the follow-up windows: :func:`mixed_model`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from ionto_analytics.compare.frame import comparison_frame
>>> rng = np.random.default_rng(4)
>>> n = 80
>>> episodes = pd.DataFrame({
...     "episode_id": [f"e{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)],
...     "clinic_id": "c1", "condition": "lateral_epicondylitis",
...     "arm": np.where(np.arange(n) % 2 == 0, "ionto+exercise", "exercise"),
...     "age_years": 50.0, "sex": "female", "symptom_duration_weeks": 8.0, "n_visits": 8})
>>> days = np.tile([0, 28, 42, 84], n)
>>> treated = np.repeat(np.arange(n) % 2 == 0, 4)
>>> patient = np.repeat(rng.normal(0, 0.5, n), 4)
>>> score = 6 - days / 21 - 1.0 * treated * (days > 0) + patient + rng.normal(0, 0.7, 4 * n)
>>> outcomes = pd.DataFrame({"episode_id": np.repeat(episodes["episode_id"], 4),
...                          "instrument": "nprs", "days_from_intake": days,
...                          "score": np.clip(score, 0, 10)})
>>> af = comparison_frame(episodes, outcomes, "nprs", 6, ("ionto+exercise", "exercise"))
>>> r = mixed_model(af, covariates=(), clinic_effects=False)  # CR2 over episodes
>>> bool(r.ci_low < -1.0 < r.ci_high), r.n
(True, {'ionto+exercise': 40, 'exercise': 40})
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ionto_analytics.compare.fit import contrast_text
from ionto_analytics.compare.frame import AnalysisFrame
from ionto_analytics.compare.repeated import (
    CR2_INTERVAL,
    RepeatedDesign,
    chosen_design,
    engine_fit,
    long_frame,
    window_contrasts,
)
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.lmm import cluster_robust, fit_random_intercept

__all__ = ["ENGINES", "VARIANCES", "mixed_model"]

ENGINES: tuple[str, ...] = ("lmm", "statsmodels")
"""Fitting engines of :func:`mixed_model`: the exact fast one (default) and the cross-check."""

VARIANCES: tuple[str, ...] = ("robust", "model")
"""Variances of :func:`mixed_model`'s contrasts: CR2 over episodes (default), model-based."""


def mixed_model(
    frame: AnalysisFrame,
    *,
    windows: Sequence[int] = (4, 6, 12),
    covariates: Sequence[str] | None = None,
    clinic_effects: bool = True,
    covariates_by_window: bool | None = None,
    engine: Literal["lmm", "statsmodels"] = "lmm",
    variance: Literal["robust", "model"] | None = None,
    alpha: float = 0.05,
) -> ComparisonResult:
    """Linear mixed model over all follow-up windows; arm contrast at the frame's week.

    Each episode of ``frame`` contributes one row per window in ``windows`` where it has a
    score (the non-overlapping window rule of :mod:`data_schemas.windows`). Model (REML)::

        follow_up ~ 0 + C(week) + C(week):treated + C(week):baseline
                    + C(week):(covariates + clinic)
        random intercept per episode (one patient's course of treatment)

    The coefficient of ``C(week)[W]:treated`` is the adjusted difference in mean change at
    week W (arm x window unrestricted; the baseline slope differs by window, the standard
    specification). ``n`` counts episodes, not measurements.

    The random intercept is a working model: it says every pair of an episode's scores has
    the same covariance, while a patient's course diverges over the weeks (the patient
    effect grows). The model-based SE is then too small at late windows and too large at
    early ones (whole-grid coverage 0.921 at week 12, 0.956 at week 2, bench/RESULTS.md), so
    by default the contrasts take the cluster-robust CR2 covariance over episodes with
    Satterthwaite df (:mod:`ionto_analytics.lmm.robust`, as R clubSandwich), valid whatever
    the true covariance; the estimate is the model's. Under dropout the estimate itself is
    MAR-valid only if the random-intercept covariance holds; the MMRM does not need it.

    Engines: ``"lmm"`` (default) is :func:`ionto_analytics.lmm.fit_random_intercept`, exact
    REML from per-episode sufficient statistics. ``"statsmodels"`` fits the same design
    with statsmodels ``MixedLM`` as a cross-check: the same estimates (to optimizer
    tolerance); its SEs come from the joint observed information of fixed effects and
    variances and differ from the engine's ``(X'V^-1 X)^-1`` by up to about 1 %; Wald z
    interval (``variance="model"`` only).

    Valid when follow-up scores are missing at random given the observed history (the
    baseline and earlier windows) and the covariates.

    A variance estimated at the boundary (0) is recorded in ``notes``; a fit that did not
    converge also raises a :class:`StatisticalWarning`.

    Parameters
    ----------
    frame : AnalysisFrame
        From :func:`comparison_frame` (it carries the long outcomes); not modified. Its
        week is the window whose arm contrast is reported (it must be in ``windows``).
    windows : sequence of int
        Follow-up weeks in the model.
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
    engine : {"lmm", "statsmodels"}
        Fitting engine (see above).
    variance : {"robust", "model"} or None
        ``"robust"``: CR2 over episodes, t interval on its Satterthwaite df (the ``"lmm"``
        engine only); ``"model"``: the random intercept's ``(X'V^-1 X)^-1``; None
        (default): ``"robust"`` with the ``"lmm"`` engine, ``"model"`` with statsmodels.
    alpha : float
        1 − confidence level.

    Returns
    -------
    ComparisonResult
        ``table`` holds the arm contrast at every window (with ``df``) and the random
        intercept SD.
    """
    if engine not in ENGINES:
        raise InputError(f"mixed_model: engine must be one of {list(ENGINES)}, got {engine!r}")
    if variance is None:
        variance = "robust" if engine == "lmm" else "model"
    if variance not in VARIANCES or (engine == "statsmodels" and variance == "robust"):
        raise InputError(
            f"mixed_model: variance must be one of {list(VARIANCES)} (the statsmodels "
            f"cross-check has variance='model' only), got variance={variance!r} with "
            f"engine={engine!r}"
        )
    long, excluded = long_frame(frame, windows, "mixed_model")
    adjust = frame.adjustment(covariates)
    design, chosen = chosen_design(
        long, adjust, clinic_effects, windows, covariates_by_window, "mixed_model"
    )
    y = long["follow_up"].to_numpy(dtype=float)
    groups = long["episode_id"].to_numpy()
    if engine == "statsmodels":
        table, sd, notes = _statsmodels_fit(y, design, groups, frame, alpha)
        interval = "Wald z interval (statsmodels MixedLM cross-check)"
    else:
        fit, notes = engine_fit(
            lambda: fit_random_intercept(y, design.X, groups, method="REML"), "mixed model"
        )
        if variance == "robust":
            table = window_contrasts(cluster_robust(fit, y, design.X, groups), design, frame, alpha)
            interval = CR2_INTERVAL
        else:
            table = window_contrasts(fit, design, frame, alpha)
            interval = "model-based SE, t interval with Satterthwaite df"
        sd = float(np.sqrt(fit.patient_variance))
    table = pd.concat(
        [table, pd.DataFrame([{"term": "random intercept SD (episode)", "estimate": sd}])],
        ignore_index=True,
    )
    main = table.iloc[sorted(design.arm_columns).index(frame.week)]
    return ComparisonResult.from_fit(
        frame,
        long,
        estimate=main["estimate"],
        ci_low=main["ci_low"],
        ci_high=main["ci_high"],
        p_value=main["p_value"],
        excluded=excluded,
        estimator=f"linear mixed model (REML), random intercept per episode, {interval}",
        estimand=(
            f"adjusted difference in mean change at week {frame.week}, {contrast_text(frame)}; "
            f"model: {design.formula}"
        ),
        alpha=alpha,
        table=table,
        notes=[*chosen, *notes],
        adjustment_set=design.adjustment_set,
    )


def _statsmodels_fit(
    y: np.ndarray,
    design: RepeatedDesign,
    groups: np.ndarray,
    frame: AnalysisFrame,
    alpha: float,
) -> tuple[pd.DataFrame, float, list[str]]:
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        fit = sm.MixedLM(y, design.X, groups, exog_re=np.ones((y.size, 1))).fit(reml=True)
    for c in caught:
        if issubclass(c.category, ConvergenceWarning):
            notes.append(f"statsmodels: {c.message}")
        else:  # not expected: re-issue so the caller sees it
            warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
    if not fit.converged:
        msg = "mixed model (statsmodels) did not converge; treat the estimate with caution"
        warnings.warn(msg, StatisticalWarning, stacklevel=3)
        notes.append(msg)
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for w in sorted(design.arm_columns):
        j = design.arm_columns[w]
        est, se = float(fit.fe_params[j]), float(fit.bse_fe[j])
        rows.append(
            {
                "term": f"{contrast_text(frame)} at week {w}",
                "week": w,
                "estimate": est,
                "se": se,
                "df": np.inf,
                "ci_low": est - z * se,
                "ci_high": est + z * se,
                "p_value": float(2 * stats.norm.sf(abs(est / se))),
            }
        )
    return pd.DataFrame(rows), float(np.sqrt(np.asarray(fit.cov_re)[0, 0])), notes
