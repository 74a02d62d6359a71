"""SQLModel tables of the normalized store.

Every table holds de-identified data only: patients are pseudonyms from a keyed hash,
device serials and source-system keys are stored as keyed hashes, no names, addresses,
phone numbers, e-mails, MRNs or exact birth dates. Every imported row records the file it
came from (``source_file_id`` → :class:`ImportFile`, which holds the file's SHA-256, format
and importer version).

Natural keys (``*_key`` columns, keyed hashes of the source system's identifiers) are
unique, so re-importing the same content inserts nothing. Check constraints refuse
physically impossible rows; they are generated from :mod:`data_schemas.vocabulary`.

Examples
--------
>>> sorted(SQLModel.metadata.tables)[:3]
['adverse_event', 'clinic', 'device']
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from data_schemas import vocabulary as v

SCHEMA_REVISION = "0004"
"""The Alembic revision these models correspond to."""

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _one_of(column: str, allowed: tuple[str, ...] | frozenset[str]) -> str:
    # Equalities, not IN (...): SQLite builds an IN list's lookup table afresh for every
    # row a CHECK tests, which made these checks most of the cost of a bulk insert.
    return "(" + " OR ".join(f"\"{column}\" = '{value}'" for value in sorted(allowed)) + ")"


def _between(column: str, limit: str, *, nullable: bool = True) -> str:
    # Quoted: unit suffixes such as _mA are case-sensitive names on PostgreSQL.
    low, high = v.LIMITS[limit]
    check = f'"{column}" >= {low!r} AND "{column}" <= {high!r}'
    return f'"{column}" IS NULL OR ({check})' if nullable else check


def _check(name: str, sql: str) -> CheckConstraint:
    return CheckConstraint(sql, name=name)


def _score_in_range() -> str:
    parts = [
        f"(instrument = '{key}' AND score >= {low!r} AND score <= {high!r})"
        for key, (low, high) in v.INSTRUMENT_RANGES.items()
    ]
    # An unknown instrument is left to ck_outcome_instrument, so the error names it.
    return f"NOT ({_one_of('instrument', v.INSTRUMENTS)}) OR " + " OR ".join(parts)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


FILE_EXTENSIONS = ("", ".csv", ".dat", ".json", ".jsonl", ".log", ".ndjson", ".tsv", ".txt", ".xml")
"""Extensions the ledger keeps as they are; any other is kept as ``other`` (it may be a name)."""


class ImportFile(SQLModel, table=True):
    """The import ledger: one row per distinct source file content (by SHA-256)."""

    __tablename__ = "import_file"
    __table_args__ = (
        _check("ck_import_file_status", _one_of("status", ("imported", "quarantined"))),
        _check("ck_import_file_extension", _one_of("file_extension", (*FILE_EXTENSIONS, "other"))),
    )

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True, description="SHA-256 of the file bytes")
    file_name_hash: str | None = Field(
        default=None,
        max_length=64,
        description="keyed hash (HMAC, site key) of the file's base name; never the name "
        "(empty for files recorded before revision 0004, whose names were discarded)",
    )
    file_extension: str = Field(
        default="", max_length=8, description="the name's extension if a known one, else other"
    )
    format: str = Field(max_length=64, index=True, description="detected export format")
    importer_version: str = Field(max_length=32, description="ionto-analytics version")
    status: str = Field(max_length=16, description="imported or quarantined")
    imported_at_utc: dt.datetime = Field(
        default_factory=_utc_now, index=True, description="when it was imported, UTC"
    )
    row_count: int = Field(default=0, ge=0, description="rows this file put in the store")
    quarantine_reason: str | None = Field(
        default=None,
        description="why it was set aside: record, field, expected and the kind of value found "
        "(never the value itself)",
    )


class SiteKey(SQLModel, table=True):
    """The keyed fingerprint of the site key the store's pseudonyms were made with.

    One row, written by the first import. An import under any other key is refused, so a
    lost or replaced key cannot silently split every patient in two.
    """

    __tablename__ = "site_key"

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(
        max_length=64, unique=True, description="HMAC-SHA256(site key, a fixed label), hex"
    )
    recorded_at_utc: dt.datetime = Field(
        default_factory=_utc_now, description="when the first import recorded it, UTC"
    )


class Clinic(SQLModel, table=True):
    """A clinic of the network; ``timezone`` is used for device clocks with no zone."""

    __tablename__ = "clinic"

    id: int | None = Field(default=None, primary_key=True)
    clinic_key: str = Field(max_length=64, unique=True, description="the network's clinic code")
    name: str = Field(max_length=200, description="clinic name (an organisation, not a person)")
    timezone: str = Field(max_length=64, description="IANA time zone, e.g. Europe/Amsterdam")
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class Device(SQLModel, table=True):
    """An iontophoresis device: a clinic unit or a wearable patch."""

    __tablename__ = "device"
    __table_args__ = (_check("ck_device_kind", _one_of("kind", v.DEVICE_KINDS)),)

    id: int | None = Field(default=None, primary_key=True)
    serial_hash: str = Field(max_length=64, unique=True, description="keyed hash of the serial")
    vendor: str = Field(max_length=100, description="manufacturer")
    model: str = Field(max_length=100, index=True, description="device model")
    kind: str = Field(max_length=16, description="clinic_unit or wearable_patch")
    firmware: str | None = Field(default=None, max_length=50, description="firmware version")
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id", index=True)
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class Patient(SQLModel, table=True):
    """A patient, known only by a pseudonym (HMAC-SHA256 with the site key)."""

    __tablename__ = "patient"
    __table_args__ = (
        _check("ck_patient_sex", _one_of("sex", v.SEXES)),
        _check(
            "ck_patient_birth_year",
            "(aged_90_plus AND birth_year IS NULL) OR "
            "(NOT aged_90_plus AND (birth_year IS NULL OR birth_year >= 1900))",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    pseudonym: str = Field(max_length=64, unique=True, description="keyed hash of the person")
    sex: str = Field(max_length=8, description="female, male, other or unknown")
    birth_year: int | None = Field(default=None, description="year only; NULL when aged 90+")
    aged_90_plus: bool = Field(default=False, description="Safe Harbor: ages over 89 pooled")
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class PatientLink(SQLModel, table=True):
    """A source system's patient id (as a keyed hash) linked to the pseudonymous patient.

    Lets records that name a patient only by a clinic's MRN (an episode row of an EHR
    export) find the patient, without the MRN ever being stored. One person may have
    several links (two clinics, two MRNs).
    """

    __tablename__ = "patient_link"

    id: int | None = Field(default=None, primary_key=True)
    source_key: str = Field(max_length=64, unique=True, description="keyed hash of clinic + MRN")
    patient_id: int = Field(foreign_key="patient.id", index=True)
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class Episode(SQLModel, table=True):
    """An episode of care for one condition, from intake to discharge."""

    __tablename__ = "episode"
    __table_args__ = (
        _check("ck_episode_condition", _one_of("condition", v.CONDITIONS)),
        _check("ck_episode_side", "side IS NULL OR " + _one_of("side", v.SIDES)),
        _check(
            "ck_episode_planned_arm",
            "planned_arm IS NULL OR " + _one_of("planned_arm", v.ARMS),
        ),
        _check(
            "ck_episode_symptom_weeks",
            "symptom_duration_weeks IS NULL OR symptom_duration_weeks >= 0",
        ),
        _check("ck_episode_dates", "end_date IS NULL OR end_date >= start_date"),
        Index("ix_episode_condition_clinic_start", "condition", "clinic_id", "start_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    episode_key: str = Field(max_length=64, unique=True, description="keyed hash of source id")
    patient_id: int = Field(foreign_key="patient.id", index=True)
    clinic_id: int = Field(foreign_key="clinic.id")
    condition: str = Field(max_length=32, description="condition key")
    condition_family: str = Field(max_length=32, description="family of the condition")
    icd10_code: str = Field(max_length=10, description="ICD-10-CM code")
    side: str | None = Field(default=None, max_length=12, description="affected side")
    symptom_duration_weeks: float | None = Field(default=None, description="at intake, weeks")
    start_date: dt.date = Field(description="intake (evaluation) date")
    end_date: dt.date | None = Field(default=None, description="discharge date")
    age_at_intake_years: int | None = Field(default=None, description="90 for ages 90+")
    planned_arm: str | None = Field(default=None, max_length=24, description="plan of care arm")
    planned_visits_per_week: float | None = Field(
        default=None, ge=0, description="plan of care: visits per week"
    )
    planned_weeks: float | None = Field(default=None, ge=0, description="plan of care: weeks")
    pacemaker_or_implant: bool | None = Field(
        default=None, description="screening: pacemaker or other implanted device"
    )
    pregnancy: bool | None = Field(default=None, description="screening: pregnant")
    drug_hypersensitivity: bool | None = Field(
        default=None, description="screening: known drug hypersensitivity"
    )
    broken_skin: bool | None = Field(default=None, description="screening: broken skin at the site")
    impaired_sensation: bool | None = Field(
        default=None, description="screening: impaired sensation at the site"
    )
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class Prescription(SQLModel, table=True):
    """A drug prescribed for iontophoresis; a corticosteroid needs a referring doctor."""

    __tablename__ = "prescription"
    __table_args__ = (
        _check("ck_prescription_role", _one_of("prescriber_role", v.PRESCRIBER_ROLES)),
        _check(
            "ck_prescription_corticosteroid_by_doctor",
            f"NOT ({_one_of('drug', v.CORTICOSTEROIDS)}) OR "
            f"{_one_of('prescriber_role', v.PRESCRIBING_DOCTOR_ROLES)}",
        ),
        _check(
            "ck_prescription_concentration",
            _between("concentration_mg_per_mL", "concentration_mg_per_mL", nullable=False),
        ),
        _check("ck_prescription_volume", _between("volume_mL", "volume_mL", nullable=False)),
    )

    id: int | None = Field(default=None, primary_key=True)
    prescription_key: str = Field(max_length=64, unique=True)
    episode_id: int = Field(foreign_key="episode.id", index=True)
    drug: str = Field(max_length=64, description="drug key, e.g. dexamethasone_sodium_phosphate")
    concentration_mg_per_mL: float = Field(description="mg/mL")
    volume_mL: float = Field(description="mL applied to the active electrode")
    prescriber_role: str = Field(max_length=32, description="role of the prescriber")
    prescribed_on: dt.date = Field(description="date of the prescription")
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class Visit(SQLModel, table=True):
    """A clinic visit (encounter) within an episode."""

    __tablename__ = "visit"
    __table_args__ = (
        _check("ck_visit_kind", _one_of("kind", v.VISIT_KINDS)),
        Index("ix_visit_episode_date", "episode_id", "visit_date"),
    )

    id: int | None = Field(default=None, primary_key=True)
    visit_key: str = Field(max_length=64, unique=True)
    episode_id: int = Field(foreign_key="episode.id")
    visit_date: dt.date = Field(index=True, description="date of the visit (clinic time)")
    start_time_local: dt.time | None = Field(
        default=None, description="scheduled start, clinic local time (links device sessions)"
    )
    kind: str = Field(max_length=16, description="evaluation, treatment, discharge...")
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class Intervention(SQLModel, table=True):
    """One billed or documented intervention at a visit."""

    __tablename__ = "intervention"
    __table_args__ = (
        _check("ck_intervention_modality", _one_of("modality", v.MODALITIES)),
        _check("ck_intervention_minutes", _between("minutes", "minutes")),
        UniqueConstraint("visit_id", "cpt_code", name="uq_intervention_visit_code"),
    )

    id: int | None = Field(default=None, primary_key=True)
    visit_id: int = Field(foreign_key="visit.id", index=True)
    modality: str = Field(max_length=16, description="iontophoresis, exercise, ...")
    cpt_code: str = Field(max_length=8, description="CPT code, e.g. 97033")
    minutes: float | None = Field(default=None, description="minutes of the intervention")
    device_id: int | None = Field(default=None, foreign_key="device.id", index=True)
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class IontoSession(SQLModel, table=True):
    """One iontophoresis session as logged by a device, normalized to mA, mA·min, ohm, UTC.

    A corrected re-export of the same session supersedes the old version: the new row
    points at the old one with ``supersedes_id`` and the old row's ``is_current`` becomes
    false, so the history is kept.
    """

    __tablename__ = "ionto_session"
    __table_args__ = (
        _check("ck_session_polarity", _one_of("active_polarity", v.POLARITIES)),
        _check("ck_session_end_reason", _one_of("end_reason", v.END_REASONS)),
        _check("ck_session_skin", _one_of("skin_check_after", v.SKIN_CHECKS)),
        _check("ck_session_link", _one_of("link_status", ("linked", "unlinked"))),
        _check("ck_session_clock", _one_of("clock_source", ("device_offset", "clinic_timezone"))),
        _check("ck_session_current", _between("prescribed_current_mA", "current_mA")),
        _check("ck_session_peak_current", _between("peak_current_mA", "measured_current_mA")),
        _check("ck_session_prescribed_dose", _between("prescribed_dose_mA_min", "dose_mA_min")),
        _check("ck_session_delivered_dose", _between("delivered_dose_mA_min", "dose_mA_min")),
        _check("ck_session_recomputed_dose", _between("recomputed_dose_mA_min", "dose_mA_min")),
        _check("ck_session_area", _between("electrode_area_cm2", "electrode_area_cm2")),
        _check("ck_session_duration", "duration_s >= 0"),
        _check("ck_session_times", "ended_at_utc >= started_at_utc"),
        UniqueConstraint("session_key", "version", name="uq_session_key_version"),
        Index("ix_session_started", "started_at_utc"),
    )

    id: int | None = Field(default=None, primary_key=True)
    session_key: str = Field(max_length=64, index=True, description="hash of serial + id")
    version: int = Field(default=1, ge=1, description="1, then 2 for a corrected re-export")
    is_current: bool = Field(default=True, description="false once superseded")
    supersedes_id: int | None = Field(default=None, foreign_key="ionto_session.id")
    content_sha256: str = Field(max_length=64, description="hash of the normalized content")
    device_id: int = Field(foreign_key="device.id", index=True)
    clinic_id: int | None = Field(default=None, foreign_key="clinic.id", index=True)
    patient_id: int | None = Field(default=None, foreign_key="patient.id")
    episode_id: int | None = Field(default=None, foreign_key="episode.id", index=True)
    visit_id: int | None = Field(default=None, foreign_key="visit.id")
    link_status: str = Field(max_length=10, description="linked or unlinked")
    link_rule: str | None = Field(default=None, max_length=40, description="rule that linked")
    setting: str = Field(max_length=16, description="clinic_unit session or wearable_patch")
    drug: str = Field(max_length=64, description="drug key")
    drug_concentration_mg_per_mL: float | None = Field(default=None, description="mg/mL")
    drug_volume_mL: float | None = Field(default=None, description="mL on the active pad")
    active_polarity: str = Field(max_length=8, description="cathode or anode")
    wrong_polarity: bool = Field(description="polarity contradicts the drug's charge")
    electrode_area_cm2: float | None = Field(default=None, description="active electrode, cm²")
    prescribed_current_mA: float | None = Field(default=None, description="setpoint, mA")
    peak_current_mA: float | None = Field(default=None, description="highest measured, mA")
    prescribed_dose_mA_min: float | None = Field(default=None, description="target, mA·min")
    delivered_dose_mA_min: float | None = Field(default=None, description="device's figure")
    recomputed_dose_mA_min: float | None = Field(default=None, description="from samples")
    dose_mismatch: bool = Field(default=False, description="device and samples disagree")
    current_limited: bool = Field(default=False, description="compliance limit reached")
    duration_s: float = Field(description="start to end, seconds")
    started_at_utc: dt.datetime = Field(description="session start, UTC")
    ended_at_utc: dt.datetime = Field(description="last sample or end record, UTC")
    clock_source: str = Field(max_length=16, description="device_offset or clinic_timezone")
    impedance_start_ohm: float | None = Field(default=None, description="first sample, ohm")
    impedance_end_ohm: float | None = Field(default=None, description="last sample, ohm")
    impedance_median_ohm: float | None = Field(default=None, description="median, ohm")
    end_reason: str = Field(max_length=24, description="why it ended (vocabulary)")
    fault_codes: str = Field(default="", max_length=200, description="';'-joined fault codes")
    skin_check_after: str = Field(
        default="not_checked", max_length=12, description="skin under the pads afterwards"
    )
    truncated: bool = Field(default=False, description="log ends without an end record")
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class SessionTrace(SQLModel, table=True):
    """The samples of one session, packed column-wise (see :mod:`data_schemas.samples`).

    One row per session rather than one row per sample: hundreds of millions of samples
    become a few million rows, stored and written in the same transaction as their session
    (bench/RESULTS.md measures the choice).
    """

    __tablename__ = "session_trace"

    session_id: int = Field(foreign_key="ionto_session.id", primary_key=True)
    sample_count: int = Field(ge=0, description="number of samples")
    packed_samples: bytes = Field(
        sa_column=Column(LargeBinary, nullable=False),
        description="Arrow IPC stream: t_s, current_mA, voltage_V, impedance_ohm",
    )


class OutcomeMeasurement(SQLModel, table=True):
    """A score on an outcome instrument, in the instrument's own units and direction."""

    __tablename__ = "outcome_measurement"
    __table_args__ = (
        _check("ck_outcome_instrument", _one_of("instrument", v.INSTRUMENTS)),
        _check("ck_outcome_score_range", _score_in_range()),
        UniqueConstraint(
            "episode_id", "instrument", "measured_on", name="uq_outcome_episode_instrument_date"
        ),
        Index("ix_outcome_instrument_date", "instrument", "measured_on"),
    )

    id: int | None = Field(default=None, primary_key=True)
    episode_id: int = Field(foreign_key="episode.id", index=True)
    visit_id: int | None = Field(default=None, foreign_key="visit.id")
    instrument: str = Field(max_length=24, description="instrument key")
    instrument_version: str | None = Field(
        default=None,
        max_length=32,
        description="a version code from records.INSTRUMENT_VERSIONS, e.g. PSFS 2.0",
    )
    score: float = Field(description="total score in the instrument's own range")
    item_responses: str | None = Field(default=None, description="comma-separated item answers")
    measured_on: dt.date = Field(description="date of the measurement")
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")


class AdverseEvent(SQLModel, table=True):
    """A skin reaction or other harm, graded 0-3 (DOMAIN.md 1.6)."""

    __tablename__ = "adverse_event"
    __table_args__ = (
        _check("ck_adverse_event_type", _one_of("event_type", v.ADVERSE_EVENT_TYPES)),
        _check("ck_adverse_event_grade", "grade >= 0 AND grade <= 3"),
        UniqueConstraint("episode_id", "event_type", "onset_date", name="uq_adverse_event"),
    )

    id: int | None = Field(default=None, primary_key=True)
    episode_id: int = Field(foreign_key="episode.id", index=True)
    session_id: int | None = Field(default=None, foreign_key="ionto_session.id")
    event_type: str = Field(max_length=16, description="erythema, burn, ...")
    grade: int = Field(description="0 none, 1 erythema <24 h, 2 >24 h or vesicles, 3 burn")
    onset_date: dt.date = Field(description="date first seen")
    source_file_id: int | None = Field(default=None, foreign_key="import_file.id")
