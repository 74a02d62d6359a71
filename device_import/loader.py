"""Loading one parsed file into the store, in one transaction, idempotently.

Rows are matched on their natural keys. A row already in the store with the same content
is left alone; one with different content is a conflict and the whole file is refused
(raised as :class:`~device_import.problems.FileRejected`, so the caller rolls back). A
value that one source leaves empty (FHIR carries no symptom duration, say) is not a
conflict: what is known is kept, and what was unknown is filled in. The
only sanctioned change is a corrected re-export of a device session, which carries a
higher export revision: it becomes a new version of the session, the old version stays
in the store with ``is_current`` false.

Device sessions are loaded by :mod:`device_import.session_loader`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Table, select, update
from sqlmodel import SQLModel

from data_schemas import tables as _tables  # noqa: F401  (registers the store tables)
from data_schemas import vocabulary as v
from device_import.bulk_insert import insert_rows
from device_import.lookups import chunks, key_ids, one_of
from device_import.parsed import ParsedFile
from device_import.problems import FileRejected, reject
from device_import.session_loader import DeviceHomes, PendingSession, SessionLoader
from device_import.store_limits import check_rows

TABLES = SQLModel.metadata.tables


@dataclass(frozen=True)
class Reference:
    """A record field holding another table's natural key, resolved to a foreign key."""

    field: str
    column: str
    target: str
    target_key: str
    required: bool = True


@dataclass(frozen=True)
class TableSpec:
    """How records of one table are matched, resolved and derived."""

    table: str
    natural_key: tuple[str, ...]
    references: tuple[Reference, ...] = ()
    derive: Callable[[dict], dict] | None = None


def _episode_family(row: dict) -> dict:
    return {**row, "condition_family": v.FAMILY_OF_CONDITION[row["condition"]]}


def _item_responses(row: dict) -> dict:
    items = row.get("item_responses")
    text = None if items is None else ",".join(f"{value:g}" for value in items)
    return {**row, "item_responses": text}


SPECS: tuple[TableSpec, ...] = (
    TableSpec("clinic", ("clinic_key",)),
    TableSpec(
        "device",
        ("serial_hash",),
        (Reference("clinic_key", "clinic_id", "clinic", "clinic_key", required=False),),
    ),
    TableSpec("patient", ("pseudonym",)),
    TableSpec(
        "patient_link",
        ("source_key",),
        (Reference("pseudonym", "patient_id", "patient", "pseudonym"),),
    ),
    TableSpec(
        "episode",
        ("episode_key",),
        (Reference("clinic_key", "clinic_id", "clinic", "clinic_key"),),
        _episode_family,
    ),
    TableSpec(
        "prescription",
        ("prescription_key",),
        (Reference("episode_key", "episode_id", "episode", "episode_key"),),
    ),
    TableSpec(
        "visit", ("visit_key",), (Reference("episode_key", "episode_id", "episode", "episode_key"),)
    ),
    TableSpec(
        "intervention",
        ("visit_id", "cpt_code"),
        (
            Reference("visit_key", "visit_id", "visit", "visit_key"),
            Reference("device_serial_hash", "device_id", "device", "serial_hash", required=False),
        ),
    ),
    TableSpec(
        "outcome_measurement",
        ("episode_id", "instrument", "measured_on"),
        (
            Reference("episode_key", "episode_id", "episode", "episode_key"),
            Reference("visit_key", "visit_id", "visit", "visit_key", required=False),
        ),
        _item_responses,
    ),
    TableSpec(
        "adverse_event",
        ("episode_id", "event_type", "onset_date"),
        (
            Reference("episode_key", "episode_id", "episode", "episode_key"),
            Reference("session_key", "session_id", "ionto_session", "session_key", required=False),
        ),
    ),
)
"""Tables in the order their records are loaded (each refers only to earlier ones)."""

SESSIONS_BEFORE = "outcome_measurement"
"""Sessions load after interventions (to link) and before what may refer to them."""


@dataclass
class LoadOutcome:
    """What loading one file did."""

    status: str
    """``imported`` (new rows), ``unchanged`` (all rows were there) or ``superseded``."""
    rows: Counter[str]
    unlinked_sessions: int = 0
    unresolved: Counter[str] = field(default_factory=Counter)


def _patient_ids(connection: Connection, refs: Iterable[str]) -> dict[str, int]:
    refs = list(refs)
    found = key_ids(connection, "patient_link", "source_key", refs)
    links = TABLES["patient_link"]
    resolved = {}
    for chunk in chunks(sorted(found)):
        query = select(links.c.source_key, links.c.patient_id).where(
            one_of(connection.dialect.name, links.c.source_key, chunk)
        )
        resolved.update((key, id_) for key, id_ in connection.execute(query))
    resolved.update(key_ids(connection, "patient", "pseudonym", set(refs) - set(resolved)))
    return resolved


