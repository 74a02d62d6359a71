"""No identifier from an attacker's corpus reaches any text the import leaves behind.

The corpus (``tests/privacy_corpus.py``) puts names, phone numbers, e-mail and street
addresses, dates of birth and MRNs in every free-text field of every format and in file
names. After importing it, every text column of every table (the ledger and its
quarantine reasons included), every ``.reason.json`` and every problem of the report
(all but the path the operator gave) is searched for each of them, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, String, select
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from device_import.pipeline import Importer, ImportReport
from device_import.privacy import Keyer
from emulator import EmulationSummary
from tests.privacy_corpus import NEEDLES, PATIENT_FILE, write_corpus

KEY = b"privacy-scan-site-key"


@pytest.fixture
def imported(
    engine: Engine, network: EmulationSummary, tmp_path: Path
) -> tuple[Engine, ImportReport, Path]:
    paths = write_corpus(network, tmp_path / "corpus")
    quarantine = tmp_path / "quarantine"
    importer = Importer(engine, Keyer(KEY), quarantine_dir=quarantine, today=dt.date(2026, 6, 1))
    return engine, importer.run(paths), quarantine


def _stored_texts(engine: Engine) -> list[tuple[str, str]]:
    """(table.column, value) of every non-empty text value in the store."""
    found = []
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, (String, AutoString))]
            if not columns:
                continue
            for row in connection.execute(select(*columns)):
                found += [
                    (f"{table.name}.{column.name}", value)
                    for column, value in zip(columns, row, strict=True)
                    if value
                ]
    return found


def _leaks(texts: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [
        (where, needle, text)
        for where, text in texts
        for needle in NEEDLES
        if needle in text.lower()
    ]


def test_the_corpus_exercises_both_outcomes(imported: tuple[Engine, ImportReport, Path]) -> None:
    """Guards the scan below: files with identifiers were both imported and refused."""
    engine, report, quarantine = imported
    texts = dict(_stored_texts(engine))
    assert report.files["imported"] > 20 and len(report.quarantine) >= 15
    assert "intervention.cpt_code" in texts and "import_file.quarantine_reason" in texts
    copies = [path for path in quarantine.iterdir() if PATIENT_FILE in path.name]
    assert len([path for path in copies if path.name.endswith(".reason.json")]) >= 10
    reasons = " ".join(problem.message() for problem in report.quarantine)
    for refused in ("symbolic link", "UTF-16 text", "zip inside a zip", "unknown drug"):
        assert refused in reasons


def test_no_identifier_in_any_stored_text(imported: tuple[Engine, ImportReport, Path]) -> None:
    engine, _, _ = imported
    texts = _stored_texts(engine)
    assert len(texts) > 1000
    assert _leaks(texts) == []


def test_no_identifier_in_any_reason_file(imported: tuple[Engine, ImportReport, Path]) -> None:
    _, _, quarantine = imported
    reasons = [
        (path.name, path.read_text(encoding="utf-8")) for path in quarantine.glob("*.reason.json")
    ]
    assert reasons
    assert _leaks(reasons) == []


def test_no_identifier_in_the_reported_problems(
    imported: tuple[Engine, ImportReport, Path],
) -> None:
    """What the CLI prints besides the path the operator typed: record, field, got, why."""
    _, report, _ = imported
    texts = [
        (problem.file, value)
        for problem in report.quarantine
        for key, value in problem.to_dict().items()
        if key != "file" and value
    ]
    assert _leaks(texts) == []


def test_the_symlink_target_was_never_read(imported: tuple[Engine, ImportReport, Path]) -> None:
    _, _, quarantine = imported
    copied = b"".join(path.read_bytes() for path in quarantine.iterdir())
    assert b"root:" not in copied
