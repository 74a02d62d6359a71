"""``ground_truth.json``: the planted effects in the estimand's terms plus the answer key.

Every effect row states a contrast two ways, with the same patients and noise draws:
``difference``, the counterfactual mean change at exactly day 7·W, and
``window_difference``, the same at the day the week-W window (``window_first_day`` to
``window_last_day``, :mod:`data_schemas.windows`) selects among each episode's planned
visits, over the ``window_n`` episodes with such a visit. The second is what an unbiased
windowed analysis of complete data estimates; the two differ where an arm's effect still
moves inside the window (iontophoresis at week 2).

The answer key (per episode and per session) is streamed to temporary JSON-lines files while
chunks are processed and spliced into ``ground_truth.json`` at the end, so memory stays flat.
Schema: ``data_schemas/ground_truth.schema.json``.

Examples
--------
>>> sorted(PAIR_FIELDS)[:4]
['arm', 'condition', 'difference', 'instrument']
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_schemas.vocabulary import ARMS
from data_schemas.windows import window_days

from .outcomes import TRUTH_WEEKS, TruthAccumulator, arm_flags, ionto_curve
from .population import baseline_sd
from .scenario import Clinic

SCHEMA_VERSION = 1
PAIR_FIELDS = (
    "condition",
    "instrument",
    "arm",
    "versus",
    "week",
    "difference",
    "structural",
    "structural_smd",
    "n",
    "window_first_day",
    "window_last_day",
    "window_difference",
    "window_n",
)


def structural_smd(
    s: dict[str, Any], arm: str, weeks: float | np.ndarray, mean_dose: float
) -> np.ndarray:
    """The arm's structural improvement (SMD) at ``weeks``: exercise, manual therapy and the
    iontophoresis curve at the condition's mean dose (no patient terms, no noise).

    The ``structural`` field of ``ground_truth.json`` is the difference of two arms' values
    at a truth week; at other weeks (the days a window actually measured) it gives how far
    the contrast there is from the one at exactly the truth week.

    Examples
    --------
    >>> from emulator.scenario import load_scenario
    >>> s = load_scenario()
    >>> structural_smd(s, "ionto+exercise", np.array([2.0, 6.0]), 240.0).round(3).tolist()
    [0.841, 0.605]
    """
    e = s["effects"]
    w = np.asarray(weeks, dtype=float)
    ex, man, io = (f[0] for f in arm_flags(s, np.array([arm])))
    g = ionto_curve(w, e["ionto_peak_week"], e["ionto_fade_end_week"])
    return (
        ex * e["exercise_smd"] * (1 - np.exp(-w / e["exercise_tau_weeks"]))
        + man * e["manual_smd"] * (1 - np.exp(-w / e["manual_tau_weeks"]))
        + io
        * g
        * (
            e["ionto_smd"]
            + e["dose_slope_smd_per_mA_min"] * (mean_dose - e["dose_reference_mA_min"])
        )
    )


def _it(df: pd.DataFrame) -> Iterator[Any]:
    """Fast row iteration (object columns avoid per-element Arrow-string access)."""
    return df.astype(object).itertuples(index=False)


class AnswerKey:
    """Streams the per-record answer key to temporary JSON-lines files."""

    def __init__(self, out_dir: Path) -> None:
        self.dir = out_dir
        self._ep = (out_dir / ".answer_episodes.jsonl").open("w", encoding="utf-8")
        self._se = (out_dir / ".answer_sessions.jsonl").open("w", encoding="utf-8")
        self.n_sessions = 0
        self.n_episodes = 0

    def add(
        self, eps: pd.DataFrame, sessions: pd.DataFrame, dose: np.ndarray, clinics: list[Clinic]
    ) -> None:
        """Append one chunk's episodes and sessions."""
        real_dose = sessions.groupby("episode_row")["effective_dose_mA_min"].sum()
        n_real = sessions.groupby("episode_row").size()
        for i, r in enumerate(_it(eps)):
            rec = {
                "episode_id": r.episode_id,
                "mrn": r.mrn,
                "clinic_id": clinics[r.clinic].key,
                "person_index": int(r.person_index),
                "condition": r.condition,
                "primary_instrument": r.primary,
                "planned_arm": r.planned_arm,
                "true_arm": r.true_arm,
                "contraindicated": bool(r.contraindicated),
                "device_kind": r.device_kind,
                "dropped_out": bool(r.dropped),
                "last_visit_seq": int(r.last_seq),
                "ionto_sessions": int(n_real.get(i, 0)),
                "effective_dose_mA_min": round(float(real_dose.get(i, 0.0)), 3),
                "potential_dose_mA_min": round(float(dose[i]), 3),
            }
            self._ep.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.n_episodes += len(eps)
        ep_id = eps["episode_id"].to_numpy()
        for r in _it(sessions):
            faults = [e for e in str(r.events).split(";") if e]
            if r.end_reason == "POWER_LOSS":
                faults.append("POWER_LOSS")
            rec = {
                "session_id": r.session_id,
                "episode_id": ep_id[r.episode_row],
                "serial": r.serial,
                "format": r.format,
                "file": r.rel_path,
                "encounter_id": r.encounter_true,
                "encounter_entered_at_device": bool(r.encounter_entered)
                and r.format == "phoresys_json",
                "start_utc": str(np.datetime64(r.utc_start, "s")) + "Z",
                "end_reason": r.end_reason,
                "faults": faults,
                "wrong_polarity": bool(r.wrong_polarity),
                "truncated": r.end_reason == "POWER_LOSS",
                "current_limited": bool(r.current_limited),
                "prescribed_dose_mA_min": float(r.prescribed_dose_mA_min),
                "delivered_mA_min": round(float(r.delivered_mA_min), 3),
                "effective_dose_mA_min": round(float(r.effective_dose_mA_min), 3),
                "skin_after": r.skin_after,
            }
            self._se.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self.n_sessions += len(sessions)

    def close(self) -> None:
        """Close the temporary files."""
        self._ep.close()
        self._se.close()


