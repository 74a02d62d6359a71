"""EHR tables of one chunk, as a clinic's EHR would export them (one DataFrame per table).

Column names follow the EHR export spec in ``data_schemas/formats/ehr_csv.json``.

Examples
--------
>>> sorted(EVAL_CPT)
['high', 'low', 'moderate']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_schemas.vocabulary import ARMS

from .outcomes import arm_flags

EVAL_CPT = {"low": "97161", "moderate": "97162", "high": "97163"}
CPT_TEXT = {
    "97161": "PT evaluation, low complexity",
    "97162": "PT evaluation, moderate complexity",
    "97163": "PT evaluation, high complexity",
    "97164": "PT re-evaluation",
    "97110": "Therapeutic exercise",
    "97140": "Manual therapy techniques",
    "97033": "Iontophoresis, each 15 minutes",
}
PLAN_TEXT = {
    "exercise": "therapeutic exercise (home program)",
    "exercise+manual": "therapeutic exercise; manual therapy",
    "ionto+exercise": "therapeutic exercise; iontophoresis dexamethasone",
    "ionto+exercise+manual": "therapeutic exercise; manual therapy; iontophoresis dexamethasone",
    "ionto": "iontophoresis dexamethasone",
}
THERAPISTS = (
    "A. Novak, PT, DPT",
    "J. Okafor, PT",
    "M. Lindqvist, PT, DPT",
    "R. Castillo, PTA",
    "S. Byrne, PT, OCS",
    "T. Haddad, PT, DPT",
)
PRESCRIBERS = (
    ("Dr. Helen Marsh", "physician"),
    ("Dr. Omar Siddiqui", "physician"),
    ("Dr. Grace Whitfield", "podiatrist"),
    ("Kara Jensen, NP", "nurse_practitioner"),
    ("Luis Ortega, PA-C", "physician_assistant"),
)
SEX_CODE = {"female": "F", "male": "M"}
ITEMIZED = ("quickdash",)


def quickdash_items(rng: np.random.Generator, scores: np.ndarray) -> list[str]:
    """Eleven item responses (1-5) consistent with each QuickDASH score.

    Examples
    --------
    >>> quickdash_items(np.random.default_rng(0), np.array([0.0, 100.0]))
    ['1,1,1,1,1,1,1,1,1,1,1', '5,5,5,5,5,5,5,5,5,5,5']
    """
    total = np.clip(np.round(scores / 25.0 * 11).astype(np.int64), 0, 44)
    n = len(total)
    if n == 0:
        return []
    rank = np.argsort(rng.random((n, 11)), axis=1)
    items = 1 + total[:, None] // 11 + (rank < (total % 11)[:, None])
    # Spread: move one point between two items where the bounds allow it.
    a, b = rank[:, 0], rank[:, 1]
    rows = np.arange(n)
    ok = (items[rows, a] < 5) & (items[rows, b] > 1) & (rng.random(n) < 0.7)
    items[rows[ok], a[ok]] += 1
    items[rows[ok], b[ok]] -= 1
    text = items.astype("U1")
    return [",".join(r) for r in text.tolist()]


def episode_tables(
    rng: np.random.Generator,
    scenario: dict[str, Any],
    eps: pd.DataFrame,
    clinic_codes: list[str],
) -> dict[str, pd.DataFrame]:
    """``patients``, ``episodes`` and ``prescriptions`` rows of a chunk."""
    cond = scenario["conditions"]
    patients = pd.DataFrame(
        {
            "clinic": eps["clinic"],
            "mrn": eps["mrn"],
            "first_name": eps["first"],
            "last_name": eps["last"],
            "birth_date": eps["birth_date"].dt.strftime("%Y-%m-%d"),
            "sex": eps["sex"].map(SEX_CODE),
            "phone": eps["phone"],
            "email": eps["email"],
            "address_line": eps["street"],
            "city": eps["city"],
            "state": eps["state"],
            "zip": eps["zip"],
        }
    )
    icd = [cond[c]["icd10"][s] for c, s in zip(eps["condition"], eps["side"], strict=True)]
    yn = {True: "Y", False: "N"}
    episodes = pd.DataFrame(
        {
            "clinic": eps["clinic"],
            "episode_id": eps["episode_id"],
            "mrn": eps["mrn"],
            "referral_date": eps["referral_date"].dt.strftime("%Y-%m-%d"),
            "intake_date": eps["intake_date"].dt.strftime("%Y-%m-%d"),
            "icd10_code": icd,
            "side": eps["side"],
            "symptom_duration_months": eps["symptom_duration_months"],
            "screen_pacemaker_or_implant": eps["contra_pacemaker_or_implant"].map(yn),
            "screen_pregnancy": eps["contra_pregnancy"].map(yn),
            "screen_drug_hypersensitivity": eps["contra_drug_hypersensitivity"].map(yn),
            "iontophoresis_eligible": (~eps["contraindicated"]).map(yn),
            "planned_arm": eps["planned_arm"],
            "plan_of_care": eps["planned_arm"].map(PLAN_TEXT),
            "planned_visits_per_week": eps["visits_per_week"],
            "planned_weeks": eps["plan_weeks"],
            "discharge_date": eps["discharge_date"].dt.strftime("%Y-%m-%d"),
            "discharge_reason": np.where(eps["dropped"], "patient_stopped_attending", "goals_met"),
        }
    )
    _, _, io = arm_flags(scenario, eps["true_arm"].to_numpy())
    rx_eps = eps[io]
    who = rng.integers(0, len(PRESCRIBERS), len(rx_eps))
    drug = scenario["drug"]
    prescriptions = pd.DataFrame(
        {
            "clinic": rx_eps["clinic"],
            "prescription_id": "RX" + rx_eps["episode_id"].str[2:],
            "episode_id": rx_eps["episode_id"],
            "mrn": rx_eps["mrn"],
            "date_written": rx_eps["rx_date"].dt.strftime("%Y-%m-%d"),
            "prescriber_name": [PRESCRIBERS[w][0] for w in who],
            "prescriber_role": [PRESCRIBERS[w][1] for w in who],
            "drug": drug["name"],
            "concentration_mg_per_mL": drug["concentration_mg_per_mL"],
            "volume_mL": rx_eps["rx_volume_mL"],
            "route": "iontophoresis",
            "sessions_authorized": rx_eps["n_ionto"],
        }
    )
    del clinic_codes
    return {"patients": patients, "episodes": episodes, "prescriptions": prescriptions}


def visit_tables(
    rng: np.random.Generator,
    scenario: dict[str, Any],
    eps: pd.DataFrame,
    visits: pd.DataFrame,
    sessions: pd.DataFrame,
    scores: pd.DataFrame,
) -> dict[str, pd.DataFrame]:
    """``visits``, ``interventions``, ``outcomes`` and ``adverse_events`` rows of a chunk.

    ``visits`` must already be filtered for dropout; ``sessions`` are the realized ones
    with ``visit_row``, ``serial``, ``duration_s`` and ``delivered_mA_min`` columns.
    """
    row = visits["episode_row"].to_numpy()
    ep = eps.iloc[row].reset_index(drop=True)
    clinic = ep["clinic"].to_numpy()
    kind = visits["kind"].to_numpy()
    therapist = np.array(THERAPISTS, dtype=object)[rng.integers(0, len(THERAPISTS), len(visits))]
    v = pd.DataFrame(
        {
            "clinic": clinic,
            "encounter_id": visits["encounter_id"].to_numpy(),
            "episode_id": ep["episode_id"].to_numpy(),
            "mrn": ep["mrn"].to_numpy(),
            "visit_date": visits["date"].dt.strftime("%Y-%m-%d").to_numpy(),
            "start_time": [f"{m // 60:02d}:{m % 60:02d}" for m in visits["start_min"].tolist()],
            "visit_type": kind,
            "therapist": therapist,
        }
    )
    ex, man, _ = arm_flags(scenario, ep["true_arm"].to_numpy())
    treat = kind != "follow_up"
    parts = []
    sev = np.where(
        ep["severity_z"] > 1.0, "high", np.where(ep["severity_z"] > -0.5, "moderate", "low")
    )
    m = kind == "evaluation"
    parts.append(
        pd.DataFrame(
            {"i": np.flatnonzero(m), "cpt_code": [EVAL_CPT[s] for s in sev[m]], "minutes": 45}
        )
    )
    m = kind == "re_evaluation"
    parts.append(pd.DataFrame({"i": np.flatnonzero(m), "cpt_code": "97164", "minutes": 30}))
    m = treat & ex
    details = [scenario["conditions"][c]["exercise_details"] for c in ep["condition"][m]]
    pick = rng.integers(0, 100, m.sum())
    parts.append(
        pd.DataFrame(
            {
                "i": np.flatnonzero(m),
                "cpt_code": "97110",
                "minutes": 15 * rng.integers(1, 3, m.sum()) + rng.integers(0, 8, m.sum()),
                "detail": [d[p % len(d)] for d, p in zip(details, pick, strict=True)],
            }
        )
    )
    m = treat & man & (kind != "evaluation")
    parts.append(
        pd.DataFrame(
            {
                "i": np.flatnonzero(m),
                "cpt_code": "97140",
                "minutes": rng.integers(8, 24, m.sum()),
                "detail": "joint and soft-tissue mobilisation",
            }
        )
    )
    s = sessions
    patch = s["kind"].to_numpy() == "wearable_patch"
    minutes = np.where(patch, 10, np.ceil(s["duration_s"].to_numpy() / 60.0)).astype(np.int64)
    io_detail = [
        f"dexamethasone 4 mg/mL {vol:.1f} mL, {'cathode' if not w else 'anode'}, "
        f"{cur:.1f} mA, target {tgt:.0f} mA·min" + (", wearable patch applied" if p else "")
        for vol, w, cur, tgt, p in zip(
            s["volume_mL"],
            s["wrong_polarity"],
            s["current_set_mA"],
            s["prescribed_dose_mA_min"],
            patch,
            strict=True,
        )
    ]
    parts.append(
        pd.DataFrame(
            {
                "i": s["visit_pos"].to_numpy(),
                "cpt_code": "97033",
                "minutes": minutes,
                "detail": io_detail,
                "device_serial": s["serial"].to_numpy(),
                "dose_mA_min": s["prescribed_dose_mA_min"].to_numpy(),
            }
        )
    )
    iv = pd.concat(parts, ignore_index=True).sort_values(["i", "cpt_code"], kind="stable")
    idx = iv["i"].to_numpy()
    units = np.maximum(1, np.round(iv["minutes"].to_numpy() / 15.0)).astype(np.int64)
    units = np.where(np.isin(iv["cpt_code"], [*EVAL_CPT.values(), "97164"]), 1, units)
    interventions = pd.DataFrame(
        {
            "clinic": clinic[idx],
            "encounter_id": v["encounter_id"].to_numpy()[idx],
            "episode_id": v["episode_id"].to_numpy()[idx],
            "service_date": v["visit_date"].to_numpy()[idx],
            "cpt_code": iv["cpt_code"].to_numpy(),
            "modifiers": "GP",
            "units": units,
            "minutes": iv["minutes"].to_numpy(),
            "description": iv["cpt_code"].map(CPT_TEXT).to_numpy(),
            "detail": iv["detail"].fillna("").to_numpy(),
            "device_serial": iv["device_serial"].fillna("").to_numpy(),
        }
    )
    sc = scores
    vpos = sc["visit_pos"].to_numpy()
    instr = sc["instrument"].to_numpy()
    items = np.full(len(sc), "", dtype=object)
    for name in ITEMIZED:
        mm = instr == name
        items[mm] = quickdash_items(rng, sc["score"].to_numpy()[mm])
    outcomes = pd.DataFrame(
        {
            "clinic": clinic[vpos],
            "encounter_id": v["encounter_id"].to_numpy()[vpos],
            "episode_id": v["episode_id"].to_numpy()[vpos],
            "mrn": v["mrn"].to_numpy()[vpos],
            "date": v["visit_date"].to_numpy()[vpos],
            "instrument": instr,
            "version": [scenario["instruments"][k]["version"] for k in instr],
            "score": sc["score"].to_numpy(),
            "item_responses": items,
        }
    )
    skin = s["skin_after"].to_numpy()
    report = np.isin(skin, ["vesicles", "burn"]) | (
        (skin == "erythema")
        & (rng.random(len(s)) < scenario["skin"]["erythema_reported_as_adverse_event"])
    )
    ae = s[report]
    grade = {"erythema": 1, "vesicles": 2, "burn": 3}
    adverse = pd.DataFrame(
        {
            "clinic": clinic[ae["visit_pos"].to_numpy()],
            "ae_id": "AE" + ae["session_id"].astype(str),
            "episode_id": v["episode_id"].to_numpy()[ae["visit_pos"].to_numpy()],
            "mrn": v["mrn"].to_numpy()[ae["visit_pos"].to_numpy()],
            "encounter_id": v["encounter_id"].to_numpy()[ae["visit_pos"].to_numpy()],
            "onset_date": v["visit_date"].to_numpy()[ae["visit_pos"].to_numpy()],
            "event_type": ae["skin_after"].to_numpy(),
            "grade": [grade[k] for k in ae["skin_after"]],
            "related_to": "iontophoresis",
            "device_serial": ae["serial"].to_numpy(),
            "description": [
                f"{k} under active electrode after iontophoresis" for k in ae["skin_after"]
            ],
        }
    )
    return {
        "visits": v,
        "interventions": interventions,
        "outcomes": outcomes,
        "adverse_events": adverse,
    }


ARM_ORDER = {a: i for i, a in enumerate(ARMS)}
