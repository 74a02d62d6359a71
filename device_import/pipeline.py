"""Importing a batch: detect, parse in worker processes, load file by file, report.

Each file is loaded together with its ledger row in a transaction (treatment-record
files) or a savepoint within a transaction of up to :data:`DEVICE_LOGS_PER_COMMIT` device
logs, so a file is either fully in the store or not at all; a process killed mid-import
leaves no part of any file and a rerun completes the batch. A file whose SHA-256 is in
the ledger is skipped as unchanged. A bad file is set aside (copied to the quarantine
folder with a ``.reason.json`` beside it, and recorded in the ledger) and the batch goes
on: whatever fails on one file (its name, reading it, parsing it, the store refusing a
value) becomes that file's quarantine entry (``device_import.failures``). Every write
transaction takes the store's write lock first (``device_import.store_lock``), so two
imports running at once serialize their loads and leave no duplicates.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TypeVar

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from data_schemas.callbacks import ProgressCallback
from data_schemas.errors import EXIT_OK, EXIT_QUARANTINED
from data_schemas.tables import FILE_EXTENSIONS
from device_import.failures import problem_from
from device_import.loader import Loader, LoadOutcome
from device_import.looks import unknown_format
from device_import.lookups import chunks, key_ids, one_of
from device_import.parsed import DeviceHome, ParseContext, ParsedFile
from device_import.privacy import Keyer, check_site_key
from device_import.problems import FileRejected, Problem
from device_import.quarantine import set_aside
from device_import.session_loader import (
    DeviceHomes,
    PendingSession,
    SessionLoader,
    relink_sessions,
)
from device_import.sources import ArchiveReader, Skipped, SourceFile, ZipLimits, collect_sources
from device_import.store_lock import lock_store
from device_import.workers import Job, Parser

IMPORTER_VERSION = importlib.metadata.version("ionto-analytics")
DEVICE_LOGS_PER_COMMIT = 100
"""Device logs (one small session each) are committed in groups, each file in a savepoint."""

Item = TypeVar("Item")
_LEDGER = SQLModel.metadata.tables["import_file"]


@dataclass
class ImportReport:
    """What an import did: files by outcome, problems, formats, rows, skipped resources."""

    files: Counter[str] = field(default_factory=Counter)
    quarantine: list[Problem] = field(default_factory=list)
    formats: Counter[str] = field(default_factory=Counter)
    rows: Counter[str] = field(default_factory=Counter)
    skipped_resources: Counter[str] = field(default_factory=Counter)
    unlinked_sessions: int = 0
    unresolved_references: Counter[str] = field(default_factory=Counter)
    """Optional references that named nothing (e.g. an outcome's visit): kept without."""
    notes: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    """Files left out on purpose: hidden files, the emulator's own files."""

    @property
    def exit_status(self) -> int:
        """0 when every file was imported or unchanged, 4 when some were quarantined."""
        return EXIT_QUARANTINED if self.quarantine else EXIT_OK

    def to_dict(self) -> dict:
        """The ``ionto import --json`` object."""
        outcomes = ("imported", "unchanged", "superseded", "quarantined")
        return {
            "files": {outcome: self.files.get(outcome, 0) for outcome in outcomes},
            "quarantine": [problem.to_dict() for problem in self.quarantine],
            "formats": dict(sorted(self.formats.items())),
            "rows": dict(sorted(self.rows.items())),
            "skipped_resources": dict(sorted(self.skipped_resources.items())),
            "unlinked_sessions": self.unlinked_sessions,
            "unresolved_references": dict(sorted(self.unresolved_references.items())),
            "skipped": [{"file": item.name, "reason": item.reason} for item in self.skipped],
        }

    def summary(self) -> pd.DataFrame:
        """Files per outcome and rows per table, as one tidy table."""
        records = [("files", key, value) for key, value in sorted(self.files.items())]
        records += [("rows", key, value) for key, value in sorted(self.rows.items())]
        records += [("formats", key, value) for key, value in sorted(self.formats.items())]
        skipped = Counter(item.reason for item in self.skipped)
        records += [("skipped", key, value) for key, value in sorted(skipped.items())]
        return pd.DataFrame(records, columns=["what", "name", "count"])


def _batched(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    while batch := list(islice(items, size)):
        yield batch


def _device_homes(connection: Connection) -> dict[str, DeviceHome]:
    devices = SQLModel.metadata.tables["device"]
    clinics = SQLModel.metadata.tables["clinic"]
    rows = connection.execute(
        select(devices.c.serial_hash, clinics.c.clinic_key, clinics.c.timezone).join(
            clinics, clinics.c.id == devices.c.clinic_id
        )
    )
    return {serial: DeviceHome(clinic, zone) for serial, clinic, zone in rows}


def file_extension(name: str) -> str:
    """The extension the ledger keeps: a known one as it is, any other as ``other``.

    Examples
    --------
    >>> file_extension("2026-03-01_0932.CSV"), file_extension("Nguyen.Bobby"), file_extension("x")
    ('.csv', 'other', '')
    """
    dot = name.rfind(".")
    found = name[dot:].lower() if dot > 0 else ""
    return found if found in FILE_EXTENSIONS else "other"


def _ledger_entry(
    sha256: str,
    name_hash: str | None,
    file_name: str,
    format_name: str,
    status: str,
    *,
    quarantine_reason: str | None = None,
) -> dict:
    """One import_file row, stamped now with this importer's version (no file name in it)."""
    return {
        "sha256": sha256,
        "file_name_hash": name_hash,
        "file_extension": file_extension(file_name),
        "format": format_name,
        "importer_version": IMPORTER_VERSION,
        "status": status,
        "imported_at_utc": dt.datetime.now(dt.UTC),
        "row_count": 0,
        "quarantine_reason": quarantine_reason,
    }


def _replace_ledger_entries(connection: Connection, entries: list[dict]) -> None:
    """Write ledger rows, replacing any row already there for the same SHA-256."""
    for chunk in chunks([entry["sha256"] for entry in entries]):
        connection.execute(
            _LEDGER.delete().where(one_of(connection.dialect.name, _LEDGER.c.sha256, chunk))
        )
    connection.execute(insert(_LEDGER), entries)


class Importer:
    """Imports batches of files into one store."""

    def __init__(
        self,
        engine: Engine,
        keyer: Keyer,
        *,
        workers: int = 1,
        quarantine_dir: Path | None = None,
        today: dt.date | None = None,
        zip_limits: ZipLimits | None = None,
    ) -> None:
        self.engine = engine
        self.keyer = keyer
        self.workers = max(1, workers)
        self.quarantine_dir = quarantine_dir
        self.today = today or dt.datetime.now(dt.UTC).date()
        self.zip_limits = zip_limits or ZipLimits()
        self._devices = DeviceHomes()

    def run(self, paths: list[Path], progress: ProgressCallback | None = None) -> ImportReport:
        """Import every file under ``paths``; never raises for a bad file.

        Treatment records load first, one file at a time, so that device logs are placed
        with the device inventory they bring. Once every file that may register devices
        or clinics has loaded, the worker processes go on to the device logs while the
        rest of the records load; device logs then load in groups.
        """
        report = ImportReport()
        with self.engine.begin() as connection:
            self._lock(connection)
            check_site_key(connection, self.keyer)
        with ArchiveReader(self.zip_limits) as reader, Parser(self.workers, reader) as parser:
            collected = collect_sources(paths, reader)
            sources = collected.sources
            report.skipped = collected.skipped
            for problem in collected.problems:
                self._quarantine(report, problem, None, None)
            jobs = self._plan(parser, sources, report)
            done = len(sources) - len(jobs)
            records = [job for job in jobs if not job.detected.format.is_device_log]
            device_logs = [job for job in jobs if job.detected.format.is_device_log]
            last_inventory = max(
                (index for index, job in enumerate(records) if job.detected.places_devices),
                default=-1,
            )
            parsed_logs = (
                parser.parse(device_logs, self._context()) if last_inventory == -1 else None
            )
            for index, item in enumerate(parser.parse(records, self._context())):
                self._load_batch([item], report, parser)
                done += 1
                if progress:
                    progress(done, len(sources))
                if index == last_inventory:
                    parsed_logs = parser.parse(device_logs, self._context())
            for batch in _batched(parsed_logs or iter(()), DEVICE_LOGS_PER_COMMIT):
                self._load_batch(batch, report, parser)
                done += len(batch)
                if progress:
                    progress(done, len(sources))
        with self.engine.begin() as connection:
            self._lock(connection)
            relinked = relink_sessions(connection, self._devices)
        if relinked:
            report.notes.append(f"{relinked} earlier unlinked sessions are now linked")
        report.unlinked_sessions = self._count_unlinked()
        return report

    def _plan(self, parser: Parser, sources: list[SourceFile], report: ImportReport) -> list[Job]:
        with self.engine.connect() as connection:
            imported = set(
                connection.execute(
                    select(_LEDGER.c.sha256).where(_LEDGER.c.status == "imported")
                ).scalars()
            )
        jobs: list[Job] = []
        seen: set[str] = set()
        for source, found in zip(sources, parser.fingerprints(sources), strict=True):
            if isinstance(found, Problem):  # unreadable: no hash, no copy, reported
                self._quarantine(report, found, None, None)
                continue
            if found.sha256 in imported or found.sha256 in seen:
                report.files["unchanged"] += 1
                continue
            seen.add(found.sha256)
            if found.detected is None:
                problem = unknown_format(source.name, found.looks or "")
                self._quarantine(report, problem, source, found.sha256, parser)
                continue
            jobs.append(Job(source, found.sha256, found.detected))
        return sorted(jobs, key=lambda job: (job.detected.rank, job.source.name))

    def _context(self) -> ParseContext:
        with self.engine.connect() as connection:
            homes = _device_homes(connection)
        return ParseContext("", self.keyer, homes, self.today)

    def _lock(self, connection: Connection) -> None:
        lock_store(connection)

    def _load_batch(
        self, batch: list[tuple[Job, ParsedFile | Problem]], report: ImportReport, parser: Parser
    ) -> None:
        """Load files in one transaction, each file in a savepoint of its own.

        A file that fails rolls back to its savepoint alone; a crash rolls back the whole
        batch, so the store never holds part of a file, and the ledger (written in the
        same transaction) lets a rerun pick up exactly what is missing.
        """
        loaded: list[tuple[Job, ParsedFile, LoadOutcome | None]] = []
        refused = [(job, parsed) for job, parsed in batch if isinstance(parsed, Problem)]
        parsed_files = [(job, parsed) for job, parsed in batch if isinstance(parsed, ParsedFile)]
        with self.engine.begin() as connection:
            self._lock(connection)
            try:
                with connection.begin_nested():
                    loaded = self._load_together(connection, parsed_files)
            except OperationalError:
                raise  # the store itself failed: no file is to blame
            except Exception:  # one file's failure: retried file by file
                loaded = []
                for job, parsed in parsed_files:
                    try:
                        with connection.begin_nested():
                            loaded.append((job, parsed, self._load_file(connection, job, parsed)))
                    except FileRejected as error:
                        refused.append((job, error.problem))
                    except OperationalError:
                        raise
                    except Exception as error:  # the store refused this file
                        refused.append((job, problem_from(job.source.name, error)))
        for job, parsed, outcome in loaded:
            if outcome is None:
                report.files["unchanged"] += 1
                continue
            report.files[outcome.status] += 1
            report.formats[parsed.format] += 1
            report.rows.update(outcome.rows)
            report.unresolved_references.update(outcome.unresolved)
            report.skipped_resources.update(parsed.skipped_resources)
            report.notes.extend(f"{job.source.name}: {note}" for note in parsed.notes)
        for job, problem in refused:
            self._quarantine(report, problem, job.source, job.sha256, parser)

    def _load_together(
        self, connection: Connection, files: list[tuple[Job, ParsedFile]]
    ) -> list[tuple[Job, ParsedFile, LoadOutcome | None]]:
        """Load device logs that hold only sessions in bulk: a few queries per batch.

        Raises FileRejected (or SplitBatch) so the caller retries file by file.
        """
        if len(files) == 1 or any(p.tables() != {"ionto_session"} for _, p in files):
            return [
                (job, parsed, self._load_file(connection, job, parsed)) for job, parsed in files
            ]
        imported = self._imported_among(connection, [job.sha256 for job, _ in files])
        todo = [(job, parsed) for job, parsed in files if job.sha256 not in imported]
        ledger = self._ledger_rows(connection, [(job, parsed.format) for job, parsed in todo])
        pending = [
            PendingSession(
                job.source.name,
                ledger[job.sha256],
                index,
                session,
                parsed.traces.get(session.session_key),
            )
            for job, parsed in todo
            for index, session in enumerate(parsed.records["ionto_session"])
        ]
        outcome = SessionLoader(connection, self._devices).load(pending)
        results: list[tuple[Job, ParsedFile, LoadOutcome | None]] = []
        for job, parsed in files:
            if job.sha256 in imported:
                results.append((job, parsed, None))
                continue
            file_id = ledger[job.sha256]
            rows = outcome.rows.get(file_id, Counter())
            status = (
                "superseded"
                if outcome.superseded[file_id]
                else ("imported" if sum(rows.values()) else "unchanged")
            )
            results.append((job, parsed, LoadOutcome(status, rows, outcome.unlinked[file_id])))
        counts = [
            {"file_id": ledger[job.sha256], "rows": sum(result[2].rows.values())}
            for job, result in zip((job for job, _ in files), results, strict=True)
            if result[2] is not None
        ]
        if counts:
            connection.execute(
                update(_LEDGER)
                .where(_LEDGER.c.id == bindparam("file_id"))
                .values(row_count=bindparam("rows")),
                counts,
            )
        return results

    def _imported_among(self, connection: Connection, hashes: list[str]) -> set[str]:
        query = select(_LEDGER.c.sha256).where(
            one_of(connection.dialect.name, _LEDGER.c.sha256, hashes),
            _LEDGER.c.status == "imported",
        )
        return set(connection.execute(query).scalars())

    def _load_file(
        self, connection: Connection, job: Job, parsed: ParsedFile
    ) -> LoadOutcome | None:
        """Load one file; None when another import loaded the same bytes meanwhile."""
        if self._already_imported(connection, job.sha256):
            return None
        ledger_id = self._ledger_rows(connection, [(job, parsed.format)])[job.sha256]
        outcome = Loader(connection, job.source.name, ledger_id, self._devices).load(parsed)
        connection.execute(
            update(_LEDGER)
            .where(_LEDGER.c.id == ledger_id)
            .values(row_count=sum(outcome.rows.values()))
        )
        return outcome

    def _already_imported(self, connection: Connection, sha256: str) -> bool:
        query = select(_LEDGER.c.id).where(
            _LEDGER.c.sha256 == sha256, _LEDGER.c.status == "imported"
        )
        return connection.execute(query).first() is not None

    def _ledger_rows(self, connection: Connection, files: list[tuple[Job, str]]) -> dict[str, int]:
        """Ledger rows (status imported) for files about to load: SHA-256 → ledger id.

        A row left by an earlier quarantine of the same bytes is replaced. Three statements
        for the whole group, whatever its size.
        """
        if not files:
            return {}
        entries = [
            _ledger_entry(
                job.sha256,
                self.keyer.file_name(job.source.base_name),
                job.source.base_name,
                format_name,
                "imported",
            )
            for job, format_name in files
        ]
        _replace_ledger_entries(connection, entries)
        return key_ids(connection, "import_file", "sha256", [job.sha256 for job, _ in files])

    def _quarantine(
        self,
        report: ImportReport,
        problem: Problem,
        source: SourceFile | None,
        sha256: str | None,
        parser: Parser | None = None,
    ) -> None:
        """Record ``problem``; a file that could be hashed is copied aside and ledgered."""
        report.files["quarantined"] += 1
        report.quarantine.append(problem)
        if sha256 is None:
            return
        filed = problem.filed_as(sha256)
        if source is not None and parser is not None and self.quarantine_dir is not None:
            try:
                data = parser.reader.read(source)
                reason = {"sha256": sha256, **filed.to_dict()}
                set_aside(self.quarantine_dir, source, data, sha256, reason)
            except Exception as error:  # the copy is a courtesy, the entry is not
                copy = problem_from(source.name, error)
                report.notes.append(f"{source.name}: no quarantine copy: {copy.reason}")
        with self.engine.begin() as connection:
            self._lock(connection)
            if self._already_imported(connection, sha256):
                return
            entry = _ledger_entry(
                sha256,
                self.keyer.file_name(source.base_name) if source else None,
                source.base_name if source else "",
                "unknown",
                "quarantined",
                quarantine_reason=filed.message()[:2000],
            )
            _replace_ledger_entries(connection, [entry])

    def _count_unlinked(self) -> int:
        sessions = SQLModel.metadata.tables["ionto_session"]
        with self.engine.connect() as connection:
            return len(
                connection.execute(
                    select(sessions.c.id).where(
                        sessions.c.link_status == "unlinked", sessions.c.is_current.is_(True)
                    )
                ).all()
            )
