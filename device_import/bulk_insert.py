"""Inserting many rows at once: COPY on PostgreSQL, the driver's executemany on SQLite.

SQLAlchemy Core's executemany spends most of its time building one parameter dictionary
per row. For the importers' bulk loads (an EHR table of 50,000 outcome rows, say) the
rows are handed to the driver directly, converted once by each column's own bind
processor, so what reaches the database is exactly what Core would have sent. The
insert runs on the caller's connection, inside its open transaction and savepoints.

Examples
--------
>>> import datetime as dt
>>> from sqlalchemy import Column, Date, Integer, MetaData, Table, create_engine, select
>>> table = Table("t", MetaData(), Column("id", Integer, primary_key=True), Column("d", Date))
>>> engine = create_engine("sqlite://")
>>> table.metadata.create_all(engine)
>>> with engine.begin() as connection:
...     insert_rows(connection, table, [{"d": dt.date(2026, 3, 1)}, {"d": None}])
...     connection.execute(select(table.c.d)).scalars().all()
[datetime.date(2026, 3, 1), None]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Table, insert
from sqlalchemy.exc import DBAPIError


def _converters(connection: Connection, table: Table, columns: Sequence[str]) -> list:
    dialect = connection.dialect
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]


def _tuples(rows: list[dict], columns: Sequence[str], converters: list) -> list[tuple]:
    converting: list[tuple[int, Callable]] = [
        (position, convert) for position, convert in enumerate(converters) if convert
    ]
    if not converting:
        return [tuple(row[name] for name in columns) for row in rows]
    converted: list[dict] = [{} for _ in converting]  # a date repeats down a column
    values = []
    for row in rows:
        record = [row[name] for name in columns]
        for (position, convert), known in zip(converting, converted, strict=True):
            value = record[position]
            if value is None:
                continue
            try:
                record[position] = known[value]
            except KeyError:
                record[position] = known[value] = convert(value)
            except TypeError:  # not hashable
                record[position] = convert(value)
        values.append(tuple(record))
    return values


def insert_rows(connection: Connection, table: Table, rows: list[dict]) -> None:
    """Insert ``rows`` (dicts with the same keys, named by column) into ``table``.

    Raises KeyError when a row lacks a column the first row has, and the database's error
    (a constraint, a type) wrapped as Core's insert would wrap it (``IntegrityError``...).
    """
    if not rows:
        return
    columns = list(rows[0])
    values = _tuples(rows, columns, _converters(connection, table, columns))
    if connection.dialect.name == "postgresql":
        names = ", ".join(connection.dialect.identifier_preparer.quote(name) for name in columns)
        command = f"COPY {table.name} ({names}) FROM STDIN"
        cursor = connection.connection.driver_connection.cursor()
        try:
            with cursor.copy(command) as copy:
                for record in values:
                    copy.write_row(record)
        except connection.dialect.loaded_dbapi.Error as error:  # as Core would raise it
            raise DBAPIError.instance(
                command, None, error, connection.dialect.loaded_dbapi.Error
            ) from error
        return
    statement = insert(table).compile(dialect=connection.dialect, column_keys=columns)
    order = list(statement.positiontup)
    if order != columns:  # the compiler orders bind parameters by table column
        position = {name: index for index, name in enumerate(columns)}
        values = [tuple(record[position[name]] for name in order) for record in values]
    connection.exec_driver_sql(str(statement), values)