def effect_table(s: dict[str, Any], acc: TruthAccumulator) -> list[dict[str, Any]]:
    """Every (condition, instrument, arm, versus, week) planted difference.

    ``window_difference`` is None when no episode of the cell has a visit in the window at
    which the instrument is collected (``window_n`` 0).
    """
    out = []
    for (cond, instr), n in sorted(acc.counts.items()):
        mean_dose = acc.dose_sum[cond] / max(acc.n_condition[cond], 1)
        sd = baseline_sd(s, cond, instr)
        sign = 1.0 if s["instruments"][instr]["better"] == "higher" else -1.0
        for w in TRUTH_WEEKS:
            means = {a: acc.sums[(cond, instr, a, float(w))] / n for a in ARMS}
            first_day, last_day = window_days(int(w))
            n_window = acc.window_counts[(cond, instr, float(w))]
            window_means = {
                a: acc.window_sums[(cond, instr, a, float(w))] / n_window if n_window else None
                for a in ARMS
            }
            for a in ARMS:
                for b in ARMS:
                    if a == b:
                        continue
                    smd = float(
                        structural_smd(s, a, w, mean_dose) - structural_smd(s, b, w, mean_dose)
                    )
                    wa, wb = window_means[a], window_means[b]
                    out.append(
                        {
                            "condition": cond,
                            "instrument": instr,
                            "arm": a,
                            "versus": b,
                            "week": float(w),
                            "difference": round(means[a] - means[b], 6),
                            "structural": round(sign * sd * smd, 6),
                            "structural_smd": round(smd, 6),
                            "n": n,
                            "window_first_day": first_day,
                            "window_last_day": last_day,
                            "window_difference": None if wa is None else round(wa - wb, 6),
                            "window_n": n_window,
                        }
                    )
    return out


