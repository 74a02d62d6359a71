"""Missing follow-up by multiple imputation beside complete case: :func:`mice_sensitivity`.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(5)
>>> n = 120
>>> b = rng.normal(6, 1, n)
>>> t = np.arange(n) % 2 == 0
>>> y = 1.5 + 0.6 * b - 1.0 * t + rng.normal(0, 0.8, n)
>>> df = pd.DataFrame({"arm": np.where(t, "ionto+exercise", "exercise"), "baseline": b,
...                    "follow_up": np.where(rng.random(n) < 0.15, np.nan, y)})
>>> r = mice_sensitivity(df, arms=("ionto+exercise", "exercise"), covariates=(),
...                      clinic_effects=False, n_imputations=5, seed=1)
>>> r.table["term"].tolist(), sum(r.n.values()) == n
(['complete case (OLS)', 'multiple imputation', 'follow-ups imputed'], True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.imputation.mice import MICE, MICEData

from ionto_analytics.compare.fit import check_arms_present, contrast_text
from ionto_analytics.compare.frame import (
    DEFAULT_COVARIATES,
    AnalysisFrame,
    as_analysis_frame,
    design_terms,
)
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError

__all__ = ["mice_sensitivity"]


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
    check_arms_present(d[d["has_follow_up"].to_numpy()], af, "mice_sensitivity")
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
    return ComparisonResult.from_fit(
        af,
        d,
        estimate=est,
        ci_low=lo,
        ci_high=hi,
        p_value=p,
        excluded=dict(af.excluded),
        estimator=method,
        estimand=(
            f"adjusted difference in mean change, {contrast_text(af)}, "
            f"missing follow-up imputed; model: {formula}"
        ),
        alpha=alpha,
        table=table,
    )
