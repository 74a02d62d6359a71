"""The result object every comparison returns: :class:`ComparisonResult`.

Estimators build it with :meth:`ComparisonResult.from_fit`, which takes the frame's
instrument, week and arms and counts ``n`` the one way (distinct episodes per arm).

Examples
--------
>>> r = ComparisonResult(estimate=-1.2, ci_low=-2.0, ci_high=-0.4, p_value=0.003,
...                      n={"ionto+exercise": 40, "exercise": 41}, excluded={},
...                      estimator="ANCOVA (OLS, HC3)", estimand="difference in mean change",
...                      instrument="nprs", week=6, arms=("ionto+exercise", "exercise"))
>>> r.summary()[["estimate", "ci_low", "ci_high"]].to_numpy().tolist()
[[-1.2, -2.0, -0.4]]
>>> import json; json.loads(json.dumps(r.to_dict()))["n"]["exercise"]
41
>>> r.e_value, r.e_value_ci  # not computed when the result is built by hand
(nan, nan)
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ionto_analytics.compare.diagnostics import PositivityDiagnostics
from ionto_analytics.compare.evalue import e_value_difference, pooled_sd
from ionto_analytics.compare.frame import AnalysisFrame
from ionto_analytics.jsonable import jsonable
from ionto_analytics.plots import dose_response_figure, love_figure

__all__ = ["ComparisonResult"]


def _sd_rows(frame: AnalysisFrame, analysed: pd.DataFrame) -> pd.DataFrame:
    """Rows whose change gives the E-value's SD: the analysed episodes at the contrast's window."""
    data = frame.data
    if "episode_id" in analysed.columns and "episode_id" in data.columns:
        return data[data["episode_id"].isin(analysed["episode_id"])]
    return analysed


@dataclass(frozen=True, eq=False)
class ComparisonResult:
    """Result of a between-arm comparison: estimate of *first arm minus second arm*.

    Attributes
    ----------
    estimate, ci_low, ci_high, p_value : float
        Point estimate, confidence limits and two-sided p-value of the main contrast.
    n : dict
        Distinct episodes analysed per arm (:meth:`AnalysisFrame.n_per_arm`).
    excluded : dict
        Reason → count of episodes not analysed (nothing dropped silently).
    estimator : str
        Estimator and variance (e.g. ``"ANCOVA (OLS), cluster-robust by clinic_id"``).
    estimand : str
        What ``estimate`` means, in words.
    instrument : str or None
        Instrument key.
    week : int, str or None
        Follow-up window.
    arms : tuple of str
        ``(first, second)``: the estimate is first − second.
    table : DataFrame or None
        Secondary numbers (coefficients, RR/NNT, complete case vs MICE, ...), tidy, with at
        least ``term``, ``estimate``, ``ci_low``, ``ci_high``.
    balance : DataFrame or None
        Covariate balance (``variable``, ``smd_before``, ``smd_after``) for weighting.
    curve : DataFrame or None
        A curve with band (``x``, ``estimate``, ``ci_low``, ``ci_high``) for dose response.
    notes : tuple of str
        Caveats (few clusters, trimming, convergence).
    conf_level : float
        Confidence level of the intervals.
    e_value, e_value_ci : float
        E-values (VanderWeele & Ding 2017) of the estimate and of the confidence limit
        nearest the null (1 when the interval crosses it): how strongly, as a risk ratio,
        an unmeasured confounder would have to be tied to both arm and outcome to explain
        the estimate (the interval) away. See :meth:`from_fit` for how they are computed.
    change_sd : float
        The SD the E-values standardize the estimate by (pooled within-arm SD of the change
        from baseline, :meth:`from_fit`); NaN when the E-values come from a risk ratio.
    adjustment_set : tuple of str
        The model terms the estimate is adjusted for (``cr(...)`` = restricted cubic spline).
    status : str
        ``"ok"``, or ``"imbalanced"`` when a weighted comparison leaves a covariate with
        |SMD| above the threshold after weighting (see ``diagnostics``).
    diagnostics : PositivityDiagnostics or None
        Overlap, c-statistic, effective sample size, largest weights, single-arm clinics
        and balance of a propensity-score comparison.
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n: dict[str, int]
    excluded: dict[str, int]
    estimator: str
    estimand: str = ""
    instrument: str | None = None
    week: int | str | None = None
    arms: tuple[str, ...] = ()
    table: pd.DataFrame | None = None
    balance: pd.DataFrame | None = None
    curve: pd.DataFrame | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    conf_level: float = 0.95
    e_value: float = math.nan
    e_value_ci: float = math.nan
    change_sd: float = math.nan
    adjustment_set: tuple[str, ...] = ()
    status: str = "ok"
    diagnostics: PositivityDiagnostics | None = None

    @classmethod
    def from_fit(
        cls,
        frame: AnalysisFrame,
        analysed: pd.DataFrame,
        *,
        estimate: float,
        ci_low: float,
        ci_high: float,
        p_value: float,
        excluded: dict[str, int],
        estimator: str,
        estimand: str,
        alpha: float,
        table: pd.DataFrame | None = None,
        balance: pd.DataFrame | None = None,
        curve: pd.DataFrame | None = None,
        notes: Sequence[str] = (),
        e_values: tuple[float, float] | None = None,
        adjustment_set: Sequence[str] = (),
        diagnostics: PositivityDiagnostics | None = None,
    ) -> ComparisonResult:
        """The one way an estimator builds its result.

        ``instrument``, ``week`` and ``arms`` come from ``frame``; ``n`` counts the
        distinct episodes (by ``episode_id``; each row when the column is absent) of each of
        the frame's two arms in ``analysed``, the rows the estimator used; ``conf_level``
        is 1 − ``alpha``; ``status`` is ``diagnostics.status`` (``"ok"`` without them).

        ``e_value`` and ``e_value_ci`` are those of a mean difference
        (:func:`~ionto_analytics.compare.evalue.e_value_difference`): the estimate divided
        by the pooled within-arm SD of the change from baseline of the analysed episodes
        (their rows of ``frame.data`` at the contrast's window with a follow-up; ``analysed``
        itself when it has no ``episode_id``); an estimator whose estimate is not a mean
        difference passes ``e_values`` (e.g. from a risk ratio).

        Examples
        --------
        >>> af = AnalysisFrame(pd.DataFrame(), "nprs", 6, ("ionto+exercise", "exercise"))
        >>> used = pd.DataFrame({"episode_id": ["e1", "e1", "e2", "e3"],
        ...                      "arm": ["ionto+exercise"] * 2 + ["exercise"] * 2})
        >>> r = ComparisonResult.from_fit(af, used, estimate=-1.0, ci_low=-2.0, ci_high=0.0,
        ...     p_value=0.05, excluded={}, estimator="m", estimand="e", alpha=0.1)
        >>> r.n, r.week, r.conf_level
        ({'ionto+exercise': 1, 'exercise': 2}, 6, 0.9)
        """
        change_sd = math.nan
        if e_values is None:
            change_sd = pooled_sd(_sd_rows(frame, analysed))
            e_values = e_value_difference(float(estimate), float(ci_low), float(ci_high), change_sd)
        return cls(
            estimate=float(estimate),
            ci_low=float(ci_low),
            ci_high=float(ci_high),
            p_value=float(p_value),
            n=frame.n_per_arm(analysed),
            excluded=excluded,
            estimator=estimator,
            estimand=estimand,
            instrument=frame.instrument or None,
            week=frame.week,
            arms=frame.arms,
            table=table,
            balance=balance,
            curve=curve,
            notes=tuple(notes),
            conf_level=1 - alpha,
            e_value=float(e_values[0]),
            e_value_ci=float(e_values[1]),
            change_sd=float(change_sd),
            adjustment_set=tuple(adjustment_set),
            status="ok" if diagnostics is None else diagnostics.status,
            diagnostics=diagnostics,
        )

    def summary(self) -> pd.DataFrame:
        """One-row tidy summary of the main contrast.

        Returns
        -------
        DataFrame
            ``instrument``, ``week``, ``contrast``, ``estimate``, ``ci_low``, ``ci_high``,
            ``p_value``, ``n`` (total), one ``n_<arm>`` per arm, ``excluded`` (total),
            ``estimator``, ``e_value``, ``e_value_ci``, ``adjustment_set`` (the terms,
            ``"; "``-joined), ``status``.
        """
        row: dict[str, Any] = {
            "instrument": self.instrument,
            "week": self.week,
            "contrast": " − ".join(self.arms),
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "n": int(sum(self.n.values())),
        }
        for arm, k in self.n.items():
            row[f"n_{arm}"] = int(k)
        row["excluded"] = int(sum(self.excluded.values()))
        row["estimator"] = self.estimator
        row["e_value"] = self.e_value
        row["e_value_ci"] = self.e_value_ci
        row["adjustment_set"] = "; ".join(self.adjustment_set)
        row["status"] = self.status
        return pd.DataFrame([row])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict of every field (DataFrames as lists of records)."""
        return jsonable(
            {
                "estimate": self.estimate,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "p_value": self.p_value,
                "n": self.n,
                "excluded": self.excluded,
                "estimator": self.estimator,
                "estimand": self.estimand,
                "instrument": self.instrument,
                "week": self.week,
                "arms": list(self.arms),
                "table": self.table,
                "balance": self.balance,
                "curve": self.curve,
                "notes": list(self.notes),
                "conf_level": self.conf_level,
                "e_value": self.e_value,
                "e_value_ci": self.e_value_ci,
                "change_sd": self.change_sd,
                "adjustment_set": list(self.adjustment_set),
                "status": self.status,
                "diagnostics": None if self.diagnostics is None else self.diagnostics.to_dict(),
            }
        )

    def plot(self) -> go.Figure:
        """A plotly Figure: the dose-response curve with its band, the balance (love) plot,
        or a forest plot of the estimate and the secondary table rows. Never shown."""
        if self.curve is not None:
            return dose_response_figure(self)
        if self.balance is not None:
            return love_figure(self)
        labels = [" − ".join(self.arms) or "estimate"]
        est, lo, hi = [self.estimate], [self.ci_low], [self.ci_high]
        if self.table is not None and {"term", "estimate", "ci_low", "ci_high"} <= set(
            self.table.columns
        ):
            for _, r in self.table.iterrows():
                labels.append(str(r["term"]))
                est.append(r["estimate"])
                lo.append(r["ci_low"])
                hi.append(r["ci_high"])
        e = np.asarray(est, dtype=float)
        fig = go.Figure(
            go.Scatter(
                x=e,
                y=labels,
                mode="markers",
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": np.asarray(hi, dtype=float) - e,
                    "arrayminus": e - np.asarray(lo, dtype=float),
                },
            )
        )
        fig.add_vline(x=0.0, line_dash="dash")
        fig.update_layout(
            title=f"{self.estimator}: {self.estimand}", yaxis={"autorange": "reversed"}
        )
        return fig

    def _repr_html_(self) -> str:
        head = (
            f"<p><b>{html.escape(self.estimator)}</b> — {html.escape(self.estimand)}"
            f" ({html.escape(str(self.instrument))}, {html.escape(str(self.week))})</p>"
        )
        parts = [head, self.summary().to_html(index=False)]
        if self.table is not None:
            parts.append(self.table.to_html(index=False))
        if self.excluded:
            parts.append(
                pd.DataFrame(
                    {"reason": list(self.excluded), "n": list(self.excluded.values())}
                ).to_html(index=False)
            )
        if self.notes:
            parts.append(
                "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in self.notes) + "</ul>"
            )
        return "\n".join(parts)

    def __repr__(self) -> str:
        return (
            f"ComparisonResult({' − '.join(self.arms)}: estimate={self.estimate:.4g} "
            f"[{self.ci_low:.4g}, {self.ci_high:.4g}], p={self.p_value:.3g}, n={self.n}, "
            f"estimator={self.estimator!r})"
        )
