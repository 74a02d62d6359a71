"""Validated records: what a parser hands to the loader, before anything becomes a row.

SQLModel table models do not validate on construction, so every importer parses into
these non-table models first (CONVENTIONS.md 8). They hold no direct identifier: people,
devices and source-system records appear only as keyed hashes (``*_key``, ``pseudonym``,
``serial_hash``). Units are the store's: mA, V, ohm, mA·min, UTC.

Examples
--------
>>> visit = VisitRecord(visit_key="v1", episode_key="e1", visit_date="2026-03-02", kind="treatment")
>>> visit.visit_date
datetime.date(2026, 3, 2)
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from data_schemas import vocabulary as v


def _in(allowed: tuple[str, ...] | frozenset[str], what: str):
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(
                f"unknown {what} (got text of {len(value)} characters); "
                f"expected one of {sorted(allowed)}"
            )
        return value

    return AfterValidator(check)


def _within(limit: str):
    low, high = v.LIMITS[limit]

    def check(value: float | None) -> float | None:
        if value is not None and not (low <= value <= high):
            raise ValueError(f"must be between {low:g} and {high:g} ({limit}), got {value:g}")
        return value

    return AfterValidator(check)


def _aware(value: dt.datetime) -> dt.datetime:
    if value.utcoffset() is None:
        raise ValueError("timestamp has no time zone; convert it to UTC before validation")
    return value.astimezone(dt.UTC)


Condition = Annotated[str, _in(v.CONDITIONS, "condition")]
Arm = Annotated[str, _in(v.ARMS, "arm")]
Instrument = Annotated[str, _in(v.INSTRUMENTS, "instrument")]
Drug = Annotated[str, _in(frozenset(v.DRUG_POLARITY), "drug")]
CptCode = Annotated[str, Field(pattern=r"^[0-9]{4}[0-9A-Z]$")]
"""A CPT code: four digits and a digit or category letter (97033, 0232T)."""
Firmware = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9A-Za-z]+){0,3}$", max_length=50)]
"""A firmware version number (2.3.1); text of any other shape is refused."""

DEVICE_MODELS: dict[str, frozenset[str]] = {
    "Kathodyne Medical": frozenset({"KD-400"}),
    "PhoreSys": frozenset({"PS-2 Auto"}),
    "Dermatrode": frozenset({"DermaPatch 80"}),
}
"""The closed set of device vendors and their models the store keeps (free text refused)."""

INSTRUMENT_VERSIONS: dict[str, frozenset[str]] = {
    "nprs": frozenset({"NPRS-11"}),
    "visa_a": frozenset({"VISA-A 2001"}),
    "prtee": frozenset({"PRTEE 2007"}),
    "quickdash": frozenset({"QuickDASH 2005"}),
    "grip_pain_free_kg": frozenset({"dynamometer pain-free"}),
    "ffi": frozenset({"FFI 1991"}),
    "faam_adl": frozenset({"FAAM ADL 2005"}),
    "lefs": frozenset({"LEFS 1999"}),
    "psfs": frozenset({"PSFS 1995", "PSFS 2.0"}),
    "groc": frozenset({"GROC 15-point"}),
}
"""The closed set of instrument version codes the store keeps; any other text is refused
(EHR CSV) or not kept (FHIR ``code.text``, which is display text, not a version)."""
CurrentMilliamp = Annotated[float | None, _within("current_mA")]
DoseMilliampMinutes = Annotated[float | None, _within("dose_mA_min")]
UtcTimestamp = Annotated[dt.datetime, AfterValidator(_aware)]


class Record(BaseModel):
    """Base of every record: immutable, no unknown fields, no NaN."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ClinicRecord(Record):
    clinic_key: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(min_length=1, max_length=64)


class DeviceRecord(Record):
    serial_hash: str = Field(min_length=16, max_length=64)
    vendor: Annotated[str, _in(frozenset(DEVICE_MODELS), "device vendor")]
    model: str
    kind: Annotated[str, _in(v.DEVICE_KINDS, "device kind")]
    firmware: Firmware | None = None
    clinic_key: str | None = None

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str, info: ValidationInfo) -> str:
        known = DEVICE_MODELS.get(info.data.get("vendor", ""), frozenset())
        if model not in known:
            raise ValueError(
                f"unknown device model (got text of {len(model)} characters); expected one "
                f"of {sorted(known)} (add a new model to data_schemas.records.DEVICE_MODELS)"
            )
        return model


class PatientRecord(Record):
    pseudonym: str = Field(min_length=16, max_length=64)
    sex: Annotated[str, _in(v.SEXES, "sex")]
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    aged_90_plus: bool = False

    @model_validator(mode="after")
    def _pooled_ages_have_no_year(self) -> PatientRecord:
        if self.aged_90_plus and self.birth_year is not None:
            raise ValueError("a patient aged 90+ must not keep a birth year")
        return self


class PatientLinkRecord(Record):
    """A clinic's patient id (keyed hash of clinic + MRN) pointing at a pseudonym."""

    source_key: str
    pseudonym: str


