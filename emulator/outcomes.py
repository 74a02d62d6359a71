"""Outcome trajectories, collection schedule, MAR dropout and the counterfactual truth.

Improvement of patient ``i`` at week ``t`` in SMD units of the instrument's baseline SD
(DOMAIN.md 3.1 effect model [A])::

    imp(t) = (1 - exp(-t / tau_nh)) * (nh_smd + b_sev*severity_z + b_age*age10 + b_fem*female
                                       + b_dur*log_duration + clinic_shift + u_i)
             + [exercise] * ex_smd * (1 - exp(-t / tau_ex))
             + [manual]   * man_smd * (1 - exp(-t / tau_man))
             + [ionto]    * g(t) * (ionto_smd + dose_slope * (D_i - D_ref))

``g`` rises linearly to 1 at ``ionto_peak_week`` and falls linearly to 0 at
``ionto_fade_end_week``; ``D_i`` is the patient's cumulative correct-polarity dose. The
observed score is ``quantize(baseline + better_sign * sd * (imp + noise_smd * e))``.

The counterfactual truth (:class:`TruthAccumulator`) states each contrast twice: at exactly
day ``7·W`` of every truth week, and at the day the week-W window of
:mod:`data_schemas.windows` selects among the episode's planned visits, which is what an
analysis of the exports measures while an arm's effect still moves inside the window.

Examples
--------
>>> ionto_curve(np.array([0.0, 1.0, 2.0, 3.5, 6.0]), 2.0, 5.0).tolist()
[0.0, 0.5, 1.0, 0.5, 0.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_schemas.vocabulary import ARMS
from data_schemas.windows import nearest_in_window

from .assignment import covariates
from .population import baseline_sd, better_sign, quantize
from .scenario import Clinic

TRUTH_WEEKS = (2.0, 4.0, 6.0, 12.0)
"""Weeks at which ground_truth.json states the planted differences."""


def ionto_curve(t: np.ndarray, peak: float, fade_end: float) -> np.ndarray:
    """The transient iontophoresis profile ``g(t)`` (0 at start, 1 at peak, 0 after fade)."""
    up = np.clip(t / peak, 0.0, 1.0)
    down = np.clip((fade_end - t) / (fade_end - peak), 0.0, 1.0)
    return np.where(t <= peak, up, down)


def arm_flags(scenario: dict[str, Any], arms: np.ndarray) -> tuple[np.ndarray, ...]:
    """Boolean (exercise, manual, ionto) flags for an array of arm keys.

    Examples
    --------
    >>> from emulator.scenario import load_scenario
    >>> [f.tolist() for f in arm_flags(load_scenario(), np.array(["ionto+exercise"]))]
    [[True], [False], [True]]
    """
    mods = {a: set(scenario["arms"][a]["modalities"]) for a in ARMS}
    ex = np.array([("exercise" in mods[a]) for a in arms], bool)
    man = np.array([("manual_therapy" in mods[a]) for a in arms], bool)
    io = np.array([("iontophoresis" in mods[a]) for a in arms], bool)
    return ex, man, io


def natural_level(scenario: dict[str, Any], clinics: list[Clinic], eps: pd.DataFrame) -> np.ndarray:
    """Per-episode natural-history plateau (SMD), including covariates, clinic and ``u``."""
    e = scenario["effects"]
    x = covariates(eps)
    nh = np.array([scenario["conditions"][c]["natural_history_smd"] for c in eps["condition"]])
    shift = np.array([c.template["outcome_shift_smd"] for c in clinics])[eps["clinic"].to_numpy()]
    return (
        nh
        + e["severity_smd"] * x["severity"]
        + e["age_per_10y_smd"] * x["age_per_10y"]
        + e["female_smd"] * x["female"]
        + e["log_duration_smd"] * x["log_duration"]
        + shift
        + eps["u"].to_numpy(float)
    )


def improvement(
    scenario: dict[str, Any],
    t: np.ndarray,
    level: np.ndarray,
    tau_nh: np.ndarray,
    flags: tuple[np.ndarray, np.ndarray, np.ndarray],
    dose: np.ndarray,
) -> np.ndarray:
    """Expected improvement (SMD) at weeks ``t``; all arrays broadcast together."""
    e = scenario["effects"]
    ex, man, io = flags
    return (
        (1.0 - np.exp(-t / tau_nh)) * level
        + ex * e["exercise_smd"] * (1.0 - np.exp(-t / e["exercise_tau_weeks"]))
        + man * e["manual_smd"] * (1.0 - np.exp(-t / e["manual_tau_weeks"]))
        + io
        * ionto_curve(t, e["ionto_peak_week"], e["ionto_fade_end_week"])
        * (e["ionto_smd"] + e["dose_slope_smd_per_mA_min"] * (dose - e["dose_reference_mA_min"]))
    )


def _score(
    scenario: dict[str, Any],
    instr: str,
    base: np.ndarray,
    sd: np.ndarray,
    imp: np.ndarray,
    e: np.ndarray,
) -> np.ndarray:
    noise = scenario["instruments"][instr]["noise_smd"]
    base0 = np.zeros_like(imp) if instr == "groc" else base
    return quantize(scenario, instr, base0 + better_sign(scenario, instr) * sd * (imp + noise * e))


def _collects(instr: str, seq: np.ndarray, kind: np.ndarray, every: int) -> np.ndarray:
    if instr == "nprs":
        return np.ones(len(seq), bool)
    scheduled = (seq % every == 0) | (kind == "discharge") | (kind == "follow_up")
    if instr == "groc":
        return scheduled & (seq > 0)
    return scheduled


def window_visit_days(
    scenario: dict[str, Any], instr: str, visits: pd.DataFrame, has: np.ndarray
) -> np.ndarray:
    """Day of the visit each episode's truth-week window selects for ``instr`` (NaN: none).

    Among the planned visits (``visits``, before dropout) at which ``instr`` is collected,
    the window rule of :func:`data_schemas.windows.nearest_in_window` picks the one nearest
    day ``7·W`` inside the week-W window; episodes not scored on ``instr`` (``has`` False)
    or with no such visit get NaN.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(has), len(TRUTH_WEEKS))``, days from intake.

    Examples
    --------
    >>> from emulator.scenario import load_scenario
    >>> visits = pd.DataFrame({"episode_row": [0, 0, 0, 1, 1], "seq": [0, 1, 2, 0, 1],
    ...                        "day": [0, 12, 16, 0, 30], "kind": "treatment"})
    >>> window_visit_days(load_scenario(), "nprs", visits, np.array([True, True]))[:, 0]
    array([12., nan])
    """
    row = visits["episode_row"].to_numpy()
    every = scenario["schedule"]["progress_every_visits"]
    collected = has[row] & _collects(
        instr, visits["seq"].to_numpy(), visits["kind"].to_numpy(), every
    )
    row, day = row[collected], visits["day"].to_numpy()[collected]
    days = np.full((len(has), len(TRUTH_WEEKS)), np.nan)
    for wi, week in enumerate(TRUTH_WEEKS):
        chosen = nearest_in_window(row, day, int(week))
        days[row[chosen], wi] = day[chosen]
    return days


def observe(
    rng: np.random.Generator,
    scenario: dict[str, Any],
    clinics: list[Clinic],
    eps: pd.DataFrame,
    visits: pd.DataFrame,
    dose: np.ndarray,
) -> pd.DataFrame:
    """Scores collected at visits (before dropout is applied), one row per score.

    Returns
    -------
    pandas.DataFrame
        ``visit_row`` (index into ``visits``), ``episode_row``, ``instrument``, ``score``.
    """
    level = natural_level(scenario, clinics, eps)
    tau = np.array(
        [scenario["conditions"][c]["natural_history_tau_weeks"] for c in eps["condition"]]
    )
    flags = arm_flags(scenario, eps["true_arm"].to_numpy())
    row = visits["episode_row"].to_numpy()
    seq = visits["seq"].to_numpy()
    kind = visits["kind"].to_numpy()
    t = visits["day"].to_numpy() / 7.0
    imp = improvement(scenario, t, level[row], tau[row], tuple(f[row] for f in flags), dose[row])
    every = scenario["schedule"]["progress_every_visits"]
    instr_lists = eps["instruments"].str.split(" ").tolist()
    cond = eps["condition"].to_numpy()
    parts = []
    for instr in scenario["instruments"]:
        if instr in ("source", "groc_points_per_smd"):
            continue
        has_ep = np.array([instr in lst for lst in instr_lists], bool)
        m = has_ep[row] & _collects(instr, seq, kind, every)
        if not m.any():
            continue
        vr = np.flatnonzero(m)
        r = row[vr]
        sd_map = {c: baseline_sd(scenario, c, instr) for c in np.unique(cond[r])}
        sd = np.array([sd_map[c] for c in cond[r]])
        base = eps[f"baseline_{instr}"].to_numpy()[r]
        score = _score(scenario, instr, base, sd, imp[vr], rng.standard_normal(len(vr)))
        if instr != "groc":
            score = np.where(seq[vr] == 0, base, score)
        parts.append(
            pd.DataFrame({"visit_row": vr, "episode_row": r, "instrument": instr, "score": score})
        )
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["visit_row", "instrument"], kind="stable").reset_index(drop=True)


def apply_dropout(
    rng: np.random.Generator,
    scenario: dict[str, Any],
    eps: pd.DataFrame,
    plan: pd.DataFrame,
    visits: pd.DataFrame,
    scores: pd.DataFrame,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Missing-at-random dropout driven by the NPRS change observed at visit 3.

    The intercept is calibrated on the chunk so the marginal dropout share equals
    ``dropout.rate``; the slope (per SD of observed NPRS improvement) makes patients who
    feel better more likely to stop coming. Returns ``(dropped, last_seq, keep_visit)``.
    """
    d = scenario["dropout"]
    n = len(eps)
    nprs = scores[scores["instrument"] == "nprs"]
    vseq = visits["seq"].to_numpy()[nprs["visit_row"].to_numpy()]
    at3 = nprs[vseq == 3].set_index("episode_row")["score"].reindex(range(n)).to_numpy()
    base = eps["baseline_nprs"].to_numpy()
    sd = np.array([baseline_sd(scenario, c, "nprs") for c in eps["condition"]])
    z = np.nan_to_num((base - at3) / sd)
    slope = d["improvement_log_odds_per_sd"]
    lo, hi = -30.0, 30.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(mid + slope * z)))) < d["rate"]:
            lo = mid
        else:
            hi = mid
    p = 1 / (1 + np.exp(-(lo + slope * z)))
    dropped = rng.random(n) < p
    n_v = plan["n_visits"].to_numpy()
    first_ok = np.maximum(3, plan["n_ionto"].to_numpy() + 1)
    last_ok = n_v - 2
    last_seq = np.where(dropped, first_ok + np.floor(rng.random(n) * (last_ok - first_ok + 1)), n_v)
    last_seq = last_seq.astype(np.int64)
    fu_ok = rng.random(n) < scenario["schedule"]["follow_up_response"]
    r = visits["episode_row"].to_numpy()
    keep = visits["seq"].to_numpy() <= last_seq[r]
    is_fu = visits["kind"].to_numpy() == "follow_up"
    keep &= ~is_fu | (~dropped[r] & fu_ok[r])
    return dropped, last_seq, keep


