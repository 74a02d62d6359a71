"""Bulk inserts (COPY on PostgreSQL, executemany on SQLite) store what Core's insert stores."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from device_import.bulk_insert import insert_rows

TABLES = SQLModel.metadata.tables


def _ledger_row(engine: Engine) -> int:
    with engine.begin() as connection:
        return connection.execute(
            insert(TABLES["import_file"]).returning(TABLES["import_file"].c.id),
            {
                "sha256": "a" * 64,
                "file_name_hash": "f" * 64,
                "format": "ehr_csv",
                "importer_version": "0",
                "status": "imported",
                "imported_at_utc": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            },
        ).scalar_one()


def _episode_rows(clinic_id: int, patient_id: int, source: int, prefix: str) -> list[dict]:
    # text, dates, floats, booleans and NULLs (mixed-case quoted names: prescription below)
    return [
        {
            "episode_key": f"{prefix}{offset}",
            "patient_id": patient_id,
            "clinic_id": clinic_id,
            "condition": "achilles_tendinopathy",
            "condition_family": "tendinopathy",
            "icd10_code": "M76.61",
            "side": None if offset % 2 else "left",
            "symptom_duration_weeks": 12.5 + offset,
            "start_date": dt.date(2025, 3, 1) + dt.timedelta(days=offset),
            "end_date": None,
            "pregnancy": bool(offset % 2),
            "source_file_id": source,
        }
        for offset in range(3)
    ]


def _setup(engine: Engine) -> tuple[int, int, int]:
    source = _ledger_row(engine)
    with engine.begin() as connection:
        clinic = connection.execute(
            insert(TABLES["clinic"]).returning(TABLES["clinic"].c.id),
            {"clinic_key": "c1", "name": "North", "timezone": "Europe/Amsterdam"},
        ).scalar_one()
        patient = connection.execute(
            insert(TABLES["patient"]).returning(TABLES["patient"].c.id),
            {"pseudonym": "p" * 20, "sex": "female", "birth_year": 1970},
        ).scalar_one()
    return clinic, patient, source


def _stored(engine: Engine, table: str, order: str) -> list[dict]:
    target = TABLES[table]
    with engine.connect() as connection:
        rows = connection.execute(select(target).order_by(target.c[order])).mappings()
        return [{k: v for k, v in row.items() if k != "id"} for row in rows]


def test_bulk_rows_read_back_as_core_inserts_them(engine: Engine) -> None:
    clinic, patient, source = _setup(engine)
    with engine.begin() as connection:
        core = _episode_rows(clinic, patient, source, "core")
        connection.execute(insert(TABLES["episode"]), core)
        insert_rows(connection, TABLES["episode"], _episode_rows(clinic, patient, source, "load"))
    stored = _stored(engine, "episode", "episode_key")  # core0-2, then load0-2
    by_core, by_bulk = stored[:3], stored[3:]
    for core, bulk in zip(by_core, by_bulk, strict=True):
        assert {**core, "episode_key": None} == {**bulk, "episode_key": None}
    assert [row["start_date"] for row in by_bulk] == [
        dt.date(2025, 3, 1) + dt.timedelta(days=offset) for offset in range(3)
    ]
    assert [row["pregnancy"] for row in by_bulk] == [False, True, False]


def test_bulk_insert_handles_quoted_mixed_case_columns(engine: Engine) -> None:
    clinic, patient, source = _setup(engine)
    with engine.begin() as connection:
        insert_rows(connection, TABLES["episode"], _episode_rows(clinic, patient, source, "core"))
        episode = connection.execute(select(TABLES["episode"].c.id).limit(1)).scalar_one()
        insert_rows(
            connection,
            TABLES["prescription"],
            [
                {
                    "prescription_key": "rx1",
                    "episode_id": episode,
                    "drug": "dexamethasone_sodium_phosphate",
                    "concentration_mg_per_mL": 4.0,
                    "volume_mL": 2.5,
                    "prescriber_role": "physician",
                    "prescribed_on": dt.date(2025, 3, 1),
                }
            ],
        )
    (row,) = _stored(engine, "prescription", "prescription_key")
    assert (row["concentration_mg_per_mL"], row["volume_mL"]) == (4.0, 2.5)


def test_a_bad_row_fails_the_whole_insert_and_leaves_nothing(engine: Engine) -> None:
    clinic, patient, source = _setup(engine)
    rows = _episode_rows(clinic, patient, source, "core")
    rows[2]["condition"] = "not_a_condition"  # the named CHECK constraint refuses it
    with pytest.raises(IntegrityError, match="ck_episode_condition"), engine.begin() as conn:
        insert_rows(conn, TABLES["episode"], rows)
    assert _stored(engine, "episode", "episode_key") == []


def test_rows_must_share_their_columns(engine: Engine) -> None:
    clinic, patient, source = _setup(engine)
    rows = _episode_rows(clinic, patient, source, "core")
    del rows[1]["side"]
    with pytest.raises(KeyError, match="side"), engine.begin() as connection:
        insert_rows(connection, TABLES["episode"], rows)
