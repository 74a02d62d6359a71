"""Hand-written FHIR R4 resources as other systems write them, for the FHIR importer tests.

One clinic (``clinic_01``), one patient (Ann Lee) with one episode of lateral
epicondylitis, one visit with a procedure and an NPRS score, plus what a general EHR adds:
US Core profiles, extensions, a Practitioner, an AllergyIntolerance, vital signs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

SID = "https://ionto-analytics.example/fhir/sid"
CLINIC_SYSTEM = f"{SID}/clinic-id"
EPISODE_SYSTEM = f"{SID}/episode-id"
ENCOUNTER_SYSTEM = f"{SID}/encounter-id"
TZ_URL = "https://ionto-analytics.example/fhir/StructureDefinition/clinic-timezone"
MRN_SYSTEM = "urn:oid:1.2.840.114350.1.13.0.1.7.5.737384.14"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition"
MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
IDENTIFIERS = (
    "Ann",
    "Lee",
    "MRN-001",
    "MRN-778",
    "1970-05-04",
    "555-0100",
    "ann@example.org",
    "1 Main St",
    "Helen Marsh",
    "KD4-000123",
)
"""Direct identifiers in these fixtures; none may reach the store."""


def clinic_assigner(clinic: str = "clinic_01") -> dict[str, Any]:
    """A logical reference to a clinic's Organization by its clinic id."""
    return {"identifier": {"system": CLINIC_SYSTEM, "value": clinic}}


def organization(clinic: str = "clinic_01", tz: str = "America/Chicago") -> dict[str, Any]:
    """A clinic Organization with the time zone extension."""
    return {
        "resourceType": "Organization",
        "id": clinic.replace("_", "-"),
        "meta": {"profile": [f"{US_CORE}/us-core-organization"]},
        "extension": [{"url": TZ_URL, "valueCode": tz}],
        "identifier": [{"system": CLINIC_SYSTEM, "value": clinic}],
        "active": True,
        "name": "Riverside PT" if clinic == "clinic_01" else "Summit PT",
    }


def patient(
    pid: str = "pat-1", mrns: tuple[tuple[str, str], ...] = (("clinic_01", "MRN-001"),)
) -> dict[str, Any]:
    """A US Core Patient with MRNs, race extension, telecom and address."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"profile": [f"{US_CORE}/us-core-patient"]},
        "extension": [
            {
                "url": f"{US_CORE}/us-core-race",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2106-3",
                        },
                    },
                    {"url": "text", "valueString": "White"},
                ],
            }
        ],
        "identifier": [
            {
                "type": MR,
                "system": f"{MRN_SYSTEM}.{clinic}",
                "value": mrn,
                "assigner": clinic_assigner(clinic),
            }
            for clinic, mrn in mrns
        ]
        + [{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456"}],
        "name": [{"use": "official", "family": "Lee", "given": ["Ann", "Marie"]}],
        "gender": "female",
        "birthDate": "1970-05-04",
        "telecom": [
            {"system": "phone", "value": "555-0100"},
            {"system": "email", "value": "ann@example.org"},
        ],
        "address": [
            {"line": ["1 Main St"], "city": "Peoria", "state": "IL", "postalCode": "61602"}
        ],
        "managingOrganization": {"reference": "Organization/clinic-01", "display": "Riverside PT"},
    }


def condition(
    subject: str, cid: str = "cond-1", code: str = "M77.11", episode: str | None = "EP001"
) -> dict[str, Any]:
    """A Condition (ICD-10-CM) with the EHR episode id."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "meta": {"profile": [f"{US_CORE}/us-core-condition-encounter-diagnosis"]},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "encounter-diagnosis",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": code}],
            "text": "diagnosis",
        },
        "bodySite": [{"text": "right elbow"}],
        "subject": {"reference": subject},
        "recordedDate": "2025-03-03",
    }
    if episode:
        resource["identifier"] = [
            {"system": EPISODE_SYSTEM, "value": episode, "assigner": clinic_assigner()}
        ]
    return resource


def encounter(
    subject: str, reason: str, eid: str = "enc-1", enc: str | None = "ENC1"
) -> dict[str, Any]:
    """An ambulatory Encounter for a Condition, with a Practitioner participant."""
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"text": "evaluation"}],
        "subject": {"reference": subject},
        "participant": [
            {
                "individual": {
                    "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1234567893"
                }
            }
        ],
        "period": {"start": "2025-03-03T09:00:00-06:00", "end": "2025-03-03T10:00:00-06:00"},
        "reasonReference": [{"reference": reason}],
        "serviceProvider": {"reference": "Organization/clinic-01"},
    }
    if enc:
        resource["identifier"] = [
            {"system": ENCOUNTER_SYSTEM, "value": enc, "assigner": clinic_assigner()}
        ]
    return resource


