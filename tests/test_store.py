"""The normalized store on SQLite and PostgreSQL: migrations, constraints, keys, info."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from data_schemas import store
from data_schemas.errors import IontoError, StoreError
from data_schemas.tables import SCHEMA_REVISION
from tests.conftest import BACKENDS, temporary_store_url
from tests.store_rows import BAD_VALUES, insert_as_stored, rows_before_0004, valid_rows

TABLES = SQLModel.metadata.tables


def _model_check_constraints() -> dict[str, str]:
    return {
        constraint.name: str(constraint.sqltext)
        for table in TABLES.values()
        for constraint in table.constraints
        if constraint.__class__.__name__ == "CheckConstraint"
    }


def _insert_graph(connection, rows: dict[str, dict[str, object]]) -> None:
    for name, values in rows.items():
        connection.execute(TABLES[name].insert().values(**values))


@pytest.fixture(scope="module", params=BACKENDS, ids=BACKENDS)
def migrated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """One migrated store per backend, shared by the constraint cases of this module."""
    folder = tmp_path_factory.mktemp("store")
    with temporary_store_url(request.param, request, folder) as url:
        engine = store.connect(url)
        store.upgrade(engine)
        yield engine
        engine.dispose()


def test_upgrade_creates_every_table_at_the_model_revision(engine: Engine) -> None:
    details = store.info(engine)
    assert details.revision == SCHEMA_REVISION
    assert set(details.row_counts) == set(TABLES)
    assert all(count == 0 for count in details.row_counts.values())


def test_upgrade_twice_changes_nothing(engine: Engine) -> None:
    store.upgrade(engine)
    assert store.current_revision(engine) == SCHEMA_REVISION


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_migrated_check_constraints_match_the_models(engine: Engine) -> None:
    """Autogenerate ignores CHECK constraints, so compare them by name (and text on SQLite)."""
    inspector = inspect(engine)
    in_store = {
        check["name"]: check["sqltext"]
        for name in TABLES
        for check in inspector.get_check_constraints(name)
    }
    in_models = _model_check_constraints()
    assert set(in_store) == set(in_models)
    if engine.dialect.name == "sqlite":
        normalize = lambda text: re.sub(r"\s+", " ", text).strip()  # noqa: E731
        assert {k: normalize(v) for k, v in in_store.items()} == {
            k: normalize(v) for k, v in in_models.items()
        }


def test_every_check_constraint_has_a_bad_row_case() -> None:
    assert set(BAD_VALUES) == set(_model_check_constraints())


def test_the_valid_graph_is_accepted(migrated: Engine) -> None:
    with migrated.connect() as connection, connection.begin() as transaction:
        _insert_graph(connection, valid_rows())
        transaction.rollback()


@pytest.mark.parametrize("constraint", sorted(BAD_VALUES))
def test_check_constraint_refuses_bad_row(migrated: Engine, constraint: str) -> None:
    table, bad = BAD_VALUES[constraint]
    rows = valid_rows()
    rows[table] = {**rows[table], **bad}
    with migrated.connect() as connection, connection.begin() as transaction:
        with pytest.raises(IntegrityError, match=constraint):
            _insert_graph(connection, rows)
        transaction.rollback()


@pytest.mark.parametrize(
    ("table", "column", "missing_id"),
    [
        ("episode", "patient_id", 999),
        ("visit", "episode_id", 999),
        ("ionto_session", "device_id", 999),
        ("outcome_measurement", "episode_id", 999),
        ("session_trace", "session_id", 999),
    ],
)
def test_foreign_keys_are_enforced(
    migrated: Engine, table: str, column: str, missing_id: int
) -> None:
    rows = valid_rows()
    rows[table] = {**rows[table], column: missing_id}
    with migrated.connect() as connection, connection.begin() as transaction:
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            _insert_graph(connection, rows)
        transaction.rollback()


@pytest.mark.parametrize(
    ("table", "key_columns"),
    [
        ("import_file", ("sha256",)),
        ("patient", ("pseudonym",)),
        ("episode", ("episode_key",)),
        ("visit", ("visit_key",)),
        ("ionto_session", ("session_key", "version")),
        ("outcome_measurement", ("episode_id", "instrument", "measured_on")),
    ],
)
def test_natural_keys_refuse_a_second_copy(
    migrated: Engine, table: str, key_columns: tuple[str, ...]
) -> None:
    rows = valid_rows()
    copy = {**rows[table], "id": 2}
    unique_by_design = {"sha256", "pseudonym", "episode_key", "visit_key", "session_key"}
    for column in ("sha256", "pseudonym", "episode_key", "visit_key", "content_sha256"):
        if column in copy and column not in key_columns and column in unique_by_design:
            copy[column] = "z" * 64
    with migrated.connect() as connection, connection.begin() as transaction:
        _insert_graph(connection, rows)
        with pytest.raises(IntegrityError, match=r"(?i)unique|duplicate"):
            connection.execute(TABLES[table].insert().values(**copy))
        transaction.rollback()


def test_naive_timestamps_are_refused(migrated: Engine) -> None:
    """A timestamp without a zone is never guessed to be UTC."""
    import datetime as dt

    from sqlalchemy.exc import StatementError

    rows = valid_rows()
    rows["ionto_session"] = {
        **rows["ionto_session"],
        "started_at_utc": dt.datetime(2026, 3, 2, 9, 30),
    }
    with migrated.connect() as connection, connection.begin() as transaction:
        with pytest.raises(StatementError, match="timezone"):
            _insert_graph(connection, rows)
        transaction.rollback()


def test_info_counts_rows(migrated: Engine) -> None:
    with migrated.connect() as connection, connection.begin() as transaction:
        _insert_graph(connection, valid_rows())
        transaction.commit()
    try:
        counts = store.info(migrated).row_counts
        assert counts["ionto_session"] == 1
        assert counts["patient"] == 1
    finally:
        with migrated.begin() as connection:
            for table in reversed(SQLModel.metadata.sorted_tables):
                connection.execute(table.delete())


def test_a_store_with_rows_migrates_up_and_down_keeping_rows_and_rules(
    empty_engine: Engine,
) -> None:
    """Revision 0003 rebuilds SQLite tables (batch mode): rows, references and rules survive."""
    store.upgrade(empty_engine, "0002")
    with empty_engine.begin() as connection:
        insert_as_stored(connection, rows_before_0004())
    counts = store.info(empty_engine).row_counts
    store.upgrade(empty_engine, "0003")
    assert store.current_revision(empty_engine) == "0003"
    assert store.info(empty_engine).row_counts == counts
    store.downgrade(empty_engine, "0002")
    assert store.current_revision(empty_engine) == "0002"
    assert store.info(empty_engine).row_counts == counts
    store.upgrade(empty_engine, "0003")
    visit = {**valid_rows()["visit"], "id": 2, "visit_key": "w" * 64}
    for bad, constraint in (
        ({"episode_id": 999}, "FOREIGN KEY|foreign key"),
        ({"kind": "party"}, "ck_visit_kind"),
    ):
        with pytest.raises(IntegrityError, match=constraint), empty_engine.begin() as connection:
            connection.execute(TABLES["visit"].insert().values(**{**visit, **bad}))


def test_the_url_comes_from_the_option_then_the_environment_then_the_demo_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    assert store.resolve_url() == (f"sqlite:///{store.DEFAULT_SQLITE_FILE}", True)
    monkeypatch.setenv(store.ENV_VAR, "postgres://clinic@db/ionto")
    assert store.resolve_url() == ("postgresql+psycopg://clinic@db/ionto", False)
    assert store.resolve_url("sqlite:///network.db") == ("sqlite:///network.db", False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://clinic@db/ionto", "mysql is not supported"),
        ("postgresql+psycopg2://clinic@db/ionto", "postgresql+psycopg2 is not supported"),
        ("nonsense://x", "nonsense is not supported"),
        ("ionto.db", "write sqlite:///ionto.db"),
        ("://", "cannot be read as a URL"),
    ],
)
def test_unsupported_urls_are_refused_naming_what_works(url: str, expected: str) -> None:
    with pytest.raises(StoreError, match=re.escape(expected)) as refused:
        store.resolve_url(url)
    assert "sqlite:///" in str(refused.value) and "postgresql://" in str(refused.value)
    assert isinstance(refused.value, IontoError)


def test_a_reader_never_creates_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "ionto.db"
    with pytest.raises(StoreError, match=f"no store at {re.escape(str(path))}: run `ionto db"):
        store.connect(f"sqlite:///{path}", create=False)
    assert not path.exists()
    engine = store.connect(f"sqlite:///{path}")
    store.check_reachable(engine)
    engine.dispose()
    assert path.is_file()


def test_a_new_store_needs_its_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist; create it first"):
        store.connect(f"sqlite:///{tmp_path / 'nowhere' / 'ionto.db'}")
    assert not (tmp_path / "nowhere").exists()


def test_a_store_that_does_not_answer_fails_when_checked(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"could not be reached: .*refused"):
        store.check_reachable(store.connect("postgresql://postgres@127.0.0.1:1/x"))
    (tmp_path / "notes.db").write_text("call Ann back on Tuesday\n")
    with pytest.raises(StoreError, match="file is not a database"):
        store.check_reachable(store.connect(f"sqlite:///{tmp_path / 'notes.db'}", create=False))


def test_readers_refuse_a_store_at_another_revision(empty_engine: Engine) -> None:
    with pytest.raises(StoreError, match="is empty"):
        store.require_revision(empty_engine)
    store.upgrade(empty_engine, "0002")
    with pytest.raises(StoreError, match=f"revision 0002, this version reads {SCHEMA_REVISION}"):
        store.require_revision(empty_engine)
    store.upgrade(empty_engine)
    store.require_revision(empty_engine)
