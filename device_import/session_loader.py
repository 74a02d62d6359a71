"""Loading device sessions in bulk: a few queries per batch of files, not per session.

Sessions are matched on their natural key (keyed hash of device serial + the device's own
session id). The same content again changes nothing; different content with a higher
export revision supersedes the stored version, which stays in the store with
``is_current`` false; different content without that is refused (the file is
quarantined).

Linking rules, in order (see :func:`resolve_links`):

1. ``encounter``: the device file names the visit (an encounter id typed at the device).
2. ``device_and_date``: exactly one iontophoresis intervention recorded with this device
   on the session's local date (in the device's clinic's time zone).
3. ``device_date_time``: several such visits that day: the one that started last before
   the session started (at most :data:`LINK_BEFORE` earlier, :data:`LINK_CLOCK_SLACK` of
   clock slack), when exactly one did.
4. Otherwise the session is kept ``unlinked`` and reported; :func:`relink_sessions`
   retries after later imports.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, insert, select, update
from sqlmodel import SQLModel

from data_schemas import tables as _tables  # noqa: F401  (registers the store tables)
from data_schemas.records import SessionRecord
from device_import.bulk_insert import insert_rows
from device_import.lookups import chunks, key_ids, one_of
from device_import.problems import reject
from device_import.store_limits import check_row

TABLES = SQLModel.metadata.tables
LINK_BEFORE = dt.timedelta(minutes=60)
"""A session starts during its visit: at most this long after the visit's start."""
LINK_CLOCK_SLACK = dt.timedelta(minutes=5)
"""A device clock may run this far ahead of the EHR's schedule."""


class SplitBatch(Exception):
    """Two versions of one session in one batch: load the batch file by file instead."""


@dataclass(frozen=True)
class PendingSession:
    """A parsed session waiting to be loaded, with the file it came from."""

    file_name: str
    source_file_id: int
    index: int
    record: SessionRecord
    trace: tuple[int, bytes] | None


