"""Connecting to the store (SQLite file or PostgreSQL) and migrating it.

The store URL comes from the caller, from ``IONTO_DATABASE_URL``, or defaults to a SQLite
file ``ionto.db`` in the working directory. ``postgresql://`` URLs use psycopg 3.

Examples
--------
>>> engine = connect("sqlite://")
>>> upgrade(engine)
>>> info(engine).backend
'sqlite'
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, event, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel, create_engine

from data_schemas import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

ENV_VAR = "IONTO_DATABASE_URL"
DEFAULT_SQLITE_FILE = "ionto.db"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class StoreInfo:
    """What ``ionto db info`` prints: backend, schema revision and row counts."""

    url: str
    backend: str
    revision: str | None
    row_counts: dict[str, int]

    def summary(self) -> pd.DataFrame:
        """Row counts per table as a DataFrame."""
        return pd.DataFrame(
            {"table": list(self.row_counts), "rows": list(self.row_counts.values())}
        )


def resolve_url(url: str | None = None) -> tuple[str, bool]:
    """The store URL to use, and whether it is the default.

    Examples
    --------
    >>> resolve_url("postgresql://postgres@127.0.0.1/test")[0]
    'postgresql+psycopg://postgres@127.0.0.1/test'
    """
    chosen = url or os.environ.get(ENV_VAR)
    if not chosen:
        return f"sqlite:///{DEFAULT_SQLITE_FILE}", True
    parsed = make_url(chosen)
    if parsed.drivername in ("postgresql", "postgres"):
        chosen = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return chosen, False


def _configure_sqlite(dbapi_connection: object, _record: object) -> None:
    """Foreign keys on; a write-ahead log so readers never block the importer.

    ``synchronous=NORMAL`` in WAL mode keeps every committed transaction whole through a
    crash of the process (a power cut may lose the last commits, never half of one).
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so that
    # SAVEPOINTs nest inside them (the SQLAlchemy recipe for pysqlite).
    dbapi_connection.isolation_level = None


def _begin_sqlite(connection: object) -> None:
    connection.exec_driver_sql("BEGIN")


def connect(url: str | None = None) -> Engine:
    """An engine for the store; SQLite gets foreign keys enforced on every connection.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL; ``None`` reads ``IONTO_DATABASE_URL`` or uses ``ionto.db``.
    """
    resolved, _ = resolve_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() == "sqlite":
        in_memory = parsed.database in (None, "", ":memory:")
        engine = create_engine(
            resolved,
            connect_args={"check_same_thread": False},
            poolclass=StaticPool if in_memory else None,
        )
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "begin", _begin_sqlite)
        return engine
    return create_engine(resolved, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine`` (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


@contextmanager
def _migrating(engine: Engine) -> Iterator[Config]:
    """An Alembic configuration whose migrations run in one transaction on ``engine``.

    On SQLite a migration that rebuilds a table runs as SQLite prescribes for schema
    changes: foreign keys off for the transaction, every reference checked before the
    commit (a broken one rolls the migration back), foreign keys on again.
    """
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # must be set outside a transaction
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                config = alembic_config(engine)
                config.attributes["connection"] = connection
                yield config
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the store to ``revision``, in one transaction."""
    with _migrating(engine) as config:
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the store back to ``revision``, in one transaction (rows are kept)."""
    with _migrating(engine) as config:
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The store's Alembic revision, or None for an empty store."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def info(engine: Engine) -> StoreInfo:
    """Backend, schema revision and row counts of every table."""
    existing = set(inspect(engine).get_table_names())
    counts: dict[str, int] = {}
    with engine.connect() as connection:
        for name, table in SQLModel.metadata.tables.items():
            if name in existing:
                counts[name] = connection.execute(select(func.count()).select_from(table)).one()[0]
    return StoreInfo(
        url=engine.url.render_as_string(hide_password=True),
        backend=engine.dialect.name,
        revision=current_revision(engine),
        row_counts=dict(sorted(counts.items())),
    )
