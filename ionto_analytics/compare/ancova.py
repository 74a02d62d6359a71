"""ANCOVA: the adjusted difference in mean change from baseline, first arm minus second.

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({
...     "arm": ["ionto+exercise"] * 4 + ["exercise"] * 4,
...     "baseline": [6.0, 7.0, 5.0, 8.0, 6.0, 7.0, 5.0, 8.0],
...     "follow_up": [3.0, 4.5, 2.5, 5.0, 4.0, 5.0, 3.5, 6.5]})
>>> r = ancova(df, arms=("ionto+exercise", "exercise"), covariates=(), clinic_effects=False,
...            se="hc3")
>>> round(r.estimate, 3), r.n
(-1.0, {'ionto+exercise': 4, 'exercise': 4})
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ionto_analytics.compare.adjustment import imputation_notes, rhs_terms, spline_note
from ionto_analytics.compare.fit import (
    MIN_CLUSTERS,
    SeType,
    check_arms_present,
    coef_table,
    contrast_text,
    ols_fit,
)
from ionto_analytics.compare.frame import (
    AnalysisFrame,
    as_analysis_frame,
    design_terms,
)
from ionto_analytics.compare.result import ComparisonResult

__all__ = ["ancova"]


def ancova(
    frame: AnalysisFrame | pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    covariates: Sequence[str] | None = None,
    clinic_effects: bool = True,
    flexible: bool = True,
    se: SeType = "auto",
    cluster: str = "clinic_id",
    min_clusters: int = MIN_CLUSTERS,
    alpha: float = 0.05,
) -> ComparisonResult:
    """ANCOVA: follow-up score on arm + baseline + covariates (+ clinic fixed effects).

    Model: ``follow_up ~ treated + baseline + age_years + C(sex) + symptom_duration_weeks
    + intake scores + C(clinic_id)`` by OLS (the frame's adjustment set; constant covariates
    are dropped). Continuous confounders (baseline, age, symptom duration, intake scores)
    enter as restricted cubic splines when there are at least 20 episodes per spline df,
    else linearly (:func:`ionto_analytics.compare.frame.design_terms`; ``notes`` says which).
    Estimand: the difference in mean change from baseline, first arm minus second, adjusted
    for baseline and covariates
    (with the baseline in the model, regressing the follow-up or the change gives the same
    arm coefficient). Negative = less pain for lower-is-better instruments.

    Variance: see :func:`ols_fit` (``se="auto"`` → cluster-robust by clinic with ≥ 20 clinics,
    else HC2 with a :class:`StatisticalWarning`; the arm contrast's interval then takes the
    Bell–McCaffrey degrees of freedom, :func:`~ionto_analytics.compare.fit.bell_mccaffrey_df`).

    Parameters
    ----------
    frame : AnalysisFrame or DataFrame
        From :func:`comparison_frame`; not modified. Episodes without a follow-up are
        excluded and counted (``no_follow_up_in_window``).
    arms : (str, str) or None
        Needed for a plain DataFrame.
    covariates : sequence of str or None
        Adjustment covariates besides baseline and clinic; None: the frame's adjustment set
        (:attr:`AnalysisFrame.adjust_for`).
    clinic_effects : bool
        Include clinic fixed effects.
    flexible : bool
        Continuous confounders as splines when the sample allows; False: all linear.
    se : {"auto", "cluster", "hc2", "hc3"}
        Variance estimator.
    cluster : str
        Cluster column for ``se="cluster"``.
    min_clusters : int
        Threshold for ``se="auto"``.
    alpha : float
        1 − confidence level.

    Returns
    -------
    ComparisonResult
        ``table`` holds all coefficients plus the unadjusted difference in mean change.
    """
    af = as_analysis_frame(frame, arms)
    adjust = ("baseline", *af.adjustment(covariates))
    d, excluded = af.complete_cases(adjust[1:])
    check_arms_present(d, af, "ancova")
    splines_n = len(d) if flexible else 0
    terms = design_terms(d, adjust, clinic_effects, splines_n=splines_n)
    formula = "follow_up ~ treated + " + " + ".join(terms)
    fit, var_text, notes = ols_fit(formula, d, se, cluster, min_clusters)
    notes.append(spline_note(d, adjust, splines_n, "ANCOVA"))
    coefs = coef_table(fit, alpha, "treated")
    row = coefs.set_index("term").loc["treated"]
    t_arm = d.loc[d["treated"] == 1, "change"]
    c_arm = d.loc[d["treated"] == 0, "change"]
    diff = float(t_arm.mean() - c_arm.mean())
    welch = stats.ttest_ind(t_arm, c_arm, equal_var=False)
    wci = welch.confidence_interval(confidence_level=1 - alpha)
    naive = pd.DataFrame(
        [
            {
                "term": "unadjusted difference in mean change (Welch)",
                "estimate": diff,
                "se": np.nan,
                "ci_low": float(wci.low),
                "ci_high": float(wci.high),
                "p_value": float(welch.pvalue),
            }
        ]
    )
    return ComparisonResult.from_fit(
        af,
        d,
        estimate=row["estimate"],
        ci_low=row["ci_low"],
        ci_high=row["ci_high"],
        p_value=row["p_value"],
        excluded=excluded,
        estimator=f"ANCOVA (OLS), {var_text}",
        estimand=(
            f"adjusted difference in mean change from baseline, {contrast_text(af)}; "
            f"model: {formula}"
        ),
        alpha=alpha,
        table=pd.concat([coefs[coefs["term"] != "treated"], naive], ignore_index=True),
        notes=[*notes, *imputation_notes(af.imputed)],
        adjustment_set=rhs_terms(formula),
    )
