"""Looking many keys up at once: key lists in slices, one parameter per list on PostgreSQL.

``column IN (...)`` with hundreds of keys is a statement whose text changes with the
number of keys; SQLAlchemy renders one parameter per key and psycopg parses the text anew
each time. On PostgreSQL the keys travel as one array parameter (``column = ANY(...)``),
so the statement is the same for any number of keys. SQLite has no arrays: there the
keys stay a list, in slices below SQLite's smallest limit on parameters.

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

from collections.abc import Sequence

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

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
