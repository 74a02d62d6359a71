"""The clinics' EHR CSV export: one file per table, recognized by its header row.

Every table carries ``clinic_id`` so a file needs no folder name to be placed. Tables are
read column by column (:mod:`device_import.parsers.columns`): each distinct value is
converted once, and the records of a table are validated in one call. Direct
identifiers (names, MRN, birth date, phone, e-mail, address, prescriber and therapist
names) are read only to compute keyed hashes and are dropped here. The tables load in
:data:`TABLES` order. Column spec: ``data_schemas/formats/ehr_csv.md``.

Examples
--------
>>> sniff(b"clinic_id,name,city,state,zip,time_zone\\n")
0
>>> sniff(b"t,current\\n") is None
True
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable

from data_schemas import records as r
from data_schemas import vocabulary as v
from device_import.parsed import ParseContext, ParsedFile
from device_import.parsers.columns import ColumnReader, read_table
from device_import.parsers.common import FieldReader, decode_text, drug_key, zone
from device_import.privacy import age_fields
from device_import.problems import reject

FORMAT = "ehr_csv"
WEEKS_PER_MONTH = 52.0 / 12.0

TABLES: dict[str, frozenset[str]] = {
    # table: the header columns that identify it (others may come and go)
    "clinics": frozenset({"clinic_id", "name", "time_zone"}),
    "devices": frozenset({"clinic_id", "serial", "vendor", "model", "kind"}),
    "patients": frozenset({"clinic_id", "mrn", "first_name", "last_name", "birth_date", "sex"}),
    "episodes": frozenset({"clinic_id", "episode_id", "mrn", "intake_date", "icd10_code"}),
    "prescriptions": frozenset({"clinic_id", "prescription_id", "episode_id", "drug"}),
    "visits": frozenset({"clinic_id", "encounter_id", "episode_id", "visit_date", "visit_type"}),
    "interventions": frozenset({"clinic_id", "encounter_id", "cpt_code", "minutes"}),
    "outcomes": frozenset({"clinic_id", "encounter_id", "episode_id", "instrument", "score"}),
    "adverse_events": frozenset({"clinic_id", "ae_id", "episode_id", "event_type", "grade"}),
}
SEX = {
    "f": "female",
    "female": "female",
    "m": "male",
    "male": "male",
    "o": "other",
    "other": "other",
    "u": "unknown",
    "unknown": "unknown",
    "x": "other",
}
SIDE = {side: side for side in v.SIDES} | {"l": "left", "r": "right", "b": "bilateral"}
VISIT_KIND = {kind: kind for kind in v.VISIT_KINDS} | {
    "initial_evaluation": "evaluation",
    "progress": "re_evaluation",
    "followup": "follow_up",
}


def _header(head: bytes) -> list[str] | None:
    first_line = head.split(b"\n", 1)[0]  # decode the header line only: sniffed per file
    if b"clinic_id" not in first_line.lower():  # every table has it; cheap for other files
        return None
    lines = first_line.decode("utf-8-sig", errors="replace").splitlines()
    if not lines:
        return None
    first = lines[0]
    return [name.strip().lower() for name in next(csv.reader([first]), [])]


def _table(header: list[str]) -> str | None:
    columns = set(header)
    matches = [name for name, needed in TABLES.items() if needed <= columns]
    return matches[-1] if matches else None


def sniff(head: bytes) -> int | None:
    """The table's load-order rank when ``head`` starts an EHR CSV table, else None."""
    header = _header(head)
    table = _table(header) if header else None
    return None if table is None else list(TABLES).index(table)


def places_devices(rank: int) -> bool:
    """Whether the table of this load-order rank registers clinics or devices."""
    return list(TABLES)[rank] in ("clinics", "devices")


def parse(data: bytes, context: ParseContext) -> ParsedFile:
    """Parse one EHR CSV table into validated, de-identified records."""
    text = decode_text(data, context.file)
    header = _header(data)
    table = _table(header) if header else None
    if table is None:
        raise reject(
            context.file,
            "not an EHR CSV table",
            record="line 1",
            expected="a known header",
            found="a header that is no EHR table's",
        )
    parsed = ParsedFile(FORMAT)
    columns = read_table(text, context.file)
    if len(columns):
        _BUILDERS[table](columns, context, parsed)
    else:
        parsed.notes.append(f"the {table} table has a header and no rows")
    return parsed


def _clinic(fields: FieldReader) -> str:
    return fields.text("clinic_id")  # type: ignore[return-value]