class TruthAccumulator:
    """Running sums for the counterfactual estimand (memory does not grow with patients).

    For every condition, instrument, arm and truth week it sums the change from baseline
    each patient would show under that arm: same patient, same noise draws, clipping and
    rounding applied. Dividing by the count gives the population mean under the arm. It
    does so twice with the same draws: at exactly week W (``sums``), and at the day the
    week-W window selects among the patient's planned visits (``window_sums``, over the
    ``window_counts`` patients with such a visit), the quantity a windowed analysis of
    complete (no-dropout) data estimates.
    """

    def __init__(self, scenario: dict[str, Any]) -> None:
        self.scenario = scenario
        self.sums: dict[tuple[str, str, str, float], float] = {}
        self.counts: dict[tuple[str, str], int] = {}
        self.window_sums: dict[tuple[str, str, str, float], float] = {}
        self.window_counts: dict[tuple[str, str, float], int] = {}
        self.dose_sum: dict[str, float] = {}
        self.n_condition: dict[str, int] = {}

    def merge(self, other: TruthAccumulator) -> None:
        """Add another accumulator's sums (chunks accumulated elsewhere, e.g. in a worker).

        Examples
        --------
        >>> from emulator.scenario import load_scenario
        >>> a, b = TruthAccumulator(load_scenario()), TruthAccumulator(load_scenario())
        >>> a.counts[("bursitis", "nprs")], b.counts[("bursitis", "nprs")] = 3, 4
        >>> a.merge(b)
        >>> a.counts
        {('bursitis', 'nprs'): 7}
        """
        for name in ("sums", "counts", "window_sums", "window_counts", "dose_sum", "n_condition"):
            mine, theirs = getattr(self, name), getattr(other, name)
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v

    def add(
        self,
        rng: np.random.Generator,
        clinics: list[Clinic],
        eps: pd.DataFrame,
        dose: np.ndarray,
        visits: pd.DataFrame,
    ) -> None:
        """Add one chunk of episodes.

        Parameters
        ----------
        rng : numpy.random.Generator
            The truth stream: one standard normal per episode, instrument and truth week.
        clinics : list of Clinic
            The network's clinics.
        eps : pandas.DataFrame
            The chunk's episodes.
        dose : numpy.ndarray
            Potential cumulative effective dose per episode.
        visits : pandas.DataFrame
            The chunk's planned visit calendar before dropout (``episode_row``, ``seq``,
            ``day``, ``kind``; :func:`emulator.schedule.visit_calendar`): the windowed
            estimand is the no-dropout one that an estimator valid under MAR targets.
        """
        s = self.scenario
        level = natural_level(s, clinics, eps)
        tau = np.array([s["conditions"][c]["natural_history_tau_weeks"] for c in eps["condition"]])
        cond = eps["condition"].to_numpy()
        instr_lists = eps["instruments"].str.split(" ").tolist()
        weeks = np.asarray(TRUTH_WEEKS)
        for c in np.unique(cond):
            mc = cond == c
            self.dose_sum[c] = self.dose_sum.get(c, 0.0) + float(dose[mc].sum())
            self.n_condition[c] = self.n_condition.get(c, 0) + int(mc.sum())
        for instr in s["instruments"]:
            if instr in ("source", "groc_points_per_smd"):
                continue
            has = np.array([instr in lst for lst in instr_lists], bool)
            e = rng.standard_normal((len(eps), len(weeks)))
            if not has.any():
                continue
            window_day = window_visit_days(s, instr, visits, has)
            for c in np.unique(cond[has]):
                m = has & (cond == c)
                sd = baseline_sd(s, c, instr)
                base = (
                    np.zeros(m.sum()) if instr == "groc" else eps[f"baseline_{instr}"].to_numpy()[m]
                )
                key = (c, instr)
                self.counts[key] = self.counts.get(key, 0) + int(m.sum())
                counted = ~np.isnan(window_day[m])
                window_t = np.where(counted, window_day[m] / 7.0, weeks[None, :])
                n_counted = counted.sum(axis=0)
                for wi, w in enumerate(weeks):
                    k3 = (c, instr, float(w))
                    self.window_counts[k3] = self.window_counts.get(k3, 0) + int(n_counted[wi])
                for arm in ARMS:
                    fl = arm_flags(s, np.array([arm]))
                    flags = (fl[0][0], fl[1][0], fl[2][0])
                    patient = (level[m, None], tau[m, None], flags, dose[m, None])
                    imp = improvement(s, weeks[None, :], *patient)
                    score = _score(s, instr, base[:, None], np.float64(sd), imp, e[m])
                    change = (score - base[:, None]).sum(axis=0)
                    imp = improvement(s, window_t, *patient)
                    score = _score(s, instr, base[:, None], np.float64(sd), imp, e[m])
                    window_change = np.where(counted, score - base[:, None], 0.0).sum(axis=0)
                    for wi, w in enumerate(weeks):
                        k4 = (c, instr, arm, float(w))
                        self.sums[k4] = self.sums.get(k4, 0.0) + float(change[wi])
                        self.window_sums[k4] = self.window_sums.get(k4, 0.0) + float(
                            window_change[wi]
                        )
