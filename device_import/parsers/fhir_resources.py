"""FHIR resources → validated, de-identified records, one mapper per resource type.

Direct identifiers (names, MRNs, birth dates, telecom, addresses, practitioner names,
device serials) are read only to compute keyed hashes, a pseudonym and the birth year.
Resource types the toolkit does not use, and resources of other kinds (other diagnoses,
vital signs, cancelled encounters) are counted in ``ParsedFile.skipped_resources``.

Examples
--------
>>> sorted(MAPPERS)[:3]
['AdverseEvent', 'Condition', 'Encounter']
>>> side_of({"bodySite": [{"text": "Left elbow"}]})
'left'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data_schemas import records as r
from data_schemas import vocabulary as v
from data_schemas.fhir_systems import DEVICE_SERIAL_SYSTEM, INSTRUMENT_SYSTEM, LOINC_SYSTEM
from device_import.parsers.common import zone
from device_import.parsers.fhir_graph import (
    CPT_SYSTEMS,
    LOINC_INSTRUMENTS,
    MR_TYPE_SYSTEM,
    SERIAL_TYPE_CODE,
    SKIP,
    FhirFile,
    timezone_of,
)
from device_import.parsers.fhir_values import Entry, codings, obj, objs, text

SEX = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}
VISIT_KIND = {kind: kind for kind in v.VISIT_KINDS} | {
    "initial_evaluation": "evaluation",
    "progress": "re_evaluation",
    "re-evaluation": "re_evaluation",
    "follow-up": "follow_up",
    "followup": "follow_up",
    "97161": "evaluation",
    "97162": "evaluation",
    "97163": "evaluation",
    "97164": "re_evaluation",
}
SEVERITY_GRADE = {"mild": 1, "moderate": 2, "severe": 3}
NOT_DONE = ("not-done", "entered-in-error", "cancelled")


def side_of(resource: dict[str, Any]) -> str:
    """Laterality from ``bodySite`` text or coding displays (``unspecified`` if none)."""
    words = []
    for site in objs(resource.get("bodySite")):
        words.append(text(site.get("text")) or "")
        words += [text(c.get("display")) or "" for c in objs(site.get("coding"))]
    said = " ".join(words).lower()
    for side in ("bilateral", "left", "right"):
        if side in said:
            return side
    return "unspecified"


def organization(f: FhirFile, entry: Entry) -> None:
    """A clinic's Organization (clinic id identifier) → clinic; others are skipped."""
    clinic = f.clinic_id(entry)
    if clinic is None:
        f.skip("Organization (not a clinic)")
        return
    name = text(entry.resource.get("name"))
    timezone = timezone_of(entry.resource)
    if name is None or timezone is None:
        f.parsed.notes.append(
            f"{entry.where}: clinic {clinic} has no name or no time zone extension; "
            "import the clinic from the EHR CSV clinics table"
        )
        f.skip("Organization (clinic without time zone)")
        return
    zone(timezone, f.context.file, entry.where)
    f.parsed.add("clinic", r.ClinicRecord(clinic_key=clinic, name=name, timezone=timezone))


def patient(f: FhirFile, entry: Entry) -> None:
    """Patient → patient, plus a link per FHIR id, identifier and MRN (never the values)."""
    pseudonym = f.pseudonym(entry)
    birth_year, pooled = f.birth_fields(entry)
    gender = text(entry.resource.get("gender")) or "unknown"
    if gender not in SEX:
        raise f.reject(
            entry, "unknown gender", "gender", expected="one of " + ", ".join(SEX), got=gender
        )
    f.parsed.add(
        "patient",
        r.PatientRecord(
            pseudonym=pseudonym, sex=SEX[gender], birth_year=birth_year, aged_90_plus=pooled
        ),
        entry.where,
    )
    links = set()
    if entry.id:
        links.add(f.key("fhir", "Patient", entry.id))
    managing = None
    for k, item in enumerate(objs(entry.resource.get("identifier"))):
        ident = f.ident(entry, f"identifier[{k}]", item)
        if ident is None:
            continue
        links.add(f.key("identifier", ident.system, ident.value))
        if (MR_TYPE_SYSTEM, "MR") in codings(item.get("type")) or ("", "MR") in codings(
            item.get("type")
        ):
            if ident.clinic is None and managing is None:
                managing = f.patient_clinic(entry) or ""
            clinic = ident.clinic or managing
            if clinic:
                links.add(f.key("mrn", clinic, ident.value))
    for source_key in sorted(links):
        f.parsed.add(
            "patient_link", r.PatientLinkRecord(source_key=source_key, pseudonym=pseudonym)
        )