class EpisodeRecord(Record):
    """An episode; ``patient_ref`` is a pseudonym or a patient link's source key."""

    episode_key: str
    patient_ref: str
    clinic_key: str
    condition: Condition
    icd10_code: str = Field(pattern=r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")
    """An ICD-10-CM code in its dotted form (``v.normalize_icd10``)."""
    side: Annotated[str, _in(v.SIDES, "side")] | None = None
    symptom_duration_weeks: float | None = Field(default=None, ge=0, le=2600)
    start_date: dt.date
    end_date: dt.date | None = None
    age_at_intake_years: int | None = Field(default=None, ge=0, le=90)
    planned_arm: Arm | None = None
    planned_visits_per_week: float | None = Field(default=None, ge=0, le=7)
    planned_weeks: float | None = Field(default=None, ge=0, le=104)
    pacemaker_or_implant: bool | None = None
    pregnancy: bool | None = None
    drug_hypersensitivity: bool | None = None
    broken_skin: bool | None = None
    impaired_sensation: bool | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> EpisodeRecord:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class PrescriptionRecord(Record):
    prescription_key: str
    episode_key: str
    drug: Drug
    concentration_mg_per_mL: Annotated[float, _within("concentration_mg_per_mL")]
    volume_mL: Annotated[float, _within("volume_mL")]
    prescriber_role: Annotated[str, _in(v.PRESCRIBER_ROLES, "prescriber role")]
    prescribed_on: dt.date

    @model_validator(mode="after")
    def _corticosteroid_needs_a_doctor(self) -> PrescriptionRecord:
        if self.drug in v.CORTICOSTEROIDS and self.prescriber_role not in (
            v.PRESCRIBING_DOCTOR_ROLES
        ):
            raise ValueError(
                f"{self.drug} must be prescribed by a referring doctor, "
                f"got prescriber role {self.prescriber_role!r}"
            )
        return self


class VisitRecord(Record):
    visit_key: str
    episode_key: str
    visit_date: dt.date
    start_time_local: dt.time | None = None
    kind: Annotated[str, _in(v.VISIT_KINDS, "visit kind")]


class InterventionRecord(Record):
    visit_key: str
    modality: Annotated[str, _in(v.MODALITIES, "modality")]
    cpt_code: CptCode
    minutes: Annotated[float | None, _within("minutes")] = None
    device_serial_hash: str | None = None


class OutcomeRecord(Record):
    episode_key: str
    visit_key: str | None = None
    instrument: Instrument
    instrument_version: str | None = None
    score: float
    item_responses: tuple[float, ...] | None = None
    measured_on: dt.date

    @field_validator("instrument_version")
    @classmethod
    def _known_version(cls, version: str | None, info: ValidationInfo) -> str | None:
        known = INSTRUMENT_VERSIONS.get(info.data.get("instrument", ""), frozenset())
        if version is not None and version not in known:
            raise ValueError(
                f"unknown instrument version (got text of {len(version)} characters); "
                f"expected one of {sorted(known)} or no version (add a new version to "
                "data_schemas.records.INSTRUMENT_VERSIONS)"
            )
        return version

    @model_validator(mode="after")
    def _score_in_range(self) -> OutcomeRecord:
        low, high = v.INSTRUMENT_RANGES[self.instrument]
        if not (low <= self.score <= high):
            raise ValueError(
                f"{self.instrument} score must be between {low:g} and {high:g}, got {self.score:g}"
            )
        return self


class AdverseEventRecord(Record):
    episode_key: str
    session_key: str | None = None
    event_type: Annotated[str, _in(v.ADVERSE_EVENT_TYPES, "adverse event type")]
    grade: int = Field(ge=0, le=3)
    onset_date: dt.date


class SessionRecord(Record):
    """One device session, normalized; its samples travel beside it, not inside."""

    session_key: str
    export_revision: int = Field(default=1, ge=1, le=9999)
    """A corrected re-export counts up from 1; a number beyond 9999 is no revision."""
    device: DeviceRecord
    visit_key: str | None = None
    setting: Annotated[str, _in(v.DEVICE_KINDS, "device kind")]
    drug: Drug
    drug_concentration_mg_per_mL: Annotated[float | None, _within("concentration_mg_per_mL")] = None
    drug_volume_mL: Annotated[float | None, _within("volume_mL")] = None
    active_polarity: Annotated[str, _in(v.POLARITIES, "polarity")]
    electrode_area_cm2: Annotated[float | None, _within("electrode_area_cm2")] = None
    prescribed_current_mA: CurrentMilliamp = None
    prescribed_dose_mA_min: DoseMilliampMinutes = None
    delivered_dose_mA_min: DoseMilliampMinutes = None
    started_at_utc: UtcTimestamp
    ended_at_utc: UtcTimestamp
    clock_source: Literal["device_offset", "clinic_timezone"]
    end_reason: Annotated[str, _in(v.END_REASONS, "end reason")]
    fault_codes: tuple[Annotated[str, _in(v.FAULT_CODES, "fault code")], ...] = ()
    skin_check_after: Annotated[str, _in(v.SKIN_CHECKS, "skin check")] = "not_checked"
    truncated: bool = False
    wrong_polarity: bool
    peak_current_mA: Annotated[float | None, _within("measured_current_mA")] = None
    recomputed_dose_mA_min: DoseMilliampMinutes = None
    dose_mismatch: bool = False
    current_limited: bool = False
    impedance_start_ohm: float | None = Field(default=None, ge=0)
    impedance_end_ohm: float | None = Field(default=None, ge=0)
    impedance_median_ohm: float | None = Field(default=None, ge=0)
    content_sha256: str

    @model_validator(mode="after")
    def _ends_after_start(self) -> SessionRecord:
        if self.ended_at_utc < self.started_at_utc:
            raise ValueError("session ends before it starts")
        return self


@cache
def list_adapter(model: type[Record]) -> TypeAdapter:
    """Validates or dumps a whole list of ``model`` records in one call."""
    return TypeAdapter(list[model])
