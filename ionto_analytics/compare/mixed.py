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
>>> r = mixed_model(af, covariates=(), clinic_effects=False)
>>> bool(r.ci_low < -1.0 < r.ci_high), r.n
(True, {'ionto+exercise': 40, 'exercise': 40})
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ionto_analytics.compare.adjustment import rhs_terms
from ionto_analytics.compare.fit import check_windows_present, contrast_text
from ionto_analytics.compare.frame import AnalysisFrame, design_terms
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError, StatisticalWarning

__all__ = ["mixed_model"]


def mixed_model(
    frame: AnalysisFrame,
    *,
    windows: Sequence[int] = (4, 6, 12),
    covariates: Sequence[str] | None = None,
    clinic_effects: bool = True,
    alpha: float = 0.05,
) -> ComparisonResult:
    """Linear mixed model over all follow-up windows; arm contrast at the frame's week.

    Each episode of ``frame`` contributes its measurement at every window in ``windows``
    (the window rule of :mod:`ionto_analytics.outcomes`, applied to the frame's long
    outcomes by :meth:`AnalysisFrame.at_week`). Model (REML, statsmodels ``MixedLM``)::

        follow_up ~ 0 + C(window) + Σ_w arm_at_week_w + baseline + covariates + C(clinic_id)
        random intercept per patient_id

    where ``arm_at_week_w`` = 1 for the first arm at window w: its coefficient is the
    adjusted difference in mean change at week w (weeks as categorical windows; arm × time
    interaction unrestricted). Wald interval with a normal reference.

    statsmodels issues ``ConvergenceWarning`` when the random-intercept variance sits on the
    boundary (0) or the optimizer needs a fallback method; these are expected with small or
    nearly independent data, so they are caught, recorded in ``notes``, and a
    :class:`StatisticalWarning` is raised only when the fit did not converge.

    Parameters
    ----------
    frame : AnalysisFrame
        From :func:`comparison_frame` (it carries the long outcomes); not modified. Its
        week is the window whose arm contrast is reported (it must be in ``windows``).
    windows : sequence of int
    covariates, clinic_effects, alpha
        As in :func:`ionto_analytics.compare.ancova.ancova`.

    Returns
    -------
    ComparisonResult
        ``table`` holds the arm contrast at every window.
    """
    if not isinstance(frame, AnalysisFrame):
        raise InputError(
            f"mixed_model needs the AnalysisFrame of comparison_frame (it carries the long "
            f"outcomes), got {type(frame).__name__}"
        )
    week = frame.week
    if week not in windows:
        raise InputError(f"week {week} must be one of windows {list(windows)}")
    parts = []
    for w in windows:
        af = frame.at_week(w)
        d = af.data[af.data["has_follow_up"]].copy()
        d["window"] = f"w{w}"
        parts.append(d)
    long = pd.concat(parts, ignore_index=True)
    with_any = set(long["episode_id"])
    excluded = dict(frame.excluded)
    n_none = int((~frame.data["episode_id"].isin(with_any)).sum())
    if n_none:
        excluded["no_follow_up_in_any_window"] = n_none
    for arm in frame.arms:
        if (long["arm"] == arm).sum() < 2:
            raise InputError(f"mixed_model: arm {arm!r} has fewer than 2 measurements")
    check_windows_present(long, frame, windows)
    arm_terms = []
    for w in windows:
        col = f"arm_at_week_{w}"
        long[col] = ((long["treated"] == 1) & (long["window"] == f"w{w}")).astype(float)
        arm_terms.append(col)
    terms = design_terms(long, frame.adjustment(covariates), clinic_effects)
    formula = (
        "follow_up ~ 0 + C(window) + "
        + " + ".join(arm_terms)
        + " + baseline"
        + "".join(f" + {t}" for t in terms)
    )
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model = smf.mixedlm(formula, long, groups=long["patient_id"])
        fit = model.fit(reml=True)
    for c in caught:
        if issubclass(c.category, ConvergenceWarning):
            notes.append(f"statsmodels: {c.message}")
        else:  # not expected: re-issue so the caller sees it
            warnings.warn_explicit(c.message, c.category, c.filename, c.lineno)
    if not fit.converged:
        msg = "mixed model did not converge; treat the estimate with caution"
        warnings.warn(msg, StatisticalWarning, stacklevel=2)
        notes.append(msg)
    fe = fit.fe_params
    bse = fit.bse_fe
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for w, col in zip(windows, arm_terms, strict=True):
        est, se = float(fe[col]), float(bse[col])
        rows.append(
            {
                "term": f"{contrast_text(frame)} at week {w}",
                "estimate": est,
                "se": se,
                "ci_low": est - z * se,
                "ci_high": est + z * se,
                "p_value": float(2 * stats.norm.sf(abs(est / se))),
            }
        )
    table = pd.DataFrame(rows)
    table = pd.concat(
        [
            table,
            pd.DataFrame(
                [
                    {
                        "term": "random intercept SD (patient)",
                        "estimate": float(np.sqrt(fit.cov_re.iloc[0, 0])),
                        "se": np.nan,
                        "ci_low": np.nan,
                        "ci_high": np.nan,
                        "p_value": np.nan,
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    main = table.iloc[list(windows).index(week)]
    return ComparisonResult.from_fit(
        frame,
        long,
        estimate=main["estimate"],
        ci_low=main["ci_low"],
        ci_high=main["ci_high"],
        p_value=main["p_value"],
        excluded=excluded,
        estimator="linear mixed model (REML), random intercept per patient, Wald z interval",
        estimand=(
            f"adjusted difference in mean change at week {week}, {contrast_text(frame)}; "
            f"model: {formula}"
        ),
        alpha=alpha,
        table=table,
        notes=notes,
        adjustment_set=rhs_terms(formula),
    )
