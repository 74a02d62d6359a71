"""The site key cannot go wrong silently; quarantine copies stay private; links are not followed."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from data_schemas import store
from data_schemas.errors import InputError
from device_import.pipeline import Importer
from device_import.privacy import (
    KEY_ENV,
    KEY_FILE_ENV,
    DemoKeyWarning,
    Keyer,
    SiteKeyError,
    fingerprint,
    load_site_key,
)
from device_import.problems import described
from device_import.sources import read_file
from tests.ehr_export import EHR_TABLES, write_ehr_export

STRONG = secrets.token_hex(32)
TODAY = dt.date(2026, 1, 1)


def _import(engine: Engine, key: bytes, folder: Path, quarantine: Path | None = None) -> None:
    Importer(engine, Keyer(key), quarantine_dir=quarantine, today=TODAY).run([folder])


# ---------------------------------------------------------------------------- loading the key


def test_a_strong_key_from_the_environment_is_used_as_written() -> None:
    assert load_site_key(environ={KEY_ENV: STRONG + "\n"}) == STRONG.encode()


@pytest.mark.parametrize(
    "weak",
    ["1", "", "short-but-not-random", "ab" * 32, secrets.token_hex(31), "hello world " * 6],
    ids=["one", "empty", "text", "pattern", "31 bytes", "words"],
)
def test_a_weak_key_is_refused_with_the_fix(weak: str) -> None:
    with pytest.raises(SiteKeyError, match=r"too weak.*token_hex"):
        load_site_key(environ={KEY_ENV: weak})


def test_a_base64_key_of_32_random_bytes_is_accepted() -> None:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    assert load_site_key(environ={KEY_ENV: key}) == key.encode()


def test_an_empty_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    path.write_text("\n")
    with pytest.raises(SiteKeyError, match=r"site.key is too weak"):
        load_site_key(environ={KEY_FILE_ENV: str(path)})


def test_a_configured_key_file_that_is_missing_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "gone" / "site.key"
    with pytest.raises(SiteKeyError, match=r"does not exist.*restore the key file"):
        load_site_key(environ={KEY_FILE_ENV: str(path)})
    assert not path.exists() and not path.parent.exists()


def test_the_demo_key_is_made_only_when_nothing_is_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.warns(DemoKeyWarning, match="DEMO site key"):
        key = load_site_key(environ={})
    path = tmp_path / ".config" / "ionto-analytics" / "site.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_site_key(environ={}) == key  # kept, not made again


def test_a_key_error_is_an_input_error() -> None:
    assert issubclass(SiteKeyError, InputError)


# ------------------------------------------------------------------ the store's fingerprint


def test_the_store_refuses_another_key_and_keeps_its_rows(engine: Engine, tmp_path: Path) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    _import(engine, b"first site key", folder)
    before = store.info(engine).row_counts
    assert before["patient"] == 2 and before["site_key"] == 1
    again = write_ehr_export(tmp_path / "again", {"clinics.csv": EHR_TABLES["clinics.csv"] + "\n"})
    with pytest.raises(SiteKeyError, match=r"made with another site key.*Fix: set IONTO_SITE_KEY"):
        _import(engine, b"second site key", again)
    assert store.info(engine).row_counts == before


def test_the_same_key_imports_again_and_the_fingerprint_reveals_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    _import(engine, STRONG.encode(), write_ehr_export(tmp_path / "ehr"))
    _import(engine, STRONG.encode(), write_ehr_export(tmp_path / "again"))
    table = SQLModel.metadata.tables["site_key"]
    with engine.connect() as connection:
        stored = connection.execute(select(table.c.fingerprint)).scalars().all()
    assert stored == [fingerprint(STRONG.encode())]
    assert STRONG not in stored[0]


# ---------------------------------------------------------------- quarantine copies and links


def _bad_visits(folder: Path, name: str, mode: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(EHR_TABLES["visits.csv"].replace("evaluation", "Bobby Nguyen", 1))
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("source", "copy"), [(0o644, 0o600), (0o600, 0o600), (0o400, 0o400)])
def test_a_quarantine_copy_keeps_the_source_mode_or_stricter(
    engine: Engine, tmp_path: Path, source: int, copy: int
) -> None:
    _bad_visits(tmp_path / "in", "Nguyen_Bobby.csv", source)
    _import(engine, b"k", tmp_path / "in", tmp_path / "q")
    kept = sorted((tmp_path / "q").iterdir())
    assert [path.name.split("_", 1)[1] for path in kept] == [
        "Nguyen_Bobby.csv",
        "Nguyen_Bobby.csv.reason.json",
    ]
    assert [stat.S_IMODE(path.stat().st_mode) for path in kept] == [copy, copy]


def test_the_reason_file_names_the_file_by_its_hash_and_quotes_no_value(
    engine: Engine, tmp_path: Path
) -> None:
    bad = _bad_visits(tmp_path / "in", "Nguyen_Bobby.csv", 0o600)
    _import(engine, b"k", tmp_path / "in", tmp_path / "q")
    reason_file = next((tmp_path / "q").glob("*.reason.json"))
    reason = json.loads(reason_file.read_text())
    assert reason_file.name.startswith(reason["sha256"][:12])
    assert reason["file"] == f"file with SHA-256 {reason['sha256'][:12]}…"
    assert reason["record"] == "line 2" and reason["field"] == "visit_type"
    assert reason["got"] == "text of 12 characters"
    assert "Nguyen" not in reason_file.read_text() and "Bobby" not in reason_file.read_text()
    copy = tmp_path / "q" / reason_file.name.removesuffix(".reason.json")
    assert copy.read_bytes() == bad.read_bytes()


def test_a_planted_link_in_the_quarantine_folder_is_not_written_through(
    engine: Engine, tmp_path: Path
) -> None:
    bad = _bad_visits(tmp_path / "in", "v.csv", 0o600)
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    sha = hashlib.sha256(bad.read_bytes()).hexdigest()
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / f"{sha[:12]}_v.csv").symlink_to(victim)
    _import(engine, b"k", tmp_path / "in", tmp_path / "q")
    assert victim.read_text() == "untouched"
    assert not (tmp_path / "q" / f"{sha[:12]}_v.csv").is_symlink()


def test_a_symlink_is_reported_and_its_target_never_read(engine: Engine, tmp_path: Path) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    secret = tmp_path / "secret.csv"
    secret.write_text(EHR_TABLES["visits.csv"])  # importable, if the link were followed
    (folder / "linked.csv").symlink_to(secret)
    (tmp_path / "folder_link").symlink_to(folder, target_is_directory=True)
    report = Importer(engine, Keyer(b"k"), quarantine_dir=tmp_path / "q", today=TODAY).run(
        [folder, tmp_path / "folder_link"]
    )
    linked = [p for p in report.quarantine if p.got == "a symbolic link"]
    assert sorted(Path(p.file).name for p in linked) == ["folder_link", "linked.csv"]
    assert all("target was not read" in p.reason for p in linked)
    assert report.files["imported"] == len(EHR_TABLES)
    assert not any("linked" in path.name for path in (tmp_path / "q").glob("*"))


def test_a_file_swapped_for_a_link_after_listing_is_not_read(tmp_path: Path) -> None:
    link = tmp_path / "x.csv"
    link.symlink_to("/etc/passwd")
    with pytest.raises(OSError):
        read_file(link)
    assert os.path.islink(link)


# ----------------------------------------------------------------------- values in problems


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("03/07/1972", "text of 10 characters"),
        ("", "empty text"),
        (12.5, "12.5"),
        (float("nan"), "a number that is not finite"),
        ({"name": "Bobby"}, "an object with 1 fields"),
        (b"\x00\x01", "2 bytes"),
    ],
)
def test_a_value_is_described_never_repeated(value: object, said: str) -> None:
    assert described(value) == said
