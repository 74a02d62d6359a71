"""FHIR R4 output: NDJSON (one file per resource type) and transaction Bundles.

Resources: Organization (one per clinic, with its time zone in an extension), Patient,
Condition (ICD-10-CM), Encounter, Procedure (CPT), Observation (LOINC 72514-3 for NPRS,
a local CodeSystem for the other instruments) and MedicationAdministration
(dexamethasone iontophoresis). They validate with the ``fhir.resources`` R4B models.
Each resource is serialized once and reused for the Bundle.

Resources carry the EHR's business identifiers as a clinic's EHR puts them there: the
clinic id on the Organization, the episode id on the Condition, the encounter id on the
Encounter, each assigned by its clinic (``Identifier.assigner``), and references carry
the target's identifier beside the literal reference. An importer can therefore derive
the same natural keys as from the EHR CSV export of the same clinics
(``data_schemas/formats/fhir_r4.json``).

Examples
--------
>>> INSTRUMENT_SYSTEM
'https://ionto-analytics.example/fhir/CodeSystem/instrument'
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from data_schemas.fhir_systems import (
    CLINIC_SYSTEM,
    CPT_SYSTEM,
    DEVICE_SERIAL_SYSTEM,
    ENCOUNTER_SYSTEM,
    EPISODE_SYSTEM,
    ICD10_SYSTEM,
    INSTRUMENT_SYSTEM,
    LOINC_SYSTEM,
    NPRS_LOINC,
    TIMEZONE_EXTENSION,
)

from .clock import utc_offsets
from .records import CPT_TEXT
from .scenario import Clinic

RESOURCE_TYPES = (
    "Organization",
    "Patient",
    "Condition",
    "Encounter",
    "Procedure",
    "Observation",
    "MedicationAdministration",
)
_GENDER = {"F": "female", "M": "male"}
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _offset_str(minutes: np.ndarray) -> list[str]:
    return [
        f"{'-' if m < 0 else '+'}{abs(m) // 60:02d}:{abs(m) % 60:02d}" for m in minutes.tolist()
    ]


def org_id(clinic_key: str) -> str:
    """The Organization's FHIR id (ids allow no underscore).

    Examples
    --------
    >>> org_id("clinic_01")
    'clinic-01'
    """
    return clinic_key.replace("_", "-")


def organization(clinic: Clinic) -> dict[str, Any]:
    """The Organization resource of a clinic (clinic id, name, time zone)."""
    return {
        "resourceType": "Organization",
        "id": org_id(clinic.key),
        "extension": [{"url": TIMEZONE_EXTENSION, "valueCode": clinic.tz}],
        "identifier": [{"system": CLINIC_SYSTEM, "value": clinic.key}],
        "active": True,
        "name": clinic.name,
        "address": [{"city": clinic.city, "state": clinic.state, "country": "US"}],
    }


def _assigner(clinic: Clinic) -> dict[str, Any]:
    return {"identifier": {"system": CLINIC_SYSTEM, "value": clinic.key}}


def _business_ref(rtype: str, rid: str, system: str, value: str, clinic: Clinic) -> dict[str, Any]:
    """A literal reference that also carries the target's business identifier."""
    return {
        "reference": f"{rtype}/{rid}",
        "identifier": {"system": system, "value": value, "assigner": _assigner(clinic)},
    }


def _it(df: pd.DataFrame) -> Iterator[Any]:
    """Fast row iteration (object columns avoid per-element Arrow-string access)."""
    return df.astype(object).itertuples(index=False)