def _keys(
    columns: ColumnReader, context: ParseContext, kind: str, name: str, *, required: bool = True
) -> list[str | None]:
    """Keyed hashes of a source id column, namespaced by the row's clinic."""
    clinics = columns.text("clinic_id")
    ids = columns.text(name, required=required)
    key = context.keyer.key
    return [
        None if source_id is None else key(kind, clinic, source_id)
        for clinic, source_id in zip(clinics, ids, strict=True)
    ]


def _clinics(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    records = []
    for fields in columns.each_row():
        timezone = fields.text("time_zone")
        zone(timezone, context.file, fields.record)
        records.append(
            {"clinic_key": _clinic(fields), "name": fields.text("name"), "timezone": timezone}
        )
    parsed.extend("clinic", columns.validated(r.ClinicRecord, records))


def _devices(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    records = [
        {
            "serial_hash": context.keyer.serial(fields.text("serial")),
            "vendor": fields.text("vendor"),
            "model": fields.text("model"),
            "kind": fields.choice("kind", {k: k for k in v.DEVICE_KINDS}),
            "firmware": fields.text("firmware", required=False),
            "clinic_key": _clinic(fields),
        }
        for fields in columns.each_row()
    ]
    parsed.extend("device", columns.validated(r.DeviceRecord, records))


def _patients(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    patients, links, places = [], [], []
    for fields in columns.each_row():
        places.append(fields.record)
        birth = fields.date("birth_date")
        if birth > context.today:
            raise reject(
                context.file,
                "birth date in the future",
                record=fields.record,
                field="birth_date",
                expected=f"on or before {context.today}",
                got=birth.isoformat(),
            )
        birth_year, aged_90_plus, _ = age_fields(birth.isoformat(), context.today)
        pseudonym = context.keyer.person(
            fields.text("first_name"), fields.text("last_name"), birth.isoformat()
        )
        patients.append(
            {
                "pseudonym": pseudonym,
                "sex": fields.choice("sex", SEX),
                "birth_year": birth_year,
                "aged_90_plus": aged_90_plus,
            }
        )
        links.append(
            {
                "source_key": context.keyer.key("mrn", _clinic(fields), fields.text("mrn")),
                "pseudonym": pseudonym,
            }
        )
    parsed.extend("patient", columns.validated(r.PatientRecord, patients), places)
    parsed.extend("patient_link", columns.validated(r.PatientLinkRecord, links))


def _episodes(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    records = []
    for fields in columns.each_row():
        code = v.normalize_icd10(fields.text("icd10_code"))
        if code is None:
            raise reject(
                context.file,
                "not an ICD-10-CM code",
                record=fields.record,
                field="icd10_code",
                expected="a code such as M77.11 (the dot may be left out)",
                got=fields.text("icd10_code"),
            )
        condition = v.condition_from_icd10(code)
        if condition is None:
            raise reject(
                context.file,
                "diagnosis outside the toolkit's conditions",
                record=fields.record,
                field="icd10_code",
                expected="an ICD-10-CM code of a condition in data_schemas/vocabulary.py",
                got=code,
            )
        months = fields.number("symptom_duration_months", required=False, low=0, high=600)
        records.append(
            {
                "episode_key": context.keyer.key(
                    "episode", _clinic(fields), fields.text("episode_id")
                ),
                "patient_ref": context.keyer.key("mrn", _clinic(fields), fields.text("mrn")),
                "clinic_key": _clinic(fields),
                "condition": condition,
                "icd10_code": code,
                "side": fields.choice("side", SIDE, required=False),
                "symptom_duration_weeks": None
                if months is None
                else round(months * WEEKS_PER_MONTH, 2),
                "start_date": fields.date("intake_date", today=context.clock),
                "end_date": fields.date("discharge_date", required=False, today=context.clock),
                "planned_arm": fields.choice("planned_arm", {a: a for a in v.ARMS}, required=False),
                "planned_visits_per_week": fields.number("planned_visits_per_week", required=False),
                "planned_weeks": fields.number("planned_weeks", required=False),
                "pacemaker_or_implant": fields.yes_no("screen_pacemaker_or_implant"),
                "pregnancy": fields.yes_no("screen_pregnancy"),
                "drug_hypersensitivity": fields.yes_no("screen_drug_hypersensitivity"),
                "broken_skin": fields.yes_no("screen_broken_skin"),
                "impaired_sensation": fields.yes_no("screen_impaired_sensation"),
            }
        )
    parsed.extend("episode", columns.validated(r.EpisodeRecord, records))


def _prescriptions(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    records = [
        {
            "prescription_key": context.keyer.key(
                "prescription", _clinic(fields), fields.text("prescription_id")
            ),
            "episode_key": context.keyer.key("episode", _clinic(fields), fields.text("episode_id")),
            "drug": drug_key(fields.text("drug")),
            "concentration_mg_per_mL": fields.number("concentration_mg_per_mL"),
            "volume_mL": fields.number("volume_mL"),
            "prescriber_role": fields.choice("prescriber_role", {k: k for k in v.PRESCRIBER_ROLES}),
            "prescribed_on": fields.date("date_written", today=context.clock),
        }
        for fields in columns.each_row()
    ]
    parsed.extend("prescription", columns.validated(r.PrescriptionRecord, records))


def _event_date(today: dt.date) -> Callable[[FieldReader, str], object]:
    """Reads a date column of events (visits, outcomes): inside the operating window."""
    return lambda fields, name: fields.date(name, today=today)


def _visits(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    records = [
        {
            "visit_key": visit,
            "episode_key": episode,
            "visit_date": day,
            "start_time_local": begins,
            "kind": kind,
        }
        for visit, episode, day, begins, kind in zip(
            _keys(columns, context, "visit", "encounter_id"),
            _keys(columns, context, "episode", "episode_id"),
            columns.convert("visit_date", _event_date(context.clock)),
            columns.convert("start_time", lambda fields, name: fields.time(name)),
            columns.convert("visit_type", lambda fields, name: fields.choice(name, VISIT_KIND)),
            strict=True,
        )
    ]
    parsed.extend("visit", columns.validated(r.VisitRecord, records))


def _interventions(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    codes = columns.text("cpt_code")
    serial = context.keyer.serial
    records = [
        {
            "visit_key": visit,
            "modality": v.CPT_MODALITY.get(code, "other"),
            "cpt_code": code,
            "minutes": minutes,
            "device_serial_hash": serial(device) if device else None,
        }
        for visit, code, minutes, device in zip(
            _keys(columns, context, "visit", "encounter_id"),
            codes,
            columns.convert("minutes", lambda fields, name: fields.number(name, required=False)),
            columns.text("device_serial", required=False),
            strict=True,
        )
    ]
    parsed.extend("intervention", columns.validated(r.InterventionRecord, records))


def _item_responses(fields: FieldReader, name: str) -> tuple[float, ...] | None:
    items = fields.text(name, required=False)
    try:
        return None if items is None else tuple(float(x) for x in items.split(","))
    except ValueError:
        raise reject(
            fields.file,
            "item responses are not numbers",
            record=fields.record,
            field=name,
            expected="comma-separated numbers",
            got=items,
        ) from None


def _instrument(fields: FieldReader, name: str) -> str:
    instrument = fields.text(name).lower()  # type: ignore[union-attr]
    if instrument not in v.INSTRUMENT_RANGES:
        raise reject(
            fields.file,
            "unknown outcome instrument",
            record=fields.record,
            field=name,
            expected="an instrument key such as nprs or visa_a",
            got=instrument,
        )
    return instrument


def _outcomes(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    records = [
        {
            "episode_key": episode,
            "visit_key": visit,
            "instrument": instrument,
            "instrument_version": version,
            "score": score,
            "item_responses": items,
            "measured_on": day,
        }
        for episode, visit, instrument, version, score, items, day in zip(
            _keys(columns, context, "episode", "episode_id"),
            _keys(columns, context, "visit", "encounter_id", required=False),
            columns.convert("instrument", _instrument),
            columns.text("version", required=False),
            columns.convert("score", lambda fields, name: fields.number(name)),
            columns.convert("item_responses", _item_responses),
            columns.convert("date", _event_date(context.clock)),
            strict=True,
        )
    ]
    parsed.extend("outcome_measurement", columns.validated(r.OutcomeRecord, records))


def _adverse_events(columns: ColumnReader, context: ParseContext, parsed: ParsedFile) -> None:
    records = [
        {
            "episode_key": context.keyer.key("episode", _clinic(fields), fields.text("episode_id")),
            "event_type": fields.choice("event_type", {k: k for k in v.ADVERSE_EVENT_TYPES}),
            "grade": fields.integer("grade"),
            "onset_date": fields.date("onset_date", today=context.clock),
        }
        for fields in columns.each_row()
    ]
    parsed.extend("adverse_event", columns.validated(r.AdverseEventRecord, records))


_BUILDERS: dict[str, Callable[[ColumnReader, ParseContext, ParsedFile], None]] = {
    "clinics": _clinics,
    "devices": _devices,
    "patients": _patients,
    "episodes": _episodes,
    "prescriptions": _prescriptions,
    "visits": _visits,
    "interventions": _interventions,
    "outcomes": _outcomes,
    "adverse_events": _adverse_events,
}
