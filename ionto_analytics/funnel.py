"""Risk-adjusted outcome per clinic, for a funnel plot: :func:`clinic_funnel`.

Indirect standardization: one linear model of the improvement at the chosen week on the
baseline score, age, sex, symptom duration, arm and condition is fitted to every clinic's episodes
pooled (no clinic term), so each episode gets the improvement *expected* for a patient
like it. A clinic's risk-adjusted outcome is its mean observed improvement minus its mean
expected improvement (O − E; positive = better than expected). Under the null hypothesis
that all clinics are alike, O − E has standard error σ/√n, with σ the model's residual SD,
so the funnel's control limits are ``0 ± z·σ/√n`` with z the normal quantile of the 95 %
and 99.8 % two-sided limits (Spiegelhalter, Stat Med 2005;24:1185, "Funnel plots for
comparing institutional performance").

Improvement is the change signed so that positive is better
(:func:`ionto_analytics.outcomes.change_from_baseline`), whatever the instrument's direction.

Examples
--------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(1)
>>> n = 200
>>> ep = pd.DataFrame({"episode_id": [f"e{i}" for i in range(n)],
...                    "clinic_id": rng.choice(["a", "b", "c", "d"], n),
...                    "condition": "plantar_fasciitis", "arm": "exercise",
...                    "age_years": rng.uniform(20, 70, n),
...                    "sex": rng.choice(["female", "male"], n),
...                    "symptom_duration_weeks": rng.uniform(2, 30, n)})
>>> base = rng.normal(50, 10, n)
>>> out = pd.DataFrame({"episode_id": np.tile(ep["episode_id"], 2), "instrument": "ffi",
...                     "score": np.concatenate([base, base - 15 + rng.normal(0, 8, n)]),
...                     "days_from_intake": np.repeat([0, 42], n)})
>>> f = clinic_funnel(ep, out.assign(score=out["score"].clip(0, 100)), "ffi", 6)
>>> int(f.clinics["n"].sum()), sorted(f.limits["level"].unique().tolist())
(200, [0.95, 0.998])
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import statsmodels.formula.api as smf
from scipy import stats

from data_schemas.vocabulary import conditions_in
from ionto_analytics.compare.frame import design_terms
from ionto_analytics.errors import InputError
from ionto_analytics.jsonable import jsonable
from ionto_analytics.outcomes import change_from_baseline
from ionto_analytics.plots import funnel_figure
from ionto_analytics.suppression import SUPPRESSED_TEXT, THRESHOLD, small

__all__ = ["FUNNEL_COVARIATES", "ClinicFunnel", "clinic_funnel", "control_limits"]

FUNNEL_COVARIATES: tuple[str, ...] = (
    "age_years",
    "sex",
    "symptom_duration_weeks",
    "arm",
    "condition",
)
"""Case-mix covariates besides the baseline score (``condition`` drops out when constant)."""


def control_limits(
    sigma: float,
    n: Sequence[float] | np.ndarray,
    levels: Sequence[float] = (0.95, 0.998),
) -> pd.DataFrame:
    """Funnel control limits ``0 ± z·σ/√n`` at each volume and coverage.

    Parameters
    ----------
    sigma : float
        Residual standard deviation of one episode's outcome.
    n : array-like
        Volumes (episodes per clinic).
    levels : sequence of float
        Two-sided coverages.

    Returns
    -------
    DataFrame
        ``n``, ``level``, ``lower``, ``upper``.

    Examples
    --------
    >>> control_limits(10.0, [25], levels=(0.95,))[["lower", "upper"]].round(3).values.tolist()
    [[-3.92, 3.92]]
    """
    nn = np.asarray(n, dtype=float)
    if (nn <= 0).any() or not np.isfinite(sigma) or sigma < 0:
        raise InputError(f"control_limits: need n > 0 and sigma ≥ 0, got sigma={sigma}")
    rows = []
    for level in levels:
        z = float(stats.norm.ppf(1 - (1 - level) / 2))
        half = z * sigma / np.sqrt(nn)
        rows.append(pd.DataFrame({"n": nn, "level": float(level), "lower": -half, "upper": half}))
    return pd.concat(rows, ignore_index=True)


@dataclass(frozen=True, eq=False)
class ClinicFunnel:
    """Risk-adjusted outcome per clinic and the funnel's control limits.

    Attributes
    ----------
    clinics : DataFrame
        ``clinic_id``, ``n``, ``observed``, ``expected``, ``difference`` (O − E), ``se``,
        ``z``, ``flag`` ("" within the 95 % limits, else "above 95%", "below 99.8%", ...).
    limits : DataFrame
        ``n``, ``level``, ``lower``, ``upper`` on a grid of volumes (for the plot).
    instrument : str
    week : int
    sigma : float
        Residual SD of the case-mix model.
    formula : str
    excluded : dict
        Reason → episodes not used.
    notes : tuple of str
    cohort : str
        Which episodes, in words (e.g. "episodes discharged in 2025Q4"; "" for all given),
        written under the figure's title beside the window.
    """

    clinics: pd.DataFrame
    limits: pd.DataFrame
    instrument: str
    week: int | str
    sigma: float
    formula: str
    excluded: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    cohort: str = ""

    def summary(self) -> pd.DataFrame:
        """The per-clinic table as readers may see it.

        A clinic with 1 to 10 episodes shows ``"<11"`` for its count and no statistics (the
        one small-cell rule, :mod:`ionto_analytics.suppression`); :attr:`clinics` keeps the
        numbers for the analysis.
        """
        hide = small(self.clinics["n"])
        out = self.clinics.astype({"n": object})
        out.loc[hide, "n"] = SUPPRESSED_TEXT
        out.loc[hide, ["observed", "expected", "difference", "se", "z"]] = np.nan
        out.loc[hide, "flag"] = f"not shown: fewer than {THRESHOLD} episodes"
        return out

    def plot(self) -> go.Figure:
        """The funnel plot of the clinics with at least 11 episodes
        (:func:`ionto_analytics.plots.funnel_figure`); never shown."""
        shown = self.clinics[~small(self.clinics["n"])].reset_index(drop=True)
        return funnel_figure(replace(self, clinics=shown))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict."""
        return jsonable(
            {
                "clinics": self.clinics,
                "instrument": self.instrument,
                "week": self.week,
                "sigma": self.sigma,
                "formula": self.formula,
                "excluded": self.excluded,
                "notes": list(self.notes),
                "cohort": self.cohort,
            }
        )

    def _repr_html_(self) -> str:
        head = html.escape(
            f"Clinic funnel: {self.instrument}, {self.week}; model {self.formula}; "
            f"residual SD {self.sigma:.2f}"
        )
        parts = [
            f"<p><b>{head}</b></p>",
            self.summary().to_html(index=False, float_format="%.2f", na_rep=""),
        ]
        if self.excluded:
            parts.append(
                "<p>Excluded: "
                + html.escape(", ".join(f"{k}: {v}" for k, v in self.excluded.items()))
                + "</p>"
            )
        return "\n".join(parts)