def procedure(subject: str, enc: str, code: str = "97110") -> dict[str, Any]:
    """A CPT Procedure at an encounter, 20 minutes."""
    return {
        "resourceType": "Procedure",
        "id": f"proc-{code}",
        "status": "completed",
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": code}]},
        "subject": {"reference": subject},
        "encounter": {"reference": enc},
        "performedPeriod": {
            "start": "2025-03-03T09:00:00-06:00",
            "end": "2025-03-03T09:20:00-06:00",
        },
        "performer": [{"actor": {"reference": "Practitioner/pr-1", "display": "Helen Marsh"}}],
        "note": [{"text": "eccentric loading"}],
    }


def score(
    subject: str,
    enc: str,
    system: str = "http://loinc.org",
    code: str = "72514-3",
    value: float = 6,
) -> dict[str, Any]:
    """A score Observation (NPRS by default)."""
    return {
        "resourceType": "Observation",
        "id": f"obs-{code}",
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
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": subject},
        "encounter": {"reference": enc},
        "effectiveDateTime": "2025-03-03T09:05:00-06:00",
        "valueQuantity": {"value": value, "unit": "score"},
    }


def heart_rate(subject: str) -> dict[str, Any]:
    """A US Core vital-sign Observation (not a score)."""
    return {
        "resourceType": "Observation",
        "id": "hr-1",
        "meta": {"profile": [f"{US_CORE}/us-core-heart-rate"]},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "effectiveDateTime": "2025-03-03T09:01:00-06:00",
        "valueQuantity": {
            "value": 72,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }


def practitioner() -> dict[str, Any]:
    """A Practitioner (a type this toolkit does not use)."""
    return {
        "resourceType": "Practitioner",
        "id": "pr-1",
        "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
        "name": [{"family": "Marsh", "given": ["Helen"]}],
    }


def allergy(subject: str) -> dict[str, Any]:
    """An AllergyIntolerance (a type this toolkit does not use)."""
    return {
        "resourceType": "AllergyIntolerance",
        "id": "al-1",
        "code": {"text": "penicillin"},
        "patient": {"reference": subject},
    }


def clinic_resources(ref: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The whole clinic record; ``ref`` maps resource ids to how others refer to them."""
    ref = ref or {}
    pat = ref.get("pat-1", "Patient/pat-1")
    cond = ref.get("cond-1", "Condition/cond-1")
    enc = ref.get("enc-1", "Encounter/enc-1")
    return [
        organization(),
        patient(),
        practitioner(),
        condition(pat),
        encounter(pat, cond),
        procedure(pat, enc),
        score(pat, enc),
        heart_rate(pat),
        allergy(pat),
        allergy(pat) | {"id": "al-2"},
    ]


UUIDS = {
    "clinic-01": "urn:uuid:8a1e3b8e-0000-4000-8000-000000000001",
    "pat-1": "urn:uuid:8a1e3b8e-0000-4000-8000-000000000002",
    "pr-1": "urn:uuid:8a1e3b8e-0000-4000-8000-000000000003",
    "cond-1": "urn:uuid:8a1e3b8e-0000-4000-8000-000000000004",
    "enc-1": "urn:uuid:8a1e3b8e-0000-4000-8000-000000000005",
}


def bundle(kind: str, resources: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Bundle of ``kind`` with ``urn:uuid:`` fullUrls and references between entries.

    Transaction and batch entries carry a request; a searchset carries search modes and
    an OperationOutcome, as FHIR servers return them.
    """
    resources = resources if resources is not None else clinic_resources(UUIDS)
    entries = []
    for k, resource in enumerate(copy.deepcopy(resources)):
        rid = resource.get("id", "")
        full_url = UUIDS.get(rid, f"urn:uuid:8a1e3b8e-0000-4000-8000-{k + 100:012d}")
        entry: dict[str, Any] = {"fullUrl": full_url, "resource": resource}
        if kind in ("transaction", "batch"):
            resource.pop("id", None)
            entry["request"] = {"method": "POST", "url": resource["resourceType"]}
        if kind == "searchset":
            entry["search"] = {
                "mode": "match" if resource["resourceType"] == "Patient" else "include"
            }
        entries.append(entry)
    if kind == "searchset":
        entries.append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "warning", "code": "incomplete", "diagnostics": "truncated"}
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    out: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "entry": entries}
    if kind == "searchset":
        out["total"] = 1
    if kind == "collection":
        out["timestamp"] = "2025-04-01T00:00:00Z"
    return out


def write_json(path: Path, document: dict[str, Any]) -> Path:
    """Write one JSON document (pretty-printed, as servers often do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return path


def write_ndjson(folder: Path, resources: list[dict[str, Any]]) -> Path:
    """Write a bulk export: one ``<Type>.ndjson`` file per resource type."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[str]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(json.dumps(resource))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder
