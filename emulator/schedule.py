"""Plans of care and visit calendars: 1-3 visits a week for 4-8 weeks, ionto early on.

Visits fall on business days (``numpy.busday_offset``). Visit 0 is the evaluation, the last
planned visit the discharge, every ``progress_every_visits``-th a re-evaluation in a
10-visit cycle; iontophoresis happens at the first treatment visits.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from emulator.scenario import load_scenario
>>> s = load_scenario()
>>> eps = pd.DataFrame({"intake_date": np.array(["2025-03-03"] * 2, "datetime64[D]"),
...                     "clinic": [0, 0]})
>>> plan = plan_care(np.random.default_rng(0), s, eps, np.array([0.0]))
>>> v = visit_calendar(np.random.default_rng(0), s, eps, plan)
>>> bool(v.groupby("episode_row")["day"].is_monotonic_increasing.all())
True
>>> int(v["day"].min()), bool(v["day"].max() < 7 * 20)  # whole days from intake
(0, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

# Business-day gaps between visits for 1, 2 and 3 visits a week.
_GAPS = {1: (5,), 2: (2, 3), 3: (2, 2, 1)}


def plan_care(
    rng: np.random.Generator,
    scenario: dict[str, Any],
    eps: pd.DataFrame,
    patch_share: np.ndarray,
) -> pd.DataFrame:
    """Draw visits a week, plan length, device kind and potential ionto session count.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    scenario : dict
        A validated scenario.
    eps : pandas.DataFrame
        Episodes (needs ``clinic``).
    patch_share : numpy.ndarray
        Share of ionto courses given with wearable patches, per clinic.

    Returns
    -------
    pandas.DataFrame
        ``visits_per_week``, ``plan_weeks``, ``n_visits`` (planned, evaluation to discharge
        inclusive), ``device_kind`` and ``n_ionto`` per episode (aligned with ``eps``).
    """
    sch = scenario["schedule"]
    n = len(eps)
    w = np.asarray(sch["visits_per_week_weights"], float)
    per_week = rng.choice(sch["visits_per_week"], n, p=w / w.sum()).astype(np.int64)
    lo, hi = sch["plan_weeks"]
    weeks = rng.integers(int(lo), int(hi) + 1, n)
    n_visits = per_week * weeks + 1
    patch = rng.random(n) < patch_share[eps["clinic"].to_numpy()]
    kind = np.where(patch, "wearable_patch", "clinic_unit").astype(object)
    clo, chi = sch["clinic_ionto_sessions"]
    plo, phi = sch["patch_ionto_sessions"]
    n_io = np.where(
        patch, rng.integers(int(plo), int(phi) + 1, n), rng.integers(int(clo), int(chi) + 1, n)
    )
    n_io = np.minimum(n_io, n_visits - 3)
    return pd.DataFrame(
        {
            "visits_per_week": per_week,
            "plan_weeks": weeks,
            "n_visits": n_visits,
            "device_kind": kind,
            "n_ionto": n_io,
        }
    )


def visit_calendar(
    rng: np.random.Generator, scenario: dict[str, Any], eps: pd.DataFrame, plan: pd.DataFrame
) -> pd.DataFrame:
    """Every planned visit (before dropout), plus the follow-up visit, one row each.

    Returns
    -------
    pandas.DataFrame
        ``episode_row``, ``seq``, ``date``, ``day`` (from intake), ``kind``,
        ``start_min`` (local minutes after midnight), ``ionto_seq`` (-1 when none).
    """
    sch = scenario["schedule"]
    n_v = plan["n_visits"].to_numpy()
    per_week = plan["visits_per_week"].to_numpy()
    n = len(n_v)
    off = np.zeros(n + 1, np.int64)
    np.cumsum(n_v, out=off[1:])
    row = np.repeat(np.arange(n), n_v)
    k = np.arange(off[-1]) - off[row]
    gap = np.zeros(len(k), np.int64)
    for f, pattern in _GAPS.items():
        m = (per_week[row] == f) & (k > 0)
        gap[m] = np.asarray(pattern)[(k[m] - 1) % len(pattern)]
    jitter = rng.random(len(k)) < 0.15
    gap = np.where(jitter & (k > 0), np.maximum(gap + rng.choice([-1, 1], len(k)), 1), gap)
    cum = np.cumsum(gap)
    cum -= cum[off[:-1]][row]
    intake = eps["intake_date"].to_numpy().astype("datetime64[D]")
    date = np.busday_offset(intake[row], cum, roll="forward")
    kind = np.full(len(k), "treatment", dtype=object)
    kind[(k % 10 == 0) & (k > 0)] = "re_evaluation"
    kind[k == 0] = "evaluation"
    kind[k == n_v[row] - 1] = "discharge"
    ionto_seq = np.where((k >= 1) & (k <= plan["n_ionto"].to_numpy()[row]), k - 1, -1)
    # Follow-up visit at follow_up_weeks after intake.
    fu_date = np.busday_offset(intake + round(sch["follow_up_weeks"] * 7), 0, roll="forward")
    vis = pd.DataFrame(
        {"episode_row": row, "seq": k, "date": date, "kind": kind, "ionto_seq": ionto_seq}
    )
    fu = pd.DataFrame(
        {
            "episode_row": np.arange(n),
            "seq": n_v,
            "date": fu_date,
            "kind": "follow_up",
            "ionto_seq": -1,
        }
    )
    vis = pd.concat([vis, fu], ignore_index=True).sort_values(["episode_row", "seq"], kind="stable")
    vis = vis.reset_index(drop=True)
    # Whole days from intake, whatever resolution pandas gave the dates (it may be seconds).
    elapsed = vis["date"].to_numpy() - intake[vis["episode_row"].to_numpy()]
    vis["day"] = elapsed.astype("timedelta64[D]").astype(np.int64)
    slots = (sch["clinic_close_hour"] - 1 - sch["clinic_open_hour"]) * 4
    vis["start_min"] = sch["clinic_open_hour"] * 60 + 15 * rng.integers(0, slots, len(vis))
    return vis
