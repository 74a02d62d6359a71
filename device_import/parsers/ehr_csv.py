"""The clinics' EHR CSV export: one file per table, recognized by its header row.

Every table carries ``clinic_id`` so a file needs no folder name to be placed. Direct
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
import io
from collections.abc import Callable, Iterator

from data_schemas import records as r
from data_schemas import vocabulary as v
from device_import.parsed import ParseContext, ParsedFile
from device_import.parsers.common import FieldReader, decode_text, drug_key, zone
from device_import.privacy import age_fields
from device_import.problems import FileRejected, reject

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


def _rows(text: str, file: str) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader)]
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise reject(
                file,
                "row has the wrong number of fields (truncated or malformed row?)",
                record=f"line {reader.line_num}",
                expected=f"{len(header)} fields",
                got=f"{len(row)} fields",
            )
        yield reader.line_num, dict(zip(header, row, strict=True))


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
            got=text[:60],
        )
    parsed = ParsedFile(FORMAT)
    build = _BUILDERS[table]
    count = 0
    for line, values in _rows(text, context.file):
        fields = FieldReader(context.file, f"line {line}", values, lowercase=True)
        try:
            build(fields, context, parsed)
        except FileRejected:
            raise
        except ValueError as error:  # a record's own validation
            raise reject(context.file, _first_error(error), record=f"line {line}") from None
        count += 1
    if count == 0:
        parsed.notes.append(f"the {table} table has a header and no rows")
    return parsed


def _first_error(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(error)


def _clinic(fields: FieldReader) -> str:
    return fields.text("clinic_id")  # type: ignore[return-value]


def _clinics(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    timezone = fields.text("time_zone")
    zone(timezone, context.file, fields.record)
    parsed.add(
        "clinic",
        r.ClinicRecord(clinic_key=_clinic(fields), name=fields.text("name"), timezone=timezone),
    )


def _devices(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    parsed.add(
        "device",
        r.DeviceRecord(
            serial_hash=context.keyer.serial(fields.text("serial")),
            vendor=fields.text("vendor"),
            model=fields.text("model"),
            kind=fields.choice("kind", {k: k for k in v.DEVICE_KINDS}),
            firmware=fields.text("firmware", required=False),
            clinic_key=_clinic(fields),
        ),
    )


def _patients(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    birth = fields.date("birth_date")
    if birth > context.today:
        raise reject(
            context.file,
            "birth date in the future",
            record=fields.record,
            field="birth_date",
            expected=f"on or before {context.today}",
            got=str(birth),
        )
    birth_year, aged_90_plus, _ = age_fields(birth.isoformat(), context.today)
    pseudonym = context.keyer.person(
        fields.text("first_name"), fields.text("last_name"), birth.isoformat()
    )
    parsed.add(
        "patient",
        r.PatientRecord(
            pseudonym=pseudonym,
            sex=fields.choice("sex", SEX),
            birth_year=birth_year,
            aged_90_plus=aged_90_plus,
        ),
    )
    parsed.add(
        "patient_link",
        r.PatientLinkRecord(
            source_key=context.keyer.key("mrn", _clinic(fields), fields.text("mrn")),
            pseudonym=pseudonym,
        ),
    )


def _episode_key(fields: FieldReader, context: ParseContext) -> str:
    return context.keyer.key("episode", _clinic(fields), fields.text("episode_id"))


def _visit_key(fields: FieldReader, context: ParseContext, *, required: bool = True) -> str | None:
    encounter = fields.text("encounter_id", required=required)
    return None if encounter is None else context.keyer.key("visit", _clinic(fields), encounter)


def _episodes(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    code = fields.text("icd10_code")
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
    parsed.add(
        "episode",
        r.EpisodeRecord(
            episode_key=_episode_key(fields, context),
            patient_ref=context.keyer.key("mrn", _clinic(fields), fields.text("mrn")),
            clinic_key=_clinic(fields),
            condition=condition,
            icd10_code=code,
            side=fields.choice("side", SIDE, required=False),
            symptom_duration_weeks=None if months is None else round(months * WEEKS_PER_MONTH, 2),
            start_date=fields.date("intake_date"),
            end_date=fields.date("discharge_date", required=False),
            planned_arm=fields.choice("planned_arm", {a: a for a in v.ARMS}, required=False),
            planned_visits_per_week=fields.number("planned_visits_per_week", required=False),
            planned_weeks=fields.number("planned_weeks", required=False),
            pacemaker_or_implant=fields.yes_no("screen_pacemaker_or_implant"),
            pregnancy=fields.yes_no("screen_pregnancy"),
            drug_hypersensitivity=fields.yes_no("screen_drug_hypersensitivity"),
            broken_skin=fields.yes_no("screen_broken_skin"),
            impaired_sensation=fields.yes_no("screen_impaired_sensation"),
        ),
    )


def _prescriptions(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    parsed.add(
        "prescription",
        r.PrescriptionRecord(
            prescription_key=context.keyer.key(
                "prescription", _clinic(fields), fields.text("prescription_id")
            ),
            episode_key=_episode_key(fields, context),
            drug=drug_key(fields.text("drug")),
            concentration_mg_per_mL=fields.number("concentration_mg_per_mL"),
            volume_mL=fields.number("volume_mL"),
            prescriber_role=fields.choice("prescriber_role", {k: k for k in v.PRESCRIBER_ROLES}),
            prescribed_on=fields.date("date_written"),
        ),
    )


def _visits(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    parsed.add(
        "visit",
        r.VisitRecord(
            visit_key=_visit_key(fields, context),
            episode_key=_episode_key(fields, context),
            visit_date=fields.date("visit_date"),
            start_time_local=fields.time("start_time"),
            kind=fields.choice("visit_type", VISIT_KIND),
        ),
    )


def _interventions(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    code = fields.text("cpt_code")
    serial = fields.text("device_serial", required=False)
    parsed.add(
        "intervention",
        r.InterventionRecord(
            visit_key=_visit_key(fields, context),
            modality=v.CPT_MODALITY.get(code, "other"),
            cpt_code=code,
            minutes=fields.number("minutes", required=False),
            details=fields.text("detail", required=False) or "",
            device_serial_hash=context.keyer.serial(serial) if serial else None,
        ),
    )


def _outcomes(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    items = fields.text("item_responses", required=False)
    try:
        responses = None if items is None else tuple(float(x) for x in items.split(","))
    except ValueError:
        raise reject(
            context.file,
            "item responses are not numbers",
            record=fields.record,
            field="item_responses",
            expected="comma-separated numbers",
            got=items,
        ) from None
    instrument = fields.text("instrument").lower()
    if instrument not in v.INSTRUMENT_RANGES:
        raise reject(
            context.file,
            "unknown outcome instrument",
            record=fields.record,
            field="instrument",
            expected="an instrument key such as nprs or visa_a",
            got=instrument,
        )
    parsed.add(
        "outcome_measurement",
        r.OutcomeRecord(
            episode_key=_episode_key(fields, context),
            visit_key=_visit_key(fields, context, required=False),
            instrument=instrument,
            instrument_version=fields.text("version", required=False),
            score=fields.number("score"),
            item_responses=responses,
            measured_on=fields.date("date"),
        ),
    )


def _adverse_events(fields: FieldReader, context: ParseContext, parsed: ParsedFile) -> None:
    parsed.add(
        "adverse_event",
        r.AdverseEventRecord(
            episode_key=_episode_key(fields, context),
            event_type=fields.choice("event_type", {k: k for k in v.ADVERSE_EVENT_TYPES}),
            grade=fields.integer("grade"),
            onset_date=fields.date("onset_date"),
        ),
    )


_BUILDERS: dict[str, Callable[[FieldReader, ParseContext, ParsedFile], None]] = {
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
