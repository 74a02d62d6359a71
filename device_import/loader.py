"""Loading one parsed file into the store, in one transaction, idempotently.

Rows are matched on their natural keys. A row already in the store with the same content
is left alone; one with different content is a conflict and the whole file is refused
(raised as :class:`~device_import.problems.FileRejected`, so the caller rolls back). A
value that one source leaves empty (FHIR carries no symptom duration, say) is not a
conflict: what is known is kept, and what was unknown is filled in. The
only sanctioned change is a corrected re-export of a device session, which carries a
higher export revision: it becomes a new version of the session, the old version stays
in the store with ``is_current`` false.

Session linking rules, in order:

1. ``encounter``: the device file names the visit (an encounter id typed at the device).
2. ``device_and_date``: exactly one iontophoresis intervention recorded with this device
   on the session's local date (in the device's clinic's time zone).
3. ``device_date_time``: several such visits that day: the one that started last before the
   session started (at most :data:`LINK_BEFORE` earlier, :data:`LINK_CLOCK_SLACK` of clock
   slack), when exactly one did.
4. Otherwise the session is kept ``unlinked`` and reported; :func:`relink_sessions`
   retries after later imports.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Table, and_, insert, select, update
from sqlmodel import SQLModel

from data_schemas import tables as _tables  # noqa: F401  (registers the store tables)
from data_schemas import vocabulary as v
from data_schemas.records import Record, SessionRecord
from device_import.parsed import ParsedFile
from device_import.problems import reject

TABLES = SQLModel.metadata.tables
LINK_BEFORE = dt.timedelta(minutes=60)
"""A session starts during its visit: at most this long after the visit's start."""
LINK_CLOCK_SLACK = dt.timedelta(minutes=5)
"""A device clock may run this far ahead of the EHR's schedule."""
_CHUNK = 900
"""Keys per IN (...) query: below SQLite's smallest variable limit."""


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
        ("visit_id", "cpt_code", "details"),
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


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def key_ids(connection: Connection, table: str, key_column: str, keys: Iterable) -> dict:
    """Map natural key → id for the keys that exist (current session versions only)."""
    target = TABLES[table]
    id_column = target.c.id
    wanted = sorted({key for key in keys if key is not None})
    found: dict = {}
    for chunk in _chunks(wanted):
        query = select(target.c[key_column], id_column).where(target.c[key_column].in_(chunk))
        if table == "ionto_session":
            query = query.where(target.c.is_current.is_(True))
        found.update((key, id_) for key, id_ in connection.execute(query))
    return found


def _patient_ids(connection: Connection, refs: Iterable[str]) -> dict[str, int]:
    refs = list(refs)
    found = key_ids(connection, "patient_link", "source_key", refs)
    links = TABLES["patient_link"]
    resolved = {}
    for chunk in _chunks(sorted(found)):
        query = select(links.c.source_key, links.c.patient_id).where(links.c.source_key.in_(chunk))
        resolved.update((key, id_) for key, id_ in connection.execute(query))
    resolved.update(key_ids(connection, "patient", "pseudonym", set(refs) - set(resolved)))
    return resolved


def _existing_rows(
    connection: Connection, table: Table, natural_key: tuple[str, ...], rows: list[dict]
) -> dict[tuple, dict]:
    first = natural_key[0]
    wanted = sorted({row[first] for row in rows}, key=str)
    existing: dict[tuple, dict] = {}
    for chunk in _chunks(wanted):
        for found in connection.execute(select(table).where(table.c[first].in_(chunk))).mappings():
            existing[tuple(found[column] for column in natural_key)] = dict(found)
    return existing