def condition(f: FhirFile, entry: Entry) -> None:
    """Condition with an ICD-10-CM code of one of our conditions → episode."""
    episode = f.episode_of(entry)
    found = f.condition(entry)
    if episode is None or found is None:
        f.skip("Condition (other diagnosis)")
        return
    clinic = f.episode_clinic(entry)
    if clinic is None:
        raise f.reject(
            entry,
            "cannot tell which clinic the episode belongs to",
            "identifier.assigner",
            expected="an episode identifier assigned by a clinic Organization, or a subject "
            "Patient in this file with a managingOrganization that is a clinic",
            found="no clinic",
        )
    resource = entry.resource
    start = resource.get("recordedDate") or resource.get("onsetDateTime")
    end = obj(resource.get("abatementPeriod")).get("end") or resource.get("abatementDateTime")
    key, code = found
    f.parsed.add(
        "episode",
        r.EpisodeRecord(
            episode_key=episode,
            patient_ref=f.patient_ref(entry, "subject", resource.get("subject")),
            clinic_key=clinic,
            condition=key,
            icd10_code=code,
            side=side_of(resource),
            start_date=f.day(entry, "recordedDate", start),
            end_date=None if end is None else f.day(entry, "abatementDateTime", end),
        ),
    )


def encounter(f: FhirFile, entry: Entry) -> None:
    """Encounter of an episode → visit."""
    found = f.visit_of(entry)
    if isinstance(found, str):
        f.skip(found)
        return
    visit_key, episode_key = found
    resource = entry.resource
    period = obj(resource.get("period"))
    when = period.get("start") or period.get("end")
    day, clock = f.moment(entry, "period.start", when, f.clinic_zone(f.encounter_clinic(entry)))
    kind = None
    for concept in objs(resource.get("type")):
        words = [text(concept.get("text"))] + [code for _, code in codings(concept)]
        kind = next((VISIT_KIND[w.lower()] for w in words if w and w.lower() in VISIT_KIND), None)
        if kind:
            break
    if kind is None:
        f.untyped_visits += 1
        kind = "treatment"
    f.parsed.add(
        "visit",
        r.VisitRecord(
            visit_key=visit_key,
            episode_key=episode_key,
            visit_date=day,
            start_time_local=clock,
            kind=kind,
        ),
    )


def _visit(f: FhirFile, entry: Entry, label: str) -> tuple[str | None, str | None] | None:
    """(visit key, episode key) of a resource's encounter, or None after counting a skip."""
    found = f.visit_ref(
        entry, "encounter", entry.resource.get("encounter") or entry.resource.get("context")
    )
    if isinstance(found, str):
        f.skip(f"{label} ({found.split('(')[-1].rstrip(')')})")
        return None
    return found


def procedure(f: FhirFile, entry: Entry) -> None:
    """Procedure with a CPT code at a visit → intervention."""
    resource = entry.resource
    if resource.get("status") in NOT_DONE:
        f.skip("Procedure (not done)")
        return
    cpt = next(
        (code for system, code in codings(resource.get("code")) if system in CPT_SYSTEMS), None
    )
    if cpt is None:
        f.skip("Procedure (not CPT)")
        return
    found = _visit(f, entry, "Procedure")
    if found is None:
        return
    visit_key, _ = found
    if visit_key is None:
        f.skip("Procedure (no encounter)")
        return
    minutes = None
    period = obj(resource.get("performedPeriod"))
    if period.get("start") and period.get("end"):
        start = f.moment(entry, "performedPeriod.start", period["start"])
        end = f.moment(entry, "performedPeriod.end", period["end"])
        if start[1] is not None and end[1] is not None:
            span = (
                (end[0] - start[0]).days * 1440
                + (end[1].hour * 60 + end[1].minute + end[1].second / 60)
                - (start[1].hour * 60 + start[1].minute + start[1].second / 60)
            )
            minutes = round(span, 2)
    serial = _serial(f, entry)
    f.parsed.add(
        "intervention",
        r.InterventionRecord(
            visit_key=visit_key,
            modality=v.CPT_MODALITY.get(cpt, "other"),
            cpt_code=cpt,
            minutes=minutes,
            device_serial_hash=None if serial is None else f.context.keyer.serial(serial),
        ),
    )


def _serial(f: FhirFile, entry: Entry) -> str | None:
    refs = objs(entry.resource.get("usedReference")) + [
        obj(d.get("manipulated")) for d in objs(entry.resource.get("focalDevice"))
    ]
    for ref in refs:
        ident = obj(ref.get("identifier"))
        kind = codings(ident.get("type"))
        if text(ident.get("system")) == DEVICE_SERIAL_SYSTEM or any(
            code == SERIAL_TYPE_CODE for _, code in kind
        ):
            return text(ident.get("value"))
        literal = text(ref.get("reference"))
        device = f.by_url.get(literal or "") or next(
            (
                e
                for e in f.entries
                if e.type == "Device" and literal and literal.endswith(f"Device/{e.id}")
            ),
            None,
        )
        if device is not None and text(device.resource.get("serialNumber")):
            return text(device.resource.get("serialNumber"))
    return None


