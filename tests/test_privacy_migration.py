"""Revision 0004 takes a populated store up and down: free text and file names go, rows stay."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, inspect, select

from data_schemas import store
from data_schemas.tables import SCHEMA_REVISION
from tests.store_rows import insert_as_stored, rows_before_0004


def _table(engine: Engine, name: str) -> list[dict]:
    metadata = MetaData()
    metadata.reflect(engine, only=[name])
    table = metadata.tables[name]
    with engine.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id))
        return [dict(row._mapping) for row in rows]


def _populated_0003(engine: Engine) -> dict[str, int]:
    store.upgrade(engine, "0003")
    rows = rows_before_0004()
    repeated = {**rows["intervention"], "id": 2, "details": "Bobby Nguyen called again"}
    refused = {
        **rows["import_file"],
        "id": 2,
        "sha256": "b" * 64,
        "file_name": "Lastname_Firstname_1964-05-06.ndjson",
        "status": "quarantined",
        "quarantine_reason": "Lastname_Firstname_1964-05-06.ndjson: bad date (got 03/07/1972)",
    }
    with engine.begin() as connection:
        insert_as_stored(connection, rows)
        insert_as_stored(connection, {"intervention": repeated, "import_file": refused})
    return store.info(engine).row_counts


def test_upgrade_drops_free_text_and_names_and_keeps_every_other_row(empty_engine: Engine) -> None:
    before = _populated_0003(empty_engine)
    store.upgrade(empty_engine)
    assert store.current_revision(empty_engine) == SCHEMA_REVISION
    after = store.info(empty_engine).row_counts
    assert after.pop("site_key") == 0
    assert after == {**before, "intervention": before["intervention"] - 1}
    columns = {c["name"] for c in inspect(empty_engine).get_columns("import_file")}
    assert "file_name" not in columns
    assert "details" not in {c["name"] for c in inspect(empty_engine).get_columns("intervention")}
    ledger = _table(empty_engine, "import_file")
    assert [(row["file_name_hash"], row["file_extension"]) for row in ledger] == [
        (None, ".csv"),
        (None, ".ndjson"),
    ]
    assert ledger[1]["quarantine_reason"].startswith("set aside before revision 0004")
    dump = repr(ledger) + repr(_table(empty_engine, "intervention"))
    for identifier in ("Nguyen", "Lastname", "1964-05-06", "03/07/1972", "555-0169"):
        assert identifier not in dump


def test_downgrade_restores_the_columns_not_their_content(empty_engine: Engine) -> None:
    before = _populated_0003(empty_engine)
    store.upgrade(empty_engine)
    store.downgrade(empty_engine, "0003")
    assert store.current_revision(empty_engine) == "0003"
    assert store.info(empty_engine).row_counts == {
        **before,
        "intervention": before["intervention"] - 1,
    }
    ledger = _table(empty_engine, "import_file")
    assert [row["file_name"] for row in ledger] == ["a" * 12 + ".csv", "b" * 12 + ".ndjson"]
    assert [row["details"] for row in _table(empty_engine, "intervention")] == [""]
    store.upgrade(empty_engine)
    assert store.current_revision(empty_engine) == SCHEMA_REVISION
