"""Importing EHR CSV exports: de-identification, idempotency, and every kind of bad file."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from data_schemas import store
from device_import.pipeline import EXIT_QUARANTINED, Importer
from device_import.privacy import Keyer
from tests.ehr_export import EHR_TABLES, write_ehr_export

TABLES = SQLModel.metadata.tables
KEY = b"test-site-key"
TODAY = dt.date(2026, 1, 1)
IDENTIFIERS = (
    "Ann",
    "Lee",
    "MRN001",
    "1970-05-04",
    "555-0100",
    "ann@example.org",
    "1 Main St",
    "KD4-000123",
    "Helen Marsh",
    "Novak",
)


def importer(engine: Engine, tmp_path: Path) -> Importer:
    return Importer(engine, Keyer(KEY), quarantine_dir=tmp_path / "quarantine", today=TODAY)


def counts(engine: Engine) -> dict[str, int]:
    return store.info(engine).row_counts


def test_a_clean_export_imports_every_row(engine: Engine, tmp_path: Path) -> None:
    report = importer(engine, tmp_path).run([write_ehr_export(tmp_path / "ehr")])
    assert report.quarantine == []
    assert report.files["imported"] == len(EHR_TABLES)
    rows = counts(engine)
    assert rows["patient"] == 2 and rows["episode"] == 2 and rows["visit"] == 3
    assert rows["intervention"] == 4 and rows["outcome_measurement"] == 3
    assert rows["prescription"] == 1 and rows["import_file"] == len(EHR_TABLES)


def test_reimporting_the_same_files_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    importer(engine, tmp_path).run([folder])
    before = counts(engine)
    again = importer(engine, tmp_path).run([folder])
    assert again.files["unchanged"] == len(EHR_TABLES)
    assert again.files["imported"] == 0
    assert counts(engine) == before


def test_same_content_in_new_bytes_is_unchanged_row_by_row(engine: Engine, tmp_path: Path) -> None:
    importer(engine, tmp_path).run([write_ehr_export(tmp_path / "ehr")])
    before = counts(engine)
    crlf = {"outcomes.csv": EHR_TABLES["outcomes.csv"].replace("\n", "\r\n")}
    report = importer(engine, tmp_path).run([write_ehr_export(tmp_path / "again", crlf)])
    assert report.files["unchanged"] == 1
    assert {k: v for k, v in counts(engine).items() if k != "import_file"} == {
        k: v for k, v in before.items() if k != "import_file"
    }


def test_the_store_holds_no_direct_identifier(engine: Engine, tmp_path: Path) -> None:
    importer(engine, tmp_path).run([write_ehr_export(tmp_path / "ehr")])
    with engine.connect() as connection:
        dump = " ".join(
            str(value)
            for table in SQLModel.metadata.sorted_tables
            for row in connection.execute(select(table))
            for value in row
        )
    for identifier in IDENTIFIERS:
        assert identifier not in dump


def test_ages_over_89_are_pooled_and_birth_dates_reduced_to_the_year(
    engine: Engine, tmp_path: Path
) -> None:
    importer(engine, tmp_path).run([write_ehr_export(tmp_path / "ehr")])
    with engine.connect() as connection:
        patients = connection.execute(
            select(TABLES["patient"].c.birth_year, TABLES["patient"].c.aged_90_plus)
        ).all()
        ages = connection.execute(select(TABLES["episode"].c.age_at_intake_years)).scalars().all()
    assert sorted(patients, key=str) == sorted([(1970, False), (None, True)], key=str)
    assert sorted(ages) == [2025 - 1970, 90]  # year precision: only the year is kept


def test_the_same_person_with_two_mrns_is_one_patient(engine: Engine, tmp_path: Path) -> None:
    second_clinic = {
        "clinics.csv": "clinic_id,name,time_zone\nclinic_02,Summit,America/Denver\n",
        "patients.csv": "clinic_id,mrn,first_name,last_name,birth_date,sex\n"
        "clinic_02,Z-778,ANN,lee,1970-05-04,F\n",
    }
    importer(engine, tmp_path).run([write_ehr_export(tmp_path / "a")])
    report = importer(engine, tmp_path).run([write_ehr_export(tmp_path / "b", second_clinic)])
    assert report.quarantine == []
    rows = counts(engine)
    assert rows["patient"] == 2  # Ann (two MRNs) and Bob
    assert rows["patient_link"] == 3


def _bad(name: str, text: str) -> dict[str, str]:
    return {**EHR_TABLES, name: text}


BAD_FILES = {
    "empty file": ("visits.csv", "", "unknown format"),
    "truncated mid-row": (
        "visits.csv",
        EHR_TABLES["visits.csv"][:-30],
        "wrong number of fields",
    ),
    "wrong encoding": (
        "patients.csv",
        EHR_TABLES["patients.csv"].replace("Lee", "L\u00e9e"),
        "not UTF-8",
    ),
    "impossible score": (
        "outcomes.csv",
        EHR_TABLES["outcomes.csv"].replace("nprs,,6,", "nprs,,12,"),
        "nprs score must be between 0 and 10",
    ),
    "unknown instrument": (
        "outcomes.csv",
        EHR_TABLES["outcomes.csv"].replace("prtee", "happiness_index"),
        "unknown outcome instrument",
    ),
    "unknown diagnosis": (
        "episodes.csv",
        EHR_TABLES["episodes.csv"].replace("M77.11", "J45.909"),
        "outside the toolkit's conditions",
    ),
    "not a number": (
        "interventions.csv",
        EHR_TABLES["interventions.csv"].replace("97110,20", "97110,twenty"),
        "bad value in field minutes",
    ),
    "visit of an unknown episode": (
        "visits.csv",
        EHR_TABLES["visits.csv"].replace("ENC3,EP002", "ENC3,EP999"),
        "refers to a episode that is in neither the store nor this file",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_file_is_quarantined_whole_and_the_rest_imports(
    engine: Engine, tmp_path: Path, case: str
) -> None:
    name, text, reason = BAD_FILES[case]
    folder = write_ehr_export(tmp_path / "ehr")
    if case == "wrong encoding":
        (folder / name).write_bytes(text.encode("latin-1"))
    else:
        (folder / name).write_text(text, encoding="utf-8")
    report = importer(engine, tmp_path).run([folder])
    assert report.exit_status == EXIT_QUARANTINED
    problem = next(p for p in report.quarantine if p.file.endswith(name))
    assert reason in problem.message()
    assert problem.record is not None
    # Files that refer to the refused rows are refused too, each naming the missing record;
    # every other file imports.
    dependents = [p for p in report.quarantine if p is not problem]
    assert all("refers to a" in p.reason for p in dependents)
    assert report.files["imported"] == len(EHR_TABLES) - 1 - len(dependents)
    table = {
        "visits.csv": "visit",
        "patients.csv": "patient",
        "outcomes.csv": "outcome_measurement",
        "episodes.csv": "episode",
        "interventions.csv": "intervention",
    }[name]
    assert counts(engine)[table] == 0  # never half-imported
    kept = tmp_path / "quarantine"
    assert any(path.name.endswith(name) for path in kept.iterdir())
    assert any(path.name.endswith(".reason.json") for path in kept.iterdir())


def test_a_table_with_a_header_and_no_rows_imports_empty_and_says_so(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    (folder / "prescriptions.csv").write_text(
        EHR_TABLES["prescriptions.csv"].splitlines()[0] + "\n"
    )
    report = importer(engine, tmp_path).run([folder])
    assert report.quarantine == []
    assert counts(engine)["prescription"] == 0
    assert any("prescriptions table has a header and no rows" in note for note in report.notes)


def test_text_longer_than_its_column_is_refused_on_every_backend(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    long = EHR_TABLES["outcomes.csv"].replace("nprs,,6,", "nprs," + "v" * 40 + ",6,")
    (folder / "outcomes.csv").write_text(long)
    report = importer(engine, tmp_path).run([folder])
    assert [p.field for p in report.quarantine] == ["instrument_version"]


def test_bom_and_crlf_are_read(engine: Engine, tmp_path: Path) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    text = EHR_TABLES["outcomes.csv"].replace("\n", "\r\n")
    (folder / "outcomes.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    report = importer(engine, tmp_path).run([folder])
    assert report.quarantine == []
    assert counts(engine)["outcome_measurement"] == 3


def test_a_conflicting_duplicate_is_quarantined(engine: Engine, tmp_path: Path) -> None:
    importer(engine, tmp_path).run([write_ehr_export(tmp_path / "ehr")])
    changed = {"outcomes.csv": EHR_TABLES["outcomes.csv"].replace("nprs,,6,", "nprs,,7,")}
    report = importer(engine, tmp_path).run([write_ehr_export(tmp_path / "again", changed)])
    assert len(report.quarantine) == 1
    assert "conflicts" in report.quarantine[0].reason
    assert report.quarantine[0].field == "score"


@pytest.mark.parametrize(
    ("old", "new", "what", "field", "found"),
    [
        ("1970-05-04", "1971-05-04", "birth date", "birth_date", "another birth year"),
        (
            "1970-05-04",
            "1970-06-04",
            "name or birth date",
            "first_name, last_name or birth_date",
            "another name or birth date",
        ),
        (
            "Ann,Lee",
            "Anne,Lee",
            "name or birth date",
            "first_name, last_name or birth_date",
            "another name or birth date",
        ),
    ],
)
def test_a_corrected_birth_date_names_file_line_and_field_and_the_fix_never_the_value(
    engine: Engine, tmp_path: Path, old: str, new: str, what: str, field: str, found: str
) -> None:
    importer(engine, tmp_path).run([write_ehr_export(tmp_path / "ehr")])
    corrected = {"patients.csv": EHR_TABLES["patients.csv"].replace(old, new)}
    report = importer(engine, tmp_path).run([write_ehr_export(tmp_path / "again", corrected)])
    [problem] = report.quarantine
    assert Path(problem.file).name == "patients.csv"
    assert (problem.record, problem.field, problem.got) == ("line 2", field, found)
    assert problem.reason.startswith(f"the {what} of a known patient changed")
    assert "Fix: if this export is wrong, correct the patient in the EHR" in problem.reason
    ledger_table = TABLES["import_file"]
    with engine.connect() as connection:
        [ledger] = connection.execute(
            select(ledger_table.c.quarantine_reason).where(ledger_table.c.status == "quarantined")
        ).scalars()
    for text in (problem.message(), ledger):
        assert "patient_id" not in text and "patient_link" not in text
        assert not any(value in text for value in (*IDENTIFIERS, "1971", "06-04", "Anne"))
    assert counts(engine)["patient"] == 2  # the corrected patient was not added


def test_a_zip_entry_escaping_the_archive_is_refused(engine: Engine, tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for name, text in EHR_TABLES.items():
            bundle.writestr(f"ehr/{name}", text)
        bundle.writestr("../../etc/evil.csv", "x")
    report = importer(engine, tmp_path).run([archive])
    assert report.files["imported"] == len(EHR_TABLES)
    assert len(report.quarantine) == 1
    assert "escapes the archive" in report.quarantine[0].reason
    assert not (tmp_path.parent / "etc").exists()


def test_an_optional_reference_to_nothing_is_kept_without_it_and_counted(
    engine: Engine, tmp_path: Path
) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    text = EHR_TABLES["outcomes.csv"].replace("clinic_01,ENC3,EP002", "clinic_01,ENC9,EP002")
    (folder / "outcomes.csv").write_text(text)
    report = importer(engine, tmp_path).run([folder])
    assert report.quarantine == []
    assert report.unresolved_references == {"outcome_measurement.visit_key": 1}
    assert report.to_dict()["unresolved_references"] == {"outcome_measurement.visit_key": 1}
    assert counts(engine)["outcome_measurement"] == 3
