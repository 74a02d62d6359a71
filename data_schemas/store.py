"""Connecting to the store (SQLite file or PostgreSQL) and migrating it.

The store URL comes from the caller, from ``IONTO_DATABASE_URL``, or defaults to the demo
store, a SQLite file ``ionto.db`` in the working directory (what ``make demo`` writes).
``postgresql://`` URLs use psycopg 3. Anything else is refused with a :class:`StoreError`
that names the URLs that work; so is a SQLite file that does not exist when the caller
only reads (``connect(url, create=False)``), instead of silently creating an empty store.

Examples
--------
>>> engine = connect("sqlite://")
>>> upgrade(engine)
>>> info(engine).backend
'sqlite'
>>> resolve_url("mysql://clinic@db/ionto")
Traceback (most recent call last):
...
data_schemas.errors.StoreError: store URL 'mysql://clinic@db/ionto': mysql is not supported; ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event, func, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel, create_engine

from data_schemas import tables  # also registers the tables on SQLModel.metadata
from data_schemas.errors import StoreError
from data_schemas.store_names import DEFAULT_SQLITE_FILE, ENV_VAR, SUPPORTED_URLS

if TYPE_CHECKING:
    import pandas as pd
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
"""Where Alembic records the store's schema revision (one row, column ``version_num``)."""
MIGRATION_LOCK_ID = 0x10471
"""PostgreSQL advisory lock held while migrating: concurrent upgrades run one at a time."""
_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
"""Accepted driver names and the one each is opened with."""
CREATE_HINT = "run `ionto db upgrade` to create it, or `make demo` for the demo store"


@dataclass(frozen=True)
class StoreInfo:
    """What ``ionto db info`` prints: backend, schema revision and row counts."""

    url: str
    backend: str
    revision: str | None
    row_counts: dict[str, int]

    def summary(self) -> pd.DataFrame:
        """Row counts per table as a DataFrame."""
        import pandas as pd  # only here: reading the store's names must not import pandas

        return pd.DataFrame(
            {"table": list(self.row_counts), "rows": list(self.row_counts.values())}
        )


def resolve_url(url: str | None = None) -> tuple[str, bool]:
    """The store URL to use, and whether it is the default.

    ``url`` (the ``--db`` option) wins, then ``IONTO_DATABASE_URL``, then the demo store
    ``sqlite:///ionto.db``.

    Raises
    ------
    StoreError
        When the URL is not a URL (a bare file name gets the ``sqlite:///`` hint) or names
        a database other than SQLite or PostgreSQL.

    Examples
    --------
    >>> resolve_url("postgresql://postgres@127.0.0.1/test")[0]
    'postgresql+psycopg://postgres@127.0.0.1/test'
    >>> resolve_url("ionto.db")
    Traceback (most recent call last):
    ...
    data_schemas.errors.StoreError: store URL 'ionto.db' is a file name, not a URL; ...
    """
    chosen = url or os.environ.get(ENV_VAR)
    if not chosen:
        return f"sqlite:///{DEFAULT_SQLITE_FILE}", True
    origin = "" if url else f" (from {ENV_VAR})"
    if "://" not in chosen:
        raise StoreError(
            f"store URL {chosen!r}{origin} is a file name, not a URL; "
            f"for a SQLite file write sqlite:///{chosen}; for PostgreSQL postgresql://user@host/db"
        )
    try:
        parsed = make_url(chosen)
    except ArgumentError:
        raise StoreError(
            f"store URL {chosen!r}{origin} cannot be read as a URL; expected {SUPPORTED_URLS}"
        ) from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise StoreError(
            f"store URL {_shown(parsed)!r}{origin}: {parsed.drivername} is not supported; "
            f"expected {SUPPORTED_URLS}"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False), False


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory store or another backend."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


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


