"""The adjustment set's parts below the analysis frame: intake scores of every instrument
collected for the condition (with the missing-indicator rule), the spline rule for
continuous confounders, and the notes that state both.

Why: treatment choice follows the severity the clinician sees at intake, on every instrument
(in the emulator, the condition's primary one), so adjusting only for the baseline of the
analysed instrument leaves confounding on a secondary instrument. Continuous confounders
enter as restricted cubic splines so that a non-linear severity-to-choice or floor effect
is not forced onto a line.

Examples
--------
>>> imputation_notes({"intake_visa_a": 3})
['intake_visa_a missing for 3 episode(s): mean-filled, with indicator intake_visa_a_missing']
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ionto_analytics.instruments import REGISTRY
from ionto_analytics.outcomes import baseline_scores

__all__ = [
    "MIN_PER_SPLINE_DF",
    "MIN_SPLINE_VALUES",
    "SPLINE_DF",
    "continuous_columns",
    "imputation_notes",
    "intake_scores",
    "rhs_terms",
    "spline_note",
]

SPLINE_DF = 3
"""Degrees of freedom of one continuous confounder entered flexibly: patsy
``cr(x, df=3, constraints="center")``, a natural (restricted) cubic spline, linear beyond
its boundary knots, with 4 knots (at the minimum, the 1/3 and 2/3 quantiles and the
maximum)."""

MIN_PER_SPLINE_DF = 20
"""Splines only with at least this many episodes (the smaller arm for a propensity model)
per spline degree of freedom over all continuous confounders; below it they enter linearly."""

MIN_SPLINE_VALUES = 10
"""A numeric confounder with fewer distinct values than this enters linearly."""


def continuous_columns(data: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns of ``columns`` that are numeric with :data:`MIN_SPLINE_VALUES`+ values.

    Examples
    --------
    >>> continuous_columns(pd.DataFrame({"a": range(12), "b": [0, 1] * 6}), ["a", "b"])
    ['a']
    """
    return [
        c
        for c in columns
        if pd.api.types.is_numeric_dtype(data[c])
        and not pd.api.types.is_bool_dtype(data[c])
        and data[c].nunique(dropna=True) >= MIN_SPLINE_VALUES
    ]


def intake_scores(
    outcomes: pd.DataFrame, data: pd.DataFrame, instrument: str
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Intake scores of every other instrument collected for the episodes' conditions.

    An instrument counts when the registry lists it for a condition of ``data`` and at
    least one episode of ``data`` has a baseline on it (the rule of
    :func:`ionto_analytics.outcomes.baseline_scores`). A transition rating (GROC) never
    counts: it is rated after treatment began, so a score in the first week is an early
    response to the arm, not a characteristic that drove its choice. Missing-indicator
    rule: an episode without that intake score gets the mean of the observed ones in
    ``intake_<key>`` and 1 in ``intake_<key>_missing`` (the indicator column exists only
    when some are missing; the count is returned); nobody is excluded for it. Within an
    indicator stratum the filled value is a constant, so the model compares like with like.

    Returns
    -------
    (DataFrame, dict)
        ``episode_id`` plus the intake columns; ``intake_<key>`` → episodes filled.

    Examples
    --------
    >>> data = pd.DataFrame({"episode_id": ["e1", "e2", "e3"],
    ...                      "condition": "achilles_tendinopathy"})
    >>> out = pd.DataFrame({"episode_id": ["e1", "e2", "e1"], "days_from_intake": 0,
    ...                     "instrument": ["visa_a", "visa_a", "nprs"],
    ...                     "score": [40.0, 60.0, 6.0]})
    >>> intake, filled = intake_scores(out, data, "nprs")
    >>> intake.to_numpy().tolist(), filled
    ([['e1', 40.0, 0], ['e2', 60.0, 0], ['e3', 50.0, 1]], {'intake_visa_a': 1})
    """
    conds = set(data["condition"].dropna())
    others = [
        k
        for k, i in REGISTRY.items()
        if k != instrument and not i.transition and conds & set(i.conditions or ())
    ]
    ids = data[["episode_id"]].reset_index(drop=True)
    rows = outcomes[outcomes["episode_id"].isin(ids["episode_id"])]
    rows = rows[rows["instrument"].isin(others)]
    base = baseline_scores(rows) if len(rows) else pd.DataFrame(columns=["instrument"])
    imputed: dict[str, int] = {}
    for k in sorted(set(base["instrument"])):
        col = f"intake_{k}"
        b = base.loc[base["instrument"] == k, ["episode_id", "baseline"]]
        values = ids.merge(b, on="episode_id", how="left")["baseline"].astype(float)
        missing = values.isna()
        ids[col] = values.fillna(values.mean()).to_numpy()
        if missing.any():
            ids[f"{col}_missing"] = missing.astype(int).to_numpy()
            imputed[col] = int(missing.sum())
    return ids, imputed


def imputation_notes(imputed: dict[str, int]) -> list[str]:
    """One note per intake score filled by the missing-indicator rule (see the module)."""
    return [
        f"{col} missing for {k} episode(s): mean-filled, with indicator {col}_missing"
        for col, k in imputed.items()
    ]


def spline_note(data: pd.DataFrame, covariates: Sequence[str], splines_n: int, what: str) -> str:
    """Say how ``what`` entered the continuous confounders (rule of ``design_terms``).

    Examples
    --------
    >>> df = pd.DataFrame({"baseline": range(30)})
    >>> spline_note(df, ["baseline"], 30, "ANCOVA")[:58]
    'ANCOVA: continuous confounders (baseline) entered linearly'
    """
    continuous = continuous_columns(data, covariates)
    if not continuous:
        return f"{what}: no continuous confounder"
    need = MIN_PER_SPLINE_DF * SPLINE_DF * len(continuous)
    names = ", ".join(continuous)
    if splines_n >= need:
        return (
            f"{what}: continuous confounders ({names}) as restricted cubic splines "
            f"(natural cubic, {SPLINE_DF + 1} knots at the minimum, 1/3 and 2/3 quantiles and "
            f"maximum, {SPLINE_DF} df each; {splines_n} ≥ {need} episodes)"
        )
    return (
        f"{what}: continuous confounders ({names}) entered linearly: {splines_n} episodes, "
        f"fewer than the {need} ({MIN_PER_SPLINE_DF} per spline df) that restricted cubic "
        "splines need"
    )


def rhs_terms(formula: str) -> tuple[str, ...]:
    """The adjustment terms of a model formula: its right-hand side without the arm terms.

    Examples
    --------
    >>> rhs_terms("follow_up ~ treated + cr(baseline, df=3) + C(sex)")
    ('cr(baseline, df=3)', 'C(sex)')
    >>> rhs_terms("follow_up ~ 0 + C(window) + arm_at_week_6 + baseline")
    ('baseline',)
    """
    rhs = formula.split("~", 1)[1].split(" + ")
    arm = ("treated", "0", "C(window)")
    return tuple(
        t.strip() for t in rhs if t.strip() not in arm and not t.strip().startswith("arm_at_")
    )