def write_ground_truth(
    out_dir: Path,
    s: dict[str, Any],
    seed: int,
    clinics: list[Clinic],
    devices: pd.DataFrame,
    acc: TruthAccumulator,
    key: AnswerKey,
    counts: dict[str, int],
    run: dict[str, Any],
) -> Path:
    """Write ``ground_truth.json`` and remove the temporary answer-key files."""
    key.close()
    e = s["effects"]
    dose_rows = []
    for (cond, instr), _ in sorted(acc.counts.items()):
        sd = baseline_sd(s, cond, instr)
        sign = 1.0 if s["instruments"][instr]["better"] == "higher" else -1.0
        for w in TRUTH_WEEKS:
            g = float(ionto_curve(np.array([w]), e["ionto_peak_week"], e["ionto_fade_end_week"])[0])
            dose_rows.append(
                {
                    "condition": cond,
                    "instrument": instr,
                    "week": float(w),
                    "slope_per_mA_min": round(sign * sd * g * e["dose_slope_smd_per_mA_min"], 8),
                }
            )
    head = {
        "schema_version": SCHEMA_VERSION,
        "scenario": {
            "name": s["name"],
            "scenario_version": s["scenario_version"],
            "seed": seed,
            **run,
        },
        "estimand": (
            "difference = mean change from baseline under `arm` minus under `versus` at exactly "
            "day 7*`week`, averaged over the emulated patients of `condition` who are scored on "
            "`instrument` (same patient and noise draws, only the arm swapped; clipping and "
            "rounding applied). window_difference = the same contrast where each patient's "
            "change is taken at the day the week-`week` window selects (the planned visit, "
            "before dropout, at which `instrument` is collected that lies in days "
            "`window_first_day`-`window_last_day` and is nearest day 7*`week`, ties to the "
            "earlier day), averaged over the `window_n` patients with such a visit: what a "
            "windowed analysis of complete data estimates. Change is in instrument points, "
            "signed as the instrument is (for lower-is-better scales a benefit is negative); "
            "GROC has no baseline (taken as 0)."
        ),
        "weeks": [float(w) for w in TRUTH_WEEKS],
        "effects": effect_table(s, acc),
        "dose_response": {
            "dose": "cumulative correct-polarity delivered iontophoresis dose per episode (mA·min)",
            "reference_mA_min": e["dose_reference_mA_min"],
            "slope_smd_per_mA_min": e["dose_slope_smd_per_mA_min"],
            "slopes": dose_rows,
        },
        "structural_parameters": {k: v for k, v in e.items()},
        "clinics": [
            {
                "clinic_id": c.key,
                "name": c.name,
                "time_zone": c.tz,
                "outcome_shift_smd": c.template["outcome_shift_smd"],
                "ionto_log_odds": c.template["ionto_log_odds"],
            }
            for c in clinics
        ],
        "devices": [
            {
                "serial": r.serial,
                "clinic_id": clinics[r.clinic].key,
                "format": r.format,
                "device_kind": r.kind,
                "clock_skew_s": int(r.clock_skew_s),
            }
            for r in _it(devices)
        ],
        "counts": counts,
    }
    path = out_dir / "ground_truth.json"
    text = json.dumps(head, indent=1, ensure_ascii=False)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(text[:-2].rstrip() + ',\n "answer_key": {\n  "episodes": [\n')
        for name, tmp in (
            ("episodes", ".answer_episodes.jsonl"),
            ("sessions", ".answer_sessions.jsonl"),
        ):
            if name == "sessions":
                fh.write('\n  ],\n  "sessions": [\n')
            first = True
            with (out_dir / tmp).open(encoding="utf-8") as src:
                for line in src:
                    fh.write(("" if first else ",\n") + "   " + line.rstrip("\n"))
                    first = False
            (out_dir / tmp).unlink()
        fh.write("\n  ]\n }\n}\n")
    return path