def _existing_rows(
    connection: Connection, table: Table, natural_key: tuple[str, ...], rows: list[dict]
) -> dict[tuple, dict]:
    first = natural_key[0]
    wanted = sorted({row[first] for row in rows}, key=str)
    existing: dict[tuple, dict] = {}
    for chunk in chunks(wanted):
        for found in connection.execute(
            select(table).where(one_of(connection.dialect.name, table.c[first], chunk))
        ).mappings():
            existing[tuple(found[column] for column in natural_key)] = dict(found)
    return existing


def _add_age_at_intake(connection: Connection, rows: list[dict]) -> None:
    """Age at intake from the birth year (year precision: only the year is kept; 90 = 90+)."""
    patients = TABLES["patient"]
    wanted = sorted({row["patient_id"] for row in rows if row.get("age_at_intake_years") is None})
    born: dict[int, tuple[int | None, bool]] = {}
    for chunk in chunks(wanted):
        query = select(patients.c.id, patients.c.birth_year, patients.c.aged_90_plus)
        for patient_id, year, pooled in connection.execute(
            query.where(one_of(connection.dialect.name, patients.c.id, chunk))
        ):
            born[patient_id] = (year, pooled)
    for row in rows:
        if row.get("age_at_intake_years") is not None or row["patient_id"] not in born:
            continue
        year, pooled = born[row["patient_id"]]
        if pooled:
            row["age_at_intake_years"] = v.OLDEST_POOLED_AGE
        elif year is not None:
            row["age_at_intake_years"] = min(row["start_date"].year - year, v.OLDEST_POOLED_AGE)


def _same(stored: object, new: object) -> bool:
    if isinstance(stored, float) or isinstance(new, float):
        return stored is not None and new is not None and abs(float(stored) - float(new)) < 1e-9
    return stored == new