def _instrument(f: FhirFile, entry: Entry) -> str | None:
    for system, code in codings(entry.resource.get("code")):
        if system == LOINC_SYSTEM and code in LOINC_INSTRUMENTS:
            return LOINC_INSTRUMENTS[code]
        if system == INSTRUMENT_SYSTEM:
            if code not in v.INSTRUMENT_RANGES:
                raise f.reject(
                    entry,
                    "unknown instrument code in the instrument CodeSystem",
                    "code.coding",
                    expected="an instrument key such as nprs or visa_a",
                    got=code,
                )
            return code
    return None


def observation(f: FhirFile, entry: Entry) -> None:
    """Observation with an instrument code → outcome; others (vital signs...) are skipped."""
    resource = entry.resource
    instrument = _instrument(f, entry)
    if instrument is None:
        f.skip("Observation (not a score)")
        return
    if resource.get("status") in ("cancelled", "entered-in-error"):
        f.skip("Observation (cancelled)")
        return
    found = _visit(f, entry, "Observation")
    if found is None:
        return
    visit_key, episode_key = found
    for k, ref in enumerate(objs(resource.get("focus"))):
        if f.points_at(ref, "Condition"):
            focus = f.episode_ref(entry, f"focus[{k}]", ref)
            if focus == SKIP:
                f.skip("Observation (other diagnosis)")
                return
            episode_key = focus or episode_key
    if episode_key is None:
        f.skip("Observation (score without episode)")
        return
    value = (
        resource.get("valueQuantity", {})
        if "valueInteger" not in resource
        else {"value": resource["valueInteger"]}
    )
    score = obj(value).get("value")
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise f.reject(
            entry,
            "the score is missing or not a number",
            "valueQuantity.value",
            expected="a number",
            got=score,
        )
    when = (
        resource.get("effectiveDateTime")
        or obj(resource.get("effectivePeriod")).get("start")
        or resource.get("effectiveInstant")
        or resource.get("issued")
    )
    f.parsed.add(
        "outcome_measurement",
        r.OutcomeRecord(
            episode_key=episode_key,
            visit_key=visit_key,
            instrument=instrument,
            instrument_version=_version(instrument, obj(resource.get("code")).get("text")),
            score=float(score),
            measured_on=f.day(entry, "effectiveDateTime", when),
        ),
    )


def _version(instrument: str, label: object) -> str | None:
    """The instrument version when ``code.text`` is a known version code, else None.

    ``code.text`` is display text that may say anything; only a code from the closed set
    is kept.

    >>> _version("nprs", "NPRS-11"), _version("nprs", "pain score, per Bobby")
    ('NPRS-11', None)
    """
    version = text(label)
    return version if version in r.INSTRUMENT_VERSIONS.get(instrument, ()) else None


def adverse_event(f: FhirFile, entry: Entry) -> None:
    """AdverseEvent of a known type at an encounter of an episode → adverse event."""
    resource = entry.resource
    words = [text(obj(resource.get("event")).get("text"))] + [
        code for _, code in codings(resource.get("event"))
    ]
    kind = next((w.lower() for w in words if w and w.lower() in v.ADVERSE_EVENT_TYPES), None)
    found = _visit(f, entry, "AdverseEvent")
    if found is None:
        return
    _, episode_key = found
    if kind is None or episode_key is None:
        f.skip("AdverseEvent (unknown type or no episode)")
        return
    severity = next((code for _, code in codings(resource.get("severity"))), None)
    f.parsed.add(
        "adverse_event",
        r.AdverseEventRecord(
            episode_key=episode_key,
            event_type=kind,
            grade=SEVERITY_GRADE.get(severity or "", 1),
            onset_date=f.day(entry, "detected", resource.get("detected") or resource.get("date")),
        ),
    )


def medication_administration(f: FhirFile, entry: Entry) -> None:
    """Counted only: iontophoresis sessions (drug, dose, polarity) come from device logs."""
    f.skip("MedicationAdministration")
    if f.parsed.skipped_resources["MedicationAdministration"] == 1:
        f.parsed.notes.append(
            "MedicationAdministration resources are not imported: iontophoresis sessions "
            "come from the device logs, prescriptions from the EHR CSV export"
        )


MAPPERS: dict[str, Callable[[FhirFile, Entry], None]] = {
    "Organization": organization,
    "Patient": patient,
    "Condition": condition,
    "Encounter": encounter,
    "Procedure": procedure,
    "Observation": observation,
    "AdverseEvent": adverse_event,
    "MedicationAdministration": medication_administration,
}
"""Resource types that become records; every other type is counted as skipped."""