class FhirWriter:
    """Streams resources to ``fhir/ndjson/<Type>.ndjson`` and ``fhir/bundles/``."""

    def __init__(self, out_dir: Path, clinics: list[Clinic]) -> None:
        self.out_dir = out_dir
        self.clinics = clinics
        nd = out_dir / "fhir" / "ndjson"
        nd.mkdir(parents=True, exist_ok=True)
        (out_dir / "fhir" / "bundles").mkdir(parents=True, exist_ok=True)
        self._nd: dict[str, IO[str]] = {
            t: (nd / f"{t}.ndjson").open("w", encoding="utf-8") for t in RESOURCE_TYPES
        }
        self.counts: dict[str, int] = dict.fromkeys(RESOURCE_TYPES, 0)
        self._bundles: list[str] = []
        self._orgs = [_dumps(organization(c)) for c in clinics]
        for text in self._orgs:
            self._nd["Organization"].write(text + "\n")
        self.counts["Organization"] = len(clinics)

    def files(self) -> list[str]:
        """Relative paths of the files written."""
        return [f"fhir/ndjson/{t}.ndjson" for t in RESOURCE_TYPES] + self._bundles

    def close(self) -> None:
        """Close the NDJSON files."""
        for fh in self._nd.values():
            fh.close()

    def write_chunk(
        self, ci: int, eps: pd.DataFrame, tables: dict[str, pd.DataFrame], sessions: pd.DataFrame
    ) -> None:
        """Write every resource of one chunk; one transaction Bundle per clinic and chunk."""
        per_clinic: dict[int, list[tuple[str, str, str]]] = {}

        def emit(clinic: int, rtype: str, rid: str, res: dict[str, Any]) -> None:
            text = _dumps(res)
            self._nd[rtype].write(text + "\n")
            self.counts[rtype] += 1
            per_clinic.setdefault(clinic, []).append((rtype, rid, text))

        pats = tables["patients"]
        clinics = self.clinics
        for r in _it(pats):
            cl = clinics[r.clinic]
            emit(
                r.clinic,
                "Patient",
                r.mrn,
                {
                    "resourceType": "Patient",
                    "id": r.mrn,
                    "identifier": [
                        {
                            "type": {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                        "code": "MR",
                                    }
                                ]
                            },
                            "system": f"urn:ionto-emulator:{cl.key}:mrn",
                            "value": r.mrn,
                            "assigner": _assigner(cl),
                        }
                    ],
                    "name": [{"family": r.last_name, "given": [r.first_name]}],
                    "gender": _GENDER.get(r.sex, "unknown"),
                    "birthDate": r.birth_date,
                    "telecom": [
                        {"system": "phone", "value": r.phone, "use": "home"},
                        {"system": "email", "value": r.email},
                    ],
                    "address": [
                        {
                            "line": [r.address_line],
                            "city": r.city,
                            "state": r.state,
                            "postalCode": r.zip,
                            "country": "US",
                        }
                    ],
                    "managingOrganization": {"reference": f"Organization/{org_id(cl.key)}"},
                },
            )
        for r in _it(tables["episodes"]):
            emit(
                r.clinic,
                "Condition",
                f"cond-{r.episode_id}",
                {
                    "resourceType": "Condition",
                    "id": f"cond-{r.episode_id}",
                    "identifier": [
                        {
                            "system": EPISODE_SYSTEM,
                            "value": r.episode_id,
                            "assigner": _assigner(clinics[r.clinic]),
                        }
                    ],
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {"coding": [{"system": ICD10_SYSTEM, "code": r.icd10_code}]},
                    "bodySite": [{"text": r.side}],
                    "subject": {"reference": f"Patient/{r.mrn}"},
                    "recordedDate": r.intake_date,
                },
            )
        vis = tables["visits"]
        tz = np.array([self.clinics[c].tz for c in vis["clinic"]], dtype=object)
        dates = vis["visit_date"].to_numpy().astype("datetime64[D]")
        off = np.zeros(len(vis), np.int64)
        for z in np.unique(tz):
            m = tz == z
            off[m] = utc_offsets(z, dates[m])
        stamp = [
            f"{d}T{t}:00{o}"
            for d, t, o in zip(vis["visit_date"], vis["start_time"], _offset_str(off), strict=True)
        ]
        when = dict(zip(vis["encounter_id"], stamp, strict=True))
        for r, st in zip(_it(vis), stamp, strict=True):
            cl = clinics[r.clinic]
            emit(
                r.clinic,
                "Encounter",
                r.encounter_id,
                {
                    "resourceType": "Encounter",
                    "id": r.encounter_id,
                    "identifier": [
                        {
                            "system": ENCOUNTER_SYSTEM,
                            "value": r.encounter_id,
                            "assigner": _assigner(cl),
                        }
                    ],
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "AMB",
                        "display": "ambulatory",
                    },
                    "type": [{"text": r.visit_type}],
                    "subject": {"reference": f"Patient/{r.mrn}"},
                    "period": {"start": st},
                    "reasonReference": [
                        _business_ref(
                            "Condition", f"cond-{r.episode_id}", EPISODE_SYSTEM, r.episode_id, cl
                        )
                    ],
                    "serviceProvider": {"reference": f"Organization/{org_id(cl.key)}"},
                },
            )
        mrn_of = dict(zip(tables["episodes"]["episode_id"], tables["episodes"]["mrn"], strict=True))
        for k, r in enumerate(_it(tables["interventions"])):
            cl = clinics[r.clinic]
            rid = f"proc-{r.encounter_id}-{r.cpt_code}-{k % 1000}"
            start = when[r.encounter_id]
            res: dict[str, Any] = {
                "resourceType": "Procedure",
                "id": rid,
                "status": "completed",
                "code": {
                    "coding": [
                        {"system": CPT_SYSTEM, "code": r.cpt_code, "display": CPT_TEXT[r.cpt_code]}
                    ]
                },
                "subject": {"reference": f"Patient/{mrn_of[r.episode_id]}"},
                "encounter": _business_ref(
                    "Encounter", r.encounter_id, ENCOUNTER_SYSTEM, r.encounter_id, cl
                ),
            }
            # The minutes billed, as the period of the procedure (local time, same offset).
            end = np.datetime64(start[:16]) + np.timedelta64(round(float(r.minutes) * 60), "s")
            res["performedPeriod"] = {"start": start, "end": f"{end}{start[19:]}"}
            if r.detail:
                res["note"] = [{"text": r.detail}]
            if r.device_serial:
                res["usedReference"] = [
                    {"identifier": {"system": DEVICE_SERIAL_SYSTEM, "value": r.device_serial}}
                ]
            emit(r.clinic, "Procedure", rid, res)
        for r in _it(tables["outcomes"]):
            cl = clinics[r.clinic]
            rid = f"obs-{r.encounter_id}-{r.instrument.replace('_', '-')}"
            if r.instrument == "nprs":
                code = {"coding": [{"system": LOINC_SYSTEM, "code": NPRS_LOINC}], "text": r.version}
            else:
                code = {
                    "coding": [{"system": INSTRUMENT_SYSTEM, "code": r.instrument}],
                    "text": r.version,
                }
            unit = (
                {"unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
                if r.instrument == "grip_pain_free_kg"
                else {"unit": "score"}
            )
            emit(
                r.clinic,
                "Observation",
                rid,
                {
                    "resourceType": "Observation",
                    "id": rid,
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "survey",
                                }
                            ]
                        }
                    ],
                    "code": code,
                    "subject": {"reference": f"Patient/{r.mrn}"},
                    "focus": [
                        _business_ref(
                            "Condition", f"cond-{r.episode_id}", EPISODE_SYSTEM, r.episode_id, cl
                        )
                    ],
                    "encounter": _business_ref(
                        "Encounter", r.encounter_id, ENCOUNTER_SYSTEM, r.encounter_id, cl
                    ),
                    "effectiveDateTime": when[r.encounter_id],
                    "valueQuantity": {"value": float(r.score), **unit},
                },
            )
        ep_id = eps["episode_id"].to_numpy()
        mrn = eps["mrn"].to_numpy()
        clinic = eps["clinic"].to_numpy()
        vis_enc = vis["encounter_id"].to_numpy()
        for r in _it(sessions):
            start = np.datetime64(r.utc_start, "s")
            end = start + np.timedelta64(int(r.duration_s), "s")
            rid = f"medadm-{r.session_id}".replace("_", "-")
            emit(
                int(clinic[r.episode_row]),
                "MedicationAdministration",
                rid,
                {
                    "resourceType": "MedicationAdministration",
                    "id": rid,
                    "status": "completed" if r.end_reason == "DOSE_COMPLETE" else "stopped",
                    "medicationCodeableConcept": {"text": "dexamethasone sodium phosphate 4 mg/mL"},
                    "subject": {"reference": f"Patient/{mrn[r.episode_row]}"},
                    "context": {"reference": f"Encounter/{vis_enc[r.visit_pos]}"},
                    "effectivePeriod": {"start": f"{start}Z", "end": f"{end}Z"},
                    "note": [
                        {
                            "text": f"{'cathode' if not r.wrong_polarity else 'anode'}; target "
                            f"{r.prescribed_dose_mA_min:.0f} mA·min; device {r.serial}; episode "
                            f"{ep_id[r.episode_row]}"
                        }
                    ],
                    "dosage": {
                        "route": {"text": "iontophoresis (transdermal)"},
                        "dose": {
                            "value": float(r.volume_mL),
                            "unit": "mL",
                            "system": "http://unitsofmeasure.org",
                            "code": "mL",
                        },
                    },
                },
            )
        for c in sorted(per_clinic):
            key = self.clinics[c].key
            rel = f"fhir/bundles/{key}/bundle_{ci:05d}.json"
            path = self.out_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            base = f"https://ehr.{key.replace('_', '-')}.example/fhir"
            resources = [("Organization", org_id(key), self._orgs[c]), *per_clinic[c]]
            entries = ",".join(
                f'{{"fullUrl":"{base}/{t}/{i}","resource":{txt},'
                f'"request":{{"method":"PUT","url":"{t}/{i}"}}}}'
                for t, i, txt in resources
            )
            path.write_text(
                f'{{"resourceType":"Bundle","type":"transaction","entry":[{entries}]}}',
                encoding="utf-8",
            )
            self._bundles.append(rel)
