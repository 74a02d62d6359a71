"""Paths, zip archives, processes and the store's locks under an import that is pushed.

The bad-input corpus (tests/test_bad_inputs.py) covers what files may hold; these tests
cover how they are found and read, and what the import does to processes and the store.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import event

from data_schemas import store
from device_import import sources
from device_import.parsed import ParseContext
from device_import.parsers import fhir
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from device_import.problems import FileRejected
from device_import.sources import ZipLimits, collect_sources
from device_import.store_lock import StoreBusy
from tests import fhir_fixtures as fx
from tests.ehr_export import EHR_TABLES, write_ehr_export

SITE_KEY = "8a015bc866008537b4018c8ab5e64aed4551c84d07d1ace97539d9c9c4cb05e0"
TODAY = dt.date(2026, 1, 1)


def _importer(url: str, tmp_path: Path, **options: object) -> Importer:
    engine = store.connect(url)
    store.upgrade(engine)
    return Importer(engine, Keyer(SITE_KEY.encode()), quarantine_dir=tmp_path / "q", **options)


# -- paths ----------------------------------------------------------------------------
def test_a_relative_path_and_a_path_under_a_dot_folder_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_ehr_export(tmp_path / ".exports" / "ehr")
    (folder / ".~lock.visits.csv#").write_text("lock file of an office program")
    inside = tmp_path / "work" / "deep"
    inside.mkdir(parents=True)
    monkeypatch.chdir(inside)
    relative = Path("../../.exports/ehr")
    report = _importer(f"sqlite:///{tmp_path / 's.db'}", tmp_path).run([relative])
    assert report.files["imported"] == len(EHR_TABLES) and not report.quarantine
    assert [(Path(item.name).name, item.reason) for item in report.skipped] == [
        (".~lock.visits.csv#", "a hidden file")
    ]
    assert ("skipped", "a hidden file", 1) in set(report.summary().itertuples(index=False))


def test_the_emulators_own_files_are_skipped_not_quarantined(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_ehr_export(out / "ehr")
    for name in ("ground_truth.json", "manifest.json", "scenario.yaml"):
        (out / name).write_text("{}\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "manifest.json").write_text("{}\n")  # not an emulator folder
    report = _importer(f"sqlite:///{tmp_path / 's.db'}", tmp_path).run(
        [out, tmp_path / "elsewhere"]
    )
    assert sorted(Path(item.name).name for item in report.skipped) == [
        "ground_truth.json",
        "manifest.json",
        "scenario.yaml",
    ]
    assert [Path(problem.file).name for problem in report.quarantine] == ["manifest.json"]


# -- zip archives ---------------------------------------------------------------------
@pytest.mark.parametrize("workers", [1, 2])
def test_every_member_is_read_from_the_one_archive_the_import_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as writing:
        write_ehr_export(tmp_path / "ehr")
        for path in sorted((tmp_path / "ehr").iterdir()):
            writing.write(path, f"ehr/{path.name}")
        for number in range(60):
            writing.writestr(f"notes/{number:03d}.txt", f"not an export {number}\n")
    opened = tmp_path / "opened.txt"  # appended to by any process that opens an archive

    class Counting(zipfile.ZipFile):
        def __init__(self, *args: object, **kwargs: object) -> None:
            with opened.open("a") as log:
                log.write(f"{args[0]}\n")
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sources.zipfile, "ZipFile", Counting)
    importer = _importer(f"sqlite:///{tmp_path / 's.db'}", tmp_path, workers=workers)
    report = importer.run([archive])
    assert report.files["imported"] == len(EHR_TABLES)
    assert report.files["quarantined"] == 60
    assert len(list((tmp_path / "q").glob("*.txt"))) == 60  # copies read from it too
    # listing, fingerprints, parsing and the private copies: one open archive
    assert opened.read_text().splitlines() == [str(archive)]


def test_an_archive_opened_for_the_import_is_closed_after_it(tmp_path: Path) -> None:
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    for path in (first, second):
        with zipfile.ZipFile(path, "w") as writing:
            writing.writestr("x.txt", "x")
    with sources.ArchiveReader() as reader:
        found = collect_sources([first, second], reader)
        assert [reader.read(source) for source in found.sources] == [b"x", b"x"]
        held = [reader.archive(first), reader.archive(second)]
        assert [archive.fp is not None for archive in held] == [True, True]
    assert [archive.fp for archive in held] == [None, None]


def test_a_member_is_never_unpacked_past_the_limit_when_read(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as writing:
        writing.writestr("zeros.csv", b"\0" * 200_000)
    with sources.ArchiveReader(ZipLimits(member_bytes=1_000)) as reader:
        member = sources.SourceFile("export.zip!zeros.csv", archive, "zeros.csv")
        with pytest.raises(FileRejected, match="unpacks to more than the limit"):
            reader.read(member)


def test_a_member_whose_header_understates_its_size_is_refused_as_damaged(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as writing:
        writing.writestr("zeros.csv", b"\0" * 2_000_000)
    data = bytearray(archive.read_bytes())
    directory = data.find(b"PK\x01\x02")
    for at in (22, directory + 24):  # uncompressed size: local header, central directory
        data[at : at + 4] = (100).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    report = _importer(f"sqlite:///{tmp_path / 's.db'}", tmp_path).run([archive])
    [problem] = report.quarantine
    assert problem.file.endswith("liar.zip!zeros.csv") and "CRC-32" in problem.reason
    assert not (tmp_path / "q").exists()  # never hashed, so nothing copied


def _limited(archive: Path, limits: ZipLimits) -> sources.Collected:
    with sources.ArchiveReader(limits) as reader:
        return collect_sources([archive], reader)


def test_zip_limits_are_configurable_and_refuse_before_unpacking(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as writing:
        writing.writestr("small.csv", "a,b\n")
        writing.writestr("zeros.csv", b"\0" * 200_000)
    found = _limited(archive, ZipLimits(member_bytes=100_000))
    assert [source.member for source in found.sources] == ["small.csv"]
    assert "unpacks to more than the limit" in found.problems[0].reason
    whole = _limited(archive, ZipLimits(archive_bytes=150_000))
    assert [source.member for source in whole.sources] == []
    assert "the archive unpacks to more than the limit" in whole.problems[0].reason
    ratio = _limited(archive, ZipLimits(ratio=10, ratio_from_bytes=1000))
    assert "expands far more" in ratio.problems[0].reason
    assert "more files than the limit" in _limited(archive, ZipLimits(members=1)).problems[0].reason
    assert len(collect_sources([archive]).sources) == 2


# -- processes ------------------------------------------------------------------------
KILLER = textwrap.dedent(
    """
    import multiprocessing, os, signal, sys
    from pathlib import Path
    from data_schemas import store
    from device_import import loader
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer

    original = loader.Loader._load_table

    def load_then_die(self, spec, *rest):
        original(self, spec, *rest)
        if spec.table == "visit":
            workers = [child.pid for child in multiprocessing.active_children()]
            Path(sys.argv[4]).write_text(" ".join(map(str, workers)))
            os.kill(os.getpid(), signal.SIGKILL)

    loader.Loader._load_table = load_then_die
    engine = store.connect(sys.argv[1])
    store.upgrade(engine)
    Importer(engine, Keyer(sys.argv[3].encode()), workers=2).run([Path(sys.argv[2])])
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_import_leaves_no_orphaned_parser_worker(tmp_path: Path) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    pids = tmp_path / "workers.txt"
    url = f"sqlite:///{tmp_path / 's.db'}"
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, url, str(folder), SITE_KEY, str(pids)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    workers = [int(pid) for pid in pids.read_text().split()]
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]