def connect(url: str | None = None, *, create: bool = True) -> Engine:
    """An engine for the store; SQLite gets foreign keys enforced on every connection.

    Parameters
    ----------
    url : str, optional
        SQLAlchemy URL; ``None`` reads ``IONTO_DATABASE_URL`` or uses ``ionto.db``.
    create : bool
        Whether a SQLite file that does not exist may be created (``False`` for readers).

    Raises
    ------
    StoreError
        When the URL is refused by :func:`resolve_url`, when ``create`` is False and the
        SQLite file does not exist, or when the folder for a new SQLite file is missing.

    Examples
    --------
    >>> connect("sqlite:////no/such/ionto.db", create=False)
    Traceback (most recent call last):
    ...
    data_schemas.errors.StoreError: no store at /no/such/ionto.db: run `ionto db upgrade` ...
    """
    resolved, _ = resolve_url(url)
    parsed = make_url(resolved)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(resolved, pool_pre_ping=True)
    path = _sqlite_file(parsed)
    if path is not None and not create and not path.is_file():
        raise StoreError(
            f"no store at {path.absolute()}: {CREATE_HINT}, or choose another with --db or "
            f"{ENV_VAR}"
        )
    if path is not None and create and not path.absolute().parent.is_dir():
        raise StoreError(
            f"the folder {path.absolute().parent} for the store {path.name} does not exist; "
            "create it first or choose another path"
        )
    engine = create_engine(
        resolved,
        connect_args={"check_same_thread": False},
        poolclass=StaticPool if path is None else None,
    )
    event.listen(engine, "connect", _configure_sqlite)
    event.listen(engine, "begin", _begin_sqlite)
    return engine


def check_reachable(engine: Engine) -> None:
    """Open and close one connection, so a store that does not answer fails here.

    Raises
    ------
    StoreError
        With the driver's first line: no server at that address, no such database, a
        refused login, a file that is not a SQLite database.

    Examples
    --------
    >>> check_reachable(connect("postgresql://nobody@127.0.0.1:1/none"))
    Traceback (most recent call last):
    ...
    data_schemas.errors.StoreError: the store postgresql+psycopg://nobody@127.0.0.1:1/none ...
    """
    try:
        with engine.connect():
            pass
    except DBAPIError as error:
        reason = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else "?"
        check = (
            "is it a store made by `ionto db upgrade`?"
            if engine.dialect.name == "sqlite"
            else f"check that the server runs and the URL (--db or {ENV_VAR}) is right"
        )
        raise StoreError(
            f"the store {_shown(engine.url)} could not be reached: {reason}; {check}"
        ) from None


def require_revision(engine: Engine, revision: str = tables.SCHEMA_REVISION) -> None:
    """Refuse a store whose schema is not at ``revision`` (the one this code reads).

    Raises
    ------
    StoreError
        When the store is empty or at another revision, saying how to migrate it.

    Examples
    --------
    >>> require_revision(connect("sqlite://"))
    Traceback (most recent call last):
    ...
    data_schemas.errors.StoreError: the store sqlite:// is empty (no schema revision): ...
    """
    found = current_revision(engine)
    if found == revision:
        return
    where = _shown(engine.url)
    if found is None:
        raise StoreError(f"the store {where} is empty (no schema revision): {CREATE_HINT}")
    raise StoreError(
        f"the store {where} is at schema revision {found}, this version reads {revision}: "
        "run `ionto db upgrade` (a store newer than the code needs a newer ionto-analytics)"
    )


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine`` (no alembic.ini needed).

    Alembic is imported here, not at the top: ``ionto db info`` and every reader of the store
    never migrate, and Alembic (with Mako and Pygments) costs a third of a second to import.
    """
    from alembic.config import Config

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
                if connection.dialect.name == "postgresql":  # two first imports: one migrates
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID}
                    )
                config = alembic_config(engine)
                config.attributes["connection"] = connection
                yield config
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise StoreError(
                            f"the migration broke foreign keys (first rows: {broken[:5]}); "
                            "it was rolled back and the store is unchanged"
                        )
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the store to ``revision``, in one transaction."""
    from alembic import command

    with _migrating(engine) as config:
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the store back to ``revision``, in one transaction (rows are kept)."""
    from alembic import command

    with _migrating(engine) as config:
        command.downgrade(config, revision)


def current_revision(engine: Engine) -> str | None:
    """The store's Alembic revision, or None for an empty store.

    Read from Alembic's version table with one query (what Alembic's own
    ``MigrationContext.get_current_revision`` reads), so a reader needs no Alembic.

    Raises
    ------
    StoreError
        When the version table holds more than one revision (branches this store never has).

    Examples
    --------
    >>> engine = connect("sqlite://")
    >>> current_revision(engine) is None
    True
    >>> upgrade(engine); current_revision(engine) == tables.SCHEMA_REVISION
    True
    """
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        found = connection.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").all()
    if len(found) > 1:
        raise StoreError(
            f"the store {_shown(engine.url)} records {len(found)} schema revisions "
            f"({sorted(r[0] for r in found)}); expected one: repair its {VERSION_TABLE} table"
        )
    return found[0][0] if found else None


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