@dataclass
class SessionOutcome:
    """Rows written, versions superseded and sessions left unlinked, per source file."""

    rows: dict[int, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    superseded: Counter[int] = field(default_factory=Counter)
    unlinked: Counter[int] = field(default_factory=Counter)


class DeviceHomes:
    """Device id → (clinic id, clinic time zone), looked up once per import run."""

    def __init__(self) -> None:
        self._known: dict[int, tuple[int, str]] = {}

    def prefetch(self, connection: Connection, device_ids: set[int]) -> None:
        """Look up the devices not seen yet, in one query per chunk."""
        devices, clinics = TABLES["device"], TABLES["clinic"]
        missing = sorted(device_ids - set(self._known))
        for chunk in chunks(missing):
            query = (
                select(devices.c.id, clinics.c.id, clinics.c.timezone)
                .join(clinics, clinics.c.id == devices.c.clinic_id)
                .where(one_of(connection.dialect.name, devices.c.id, chunk))
            )
            for device_id, clinic_id, timezone in connection.execute(query):
                self._known[device_id] = (clinic_id, timezone)

    def get(self, device_id: int) -> tuple[int | None, str]:
        """The device's clinic and time zone (UTC for a device of no known clinic)."""
        return self._known.get(device_id, (None, "UTC"))


def _linked(visit: tuple, rule: str) -> dict:
    visit_id, episode_id, patient_id, clinic_id = visit
    return {
        "visit_id": visit_id,
        "episode_id": episode_id,
        "patient_id": patient_id,
        "clinic_id": clinic_id,
        "link_status": "linked",
        "link_rule": rule,
    }


def _visits_by_key(connection: Connection, keys: set[str]) -> dict[str, tuple]:
    visits, episodes = TABLES["visit"], TABLES["episode"]
    found: dict[str, tuple] = {}
    for chunk in chunks(sorted(keys)):
        query = (
            select(
                visits.c.visit_key,
                visits.c.id,
                visits.c.episode_id,
                episodes.c.patient_id,
                episodes.c.clinic_id,
            )
            .join(episodes, episodes.c.id == visits.c.episode_id)
            .where(one_of(connection.dialect.name, visits.c.visit_key, chunk))
        )
        for key, *visit in connection.execute(query):
            found[key] = tuple(visit)
    return found


def _ionto_visits(
    connection: Connection, device_ids: set[int], dates: set[dt.date]
) -> dict[tuple[int, dt.date], list[tuple]]:
    interventions, visits, episodes = (TABLES["intervention"], TABLES["visit"], TABLES["episode"])
    found: dict[tuple[int, dt.date], set[tuple]] = defaultdict(set)
    for device_chunk in chunks(sorted(device_ids), 400):
        for date_chunk in chunks(sorted(dates), 400):
            query = (
                select(
                    interventions.c.device_id,
                    visits.c.visit_date,
                    visits.c.start_time_local,
                    visits.c.id,
                    visits.c.episode_id,
                    episodes.c.patient_id,
                    episodes.c.clinic_id,
                )
                .join(visits, visits.c.id == interventions.c.visit_id)
                .join(episodes, episodes.c.id == visits.c.episode_id)
                .where(
                    and_(
                        one_of(connection.dialect.name, interventions.c.device_id, device_chunk),
                        interventions.c.modality == "iontophoresis",
                        one_of(connection.dialect.name, visits.c.visit_date, date_chunk),
                    )
                )
            )
            for device_id, day, begins, *visit in connection.execute(query):
                found[(device_id, day)].add((begins, *visit))
    return {key: sorted(value, key=str) for key, value in found.items()}


def resolve_links(
    connection: Connection,
    homes: DeviceHomes,
    sessions: list[tuple[int, str | None, dt.datetime]],
) -> list[dict | None]:
    """The visit, episode, patient and clinic of each (device id, visit key, start) or None."""
    homes.prefetch(connection, {device_id for device_id, _, _ in sessions})
    by_key = _visits_by_key(connection, {key for _, key, _ in sessions if key})
    local = [
        started.astimezone(ZoneInfo(homes.get(device_id)[1])) for device_id, _, started in sessions
    ]
    open_ = [i for i, (_, key, _) in enumerate(sessions) if key not in by_key]
    candidates = _ionto_visits(
        connection, {sessions[i][0] for i in open_}, {local[i].date() for i in open_}
    )
    links: list[dict | None] = []
    for (device_id, key, _), starts in zip(sessions, local, strict=True):
        if key in by_key:
            links.append(_linked(by_key[key], "encounter"))
            continue
        found = candidates.get((device_id, starts.date()), [])
        if len(found) == 1:
            links.append(_linked(found[0][1:], "device_and_date"))
            continue
        started = starts.replace(tzinfo=None)
        timed = [
            (dt.datetime.combine(starts.date(), visit[0]), visit[1:])
            for visit in found
            if visit[0] is not None
        ]
        before = [
            (begins, visit)
            for begins, visit in timed
            if started - LINK_BEFORE <= begins <= started + LINK_CLOCK_SLACK
        ]
        latest = max((begins for begins, _ in before), default=None)
        chosen = [visit for begins, visit in before if begins == latest]
        links.append(_linked(chosen[0], "device_date_time") if len(chosen) == 1 else None)
    return links


class SessionLoader:
    """Writes pending sessions of one or many files through an open transaction."""

    def __init__(self, connection: Connection, homes: DeviceHomes) -> None:
        self.connection = connection
        self.homes = homes
        self.dialect = connection.dialect.name

    def _device_ids(self, pending: list[PendingSession]) -> dict[str, int]:
        table = TABLES["device"]
        first = {}
        for item in pending:
            first.setdefault(item.record.device.serial_hash, item)
        found = key_ids(self.connection, "device", "serial_hash", first)
        new = [item for serial, item in first.items() if serial not in found]
        if new:
            clinic_ids = key_ids(
                self.connection, "clinic", "clinic_key", {i.record.device.clinic_key for i in new}
            )
            rows = [
                {
                    **item.record.device.model_dump(exclude={"clinic_key"}),
                    "clinic_id": clinic_ids.get(item.record.device.clinic_key),
                    "source_file_id": item.source_file_id,
                }
                for item in new
            ]
            for item, row in zip(new, rows, strict=True):
                check_row(table, row, item.file_name, "device")
            self.connection.execute(insert(table), rows)
            found.update(
                key_ids(
                    self.connection,
                    "device",
                    "serial_hash",
                    (i.record.device.serial_hash for i in new),
                )
            )
        return found

    def _current(self, keys: set[str]) -> dict[str, dict]:
        table = TABLES["ionto_session"]
        current: dict[str, dict] = {}
        for chunk in chunks(sorted(keys)):
            query = select(
                table.c.id, table.c.session_key, table.c.version, table.c.content_sha256
            ).where(one_of(self.dialect, table.c.session_key, chunk), table.c.is_current.is_(True))
            for row in self.connection.execute(query).mappings():
                current[row["session_key"]] = dict(row)
        return current

    def load(self, pending: list[PendingSession]) -> SessionOutcome:
        """Load every pending session; raise FileRejected naming the file of a conflict."""
        outcome = SessionOutcome()
        if not pending:
            return outcome
        devices = self._device_ids(pending)
        current = self._current({item.record.session_key for item in pending})
        to_write: list[tuple[PendingSession, int, int | None]] = []
        seen: dict[str, str] = {}
        for item in pending:
            record = item.record
            stored = current.get(record.session_key)
            if record.session_key in seen:
                if seen[record.session_key] == record.content_sha256:
                    continue
                raise SplitBatch(record.session_key)
            if stored is not None and stored["content_sha256"] == record.content_sha256:
                continue
            if stored is not None and record.export_revision <= stored["version"]:
                raise reject(
                    item.file_name,
                    "a different session with this device serial and session id is already "
                    "in the store; a corrected re-export must carry a higher export revision",
                    record=f"session {item.index + 1}",
                    field="export_revision",
                    expected=f"more than {stored['version']}",
                    got=record.export_revision,
                )
            seen[record.session_key] = record.content_sha256
            version = record.export_revision if stored is not None else 1
            to_write.append((item, version, stored["id"] if stored else None))
            current[record.session_key] = {
                "id": None,
                "version": version,
                "content_sha256": record.content_sha256,
            }
        links = resolve_links(
            self.connection,
            self.homes,
            [
                (
                    devices[item.record.device.serial_hash],
                    item.record.visit_key,
                    item.record.started_at_utc,
                )
                for item, _, _ in to_write
            ],
        )
        table = TABLES["ionto_session"]
        rows = []
        for (item, version, supersedes), link in zip(to_write, links, strict=True):
            record = item.record
            device_id = devices[record.device.serial_hash]
            row = record.model_dump(exclude={"device", "visit_key", "export_revision"})
            row.update(
                fault_codes=";".join(record.fault_codes),
                duration_s=(record.ended_at_utc - record.started_at_utc).total_seconds(),
                version=version,
                is_current=True,
                supersedes_id=supersedes,
                device_id=device_id,
                source_file_id=item.source_file_id,
                **(
                    link
                    or {
                        "visit_id": None,
                        "episode_id": None,
                        "patient_id": None,
                        "clinic_id": self.homes.get(device_id)[0],
                        "link_status": "unlinked",
                        "link_rule": None,
                    }
                ),
            )
            check_row(table, row, item.file_name, f"session {item.index + 1}")
            rows.append(row)
            if link is None:
                outcome.unlinked[item.source_file_id] += 1
            if supersedes is not None:
                self.connection.execute(
                    update(table).where(table.c.id == supersedes).values(is_current=False)
                )
                outcome.superseded[item.source_file_id] += 1
        if not rows:
            return outcome
        insert_rows(self.connection, table, rows)
        new_ids = self._ids([(row["session_key"], row["version"]) for row in rows])
        traces = []
        for (item, _, _), new_id in zip(to_write, new_ids, strict=True):
            outcome.rows[item.source_file_id]["ionto_session"] += 1
            if item.trace is not None:
                traces.append(
                    {
                        "session_id": new_id,
                        "sample_count": item.trace[0],
                        "packed_samples": item.trace[1],
                    }
                )
                outcome.rows[item.source_file_id]["session_trace"] += 1
        insert_rows(self.connection, TABLES["session_trace"], traces)
        return outcome

    def _ids(self, versions: list[tuple[str, int]]) -> list[int]:
        """The ids of the given (session key, version) rows, in that order."""
        table = TABLES["ionto_session"]
        found: dict[tuple[str, int], int] = {}
        for chunk in chunks(sorted({key for key, _ in versions})):
            query = select(table.c.session_key, table.c.version, table.c.id).where(
                one_of(self.dialect, table.c.session_key, chunk)
            )
            found.update(
                ((key, version), id_) for key, version, id_ in self.connection.execute(query)
            )
        return [found[item] for item in versions]


def relink_sessions(connection: Connection, homes: DeviceHomes) -> int:
    """Link sessions left unlinked by earlier imports; returns how many got linked."""
    table = TABLES["ionto_session"]
    unlinked = connection.execute(
        select(table.c.id, table.c.device_id, table.c.started_at_utc).where(
            table.c.link_status == "unlinked", table.c.is_current.is_(True)
        )
    ).all()
    if not unlinked:
        return 0
    links = resolve_links(
        connection,
        homes,
        [
            (device_id, None, started if started.tzinfo else started.replace(tzinfo=dt.UTC))
            for _, device_id, started in unlinked
        ],
    )
    updates = [
        {"session_id": session_id, **link}
        for (session_id, _, _), link in zip(unlinked, links, strict=True)
        if link is not None
    ]
    for values in updates:
        session_id = values.pop("session_id")
        connection.execute(update(table).where(table.c.id == session_id).values(**values))
    return len(updates)