class Loader:
    """Loads parsed files into the store through one open transaction per file."""

    def __init__(
        self,
        connection: Connection,
        file_name: str,
        source_file_id: int,
        homes: DeviceHomes | None = None,
    ) -> None:
        self.connection = connection
        self.homes = homes or DeviceHomes()
        self.file_name = file_name
        self.source_file_id = source_file_id
        self.rows: Counter[str] = Counter()
        self.superseded = 0
        self.unlinked = 0
        self.unresolved: Counter[str] = Counter()
        """Optional references that named nothing in the store (kept without them)."""

    def load(self, parsed: ParsedFile) -> LoadOutcome:
        """Load every record of ``parsed``; raise FileRejected on a conflict."""
        parsed.dump()
        for spec in SPECS:
            if spec.table == SESSIONS_BEFORE:
                self._load_sessions(parsed)
            rows = parsed.rows.get(spec.table, [])
            if rows:
                self._load_table(spec, rows, parsed)
        if self.superseded:
            status = "superseded"
        else:
            status = "imported" if sum(self.rows.values()) else "unchanged"
        return LoadOutcome(status, self.rows, self.unlinked, self.unresolved)

    def _rejected_reference(
        self, spec: TableSpec, index: int, ref: Reference, value: object
    ) -> Exception:
        return reject(
            self.file_name,
            f"refers to a {ref.target} that is in neither the store nor this file",
            record=f"{spec.table} record {index + 1}",
            field=ref.field,
            expected=f"a {ref.target} imported earlier (import its file first)",
            found=f"a reference to a {ref.target} found nowhere" if value else "no reference",
        )

    def _conflict(
        self,
        spec: TableSpec,
        index: int,
        column: str,
        rows: tuple[dict, dict],
        parsed: ParsedFile,
    ) -> FileRejected:
        """Why record ``index`` of ``spec.table`` conflicts with a row, in ``column``.

        ``rows`` are the row in the store (or earlier in the file) and the new one.

        A column that refers to another table says so (its stored id means nothing to
        whoever fixes the export); a patient link names the patient's record.
        """
        stored, row = rows
        if spec.table == "patient_link":
            return self._changed_patient(stored, parsed.rows["patient_link"][index], parsed)
        record = f"{spec.table} record {index + 1}"
        ref = next((ref for ref in spec.references if ref.column == column), None)
        if ref is not None:
            return reject(
                self.file_name,
                f"refers to another {ref.target} than the same record imported earlier "
                f"(same natural key, different {ref.target})",
                record=record,
                field=ref.field,
                expected=f"the {ref.target} it was imported with",
                found=f"another {ref.target}",
            )
        return reject(
            self.file_name,
            "conflicts with a record already in the store or earlier in this file "
            "(same natural key, different content)",
            record=record,
            field=column,
            expected=repr(stored.get(column)),
            got=row[column],
        )

    def _changed_patient(self, stored: dict, link: dict, parsed: ParsedFile) -> FileRejected:
        """A known patient identifier (MRN, FHIR id) now names a patient of another pseudonym.

        The pseudonym is made of name and birth date, so one of them changed; when the
        birth year differs, it is the birth date. No value is repeated.
        """
        patients = parsed.rows.get("patient", [])
        index = next(
            (at for at, row in enumerate(patients) if row["pseudonym"] == link["pseudonym"]), None
        )
        table = TABLES["patient"]
        before = self.connection.execute(
            select(table.c.birth_year, table.c.aged_90_plus).where(
                table.c.id == stored["patient_id"]
            )
        ).one()
        birth, name = parsed.patient_fields
        now = None if index is None else patients[index]
        if now is not None and (now["birth_year"], now["aged_90_plus"]) != tuple(before):
            what, field, found = "birth date", birth, "another birth year"
        else:
            what, field = "name or birth date", f"{name} or {birth}"
            found = "another name or birth date"
        return reject(
            self.file_name,
            f"the {what} of a known patient changed: the same MRN (or FHIR id) is in the "
            f"store, or earlier in this file, with another {what}, and a patient's pseudonym "
            "is made from name and "
            "birth date, so the store cannot take the change. Fix: if this export is wrong, "
            "correct the patient in the EHR and export again; if the earlier one was wrong, "
            "import the corrected exports (without the wrong one) into a new, empty store "
            "and switch to it, as for a key rotation (README, Privacy)",
            record=parsed.place("patient", index) if index is not None else None,
            field=field,
            expected=f"the {what} imported earlier for this patient",
            found=found,
        )

    def _resolve(self, spec: TableSpec, parsed_rows: list[dict]) -> list[dict]:
        rows = [dict(row) for row in parsed_rows]  # a retried file loads its rows again
        if spec.table == "episode":
            patients = _patient_ids(self.connection, (row["patient_ref"] for row in rows))
            for index, row in enumerate(rows):
                ref = row.pop("patient_ref")
                if ref not in patients:
                    raise self._rejected_reference(
                        spec, index, Reference("patient_ref", "", "patient", ""), ref
                    )
                row["patient_id"] = patients[ref]
            _add_age_at_intake(self.connection, rows)
        for ref in spec.references:
            ids = key_ids(self.connection, ref.target, ref.target_key, (r[ref.field] for r in rows))
            for index, row in enumerate(rows):
                value = row.pop(ref.field)
                if value is None or value in ids:
                    row[ref.column] = ids.get(value)
                elif ref.required:
                    raise self._rejected_reference(spec, index, ref, value)
                else:
                    row[ref.column] = None
                    self.unresolved[f"{spec.table}.{ref.field}"] += 1
        if spec.derive:
            rows = [spec.derive(row) for row in rows]
        return rows

    def _load_table(self, spec: TableSpec, parsed_rows: list[dict], parsed: ParsedFile) -> None:
        table = TABLES[spec.table]
        rows = self._resolve(spec, parsed_rows)
        existing = _existing_rows(self.connection, table, spec.natural_key, rows)
        new: dict[tuple, dict] = {}
        for index, row in enumerate(rows):
            key = tuple(row[column] for column in spec.natural_key)
            stored = existing.get(key) or new.get(key)
            if stored is None:
                new[key] = {**row, "source_file_id": self.source_file_id}
                continue
            known = {c: value for c, value in row.items() if value is not None}
            different = [c for c, value in known.items() if not _same(stored.get(c), value)]
            conflicts = [c for c in different if stored.get(c) is not None]
            if conflicts:
                raise self._conflict(spec, index, conflicts[0], (stored, row), parsed)
            if different and key in existing:
                # Another source knew less: fill in what was unknown, change nothing known.
                filled = {c: known[c] for c in different}
                self.connection.execute(
                    update(table).where(table.c.id == stored["id"]).values(**filled)
                )
                existing[key] = {**stored, **filled}
                self.rows[f"{spec.table} (filled in)"] += 1
            elif different:
                new[key].update({c: known[c] for c in different})
        if new:
            check_rows(table, list(new.values()), self.file_name)
            insert_rows(self.connection, table, list(new.values()))
            self.rows[spec.table] += len(new)

    def _load_sessions(self, parsed: ParsedFile) -> None:
        sessions = parsed.records.get("ionto_session", [])
        pending = [
            PendingSession(
                self.file_name,
                self.source_file_id,
                index,
                session,  # type: ignore[arg-type]
                parsed.traces.get(session.session_key),  # type: ignore[attr-defined]
            )
            for index, session in enumerate(sessions)
        ]
        outcome = SessionLoader(self.connection, self.homes).load(pending)
        self.rows.update(outcome.rows.get(self.source_file_id, Counter()))
        self.superseded += outcome.superseded[self.source_file_id]
        self.unlinked += outcome.unlinked[self.source_file_id]
