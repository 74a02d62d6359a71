"""Looking many keys up at once: key lists in slices, one parameter per list on PostgreSQL.

``column IN (...)`` with hundreds of keys is a statement whose text changes with the
number of keys; SQLAlchemy renders one parameter per key and psycopg parses the text anew
each time. On PostgreSQL the keys travel as one array parameter (``column = ANY(...)``),
so the statement is the same for any number of keys. SQLite has no arrays: there the
keys stay a list, in slices below SQLite's smallest limit on parameters.
:func:`key_ids` maps natural keys to row ids this way for every loader.

Examples
--------
>>> from sqlalchemy import String, column
>>> from sqlalchemy.dialects import postgresql, sqlite
>>> str(one_of("postgresql", column("k", String), ["a", "b"]).compile(dialect=postgresql.dialect()))
'k = ANY (%(values_1)s::VARCHAR[])'
>>> str(one_of("sqlite", column("k", String), ["a", "b"]).compile(dialect=sqlite.dialect()))
'k IN (__[POSTCOMPILE_k_1])'
>>> chunks([1, 2, 3], 2)
[[1, 2], [3]]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, Connection, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import SQLModel

from data_schemas import tables as _tables  # noqa: F401  (registers the store tables)

CHUNK = 900
"""Keys per lookup: below SQLite's smallest limit on a statement's parameters."""


def chunks(items: list, size: int = CHUNK) -> list[list]:
    """``items`` in slices of at most ``size``."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def one_of(dialect: str, column: ColumnElement, values: Sequence) -> ColumnElement[bool]:
    """``column`` is one of ``values``: one array parameter on PostgreSQL (``dialect``)."""
    if dialect == "postgresql":
        return column == any_(bindparam("values", list(values), ARRAY(column.type), unique=True))
    return column.in_(values)


def key_ids(connection: Connection, table: str, key_column: str, keys: Iterable) -> dict:
    """Map natural key → id for the keys that exist (current session versions only)."""
    target = SQLModel.metadata.tables[table]
    id_column = target.c.id
    wanted = sorted({key for key in keys if key is not None})
    found: dict = {}
    for chunk in chunks(wanted):
        query = select(target.c[key_column], id_column).where(
            one_of(connection.dialect.name, target.c[key_column], chunk)
        )
        if table == "ionto_session":
            query = query.where(target.c.is_current.is_(True))
        found.update((key, id_) for key, id_ in connection.execute(query))
    return found
