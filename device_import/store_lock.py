"""One import writes at a time: the store's write lock, taken first in every transaction.

On PostgreSQL a transaction-level advisory lock serializes the loads of imports running at
once (no duplicates, no deadlock). On SQLite the transaction claims the database's write
lock with its first statement, before it reads anything: a second import then waits for
the first (up to the store's busy timeout) instead of failing at once with "database is
locked" when its snapshot went stale, and a wait that runs out says so in one line.

Examples
--------
>>> from sqlalchemy import create_engine
>>> from sqlmodel import SQLModel
>>> from data_schemas import tables
>>> engine = create_engine("sqlite://")
>>> SQLModel.metadata.create_all(engine)
>>> with engine.begin() as connection:
...     lock_store(connection)
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.exc import OperationalError

from data_schemas.errors import StoreError

ADVISORY_LOCK_ID = 0x10470
"""PostgreSQL advisory lock taken while a file loads (serializes concurrent imports)."""
_CLAIM_SQLITE = text("UPDATE import_file SET id = id WHERE 0")
"""A write that changes nothing: SQLite takes its write lock for it (waiting if need be)."""


class StoreBusy(StoreError):
    """Another import held the store's write lock for longer than the wait allows."""


def lock_store(connection: Connection) -> None:
    """Take the store's write lock for the rest of ``connection``'s transaction."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": ADVISORY_LOCK_ID})
        return
    try:
        connection.execute(_CLAIM_SQLITE)
    except OperationalError as error:
        if "locked" not in str(error.orig) and "busy" not in str(error.orig):
            raise
        raise StoreBusy(
            "the store is busy: another import is running; try again when it has finished"
        ) from None
