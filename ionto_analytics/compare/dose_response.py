"""Dose response within the iontophoresis arm(s): :func:`dose_response`.

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

from collections.abc import Sequence

import numpy as np
import pandas as pd
import patsy
import statsmodels.api as sm
from scipy import stats

from ionto_analytics.compare.fit import SeType, coef_table, ols_fit
from ionto_analytics.compare.frame import (
    DEFAULT_COVARIATES,
    AnalysisFrame,
    as_analysis_frame,
    design_terms,
)
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError

__all__ = ["dose_response"]


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
    se: SeType = "auto",
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

    Variance as :func:`ionto_analytics.compare.fit.ols_fit` (``se``).

    Returns
    -------
    ComparisonResult
        ``estimate`` = linear slope per mA·min; ``curve`` = ``x``, ``estimate``, ``ci_low``,
        ``ci_high``.
    """
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
    se_used = str(lin.cov_type)  # type: ignore[attr-defined]  # "cluster", "HC2", "HC1"...
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
        spl = sm.OLS(y_spl, x_spl).fit(cov_type=se_used, use_t=True)
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
    slope = coef_table(lin, alpha, "dose_mA_min").set_index("term").loc["dose_mA_min"]
    return ComparisonResult.from_fit(
        af,
        d,
        estimate=slope["estimate"],
        ci_low=slope["ci_low"],
        ci_high=slope["ci_high"],
        p_value=slope["p_value"],
        excluded=excluded,
        estimator=f"dose response: OLS, linear slope and cr() spline (df={spline_df}), {var_text}",
        estimand=(
            f"change in mean {af.instrument or 'score'} per delivered mA·min (linear); "
            f"curve vs reference dose {ref:.0f} mA·min"
        ),
        alpha=alpha,
        curve=curve,
        notes=notes,
    )
