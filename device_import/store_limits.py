"""The database's own limits, checked before a row reaches it, the same on both backends.

SQLite stores text of any length, a NUL character and a 64-bit integer in any column;
PostgreSQL refuses text longer than its column, any NUL, and an integer beyond its
column's range, and a refused statement fails the whole transaction. The loader checks
each row against the column it is bound for, so a value SQLite would take and PostgreSQL
would not is a quarantined file on both, with its table, record and field.

Examples
--------
>>> from sqlalchemy import Column, Integer, MetaData, String, Table
>>> table = Table("t", MetaData(), Column("n", Integer), Column("s", String(3)))
>>> check_row(table, {"n": 1, "s": "abc"}, "a.csv", "t record 1")
>>> check_row(table, {"n": 1, "s": "a\\x00"}, "a.csv", "t record 2")
Traceback (most recent call last):
...
device_import.problems.FileRejected: a.csv, t record 2, field s: text with a NUL character: ...
>>> check_row(table, {"n": 3_000_000_000}, "a.csv", "t record 3")
Traceback (most recent call last):
...
device_import.problems.FileRejected: a.csv, t record 3, field n: number too large for the store ...
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, SmallInteger, Table

from device_import.problems import reject

INTEGER_RANGES: tuple[tuple[type, int], ...] = (
    (BigInteger, 2**63 - 1),
    (SmallInteger, 2**15 - 1),
    (Integer, 2**31 - 1),
)
"""The largest value of each integer column type on PostgreSQL (most specific first)."""


def _integer_limit(column_type: object) -> int | None:
    for kind, limit in INTEGER_RANGES:
        if isinstance(column_type, kind):
            return limit
    return None


def check_row(table: Table, row: dict, file: str, record: str) -> None:
    """Refuse a value longer than its column, holding NUL, or beyond its integer range."""
    for name, value in row.items():
        if name not in table.c or value is None or isinstance(value, bool):
            continue
        column_type = table.c[name].type
        if isinstance(value, str):
            limit = getattr(column_type, "length", None)
            if "\x00" in value:
                raise reject(
                    file,
                    "text with a NUL character: no export's value holds one",
                    record=record,
                    field=name,
                    expected="text without NUL (0x00)",
                    got=value,
                )
            if limit and len(value) > limit:
                raise reject(
                    file,
                    "text too long for the store",
                    record=record,
                    field=name,
                    expected=f"at most {limit} characters",
                    got=value,
                )
        elif isinstance(value, int):
            limit = _integer_limit(column_type)
            if limit is not None and not -limit - 1 <= value <= limit:
                raise reject(
                    file,
                    "number too large for the store",
                    record=record,
                    field=name,
                    expected=f"between {-limit - 1:,} and {limit:,}",
                    got=value,
                )


def check_rows(table: Table, rows: list[dict], file: str) -> None:
    """:func:`check_row` for each row, numbered from 1 in the table's records."""
    for index, row in enumerate(rows):
        check_row(table, row, file, f"{table.name} record {index + 1}")
