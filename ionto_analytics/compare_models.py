"""Model-based comparisons: linear mixed model, MICE sensitivity analysis, dose response.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> n = 120
>>> b = rng.normal(6, 1, n)
>>> dose = rng.uniform(40, 320, n)
>>> df = pd.DataFrame({"episode_id": [f"e{i}" for i in range(n)], "arm": "ionto+exercise",
...                    "baseline": b, "follow_up": 1 + 0.6 * b - 0.004 * dose
...                    + rng.normal(0, 0.8, n)})
>>> sessions = pd.DataFrame({"episode_id": df["episode_id"], "delivered_dose_mA_min": dose})
>>> r = dose_response(df, sessions, arms=("ionto+exercise", "exercise"), covariates=(),
...                   clinic_effects=False, se="hc3")
>>> bool(r.ci_low < -0.004 < r.ci_high), list(r.curve.columns)
(True, ['x', 'estimate', 'ci_low', 'ci_high'])
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.imputation.mice import MICE, MICEData
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from ionto_analytics.compare_frame import (
    DEFAULT_COVARIATES,
    AnalysisFrame,
    as_analysis_frame,
    comparison_frame,
    design_terms,
)
from ionto_analytics.compare_result import ComparisonResult
from ionto_analytics.errors import InputError, StatisticalWarning

__all__ = ["dose_response", "mice_sensitivity", "mixed_model"]


def mixed_model(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    instrument: str,
    week: int,
    arms: Sequence[str],
    *,
    windows: Sequence[int] = (4, 6, 12),
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    clinic_effects: bool = True,
    condition: str | None = None,
    alpha: float = 0.05,
) -> ComparisonResult:
    """Linear mixed model over all follow-up windows; arm contrast at ``week``.

    Each episode contributes its measurement at every window in ``windows`` (the window rule
    of :mod:`ionto_analytics.outcomes`). Model (REML, statsmodels ``MixedLM``)::

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
    episodes, outcomes : DataFrame
        Episode and long outcome frames; not modified.
    instrument : str
    week : int
        Window whose arm contrast is reported (must be in ``windows``).
    arms : (str, str)
    windows : sequence of int
    covariates, clinic_effects, condition, alpha
        As in :func:`ionto_analytics.compare.ancova` / :func:`comparison_frame`.

    Returns
    -------
    ComparisonResult
        ``table`` holds the arm contrast at every window.
    """
    if week not in windows:
        raise InputError(f"week {week} must be one of windows {list(windows)}")
    frames = {
        w: comparison_frame(
            episodes, outcomes, instrument, w, arms, condition=condition, covariates=covariates
        )
        for w in windows
    }
    ref = frames[week]
    parts = []
    for w, af in frames.items():
        d = af.data[af.data["has_follow_up"]].copy()
        d["window"] = f"w{w}"
        parts.append(d)
    long = pd.concat(parts, ignore_index=True)
    with_any = set(long["episode_id"])
    excluded = dict(ref.excluded)
    n_none = int((~ref.data["episode_id"].isin(with_any)).sum())
    if n_none:
        excluded["no_follow_up_in_any_window"] = n_none
    for arm in ref.arms:
        if (long["arm"] == arm).sum() < 2:
            raise InputError(f"mixed_model: arm {arm!r} has fewer than 2 measurements")
    arm_terms = []
    for w in windows:
        col = f"arm_at_week_{w}"
        long[col] = ((long["treated"] == 1) & (long["window"] == f"w{w}")).astype(float)
        arm_terms.append(col)
    terms = design_terms(long, covariates, clinic_effects)
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
                "term": f"{ref.arms[0]} − {ref.arms[1]} at week {w}",
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
    n_ep = long.drop_duplicates("episode_id")
    return ComparisonResult(
        estimate=float(main["estimate"]),
        ci_low=float(main["ci_low"]),
        ci_high=float(main["ci_high"]),
        p_value=float(main["p_value"]),
        n={a: int((n_ep["arm"] == a).sum()) for a in ref.arms},
        excluded=excluded,
        method="linear mixed model (REML), random intercept per patient, Wald z interval",
        estimand=(
            f"adjusted difference in mean change at week {week}, "
            f"{ref.arms[0]} − {ref.arms[1]}; model: {formula}"
        ),
        instrument=ref.instrument,
        week=week,
        arms=ref.arms,
        table=table,
        notes=tuple(notes),
        conf_level=1 - alpha,
    )


def _safe(name: str) -> str:
    return re.sub(r"\W", "_", name)


def mice_sensitivity(
    frame: AnalysisFrame | pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    clinic_effects: bool = True,
    n_imputations: int = 20,
    n_burnin: int = 10,
    seed: int | np.random.Generator = 0,
    alpha: float = 0.05,
) -> ComparisonResult:
    """Missing follow-up handled by multiple imputation (statsmodels MICE) beside complete case.

    The ANCOVA model ``follow_up ~ treated + baseline + covariates (+ clinic dummies)`` is fit
    to ``n_imputations`` data sets imputed by chained equations (predictive mean matching on
    all the other columns, which include the arm, so the imputation model is congenial) and
    combined by Rubin's rules (statsmodels ``MICE``). Variances are model-based (OLS), and the
    complete-case row in ``table`` uses the same OLS variance so the two are comparable.
    Assumes missing at random given the model's variables.

    Returns
    -------
    ComparisonResult
        ``estimate`` from MICE; ``table`` rows: complete case, MICE, number imputed.
    """
    af = as_analysis_frame(frame, arms)
    d = af.data.reset_index(drop=True)
    if int(d["has_follow_up"].sum()) < 3:
        raise InputError("mice_sensitivity: fewer than 3 episodes with a follow-up")
    terms = design_terms(d, covariates, clinic_effects)
    num = pd.DataFrame(
        {
            "follow_up": d["follow_up"].astype(float),
            "treated": d["treated"].astype(float),
            "baseline": d["baseline"].astype(float),
        }
    )
    for t in terms:
        col = t[2:-1] if t.startswith("C(") else t
        if t.startswith("C("):
            dummies = pd.get_dummies(d[col].astype(str), prefix=col, drop_first=True, dtype=float)
            for c in dummies.columns:
                num[_safe(c)] = dummies[c].to_numpy()
        else:
            num[_safe(col)] = d[col].astype(float).to_numpy()
    if num.drop(columns="follow_up").isna().any().any():
        raise InputError(
            "mice_sensitivity: covariates must be complete (only the follow-up "
            "is imputed); comparison_frame excludes episodes with missing ones"
        )
    rhs = " + ".join(c for c in num.columns if c != "follow_up")
    formula = f"follow_up ~ {rhs}"
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n_missing = int(num["follow_up"].isna().sum())
    cc = smf.ols(formula, num.dropna()).fit()
    cc_ci = cc.conf_int(alpha=alpha).loc["treated"]
    if n_missing == 0:
        est, lo, hi, p = (
            float(cc.params["treated"]),
            float(cc_ci.iloc[0]),
            float(cc_ci.iloc[1]),
            float(cc.pvalues["treated"]),
        )
        method = "complete case (no missing follow-up; MICE not needed)"
    else:
        imp = MICEData(num, rng=rng)
        mres = MICE(formula, sm.OLS, imp).fit(n_burnin=n_burnin, n_imputations=n_imputations)
        names = list(mres.model.exog_names)
        i = names.index("treated")
        est = float(mres.params[i])
        se = float(mres.bse[i])
        z = stats.norm.ppf(1 - alpha / 2)
        lo, hi = est - z * se, est + z * se
        p = float(2 * stats.norm.sf(abs(est / se)))
        method = (
            f"MICE (statsmodels, PMM, {n_imputations} imputations, Rubin's rules), OLS variance"
        )
    table = pd.DataFrame(
        [
            {
                "term": "complete case (OLS)",
                "estimate": float(cc.params["treated"]),
                "ci_low": float(cc_ci.iloc[0]),
                "ci_high": float(cc_ci.iloc[1]),
                "p_value": float(cc.pvalues["treated"]),
            },
            {
                "term": "multiple imputation",
                "estimate": est,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": p,
            },
            {
                "term": "follow-ups imputed",
                "estimate": float(n_missing),
                "ci_low": np.nan,
                "ci_high": np.nan,
                "p_value": np.nan,
            },
        ]
    )
    return ComparisonResult(
        estimate=est,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        n={a: int((d["arm"] == a).sum()) for a in af.arms},
        excluded=dict(af.excluded),
        method=method,
        estimand=(
            f"adjusted difference in mean change, {af.arms[0]} − {af.arms[1]}, "
            f"missing follow-up imputed; model: {formula}"
        ),
        instrument=af.instrument or None,
        week=af.week,
        arms=af.arms,
        table=table,
        conf_level=1 - alpha,
    )


def dose_response(
    frame: AnalysisFrame | pd.DataFrame,
    sessions: pd.DataFrame,
    *,
    arms: Sequence[str] | None = None,
    covariates: Sequence[str] = DEFAULT_COVARIATES,
    clinic_effects: bool = True,
    spline_df: int = 3,
    reference: float | None = None,
    n_grid: int = 50,
    se: Literal["auto", "cluster", "hc3"] = "auto",
    alpha: float = 0.05,
) -> ComparisonResult:
    """Follow-up score vs cumulative delivered mA·min within the iontophoresis arm(s).

    Dose = sum of ``delivered_dose_mA_min`` over the sessions linked to the episode. Only
    episodes whose arm includes iontophoresis are used; the others, and ionto episodes with
    no linked session (dose unknown), are counted in ``excluded``; unlinked sessions are
    counted in ``notes``.

    * Curve: ``follow_up ~ cr(dose, df=spline_df) + baseline + covariates (+ clinic)``
      (patsy natural cubic regression spline); the curve is the adjusted difference in mean
      follow-up (≡ change) between each dose and the ``reference`` dose (default: the
      median), with a pointwise band from the sandwich covariance.
    * Main estimate: the slope per mA·min from the same model with a linear dose term.

    Variance as :func:`ionto_analytics.compare.ols_fit` (``se``).

    Returns
    -------
    ComparisonResult
        ``estimate`` = linear slope per mA·min; ``curve`` = ``x``, ``estimate``, ``ci_low``,
        ``ci_high``.
    """
    from ionto_analytics.compare import ols_fit

    af = as_analysis_frame(frame, arms)
    d, excluded = af.complete_cases()
    need = [c for c in ("episode_id", "delivered_dose_mA_min") if c not in sessions.columns]
    if need:
        raise InputError(f"sessions: missing column(s) {need}")
    if "episode_id" not in d.columns:
        raise InputError("dose_response: the frame needs episode_id to link sessions")
    notes: list[str] = []
    unlinked = int(sessions["episode_id"].isna().sum())
    if unlinked:
        notes.append(f"{unlinked} session(s) not linked to an episode were not used")
    dose = (
        sessions.dropna(subset=["episode_id"]).groupby("episode_id")["delivered_dose_mA_min"].sum()
    )
    ionto = d["arm"].astype(str).str.contains("ionto").to_numpy()
    if (~ionto).any():
        excluded["not_an_ionto_arm"] = excluded.get("not_an_ionto_arm", 0) + int((~ionto).sum())
    d = d[ionto].copy()
    d["dose_mA_min"] = d["episode_id"].map(dose).astype(float)
    no_dose = d["dose_mA_min"].isna()
    if no_dose.any():
        excluded["no_linked_sessions"] = int(no_dose.sum())
        d = d[~no_dose.to_numpy()]
    if len(d) < spline_df + 5:
        raise InputError(f"dose_response: only {len(d)} ionto episodes with a dose")
    d = d.reset_index(drop=True)
    terms = "".join(f" + {t}" for t in design_terms(d, covariates, clinic_effects))
    lin, var_text, more = ols_fit(f"follow_up ~ dose_mA_min + baseline{terms}", d, se, "clinic_id")
    notes += more
    se_used: Literal["cluster", "hc3"] = "cluster" if "cluster-robust" in var_text else "hc3"
    spl_formula = (
        f"follow_up ~ cr(dose_mA_min, df={spline_df}, constraints='center') + baseline{terms}"
    )
    # The spline design is built with patsy directly so that its DesignInfo (which remembers
    # the knots) can rebuild rows for the curve; the variance matches the linear fit's.
    y_spl, x_spl = patsy.dmatrices(spl_formula, d, return_type="dataframe")
    if se_used == "cluster":
        spl = sm.OLS(y_spl, x_spl).fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(d["clinic_id"])[0]}, use_t=True
        )
    else:
        spl = sm.OLS(y_spl, x_spl).fit(cov_type="HC3", use_t=True)
    ref = float(d["dose_mA_min"].median()) if reference is None else float(reference)
    grid = np.linspace(d["dose_mA_min"].min(), d["dose_mA_min"].max(), n_grid)
    base_row = d.iloc[[0]]
    new = pd.concat([base_row] * (n_grid + 1), ignore_index=True)
    new["dose_mA_min"] = np.append(grid, ref)
    (xnew,) = patsy.build_design_matrices([x_spl.design_info], new, return_type="matrix")
    xnew = np.asarray(xnew)
    diff = xnew[:-1] - xnew[-1]
    params = np.asarray(spl.params)
    cov = np.asarray(spl.cov_params())
    est = diff @ params
    sd = np.sqrt(np.einsum("ij,jk,ik->i", diff, cov, diff))
    df_t = getattr(spl, "df_resid_inference", None) or spl.df_resid
    q = stats.t.ppf(1 - alpha / 2, df_t)
    curve = pd.DataFrame(
        {"x": grid, "estimate": est, "ci_low": est - q * sd, "ci_high": est + q * sd}
    )
    ci = lin.conf_int(alpha=alpha).loc["dose_mA_min"]  # type: ignore[attr-defined]
    return ComparisonResult(
        estimate=float(lin.params["dose_mA_min"]),  # type: ignore[attr-defined]
        ci_low=float(ci.iloc[0]),
        ci_high=float(ci.iloc[1]),
        p_value=float(lin.pvalues["dose_mA_min"]),  # type: ignore[attr-defined]
        n={a: int((d["arm"] == a).sum()) for a in pd.unique(d["arm"])},
        excluded=excluded,
        method=f"dose response: OLS, linear slope and cr() spline (df={spline_df}), {var_text}",
        estimand=(
            f"change in mean {af.instrument or 'score'} per delivered mA·min (linear); "
            f"curve vs reference dose {ref:.0f} mA·min"
        ),
        instrument=af.instrument or None,
        week=af.week,
        arms=af.arms,
        curve=curve,
        notes=tuple(notes),
        conf_level=1 - alpha,
    )
