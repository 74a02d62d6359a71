"""Positivity and balance diagnostics of a propensity-score analysis: :func:`diagnose`.

What a reviewer of a weighted comparison asks first (the OHDSI / CohortMethod checklist):

* **Overlap**: the preference score of Walker et al. (2013), the propensity rescaled so that
  the treated share of the cohort maps to 0.5,
  ``logit(F) = logit(e) − logit(P)`` with ``P`` the share in the first arm; the **equipoise
  share** is the fraction of episodes with ``0.3 ≤ F ≤ 0.7`` (Walker: above about half the
  cohort, the arms are in empirical equipoise).
* **Discrimination**: the c-statistic (area under the ROC curve) of the propensity model; near
  1 the arms barely overlap and the weights rest on a few episodes.
* **Effective sample size** per arm after weighting (Kish: ``(Σw)² / Σw²``) and the largest
  weights, with the episode they belong to.
* **Strata where one arm is absent** (a clinic that treats everyone): no comparison is
  possible there; :func:`single_arm_strata` names them so the estimator can exclude them.
* **Strata where one arm is nearly absent** (a clinic that treats *almost* everyone one
  way): the comparison there rests on a handful of episodes with large weights;
  :func:`sparse_strata` names the clinics whose smaller arm is under :data:`SPARSE_SHARE`
  of their analysed episodes (kept, and said in the notes).
* **Balance after weighting**: absolute standardized mean difference per covariate; any above
  :data:`SMD_THRESHOLD` (0.1) makes :attr:`PositivityDiagnostics.status` ``"imbalanced"``.

Examples
--------
>>> import numpy as np, pandas as pd
>>> ps = np.array([0.2, 0.4, 0.5, 0.6, 0.3, 0.7])
>>> t = np.array([False, False, True, True, False, True])
>>> np.round(preference_scores(ps, t), 3).tolist()
[0.2, 0.4, 0.5, 0.6, 0.3, 0.7]
>>> c_statistic(ps, t)
1.0
>>> kish_ess(np.array([1.0, 1.0, 2.0]))
2.6666666666666665
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy.stats import rankdata

from ionto_analytics.jsonable import jsonable
from ionto_analytics.plots import preference_figure

__all__ = [
    "EQUIPOISE",
    "SMD_THRESHOLD",
    "PositivityDiagnostics",
    "c_statistic",
    "diagnose",
    "kish_ess",
    "preference_scores",
    "single_arm_strata",
    "sparse_strata",
]

SMD_THRESHOLD = 0.1
"""|SMD| after weighting above this makes a result ``"imbalanced"`` (Austin 2009)."""

EQUIPOISE = (0.3, 0.7)
"""Preference-score range counted as empirical equipoise (Walker et al. 2013)."""

N_LARGEST = 5
"""How many of the largest weights are reported."""

SPARSE_SHARE = 0.1
"""A clinic whose smaller arm holds less than this share of its episodes is named as one
where an arm is nearly absent (a positivity problem short of a single-arm clinic)."""


def preference_scores(ps: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Walker's preference score: ``logit(F) = logit(e) − logit(P)``, ``P`` = treated share.

    Examples
    --------
    >>> p = preference_scores(np.array([0.75, 0.75, 0.75, 0.5]), np.array([1, 1, 1, 0]))
    >>> np.round(p, 3).tolist()
    [0.5, 0.5, 0.5, 0.25]
    """
    e = np.clip(np.asarray(ps, dtype=float), 1e-12, 1 - 1e-12)
    p = float(np.mean(np.asarray(treated, dtype=bool)))
    logit = np.log(e / (1 - e)) - np.log(p / (1 - p))
    return 1 / (1 + np.exp(-logit))


