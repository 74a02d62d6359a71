"""Inverse probability of censoring weighting (IPCW): :func:`ipcw`.

Complete-case ANCOVA at a week is valid when the follow-up is missing completely at random,
or at random given the baseline set it adjusts for; an MMRM when it is missing at random
given the analysed instrument's earlier windows. Patients who stop coming because of how
they felt on *another* instrument (in the emulator: the NPRS improvement at visit 3, when
the analysed instrument is the PRTEE) break both. IPCW reweights the complete cases by the
inverse of their probability of still being under observation at the week given everything
observed before (the baseline set, the arm and every instrument's latest score before each
follow-up window), so that they stand for the episodes lost along the way (Robins, Rotnitzky
& Zhao 1995; Robins & Finkelstein 2000).

Examples
--------
>>> import numpy as np, pandas as pd
>>> from ionto_analytics.compare.frame import comparison_frame
>>> rng = np.random.default_rng(5)
>>> n = 400
>>> ids = [f"e{i}" for i in range(n)]
>>> treated = np.arange(n) % 2 == 0
>>> episodes = pd.DataFrame({
...     "episode_id": ids, "patient_id": ids, "clinic_id": "c1",
...     "condition": "lateral_epicondylitis",
...     "arm": np.where(treated, "ionto+exercise", "exercise"),
...     "age_years": 50.0, "sex": "female", "symptom_duration_weeks": 8.0, "n_visits": 8})
>>> base = rng.normal(6, 1, n)
>>> early = base - 1 - rng.normal(0, 1, n)                    # NPRS at day 14
>>> late = early - 1 - 0.5 * treated + rng.normal(0, 1, n)    # NPRS at day 84
>>> stays = rng.random(n) < 1 / (1 + np.exp(-(1 + 1.5 * (early - base + 1))))
>>> rows = [(e, d, s) for e, b, m, l, k in zip(ids, base, early, late, stays)
...         for d, s in [(0, b), (14, m)] + ([(84, l)] if k else [])]
>>> outcomes = pd.DataFrame(rows, columns=["episode_id", "days_from_intake", "score"])
>>> outcomes = outcomes.assign(instrument="nprs", score=outcomes["score"].clip(0, 10))
>>> af = comparison_frame(episodes, outcomes, "nprs", 12, ("ionto+exercise", "exercise"))
>>> r = ipcw(af, clinic_effects=False, se="hc2")
>>> bool(r.ci_low < -0.5 < r.ci_high), r.table["term"].iloc[-1]
(True, 'weights truncated')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import patsy
from scipy import special

from data_schemas.windows import FOLLOW_UP_WEEKS, window_days
from ionto_analytics.compare.adjustment import imputation_notes, rhs_terms, spline_note
from ionto_analytics.compare.fit import (
    MIN_CLUSTERS,
    SeType,
    check_arms_present,
    coef_table,
    contrast_text,
    logistic_coefficients,
    ols_fit,
    t_interval,
)
from ionto_analytics.compare.frame import AnalysisFrame, design_terms, with_categories
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument
from ionto_analytics.outcomes import baseline_scores

__all__ = ["censoring_weights", "ipcw", "observed_history"]

MIN_BOOT = 50
"""Fewest bootstrap resamples :func:`ipcw` accepts for ``variance="bootstrap"``."""


def _check_frame(frame: object) -> AnalysisFrame:
    if not isinstance(frame, AnalysisFrame) or frame.outcomes is None:
        raise InputError(
            "ipcw needs the AnalysisFrame of comparison_frame(episodes, outcomes, ...) (it "
            f"carries every instrument's scores for the history), got {type(frame).__name__}"
        )
    if frame.week not in FOLLOW_UP_WEEKS:
        raise InputError(
            f"ipcw: week {frame.week!r} is not a follow-up week; censoring is modelled over "
            f"the follow-up windows, so choose one of {list(FOLLOW_UP_WEEKS)}"
        )
    return frame


def observed_history(outcomes: pd.DataFrame, episode_ids: pd.Series, day: int) -> pd.DataFrame:
    """Every instrument's latest score before ``day``, as change from baseline, per episode.

    For each instrument scored for the episodes: ``history_<key>`` = the change from the
    baseline (:func:`~ionto_analytics.outcomes.baseline_scores`) of the last measurement
    before ``day`` (the raw score for a transition rating such as GROC, which has no
    baseline); where there is none (no score yet, or no baseline to change from) it is 0 and
    ``history_<key>_missing`` is 1 (the indicator column exists only when some are
    missing). Same-day measurements of one instrument count as their mean.

    Parameters
    ----------
    outcomes : DataFrame
        Long outcomes (``episode_id``, ``instrument``, ``score``, ``days_from_intake``).
    episode_ids : Series
        The episodes, in the order of the returned rows.
    day : int
        Scores on or after this day are not history.

    Returns
    -------
    DataFrame
        One row per episode of ``episode_ids`` (same order, fresh index).

    Examples
    --------
    >>> out = pd.DataFrame({"episode_id": ["e1", "e1", "e1", "e2"], "instrument": "nprs",
    ...                     "score": [7.0, 5.0, 2.0, 6.0], "days_from_intake": [0, 12, 30, 0]})
    >>> observed_history(out, pd.Series(["e1", "e2", "e3"]), 22).to_numpy().tolist()
    [[-2.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
    """
    rows = outcomes[outcomes["episode_id"].isin(episode_ids)].dropna(subset=["score"])
    base = baseline_scores(rows) if len(rows) else pd.DataFrame(columns=["instrument"])
    before = rows[rows["days_from_intake"] < day]
    last = (
        before.groupby(["episode_id", "instrument", "days_from_intake"], as_index=False)["score"]
        .mean()
        .sort_values("days_from_intake", kind="stable")
        .groupby(["episode_id", "instrument"], as_index=False)
        .tail(1)
    )
    out = pd.DataFrame(index=range(len(episode_ids)))
    ids = episode_ids.reset_index(drop=True)
    for key in sorted(set(rows["instrument"])):
        score = ids.map(last[last["instrument"] == key].set_index("episode_id")["score"])
        if not get_instrument(str(key)).transition:
            b = base[base["instrument"] == key].set_index("episode_id")["baseline"]
            score = score - ids.map(b)
        value = score.astype(float)
        out[f"history_{key}"] = value.fillna(0.0).to_numpy()
        if value.isna().any():
            out[f"history_{key}_missing"] = value.isna().astype(int).to_numpy()
    return out


def censoring_weights(
    frame: AnalysisFrame,
    episodes: pd.DataFrame,
    covariates: Sequence[str],
    clinic_effects: bool,
) -> tuple[np.ndarray, pd.DataFrame, str]:
    """Inverse probability of remaining under observation up to the frame's week.

    An episode is *under observation at week k* when it has a score (any instrument) on or
    after the first day of the week-k window (:func:`~data_schemas.windows.window_days`);
    this is monotone over the weeks. For each follow-up week ``k ≤`` the frame's week, among
    the episodes under observation at the previous one (all of ``episodes`` for the
    first), a logistic regression of being under observation at ``k`` on ``treated``,
    ``covariates`` (the adjustment set, linear; clinic when ``clinic_effects``) and the
    history before window ``k`` (:func:`observed_history`) gives ``p_k``; a week where
    nobody is lost gets ``p_k = 1``. The regression is Firth-penalized
    (:func:`~ionto_analytics.compare.fit.logistic_coefficients`): a window loses a handful
    of episodes against some 25 columns, and the plain maximum likelihood then separates
    them, giving the episodes still observed ``p_k = 1`` (the losses ignored) or, for
    some, 0 (an infinite weight).

    Parameters
    ----------
    frame : AnalysisFrame
        Carries the week and every instrument's long outcomes.
    episodes : DataFrame
        Rows of ``frame.data`` (``episode_id``, ``treated``, ``arm`` and ``covariates``
        without missing values).
    covariates : sequence of str
        Columns of the censoring models besides the arm and the history (baseline included).
    clinic_effects : bool
        Clinic fixed effects in the censoring models.

    Returns
    -------
    (ndarray, DataFrame, str)
        ``1 / ∏ p_k`` per row of ``episodes`` (``inf`` where it was lost: a weight is used
        only for an episode still observed); one row per week: ``week``, ``first_day``,
        ``at_risk``, ``under_observation``, ``smallest_p`` (among those still observed);
        the censoring model in words.

    An analysed episode (a score in the week's window) is under observation at every
    week up to it, so an arm that :func:`ipcw` can analyse is never lost entirely.
    """
    week = int(frame.week)  # type: ignore[arg-type]
    scored = frame.outcomes.dropna(subset=["score"])  # type: ignore[union-attr]
    last_day = scored.groupby("episode_id")["days_from_intake"].max()
    last = episodes["episode_id"].map(last_day).fillna(-1).to_numpy(dtype=float)
    terms = ["treated", *design_terms(episodes, covariates, clinic_effects)]
    formula = " + ".join(["1", *terms])
    base_x = np.asarray(patsy.dmatrix(formula, with_categories(episodes, formula)), dtype=float)
    at_risk = np.ones(len(episodes), dtype=bool)
    prob = np.ones(len(episodes))
    rows = []
    for k in (w for w in FOLLOW_UP_WEEKS if w <= week):
        first = window_days(k)[0]
        stays = last >= first
        y = stays[at_risk]
        p = np.ones(int(at_risk.sum()))
        if not y.all():
            ids = episodes.loc[at_risk, "episode_id"]
            history = observed_history(frame.outcomes, ids, first)  # type: ignore[arg-type]
            x = np.hstack([base_x[at_risk], history.to_numpy(dtype=float)])
            p = special.expit(x @ logistic_coefficients(x, y.astype(float), firth=True))
        prob[at_risk] *= np.where(y, p, 0.0)
        rows.append(
            {
                "week": k,
                "first_day": first,
                "at_risk": int(at_risk.sum()),
                "under_observation": int(y.sum()),
                "smallest_p": float(p[y].min()),
            }
        )
        at_risk &= stays
    text = f"under observation at week k ~ {' + '.join(terms)} + history before window k"
    with np.errstate(divide="ignore"):
        return 1 / prob, pd.DataFrame(rows), text


def _bootstrap_se(
    af: AnalysisFrame,
    population: pd.DataFrame,
    d: pd.DataFrame,
    fit: object,
    adjust: Sequence[str],
    clinic_effects: bool,
    max_weight: float | None,
    clustered: bool,
    n_boot: int,
    rng: np.random.Generator,
) -> float:
    """SE of the arm coefficient over ``n_boot`` resamples of episodes (of whole clinics when
    ``clustered``), refitting the censoring models and the weighted regression each time
    (the outcome design keeps the full sample's spline bases)."""
    model = fit.model  # type: ignore[attr-defined]
    z, y = model.exog, model.endog
    k = list(model.exog_names).index("treated")
    row_of = pd.Series(np.arange(len(d)), index=d["episode_id"])
    groups = population["clinic_id"].to_numpy() if clustered else None
    units = np.arange(len(population)) if groups is None else np.unique(groups)
    rows = None if groups is None else [np.flatnonzero(groups == g) for g in units]
    est = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(0, len(units), len(units))
        idx = pick if rows is None else np.concatenate([rows[i] for i in pick])
        boot = population.iloc[idx].reset_index(drop=True)
        raw, _, _ = censoring_weights(af, boot, adjust, clinic_effects)
        at = boot["episode_id"].map(row_of).to_numpy(dtype=float)
        used = np.isfinite(at)
        w = raw[used] if max_weight is None else np.minimum(raw[used], max_weight)
        zb, yb = z[at[used].astype(int)], y[at[used].astype(int)]
        zw = zb * w[:, None]
        beta = np.linalg.pinv(np.einsum("ij,ik->jk", zw, zb)) @ np.einsum("ij,i->j", zw, yb)
        est[b] = beta[k]
    return float(est.std(ddof=1))


def _weight_table(
    d: pd.DataFrame, w: np.ndarray, raw_max: float, n_truncated: int, arms: tuple[str, str]
) -> pd.DataFrame:
    ess = [
        {
            "term": f"effective sample size {arm}",
            "estimate": float(w[m].sum() ** 2 / (w[m] ** 2).sum()),
        }
        for arm in arms
        for m in [d["arm"].to_numpy() == arm]
    ]
    rows = [
        *ess,
        {"term": "largest weight (before truncation)", "estimate": raw_max},
        {"term": "weights truncated", "estimate": float(n_truncated)},
    ]
    return pd.DataFrame(rows).assign(ci_low=np.nan, ci_high=np.nan)


def ipcw(
    frame: AnalysisFrame,
    *,
    covariates: Sequence[str] | None = None,
    clinic_effects: bool = True,
    flexible: bool = True,
    se: SeType = "auto",
    cluster: str = "clinic_id",
    min_clusters: int = MIN_CLUSTERS,
    max_weight: float | None = None,
    alpha: float = 0.05,
    variance: Literal["sandwich", "bootstrap"] = "sandwich",
    n_boot: int = 200,
    seed: int | np.random.Generator = 0,
) -> ComparisonResult:
    """Complete-case ANCOVA at the frame's week, weighted by inverse probability of censoring.

    1. Censoring models (:func:`censoring_weights`): for each follow-up window up to the
       week, the probability of still being under observation given the baseline set, the
       arm, the clinic and every instrument's latest change from baseline before the
       window; an episode's weight is ``1 / ∏ p_k``, truncated at ``max_weight`` if given.
    2. The ANCOVA of :func:`~ionto_analytics.compare.ancova.ancova` (same design: the
       frame's adjustment set, the spline rule, clinic effects) fitted to the complete
       cases by weighted least squares.
    3. Variance: ``variance="sandwich"`` (default), the WLS sandwich of
       :func:`~ionto_analytics.compare.fit.ols_fit` (``se="auto"``: clinic-cluster with
       ≥ 20 clinics, else HC2 with Bell–McCaffrey df), the weights treated as known (the
       censoring models' estimation is not propagated; usually conservative).
       ``"bootstrap"``: ``n_boot`` resamples of episodes (of clinics when the sandwich is
       clinic-clustered), drawn from ``numpy.random.default_rng(seed)``, refitting the
       censoring models and the weighted regression each time; the t reference of the
       sandwich (df ``G − 1`` or ``n − k``).

    Valid when the follow-up is missing at random given the observed history of every
    instrument and the baseline set, and the censoring models are right. With nobody lost
    before the week the weights are all 1 and the estimate is the ANCOVA's.

    Parameters
    ----------
    frame : AnalysisFrame
        From :func:`comparison_frame` (it carries every instrument's long outcomes); not
        modified. Episodes without a follow-up in the window are excluded from the outcome
        model and counted (``no_follow_up_in_window``); they inform the censoring models.
    covariates : sequence of str or None
        Adjustment covariates besides baseline and clinic (outcome and censoring models);
        None: the frame's adjustment set (:attr:`AnalysisFrame.adjust_for`).
    clinic_effects : bool
        Clinic fixed effects in both models.
    flexible : bool
        Continuous confounders of the outcome model as splines when the sample allows.
    se : {"auto", "cluster", "hc2", "hc3"}
        Variance estimator.
    cluster : str
        Cluster column for ``se="cluster"``.
    min_clusters : int
        Threshold for ``se="auto"``.
    max_weight : float or None
        Truncate the weights at this value (≥ 1); the count is in ``table`` and ``notes``.
    alpha : float
        1 − confidence level.
    variance : {"sandwich", "bootstrap"}
        Weights treated as known, or their estimation bootstrapped.
    n_boot : int
        Resamples for ``variance="bootstrap"`` (at least :data:`MIN_BOOT`).
    seed : int or numpy.random.Generator
        Randomness of the bootstrap.

    Returns
    -------
    ComparisonResult
        ``table`` holds the outcome model's coefficients, the censoring at each week, the
        effective sample size per arm, the largest weight and the number truncated.
    """
    af = _check_frame(frame)
    if max_weight is not None and not max_weight >= 1:
        raise InputError(f"max_weight must be at least 1 (or None), got {max_weight}")
    if variance not in ("sandwich", "bootstrap"):
        raise InputError(f"variance must be 'sandwich' or 'bootstrap', got {variance!r}")
    if variance == "bootstrap" and n_boot < MIN_BOOT:
        raise InputError(f"variance='bootstrap' needs n_boot >= {MIN_BOOT}, got {n_boot}")
    adjust = ("baseline", *af.adjustment(covariates))
    d, excluded = af.complete_cases(adjust[1:])
    check_arms_present(d, af, "ipcw")
    population = af.data[af.data[list(adjust)].notna().all(axis=1).to_numpy()]
    population = population.reset_index(drop=True)
    raw, censoring, censoring_text = censoring_weights(af, population, adjust, clinic_effects)
    w_raw = d["episode_id"].map(pd.Series(raw, index=population["episode_id"])).to_numpy()
    w = w_raw if max_weight is None else np.minimum(w_raw, max_weight)
    n_truncated = int((w_raw > w).sum())
    splines_n = len(d) if flexible else 0
    terms = design_terms(d, adjust, clinic_effects, splines_n=splines_n)
    formula = "follow_up ~ treated + " + " + ".join(terms)
    fit, var_text, notes = ols_fit(formula, d, se, cluster, min_clusters, weights=w)
    notes.append(spline_note(d, adjust, splines_n, "IPCW outcome model"))
    coefs = coef_table(fit, alpha, "treated")
    row = coefs.set_index("term").loc["treated"]
    estimate, ci_low, ci_high, p_value = (
        row[c] for c in ("estimate", "ci_low", "ci_high", "p_value")
    )
    if variance == "sandwich":
        notes.append(
            "weights treated as known: the censoring models' estimation is not propagated "
            "to the variance (usually conservative)"
        )
    else:
        clustered = var_text.startswith("cluster")
        rng = np.random.default_rng(seed)
        se_b = _bootstrap_se(
            af, population, d, fit, adjust, clinic_effects, max_weight, clustered, n_boot, rng
        )
        df_t = d["clinic_id"].nunique() - 1 if clustered else len(d) - len(coefs)
        ci_low, ci_high, p_value = t_interval(estimate, se_b, df_t, alpha)
        var_text = f"{'clinic cluster ' if clustered else ''}bootstrap, {n_boot} resamples"
        notes.append(
            f"variance by {var_text} refitting the censoring models (their estimation propagated)"
        )
    weights = _weight_table(d, w, float(w_raw.max()), n_truncated, af.arms)
    ess = ", ".join(f"{arm} {v:.1f}" for arm, v in zip(af.arms, weights["estimate"], strict=False))
    notes.append(
        f"censoring weights: largest {w_raw.max():.3g}, effective sample size {ess}"
        + (f"; {n_truncated} truncated at {max_weight:g}" if n_truncated else "")
    )
    lost = censoring.assign(
        term=[f"under observation at week {k} (of at risk)" for k in censoring["week"]],
        estimate=censoring["under_observation"].astype(float),
        ci_low=np.nan,
        ci_high=np.nan,
    )
    return ComparisonResult.from_fit(
        af,
        d,
        estimate=estimate,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        excluded=excluded,
        estimator=f"IPCW (inverse probability of censoring weights), weighted OLS, {var_text}",
        estimand=(
            f"adjusted difference in mean change from baseline at week {af.week}, "
            f"{contrast_text(af)}, had nobody been lost to follow-up; valid under missing at "
            "random given the observed history of every instrument and the baseline set, "
            f"if the censoring models are right; model: {formula}; censoring: {censoring_text}"
        ),
        alpha=alpha,
        table=pd.concat([coefs[coefs["term"] != "treated"], lost, weights], ignore_index=True),
        notes=[*notes, *imputation_notes(af.imputed)],
        adjustment_set=rhs_terms(formula),
    )