def _add_age_at_intake(connection: Connection, rows: list[dict]) -> None:
    """Age at intake from the birth year (year precision: only the year is kept; 90 = 90+)."""
    patients = TABLES["patient"]
    wanted = sorted({row["patient_id"] for row in rows if row.get("age_at_intake_years") is None})
    born: dict[int, tuple[int | None, bool]] = {}
    for chunk in _chunks(wanted):
        query = select(patients.c.id, patients.c.birth_year, patients.c.aged_90_plus)
        for patient_id, year, pooled in connection.execute(query.where(patients.c.id.in_(chunk))):
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
        for spec in SPECS:
            if spec.table == SESSIONS_BEFORE:
                self._load_sessions(parsed)
            records = parsed.records.get(spec.table, [])
            if records:
                self._load_table(spec, records)
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
            got=value,
        )

    def _resolve(self, spec: TableSpec, records: list[Record]) -> list[dict]:
        rows = [record.model_dump() for record in records]
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

    def _load_table(self, spec: TableSpec, records: list[Record]) -> None:
        table = TABLES[spec.table]
        rows = self._resolve(spec, records)
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
                column = conflicts[0]
                raise reject(
                    self.file_name,
                    "conflicts with a record already in the store or earlier in this file "
                    "(same natural key, different content)",
                    record=f"{spec.table} record {index + 1}",
                    field=column,
                    expected=repr(stored.get(column)),
                    got=row[column],
                )
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
            self._check_lengths(spec.table, list(new.values()))
            self.connection.execute(insert(table), list(new.values()))
            self.rows[spec.table] += len(new)

    def _check_lengths(self, table_name: str, rows: list[dict]) -> None:
        """Refuse text longer than its column, the same way on SQLite and PostgreSQL."""
        for column in TABLES[table_name].columns:
            limit = getattr(column.type, "length", None)
            if not limit or column.name not in rows[0]:
                continue
            for index, row in enumerate(rows):
                value = row.get(column.name)
                if isinstance(value, str) and len(value) > limit:
                    raise reject(
                        self.file_name,
                        "text too long for the store",
                        record=f"{table_name} record {index + 1}",
                        field=column.name,
                        expected=f"at most {limit} characters",
                        got=value,
                    )

    def _device_ids(self, sessions: list[SessionRecord]) -> dict[str, int]:
        devices = {session.device.serial_hash: session.device for session in sessions}
        found = key_ids(self.connection, "device", "serial_hash", devices)
        missing = [record for serial, record in devices.items() if serial not in found]
        if missing:
            self._load_table(SPECS[1], missing)
            found = key_ids(self.connection, "device", "serial_hash", devices)
        return found

    def _load_sessions(self, parsed: ParsedFile) -> None:
        sessions: list[SessionRecord] = parsed.records.get("ionto_session", [])  # type: ignore[assignment]
        if not sessions:
            return
        table = TABLES["ionto_session"]
        devices = self._device_ids(sessions)
        keys = [session.session_key for session in sessions]
        current = {
            row["session_key"]: dict(row)
            for chunk in _chunks(sorted(set(keys)))
            for row in self.connection.execute(
                select(table).where(table.c.session_key.in_(chunk), table.c.is_current.is_(True))
            ).mappings()
        }
        for index, session in enumerate(sessions):
            stored = current.get(session.session_key)
            if stored is not None and stored["content_sha256"] == session.content_sha256:
                continue
            version = 1
            if stored is not None:
                if session.export_revision <= stored["version"]:
                    raise reject(
                        self.file_name,
                        "a different session with this device serial and session id is "
                        "already in the store; a corrected re-export must carry a higher "
                        "export revision",
                        record=f"session {index + 1}",
                        field="export_revision",
                        expected=f"more than {stored['version']}",
                        got=session.export_revision,
                    )
                version = session.export_revision
            row = self._session_row(session, devices[session.device.serial_hash], version)
            if stored is not None:
                self.connection.execute(
                    update(table).where(table.c.id == stored["id"]).values(is_current=False)
                )
                row["supersedes_id"] = stored["id"]
                self.superseded += 1
            new_id = self.connection.execute(insert(table).returning(table.c.id), row).scalar_one()
            trace = parsed.traces.get(session.session_key)
            if trace is not None:
                self.connection.execute(
                    insert(TABLES["session_trace"]),
                    {"session_id": new_id, "sample_count": trace[0], "packed_samples": trace[1]},
                )
                self.rows["session_trace"] += 1
            self.rows["ionto_session"] += 1
            current[session.session_key] = {**row, "id": new_id}

    def _session_row(self, session: SessionRecord, device_id: int, version: int) -> dict:
        row = session.model_dump(exclude={"device", "visit_key", "export_revision"})
        row["fault_codes"] = ";".join(session.fault_codes)
        row["duration_s"] = (session.ended_at_utc - session.started_at_utc).total_seconds()
        link = find_link(
            self.connection, device_id, session.visit_key, session.started_at_utc, self.homes
        )
        if link is None:
            self.unlinked += 1
        clinic_id = link_clinic(self.connection, device_id, link, self.homes)
        return {
            **row,
            **(link or {"link_status": "unlinked", "link_rule": None}),
            "version": version,
            "is_current": True,
            "device_id": device_id,
            "clinic_id": clinic_id,
            "source_file_id": self.source_file_id,
        }