def _short_wait(engine: object, milliseconds: int) -> None:
    @event.listens_for(engine, "connect")
    def wait(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute(f"PRAGMA busy_timeout={milliseconds}")


def test_a_second_sqlite_import_waits_for_the_first(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    engine = store.connect(f"sqlite:///{path}")
    store.upgrade(engine)
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another import, mid-file
    release = threading.Timer(1.0, holder.execute, ["COMMIT"])
    release.start()
    started = time.monotonic()
    report = Importer(engine, Keyer(SITE_KEY.encode())).run([write_ehr_export(tmp_path / "e")])
    release.join()
    assert time.monotonic() - started >= 0.9 and report.files["imported"] == len(EHR_TABLES)


def test_a_store_busy_for_longer_than_the_wait_says_so_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    engine = store.connect(f"sqlite:///{path}")
    store.upgrade(engine)
    engine.dispose()
    _short_wait(engine, 200)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy, match=r"^the store is busy: another import is running"):
            Importer(engine, Keyer(SITE_KEY.encode())).run([write_ehr_export(tmp_path / "e")])
    finally:
        holder.execute("ROLLBACK")


@pytest.mark.postgres
def test_two_first_upgrades_of_an_empty_postgresql_database_do_not_race(
    postgres_url: str,
) -> None:
    errors: list[BaseException] = []

    def upgrade() -> None:
        engine = store.connect(postgres_url)
        try:
            store.upgrade(engine)
        except BaseException as error:  # collected for the assertion below
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=upgrade) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    engine = store.connect(postgres_url)
    assert errors == [] and store.current_revision(engine) is not None
    engine.dispose()


# -- valid FHIR that used to be refused -----------------------------------------------
def _parse(resources: list[dict]) -> dict[str, list[dict]]:
    data = json.dumps(fx.bundle("collection", resources)).encode()
    parsed = fhir.parse(data, ParseContext("b.json", Keyer(SITE_KEY.encode()), today=TODAY))
    parsed.dump()
    return parsed.rows


def test_a_partial_birth_date_is_read_as_the_year_it_gives() -> None:
    resources = fx.clinic_resources()
    resources[1]["birthDate"] = "1961"
    assert [row["birth_year"] for row in _parse(resources)["patient"]] == [1961]
    resources[1]["birthDate"] = "1961-13"
    with pytest.raises(FileRejected, match="birthDate"):
        _parse(resources)


def test_a_contained_organization_may_assign_an_identifier() -> None:
    resources = fx.clinic_resources()
    logical = _parse(resources)
    contained = fx.organization() | {"id": "org"}
    resources[1]["contained"] = [contained]
    for identifier in resources[1]["identifier"]:
        if "assigner" in identifier:
            identifier["assigner"] = {"reference": "#org"}
    rows = _parse(resources)
    assert rows["patient_link"] == logical["patient_link"] and len(rows["patient_link"]) >= 1
    resources[1]["contained"] = []
    with pytest.raises(FileRejected, match="contained"):
        _parse(resources)
