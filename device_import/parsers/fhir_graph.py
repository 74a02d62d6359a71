"""The resources of one FHIR file, how their references resolve, and their natural keys.

A FHIR file (a Bundle or an NDJSON bulk export) is read into :class:`Entry` objects and
indexed by ``fullUrl``, by ``Type/id`` and by business identifier. References resolve to
an entry of the same file when they can (``urn:uuid:``, relative and absolute literal
references, conditional ``Type?identifier=system|value`` references, logical references
by identifier); otherwise they become the natural key a resource imported earlier was
stored under, and the loader refuses the file if no such record exists.

Natural keys agree with the EHR CSV route (``device_import/parsers/ehr_csv.py``) when a
resource carries the EHR's business identifier, assigned by its clinic
(``Identifier.assigner`` naming the clinic's Organization by its clinic id):

========================  =============================================================
EHR CSV                   FHIR
========================  =============================================================
``clinic_id``             ``Organization.identifier`` with system :data:`CLINIC_SYSTEM`
``mrn``                   ``Patient.identifier`` of type ``MR`` (clinic: ``assigner``,
                          else ``Patient.managingOrganization``)
``episode_id``            ``Condition.identifier`` with system :data:`EPISODE_SYSTEM`
``encounter_id``          ``Encounter.identifier`` with system :data:`ENCOUNTER_SYSTEM`
========================  =============================================================

Without them, a resource is keyed by its FHIR id (``keyer.key("fhir", type, id)``), which
later files reach through references to ``Type/id``.

Examples
--------
>>> parse_literal("https://ehr.example/fhir/Patient/p-1/_history/3")
('Patient', 'p-1')
>>> parse_literal("Encounter/ENC1")
('Encounter', 'ENC1')
>>> parse_literal("not a reference") is None
True
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from data_schemas import vocabulary as v
from data_schemas.fhir_systems import (
    CLINIC_SYSTEM,
    CPT_SYSTEM,
    ENCOUNTER_SYSTEM,
    EPISODE_SYSTEM,
    ICD10_SYSTEM,
    NPRS_LOINC,
    TIMEZONE_EXTENSION,
)
from device_import.parsed import ParseContext, ParsedFile
from device_import.parsers.common import zone
from device_import.parsers.fhir_values import Entry, codings, obj, objs, text
from device_import.privacy import age_fields, earliest_day
from device_import.problems import FileRejected, reject

LOINC_INSTRUMENTS = {NPRS_LOINC: "nprs"}
"""LOINC codes of instrument scores (DOMAIN.md section 4: only NPRS is confirmed)."""
ICD10_SYSTEMS = frozenset(
    {
        ICD10_SYSTEM,
        "http://hl7.org/fhir/sid/icd-10",
        "urn:oid:2.16.840.1.113883.6.90",
    }
)
CPT_SYSTEMS = frozenset({CPT_SYSTEM, "urn:oid:2.16.840.1.113883.6.12"})
MR_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
SERIAL_TYPE_CODE = "SNO"

_LITERAL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_PARTIAL_DATE = re.compile(r"[0-9]{4}(-(0[1-9]|1[0-2]))?")
"""A FHIR date of a year or a month only (FHIR allows ``1961`` and ``1961-05``)."""
_DAY = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?[^Z+-]*(Z|[+-]\d\d:\d\d)?)?"
)


def parse_literal(reference: str) -> tuple[str, str] | None:
    """The resource type and id of a relative or absolute literal reference."""
    found = _LITERAL.search(reference.strip())
    return (found.group(1), found.group(2)) if found else None


class Ident(NamedTuple):
    """A business identifier and the clinic that assigned it (when known)."""

    system: str
    value: str
    clinic: str | None


class Target(NamedTuple):
    """Where a reference points: an entry of this file, or a resource stored earlier."""

    entry: Entry | None
    type: str
    id: str | None
    ident: Ident | None


SKIP = "skip"
"""Returned instead of a key when the referenced resource was skipped in this file."""


@dataclass
class FhirFile:
    """The entries of one file, their index, and memoized keys."""

    context: ParseContext
    parsed: ParsedFile
    entries: list[Entry]
    is_bundle: bool
    by_url: dict[str, Entry] = field(default_factory=dict)
    by_type_id: dict[tuple[str, str], Entry] = field(default_factory=dict)
    by_ident: dict[tuple[str, str, str], Entry] = field(default_factory=dict)
    untyped_visits: int = 0
    """Encounters whose type is no visit kind (imported as treatment, reported in a note)."""
    _memo: dict[tuple[str, int], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for entry in self.entries:
            if entry.full_url:
                self.by_url.setdefault(entry.full_url, entry)
            if entry.id:
                self.by_type_id.setdefault((entry.type, entry.id), entry)
            for ident in objs(entry.resource.get("identifier")):
                system, value = text(ident.get("system")) or "", text(ident.get("value"))
                if value:
                    self.by_ident.setdefault((entry.type, system, value), entry)
                    self.by_ident.setdefault((entry.type, "", value), entry)

    # -- errors and bookkeeping -------------------------------------------------------
    def reject(
        self,
        entry: Entry,
        reason: str,
        field: str,
        *,
        expected: str | None = None,
        got: object = None,
        found: str | None = None,
    ) -> FileRejected:
        """A FileRejected naming the file, the resource, the field, expected and got."""
        where = {"record": entry.where, "field": field, "expected": expected}
        return reject(self.context.file, reason, **where, got=got, found=found)

    def skip(self, label: str) -> None:
        """Count a resource that is not imported (reported in ``skipped_resources``)."""
        self.parsed.skipped_resources[label] += 1

    def key(self, kind: str, *parts: str) -> str:
        """A keyed hash (see :class:`device_import.privacy.Keyer`)."""
        return self.context.keyer.key(kind, *parts)

    def _memoized(self, name: str, entry: Entry, compute: Any) -> Any:
        slot = (name, id(entry))
        if slot not in self._memo:
            self._memo[slot] = compute(entry)
        return self._memo[slot]

    # -- references -------------------------------------------------------------------
    def target(self, entry: Entry, field: str, ref: object, rtype: str) -> Target | None:
        """Resolve a Reference to ``rtype``; None when the field is absent."""
        ref = obj(ref)
        ident = self.ident(entry, f"{field}.identifier", ref.get("identifier"))
        literal = text(ref.get("reference"))
        if literal is None:
            if ident is None:
                return None
            hit = self.by_ident.get((rtype, ident.system, ident.value))
            return Target(self._typed(entry, field, hit, rtype, ident.value), rtype, None, ident)
        if literal.startswith("#"):
            raise self.reject(
                entry,
                "references to contained resources are not supported",
                field,
                expected=f"a reference to a {rtype} resource of its own",
                got=literal,
            )
        if literal.startswith("urn:"):
            hit = self.by_url.get(literal)
            if hit is None:
                raise self.reject(
                    entry,
                    "dangling reference: no entry of this Bundle has this fullUrl",
                    field,
                    expected=f"the fullUrl of a {rtype} entry in this Bundle",
                    got=literal,
                )
            return Target(self._typed(entry, field, hit, rtype, literal), rtype, hit.id, ident)
        if "?" in literal:
            return self._conditional(entry, field, literal, rtype)
        parsed = parse_literal(literal)
        if parsed is None or parsed[0] != rtype:
            raise self.reject(
                entry,
                "not a reference to the expected resource type",
                field,
                expected=f"{rtype}/<id>",
                got=literal,
            )
        hit = self.by_url.get(literal) or self.by_type_id.get(parsed)
        return Target(hit, rtype, parsed[1], ident)

    def points_at(self, ref: object, rtype: str) -> bool:
        """Whether a Reference may point at ``rtype`` (dangling ones are checked later)."""
        ref = obj(ref)
        literal = text(ref.get("reference"))
        if literal is None:
            return text(ref.get("type")) in (None, rtype)
        if literal.startswith("urn:"):
            hit = self.by_url.get(literal)
            return hit is None or hit.type == rtype
        if "?" in literal:
            return literal.startswith(f"{rtype}?")
        parsed = parse_literal(literal)
        return parsed is None or parsed[0] == rtype

    def _typed(
        self, entry: Entry, field: str, hit: Entry | None, rtype: str, got: str
    ) -> Entry | None:
        if hit is not None and hit.type != rtype:
            raise self.reject(
                entry, f"reference points at a {hit.kind}", field, expected=rtype, got=got
            )
        return hit

    def _conditional(self, entry: Entry, field: str, literal: str, rtype: str) -> Target:
        kind, _, query = literal.partition("?")
        values = parse_qs(query).get("identifier")
        if kind != rtype or not values or not values[0].strip("|"):
            raise self.reject(
                entry,
                "unsupported conditional reference",
                field,
                expected=f"{rtype}?identifier=system|value",
                got=literal,
            )
        system, _, value = values[0].rpartition("|")
        ident = Ident(system, value, None)
        hit = self.by_ident.get((rtype, system, value))
        return Target(self._typed(entry, field, hit, rtype, literal), rtype, None, ident)

    def ident(self, entry: Entry, field: str, identifier: object) -> Ident | None:
        """A business identifier with the clinic of its assigner (when one is named)."""
        identifier = obj(identifier)
        value = text(identifier.get("value"))
        if value is None:
            return None
        clinic = None
        if "assigner" in identifier:
            clinic = self.clinic_of(entry, f"{field}.assigner", identifier["assigner"])
        return Ident(text(identifier.get("system")) or "", value, clinic)

    def idents(self, entry: Entry) -> list[Ident]:
        """The business identifiers of a resource."""
        found = [
            self.ident(entry, f"identifier[{k}]", item)
            for k, item in enumerate(objs(entry.resource.get("identifier")))
        ]
        return [ident for ident in found if ident is not None]

    def clinic_of(self, entry: Entry, field: str, ref: object) -> str | None:
        """The clinic id named by a Reference to an Organization, when it can be told.

        The Organization may be contained in the resource (``"reference": "#org"``).
        """
        literal = text(obj(ref).get("reference"))
        if literal is not None and literal.startswith("#"):
            return self._contained_clinic(entry, field, literal[1:])
        found = self.target(entry, field, ref, "Organization")
        if found is None:
            return None
        if found.entry is not None:
            return self.clinic_id(found.entry)
        if found.ident is not None and found.ident.system == CLINIC_SYSTEM:
            return found.ident.value
        return None

    def _contained_clinic(self, entry: Entry, field: str, local_id: str) -> str | None:
        for resource in objs(entry.resource.get("contained")):
            if resource.get("resourceType") == "Organization" and resource.get("id") == local_id:
                return _clinic_identifier(resource)
        raise self.reject(
            entry,
            "the reference names a contained resource the resource does not contain",
            field,
            expected="an Organization in the resource's contained list",
            found="no contained Organization of that id",
        )

    def clinic_id(self, organization: Entry) -> str | None:
        """The clinic id of an Organization (its identifier in :data:`CLINIC_SYSTEM`)."""
        return _clinic_identifier(organization.resource)

    def clinic_zone(self, clinic: str | None) -> ZoneInfo | None:
        """A clinic's time zone, from its Organization in this file or the device inventory."""
        if clinic is None:
            return None
        for entry in self.entries:
            if entry.type == "Organization" and self.clinic_id(entry) == clinic:
                name = timezone_of(entry.resource)
                if name:
                    return zone(name, self.context.file, entry.where)
        for home in self.context.device_homes.values():
            if home.clinic_key == clinic:
                return ZoneInfo(home.timezone)
        return None

    # -- patients ---------------------------------------------------------------------
    def pseudonym(self, patient: Entry) -> str:
        """The pseudonym of a Patient of this file (from name and birth date)."""
        return self._memoized("pseudonym", patient, self._pseudonym)

    def _pseudonym(self, patient: Entry) -> str:
        names = objs(patient.resource.get("name"))
        official = [n for n in names if n.get("use") == "official"]
        current = [n for n in names if n.get("use") not in ("old", "maiden")]
        name = (official or current or names or [{}])[0]
        given = (
            [g for g in (text(g) for g in name.get("given") or []) if g]
            if isinstance(name.get("given"), list)
            else []
        )
        family = text(name.get("family"))
        if not given or family is None:
            raise self.reject(
                patient,
                "the patient has no given and family name to build a pseudonym from",
                "name",
                expected="name.given and name.family",
                found="missing",
            )
        birth = self.birth_date(patient)
        if earliest_day(birth) > self.context.today:
            raise self.reject(
                patient,
                "birth date in the future",
                "birthDate",
                expected=f"on or before {self.context.today}",
                got=birth,
            )
        return self.context.keyer.person(given[0], family, birth)

    def birth_date(self, patient: Entry) -> str:
        """A Patient's birthDate as written: YYYY-MM-DD, or partial (YYYY, YYYY-MM)."""
        value = patient.resource.get("birthDate")
        if isinstance(value, str) and _PARTIAL_DATE.fullmatch(value):
            return value
        return self.day(patient, "birthDate", value).isoformat()

    def patient_clinic(self, patient: Entry) -> str | None:
        """The clinic managing a Patient of this file, when it can be told."""
        return self.clinic_of(
            patient, "managingOrganization", patient.resource.get("managingOrganization")
        )

    def patient_ref(self, entry: Entry, field: str, ref: object) -> str:
        """A pseudonym (Patient in this file) or a patient link key (Patient stored earlier)."""
        found = self.target(entry, field, ref, "Patient")
        if found is None:
            raise self.reject(
                entry, "the resource names no patient", field, expected="a Patient reference"
            )
        if found.entry is not None:
            return self.pseudonym(found.entry)
        if found.id is not None:
            return self.key("fhir", "Patient", found.id)
        assert found.ident is not None
        return self.key("identifier", found.ident.system, found.ident.value)

    # -- episodes and visits ------------------------------------------------------------
    def condition(self, entry: Entry) -> tuple[str, str] | None:
        """(condition key, ICD-10-CM code) of a Condition, or None if it is none of ours."""
        for system, code in codings(entry.resource.get("code")):
            condition = v.condition_from_icd10(code) if system in ICD10_SYSTEMS else None
            if condition is not None:
                return condition, v.normalize_icd10(code)  # type: ignore[return-value]
        return None

    def episode_clinic(self, entry: Entry) -> str | None:
        """The clinic of a Condition: the assigner of its identifiers (the episode id's
        first), else its subject's: the assigner of the identifier the subject reference
        carries, or the managing Organization of a Patient of this file."""
        idents = self.idents(entry)
        for ident in sorted(idents, key=lambda ident: ident.system != EPISODE_SYSTEM):
            if ident.clinic:
                return ident.clinic
        found = self.target(entry, "subject", entry.resource.get("subject"), "Patient")
        if found is None:
            return None
        if found.entry is not None:
            return self.patient_clinic(found.entry)
        return None if found.ident is None else found.ident.clinic

    def episode_of(self, condition: Entry) -> str | None:
        """The episode key of a Condition of this file, or None when it is skipped."""
        return self._memoized("episode", condition, self._episode_of)

    def _episode_of(self, entry: Entry) -> str | None:
        if self.condition(entry) is None or _entered_in_error(entry):
            return None
        clinic = self.episode_clinic(entry)
        for ident in self.idents(entry):
            if ident.system == EPISODE_SYSTEM and (ident.clinic or clinic):
                return self.key("episode", ident.clinic or clinic, ident.value)  # type: ignore[arg-type]
        if entry.id is None:
            raise self.reject(
                entry,
                "the Condition has neither an id nor an episode identifier",
                "id",
                expected=f"an id or an identifier in {EPISODE_SYSTEM}",
            )
        return self.key("fhir", "Condition", entry.id)

    def episode_ref(
        self, entry: Entry, field: str, ref: object, clinic: str | None = None
    ) -> str | None:
        """The episode key a Reference to a Condition names; SKIP if that Condition is skipped.

        An episode identifier without an assigner is taken to be assigned by ``clinic``,
        the clinic of the referring resource.
        """
        found = self.target(entry, field, ref, "Condition")
        if found is None:
            return None
        if found.entry is not None:
            return self.episode_of(found.entry) or SKIP
        ident = found.ident
        if ident is not None and ident.system == EPISODE_SYSTEM and (ident.clinic or clinic):
            return self.key("episode", ident.clinic or clinic, ident.value)  # type: ignore[arg-type]
        if found.id is not None:
            return self.key("fhir", "Condition", found.id)
        return None

    def visit_of(self, encounter: Entry) -> tuple[str, str] | str:
        """(visit key, episode key) of an Encounter of this file, or why it is skipped."""
        return self._memoized("visit", encounter, self._visit_of)

    def encounter_clinic(self, entry: Entry) -> str | None:
        """The clinic of an Encounter: its identifier's assigner, else its service provider."""
        for ident in self.idents(entry):
            if ident.system == ENCOUNTER_SYSTEM and ident.clinic:
                return ident.clinic
        return self.clinic_of(entry, "serviceProvider", entry.resource.get("serviceProvider"))

    def _visit_of(self, entry: Entry) -> tuple[str, str] | str:
        resource = entry.resource
        if resource.get("status") in ("cancelled", "entered-in-error"):
            return "Encounter (cancelled)"
        refs = [
            (f"reasonReference[{k}]", ref)
            for k, ref in enumerate(objs(resource.get("reasonReference")))
        ] + [
            (f"diagnosis[{k}].condition", obj(d).get("condition"))
            for k, d in enumerate(objs(resource.get("diagnosis")))
        ]
        episodes = []
        clinic = self.encounter_clinic(entry)
        for where, ref in refs:
            if self.points_at(ref, "Condition"):
                episodes.append(self.episode_ref(entry, where, ref, clinic))
        episode = next((e for e in episodes if e not in (None, SKIP)), None)
        if episode is None:
            episode = self._only_episode_of_patient(entry)
        if episode is None:
            return "Encounter (other diagnosis)" if SKIP in episodes else "Encounter (no episode)"
        for ident in self.idents(entry):
            if ident.system == ENCOUNTER_SYSTEM and (ident.clinic or clinic):
                return self.key("visit", ident.clinic or clinic, ident.value), episode  # type: ignore[arg-type]
        if entry.id is None:
            raise self.reject(
                entry,
                "the Encounter has neither an id nor an encounter identifier",
                "id",
                expected=f"an id or an identifier in {ENCOUNTER_SYSTEM}",
            )
        return self.key("fhir", "Encounter", entry.id), episode

    def _only_episode_of_patient(self, entry: Entry) -> str | None:
        """In a Bundle, the one episode of the patient when the resource names none."""
        if not self.is_bundle:
            return None
        subject = self.target(entry, "subject", entry.resource.get("subject"), "Patient")
        if subject is None or subject.entry is None:
            return None
        found = {
            self.episode_of(other)
            for other in self.entries
            if other.type == "Condition"
            and (t := self.target(other, "subject", other.resource.get("subject"), "Patient"))
            and t.entry is subject.entry
        } - {None}
        return found.pop() if len(found) == 1 else None

    def visit_ref(
        self, entry: Entry, field: str, ref: object
    ) -> tuple[str | None, str | None] | str:
        """(visit key, episode key if known) of a Reference to an Encounter, or a skip reason."""
        found = self.target(entry, field, ref, "Encounter")
        if found is None:
            return None, None
        if found.entry is not None:
            return self.visit_of(found.entry)
        if (
            found.ident is not None
            and found.ident.system == ENCOUNTER_SYSTEM
            and found.ident.clinic
        ):
            return self.key("visit", found.ident.clinic, found.ident.value), None
        if found.id is not None:
            return self.key("fhir", "Encounter", found.id), None
        return None, None

    # -- values -----------------------------------------------------------------------
    def moment(
        self, entry: Entry, field: str, value: object, clinic_zone: ZoneInfo | None = None
    ) -> tuple[dt.date, dt.time | None]:
        """Local date and time of a FHIR date/dateTime.

        The date and time are taken as written (a FHIR dateTime carries the writer's UTC
        offset, which for a clinic's EHR is local time); a UTC time (``Z``) is converted
        to the clinic's time zone when it is known.
        """
        found = _DAY.match(value) if isinstance(value, str) else None
        if found is None:
            raise self.reject(
                entry,
                f"missing or incomplete date in field {field}",
                field,
                expected="a date YYYY-MM-DD or dateTime",
                got=value,
            )
        try:
            day = dt.date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
            hour, minute, second, offset = found.group(4, 5, 6, 7)
            clock = None if hour is None else dt.time(int(hour), int(minute), int(second or 0))
        except ValueError:
            raise self.reject(
                entry,
                f"impossible date in field {field}",
                field,
                expected="a valid date",
                got=value,
            ) from None
        if clock is not None and clinic_zone is not None and offset in ("Z", "+00:00"):
            local = dt.datetime.combine(day, clock, dt.UTC).astimezone(clinic_zone)
            return local.date(), local.time().replace(tzinfo=None)
        return day, clock

    def day(self, entry: Entry, field: str, value: object) -> dt.date:
        """The date of a FHIR date or dateTime (see :meth:`moment`)."""
        return self.moment(entry, field, value)[0]

    def birth_fields(self, patient: Entry) -> tuple[int | None, bool]:
        """Birth year (None when aged 90+) and whether aged 90+ today."""
        year, pooled, _ = age_fields(self.birth_date(patient), self.context.today)
        return year, pooled


def _clinic_identifier(organization: dict[str, Any]) -> str | None:
    for item in objs(organization.get("identifier")):
        if text(item.get("system")) == CLINIC_SYSTEM and text(item.get("value")):
            return text(item.get("value"))
    return None


def timezone_of(resource: dict[str, Any]) -> str | None:
    """The clinic time zone extension of an Organization, if present."""
    for extension in objs(resource.get("extension")):
        if extension.get("url") == TIMEZONE_EXTENSION:
            return text(extension.get("valueCode")) or text(extension.get("valueString"))
    return None


def _entered_in_error(entry: Entry) -> bool:
    status = codings(entry.resource.get("verificationStatus"))
    return any(code in ("entered-in-error", "refuted") for _, code in status)