def _visit_link(connection: Connection, visit_id: int, rule: str) -> dict:
    visits, episodes = TABLES["visit"], TABLES["episode"]
    episode_id, patient_id = connection.execute(
        select(visits.c.episode_id, episodes.c.patient_id)
        .join(episodes, episodes.c.id == visits.c.episode_id)
        .where(visits.c.id == visit_id)
    ).one()
    return {
        "visit_id": visit_id,
        "episode_id": episode_id,
        "patient_id": patient_id,
        "link_status": "linked",
        "link_rule": rule,
    }


class DeviceHomes:
    """Device id → (clinic id, clinic time zone), looked up once per import run."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[int | None, str]] = {}

    def get(self, connection: Connection, device_id: int) -> tuple[int | None, str]:
        """The device's clinic and time zone (UTC for a device of no known clinic)."""
        if device_id not in self._known:
            devices, clinics = TABLES["device"], TABLES["clinic"]
            found = connection.execute(
                select(clinics.c.id, clinics.c.timezone)
                .join(devices, devices.c.clinic_id == clinics.c.id)
                .where(devices.c.id == device_id)
            ).first()
            if found is None:
                return None, "UTC"  # not cached: the inventory may arrive later
            self._known[device_id] = (found[0], found[1])
        return self._known[device_id]


def find_link(
    connection: Connection,
    device_id: int,
    visit_key: str | None,
    started_at_utc: dt.datetime,
    homes: DeviceHomes,
) -> dict | None:
    """The visit, episode and patient of a session by the documented rules, or None."""
    if visit_key is not None:
        visit_id = key_ids(connection, "visit", "visit_key", [visit_key]).get(visit_key)
        if visit_id is not None:
            return _visit_link(connection, visit_id, "encounter")
    _, timezone = homes.get(connection, device_id)
    local_start = started_at_utc.astimezone(ZoneInfo(timezone))
    interventions, visits = TABLES["intervention"], TABLES["visit"]
    candidates = connection.execute(
        select(visits.c.id, visits.c.start_time_local)
        .join(interventions, interventions.c.visit_id == visits.c.id)
        .where(
            and_(
                interventions.c.device_id == device_id,
                interventions.c.modality == "iontophoresis",
                visits.c.visit_date == local_start.date(),
            )
        )
        .distinct()
    ).all()
    if len(candidates) == 1:
        return _visit_link(connection, candidates[0][0], "device_and_date")
    started = dt.datetime.combine(local_start.date(), local_start.time())
    timed = [
        (dt.datetime.combine(local_start.date(), begins), visit_id)
        for visit_id, begins in candidates
        if begins is not None
    ]
    before = [
        (begins, visit_id)
        for begins, visit_id in timed
        if started - LINK_BEFORE <= begins <= started + LINK_CLOCK_SLACK
    ]
    if before:
        latest = max(before)
        if sum(begins == latest[0] for begins, _ in before) == 1:
            return _visit_link(connection, latest[1], "device_date_time")
    return None


def link_clinic(
    connection: Connection, device_id: int, link: dict | None, homes: DeviceHomes
) -> int | None:
    """The clinic of a session: its episode's clinic when linked, else its device's."""
    if link is not None:
        episodes = TABLES["episode"]
        return connection.execute(
            select(episodes.c.clinic_id).where(episodes.c.id == link["episode_id"])
        ).scalar_one()
    return homes.get(connection, device_id)[0]


def relink_sessions(connection: Connection, homes: DeviceHomes) -> int:
    """Link sessions left unlinked by earlier imports; returns how many got linked."""
    sessions = TABLES["ionto_session"]
    unlinked = connection.execute(
        select(sessions.c.id, sessions.c.device_id, sessions.c.started_at_utc).where(
            sessions.c.link_status == "unlinked", sessions.c.is_current.is_(True)
        )
    ).all()
    linked = 0
    for session_id, device_id, started in unlinked:
        started = started if started.tzinfo else started.replace(tzinfo=dt.UTC)
        link = find_link(connection, device_id, None, started, homes)
        if link is not None:
            clinic_id = link_clinic(connection, device_id, link, homes)
            connection.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(**link, clinic_id=clinic_id)
            )
            linked += 1
    return linked