def c_statistic(ps: np.ndarray, treated: np.ndarray) -> float:
    """Area under the ROC curve of ``ps`` for ``treated`` (Mann–Whitney, ties count ½).

    Examples
    --------
    >>> c_statistic(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    1.0
    """
    t = np.asarray(treated, dtype=bool)
    n1, n0 = int(t.sum()), int((~t).sum())
    ranks = rankdata(np.asarray(ps, dtype=float))
    return float((ranks[t].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def kish_ess(w: np.ndarray) -> float:
    """Kish's effective sample size ``(Σw)² / Σw²`` (``n`` for equal weights).

    Examples
    --------
    >>> kish_ess(np.ones(10))
    10.0
    """
    w = np.asarray(w, dtype=float)
    return float(w.sum() ** 2 / (w**2).sum())


def single_arm_strata(d: pd.DataFrame, column: str, arms: tuple[str, ...]) -> pd.DataFrame:
    """Values of ``column`` (clinics) in which only one of ``arms`` occurs.

    Returns
    -------
    DataFrame
        ``column``, ``arm`` (the only arm present) and ``n`` (episodes), one row per stratum.

    Examples
    --------
    >>> d = pd.DataFrame({"clinic_id": ["a", "a", "b", "b", "c"],
    ...                   "arm": ["x", "y", "x", "x", "y"]})
    >>> single_arm_strata(d, "clinic_id", ("x", "y")).to_numpy().tolist()
    [['b', 'x', 2], ['c', 'y', 1]]
    """
    present = d.groupby(column, observed=True)["arm"].agg(["nunique", "first", "size"])
    one = present[present["nunique"] < len(arms)]
    return pd.DataFrame(
        {column: one.index.astype(str), "arm": one["first"].to_numpy(), "n": one["size"].to_numpy()}
    )


def sparse_strata(
    d: pd.DataFrame, column: str, arms: tuple[str, ...], share: float = SPARSE_SHARE
) -> pd.DataFrame:
    """Values of ``column`` (clinics) with both arms but the smaller under ``share`` of them.

    Returns
    -------
    DataFrame
        ``column``, ``arm`` (the smaller arm), ``n`` (its episodes) and ``n_total``.

    Examples
    --------
    >>> d = pd.DataFrame({"clinic_id": ["a"] * 12 + ["b"] * 4,
    ...                   "arm": ["x"] * 11 + ["y"] + ["x", "y"] * 2})
    >>> sparse_strata(d, "clinic_id", ("x", "y")).to_numpy().tolist()
    [['a', 'y', 1, 12]]
    """
    counts = (
        d.groupby([column, "arm"], observed=True)
        .size()
        .unstack("arm", fill_value=0)
        .reindex(columns=list(arms), fill_value=0)
    )
    both = counts[(counts > 0).all(axis=1)]
    total = both.sum(axis=1)
    small = both.idxmin(axis=1)
    n_small = both.min(axis=1)
    keep = n_small < share * total
    return pd.DataFrame(
        {
            column: both.index[keep].astype(str),
            "arm": small[keep].to_numpy(),
            "n": n_small[keep].to_numpy(),
            "n_total": total[keep].to_numpy(),
        }
    )


@dataclass(frozen=True, eq=False)
class PositivityDiagnostics:
    """Overlap, discrimination, weight and balance diagnostics of one weighted comparison.

    Attributes
    ----------
    preference : DataFrame
        One row per analysed episode: ``arm``, ``propensity``, ``preference_score``, ``weight``.
    equipoise_share : float
        Share of episodes with preference score in :data:`EQUIPOISE`.
    c_statistic : float
        Area under the ROC curve of the propensity model.
    ess : dict
        Arm → Kish effective sample size after weighting.
    largest_weights : DataFrame
        The :data:`N_LARGEST` largest weights (``episode_id`` when known, ``arm``, ``weight``,
        ``propensity``).
    single_arm_strata : DataFrame
        Clinics with one arm only (``clinic_id``, ``arm``, ``n``), excluded from the estimate.
    balance : DataFrame
        ``variable``, ``smd_before``, ``smd_after``.
    threshold : float
        |SMD| after weighting above which the comparison is ``"imbalanced"``.
    sparse_strata : DataFrame
        Clinics where one arm is nearly absent (:func:`sparse_strata`: ``clinic_id``,
        ``arm``, ``n``, ``n_total``), kept in the estimate and named in the notes.
    """

    preference: pd.DataFrame
    equipoise_share: float
    c_statistic: float
    ess: dict[str, float]
    largest_weights: pd.DataFrame
    single_arm_strata: pd.DataFrame
    balance: pd.DataFrame
    threshold: float = SMD_THRESHOLD
    sparse_strata: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({"clinic_id": [], "arm": [], "n": [], "n_total": []})
    )

    @property
    def imbalanced(self) -> pd.DataFrame:
        """Rows of :attr:`balance` with ``|smd_after|`` above :attr:`threshold`."""
        return self.balance[self.balance["smd_after"].abs() > self.threshold]

    @property
    def status(self) -> str:
        """``"imbalanced"`` when any covariate's |SMD| after weighting exceeds the threshold,
        else ``"ok"``."""
        return "imbalanced" if len(self.imbalanced) else "ok"

    def histogram(self, bins: int = 10) -> pd.DataFrame:
        """Preference-score distribution per arm: ``arm``, ``bin_low``, ``bin_high``, ``n``."""
        edges = np.linspace(0.0, 1.0, bins + 1)
        rows = []
        for arm, g in self.preference.groupby("arm", sort=False):
            counts, _ = np.histogram(g["preference_score"], bins=edges)
            rows += [
                {"arm": arm, "bin_low": lo, "bin_high": hi, "n": int(k)}
                for lo, hi, k in zip(edges[:-1], edges[1:], counts, strict=True)
            ]
        return pd.DataFrame(rows)

    def notes(self) -> list[str]:
        """The diagnostics in sentences, for a result's ``notes``."""
        lo, hi = EQUIPOISE
        ess = ", ".join(
            f"{arm} {v:.0f} of {int((self.preference['arm'] == arm).sum())}"
            for arm, v in self.ess.items()
        )
        top = self.largest_weights.iloc[0] if len(self.largest_weights) else None
        out = [
            f"propensity model c-statistic {self.c_statistic:.2f}; "
            f"{self.equipoise_share:.0%} of episodes in equipoise (preference score "
            f"{lo}–{hi}); effective sample size after weighting: {ess}"
            + (f"; largest weight {top['weight']:.3g} ({top['arm']})" if top is not None else "")
        ]
        if len(self.single_arm_strata):
            out.append(
                "excluded (only one arm, no comparison possible): "
                + ", ".join(
                    f"clinic {r.clinic_id} ({r.n} episode(s), all {r.arm})"
                    for r in self.single_arm_strata.itertuples()
                )
            )
        if len(self.sparse_strata):
            out.append(
                f"an arm is nearly absent (under {SPARSE_SHARE:.0%} of the clinic's episodes) "
                "in "
                + ", ".join(
                    f"clinic {r.clinic_id} ({r.n} of {r.n_total} in {r.arm})"
                    for r in self.sparse_strata.itertuples()
                )
                + ": the comparison there rests on these few episodes, whose weights are large "
                "(a positivity problem); consider excluding the clinic or overlap weights"
            )
        if self.status == "imbalanced":
            out.append(
                f"imbalanced after weighting (|SMD| > {self.threshold:g}): "
                + ", ".join(
                    f"{r.variable} {r.smd_after:+.2f}" for r in self.imbalanced.itertuples()
                )
                + "; the weighted arms still differ on these, so the estimate may be confounded"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable summary (the distribution as a histogram, not per episode)."""
        return jsonable(
            {
                "status": self.status,
                "threshold": self.threshold,
                "equipoise": list(EQUIPOISE),
                "equipoise_share": self.equipoise_share,
                "c_statistic": self.c_statistic,
                "ess": self.ess,
                "largest_weights": self.largest_weights,
                "single_arm_strata": self.single_arm_strata,
                "sparse_strata": self.sparse_strata,
                "imbalanced": self.imbalanced,
                "preference_histogram": self.histogram(),
            }
        )

    def plot(self) -> go.Figure:
        """Preference-score distribution per arm with the equipoise band (never shown)."""
        return preference_figure(
            self.preference,
            equipoise=EQUIPOISE,
            title=(
                f"Preference score by arm: {self.equipoise_share:.0%} in equipoise, "
                f"c-statistic {self.c_statistic:.2f}"
            ),
        )


def diagnose(
    d: pd.DataFrame,
    ps: np.ndarray,
    w: np.ndarray,
    balance: pd.DataFrame,
    arms: tuple[str, ...],
    excluded_strata: pd.DataFrame,
    threshold: float = SMD_THRESHOLD,
) -> PositivityDiagnostics:
    """Diagnostics of a weighted comparison of the rows ``d`` (``arm``, ``treated``).

    Parameters
    ----------
    d : DataFrame
        The analysed episodes (``arm``, ``treated``; ``episode_id`` when known).
    ps, w : ndarray
        Propensity of the first arm and weight of each row of ``d``.
    balance : DataFrame
        ``variable``, ``smd_before``, ``smd_after``.
    arms : tuple of str
    excluded_strata : DataFrame
        :func:`single_arm_strata` of the rows before exclusion.
    threshold : float

    With a ``clinic_id`` column, the clinics of ``d`` where an arm is nearly absent are
    :attr:`PositivityDiagnostics.sparse_strata`.

    Examples
    --------
    >>> d = pd.DataFrame({"arm": ["x", "x", "y", "y"], "treated": [1, 1, 0, 0],
    ...                   "episode_id": ["e1", "e2", "e3", "e4"]})
    >>> b = pd.DataFrame({"variable": ["age_years"], "smd_before": [0.4], "smd_after": [0.15]})
    >>> dx = diagnose(d, np.array([0.6, 0.5, 0.5, 0.4]), np.array([1.7, 2.0, 2.0, 1.7]), b,
    ...               ("x", "y"), single_arm_strata(d, "arm", ("x", "y")))
    >>> dx.status, dx.equipoise_share, dx.largest_weights["episode_id"].iloc[0]
    ('imbalanced', 1.0, 'e2')
    """
    t = d["treated"].to_numpy() == 1
    sparse = {"sparse_strata": sparse_strata(d, "clinic_id", arms)} if "clinic_id" in d else {}
    pref = pd.DataFrame(
        {
            "arm": d["arm"].to_numpy(),
            "propensity": ps,
            "preference_score": preference_scores(ps, t),
            "weight": w,
        }
    )
    if "episode_id" in d.columns:
        pref.insert(0, "episode_id", d["episode_id"].to_numpy())
    lo, hi = EQUIPOISE
    f = pref["preference_score"]
    return PositivityDiagnostics(
        preference=pref,
        equipoise_share=float(((f >= lo) & (f <= hi)).mean()),
        c_statistic=c_statistic(ps, t),
        ess={arms[0]: kish_ess(w[t]), arms[1]: kish_ess(w[~t])},
        largest_weights=pref.drop(columns="preference_score")
        .sort_values("weight", ascending=False, kind="stable")
        .head(N_LARGEST)
        .reset_index(drop=True),
        single_arm_strata=excluded_strata,
        balance=balance[["variable", "smd_before", "smd_after"]].reset_index(drop=True),
        threshold=threshold,
        **sparse,
    )