def clinic_funnel(
    episodes: pd.DataFrame,
    outcomes: pd.DataFrame,
    instrument: str,
    week: int | str = 6,
    *,
    condition: str | None = None,
    covariates: Sequence[str] = FUNNEL_COVARIATES,
    levels: Sequence[float] = (0.95, 0.998),
) -> ClinicFunnel:
    """Observed minus expected improvement per clinic, with funnel control limits.

    Parameters
    ----------
    episodes : DataFrame
        Episode frame (``episode_id``, ``clinic_id``, ``condition`` and the covariates);
        not modified. A missing ``arm`` is its own category ("none").
    outcomes : DataFrame
        Long outcome frame; not modified.
    instrument : str
    week : int or "discharge"
        Follow-up window (rule of :mod:`ionto_analytics.outcomes`).
    condition : str, optional
        Condition or family key to restrict to.
    covariates : sequence of str
        Case-mix covariates besides the baseline (constant ones are dropped).
    levels : sequence of float
        Control-limit coverages.

    Returns
    -------
    ClinicFunnel

    Raises
    ------
    InputError
        Missing columns, or fewer episodes than model terms + 2.
    """
    need = ["episode_id", "clinic_id", "condition", *covariates]
    missing = [c for c in need if c not in episodes.columns]
    if missing:
        raise InputError(f"clinic_funnel: episodes lack column(s) {missing}")
    ep = episodes[list(dict.fromkeys(need))].copy()
    excluded: dict[str, int] = {}

    def drop(mask: np.ndarray, reason: str) -> None:
        nonlocal ep
        k = int(mask.sum())
        if k:
            excluded[reason] = excluded.get(reason, 0) + k
            ep = ep[~mask]

    if condition is not None:
        drop(~ep["condition"].isin(conditions_in(condition)).to_numpy(), "other_condition")
    if "arm" in ep.columns:
        ep["arm"] = ep["arm"].astype(object).where(ep["arm"].notna(), "none")
    ch = change_from_baseline(outcomes, windows=(week,), instrument=instrument)
    d = ep.merge(ch[["episode_id", "baseline", "improvement"]], on="episode_id", how="left")
    ep = d
    drop(ep["baseline"].isna().to_numpy(), "no_baseline")
    drop(ep["improvement"].isna().to_numpy(), "no_follow_up_in_window")
    for c in covariates:
        drop(ep[c].isna().to_numpy(), f"missing_covariate:{c}")
    d = ep.reset_index(drop=True)
    d["clinic_id"] = d["clinic_id"].astype(str)
    terms = design_terms(d, covariates, clinic_effects=False)
    formula = "improvement ~ baseline" + "".join(f" + {t}" for t in terms)
    if len(d) < len(terms) + 4:
        raise InputError(
            f"clinic_funnel: only {len(d)} episodes with a baseline and a {instrument} "
            f"follow-up at {week}; exclusions: {excluded or 'none'}"
        )
    fit = smf.ols(formula, d).fit()
    sigma = float(np.sqrt(fit.scale))
    d["expected"] = np.asarray(fit.fittedvalues, dtype=float)
    g = d.groupby("clinic_id", sort=True)
    clinics = pd.DataFrame(
        {
            "n": g.size(),
            "observed": g["improvement"].mean(),
            "expected": g["expected"].mean(),
        }
    ).reset_index()
    clinics["difference"] = clinics["observed"] - clinics["expected"]
    clinics["se"] = sigma / np.sqrt(clinics["n"].to_numpy(float))
    clinics["z"] = clinics["difference"] / clinics["se"]
    flag = np.full(len(clinics), "", dtype=object)
    for level in sorted(levels):
        zq = float(stats.norm.ppf(1 - (1 - level) / 2))
        pct = f"{100 * level:g}%"
        flag[clinics["z"].to_numpy() > zq] = f"above {pct}"
        flag[clinics["z"].to_numpy() < -zq] = f"below {pct}"
    clinics["flag"] = flag
    n_max = max(int(clinics["n"].max()) * 1.15, 10.0)
    grid = np.unique(np.round(np.geomspace(max(2.0, clinics["n"].min() * 0.6), n_max, 60), 1))
    notes = []
    small = int((clinics["n"] < 11).sum())
    if small:
        notes.append(f"{small} clinic(s) with fewer than 11 episodes: read their position loosely")
    return ClinicFunnel(
        clinics=clinics,
        limits=control_limits(sigma, grid, levels),
        instrument=instrument,
        week=week,
        sigma=sigma,
        formula=formula,
        excluded=excluded,
        notes=tuple(notes),
    )
