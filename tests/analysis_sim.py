"""Small generator of confounded clinic data with a known additive arm effect (tests only).

Data-generating model (NPRS, lower = better), one episode per patient:

* clinic k has a treatment-propensity shift ``g_k ~ N(0, 0.8)`` and an outcome shift
  ``c_k ~ N(0, 0.4)``;
* baseline ``b ~ N(6, 1.2)`` clipped to [1, 9.5]; age ~ U(20, 75); sex male w.p. 0.45;
  symptom duration ~ Gamma(2, 6) weeks;
* ``P(first arm) = logit⁻¹(−0.2 + confounding·(b − 6) + g_k + 0.01·(age − 45))``: more severe
  patients get iontophoresis more often (confounding by indication);
* score at week W: ``y_W = a_W + 0.6·b + c_k + 0.015·(age − 45) − 0.2·male + effect_W·T
  + dose_slope·(dose − 200)·T + u_i + e``, ``u_i ~ N(0, σ_u)``, ``e ~ N(0, σ_e)``; clipped to
  [0, 10] (clipping is negligible: |y − 5| > 5 is a > 3.5 SD event);
* ``effect_W = effect`` for W ∈ {4, 6}, ``effect / 2`` at week 12;
* each follow-up is missing with probability ``p_missing`` (completely at random unless
  ``mar`` > 0, then more likely for higher baseline).

Because the outcome is linear in the baseline and covariates, ANCOVA with the right adjustment
set is unbiased for ``effect``; the naive difference in follow-up means is biased upwards
(treated patients start worse).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

WEEK_DAYS = {4: 28, 6: 42, 12: 84}
INTERCEPT = {4: 1.8, 6: 1.5, 12: 1.0}


@dataclass(frozen=True)
class SimData:
    episodes: pd.DataFrame
    outcomes: pd.DataFrame
    sessions: pd.DataFrame
    effect: float
    dose_slope: float


def simulate(
    n: int = 400,
    seed: int | np.random.Generator = 0,
    *,
    effect: float = -1.0,
    n_clinics: int = 8,
    arms: tuple[str, str] = ("ionto+exercise", "exercise"),
    confounding: float = 0.8,
    sigma_u: float = 0.5,
    sigma_e: float = 0.8,
    p_missing: float = 0.1,
    mar: float = 0.0,
    dose_slope: float = 0.0,
    full: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame] | SimData:
    """Simulate episodes and long NPRS outcomes (and sessions when ``full``)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    clinics = np.array([f"c{k:02d}" for k in range(n_clinics)])
    g = rng.normal(0, 0.8, n_clinics)
    c_eff = rng.normal(0, 0.4, n_clinics)
    k = rng.integers(0, n_clinics, n)
    b = np.clip(rng.normal(6.0, 1.2, n), 1.0, 9.5)
    age = rng.uniform(20, 75, n)
    male = rng.random(n) < 0.45
    dur = rng.gamma(2.0, 6.0, n)
    lin = -0.2 + confounding * (b - 6.0) + g[k] + 0.01 * (age - 45)
    t = rng.random(n) < 1 / (1 + np.exp(-lin))
    dose = np.where(t, rng.uniform(80, 320, n), 0.0)
    u = rng.normal(0, sigma_u, n)
    ids = np.array([f"e{i:05d}" for i in range(n)])
    episodes = pd.DataFrame(
        {
            "episode_id": ids,
            "patient_id": np.array([f"p{i:05d}" for i in range(n)]),
            "clinic_id": clinics[k],
            "condition": "lateral_epicondylitis",
            "arm": np.where(t, arms[0], arms[1]),
            "planned_arm": np.where(t, arms[0], arms[1]),
            "age_years": np.round(age, 0).astype(float),
            "sex": np.where(male, "male", "female"),
            "symptom_duration_weeks": np.round(dur, 1),
            "start_date": pd.Timestamp("2025-01-06")
            + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
            "n_visits": rng.integers(6, 16, n).astype("int64"),
        }
    )
    episodes["end_date"] = episodes["start_date"] + pd.Timedelta(days=84)
    episodes = episodes[
        [
            "episode_id",
            "patient_id",
            "clinic_id",
            "condition",
            "arm",
            "planned_arm",
            "age_years",
            "sex",
            "symptom_duration_weeks",
            "start_date",
            "end_date",
            "n_visits",
        ]
    ]
    rows = [
        pd.DataFrame(
            {
                "episode_id": ids,
                "instrument": "nprs",
                "score": b,
                "days_from_intake": np.zeros(n, dtype="int64"),
            }
        )
    ]
    age_r = episodes["age_years"].to_numpy()
    for w, day in WEEK_DAYS.items():
        eff = effect if w <= 6 else effect / 2
        y = (
            INTERCEPT[w]
            + 0.6 * b
            + c_eff[k]
            + 0.015 * (age_r - 45)
            - 0.2 * male
            + eff * t
            + dose_slope * (dose - 200.0) * t
            + u
            + rng.normal(0, sigma_e, n)
        )
        y = np.clip(y, 0.0, 10.0)
        p_miss = np.clip(p_missing + mar * (b - 6.0), 0, 1)
        keep = rng.random(n) >= p_miss
        jitter = rng.integers(-3, 4, n)
        rows.append(
            pd.DataFrame(
                {
                    "episode_id": ids[keep],
                    "instrument": "nprs",
                    "score": y[keep],
                    "days_from_intake": (day + jitter[keep]).astype("int64"),
                }
            )
        )
    outcomes = pd.concat(rows, ignore_index=True)
    outcomes["visit_id"] = pd.Series([None] * len(outcomes), dtype=object)
    outcomes = outcomes.sort_values(["episode_id", "days_from_intake"]).reset_index(drop=True)
    if not full:
        return episodes, outcomes
    sess = []
    for i in np.flatnonzero(t):
        m = max(1, round(dose[i] / 40.0))
        per = dose[i] / m
        for j in range(m):
            sess.append((f"s{i:05d}_{j}", ids[i], clinics[k[i]], per))
    sessions = pd.DataFrame(
        sess, columns=["session_id", "episode_id", "clinic_id", "delivered_dose_mA_min"]
    )
    sessions.insert(3, "device_model", "Dupel")
    sessions.insert(4, "device_kind", "clinic_unit")
    sessions.insert(5, "started_at_utc", pd.Timestamp("2025-02-01", tz="UTC"))
    sessions.insert(6, "prescribed_dose_mA_min", 40.0)
    sessions["end_reason"] = "DOSE_COMPLETE"
    sessions["fault_codes"] = ""
    sessions["wrong_polarity"] = False
    sessions["current_limited"] = False
    sessions["skin_check_after"] = "normal"
    return SimData(episodes, outcomes, sessions, effect, dose_slope)
