"""Reading a CSV table column by column, with the same errors as row-by-row reading.

An EHR export repeats the same values down a column (a visit date, an episode id, a
score), so each column is converted once per distinct value: the conversion is a
:class:`~device_import.parsers.common.FieldReader` call on the first row that holds the
value, which is also what raises, naming that row's line, when the value is bad.
Records are validated a table at a time (one pydantic call for the whole list), and a
record that fails names its line.

Examples
--------
>>> table = ColumnReader("v.csv", ["visit_date", "score"],
...                      [["2026-03-01", "4"], ["2026-03-01", " "]], [2, 3])
>>> table.convert("visit_date", lambda fields, name: fields.date(name))
[datetime.date(2026, 3, 1), datetime.date(2026, 3, 1)]
>>> table.text("score", required=False)
['4', None]
>>> from device_import.problems import FileRejected
>>> try:
...     table.text("score")
... except FileRejected as error:
...     print(error.problem.record, "|", error.problem.reason)
line 3 | missing value in field score
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from data_schemas.records import list_adapter
from device_import.parsers.common import FieldReader
from device_import.problems import reject

Value = TypeVar("Value")
Model = TypeVar("Model", bound=BaseModel)


class ColumnReader:
    """Typed access to whole columns of one table (cells stripped, empty cells None)."""

    def __init__(
        self, file: str, header: list[str], rows: list[list[str]], lines: list[int]
    ) -> None:
        """``header`` in lower case; ``lines[i]`` is the file line of ``rows[i]``."""
        self.file = file
        self.header = header
        self.rows = rows
        self.lines = lines
        self._position = {name: index for index, name in enumerate(header)}
        self._columns: dict[str, list[str | None]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def fields(self, index: int) -> FieldReader:
        """Row ``index`` as a FieldReader that names its line."""
        values = dict(zip(self.header, self.rows[index], strict=True))
        return FieldReader(self.file, f"line {self.lines[index]}", values, lowercase=True)

    def each_row(self) -> Iterator[FieldReader]:
        """Every row as a FieldReader, in file order (for tables read row by row)."""
        return (self.fields(index) for index in range(len(self.rows)))

    def values(self, name: str) -> list[str | None]:
        """The stripped cells of a column; None where empty or where the column is absent."""
        key = name.lower()
        column = self._columns.get(key)
        if column is None:
            position = self._position.get(key)
            if position is None:
                column = [None] * len(self.rows)
            else:
                column = [row[position].strip() or None for row in self.rows]
            self._columns[key] = column
        return column

    def text(self, name: str, *, required: bool = True) -> list[str | None]:
        """A text column; a missing required value raises naming its line."""
        column = self.values(name)
        if required and None in column:
            self.fields(column.index(None)).text(name)
        return column

    def convert(self, name: str, read: Callable[[FieldReader, str], Value]) -> list[Value]:
        """``read(fields, name)`` for each row, computed once per distinct cell value."""
        known: dict[str | None, Value] = {}
        converted = []
        for index, value in enumerate(self.values(name)):
            if value not in known:
                known[value] = read(self.fields(index), name)
            converted.append(known[value])
        return converted

    def validated(self, model: type[Model], records: list[dict]) -> list[Model]:
        """``records`` (one per row) validated as ``model``; a bad one names its line."""
        try:
            return list_adapter(model).validate_python(records)
        except ValidationError as error:
            first = error.errors()[0]
            index, *where = first["loc"]
            place = ".".join(str(part) for part in where)
            record = f"line {self.lines[int(index)]}"
            raise reject(self.file, first["msg"], record=record, field=place or None) from None


def read_table(text: str, file: str) -> ColumnReader:
    """A CSV table's rows (blank rows skipped); a row of the wrong width raises.

    A field longer than the ``csv`` module's limit (131,072 characters) is refused with
    its line, whatever its column: no export's value is that long.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
        width = len(header)
        rows: list[list[str]] = []
        lines: list[int] = []
        for row in reader:
            _add_row(row, width, reader.line_num, file, rows, lines)
    except csv.Error:
        raise reject(
            file,
            "a field is longer than 131,072 characters or its quotes are unbalanced",
            record=f"line {reader.line_num}",
            expected="fields of an EHR export (short values, balanced quotes)",
            found="a field the CSV reader cannot take",
        ) from None
    return ColumnReader(file, header, rows, lines)


def _add_row(
    row: list[str], width: int, line: int, file: str, rows: list[list[str]], lines: list[int]
) -> None:
    """Keep ``row`` (read at ``line``) unless blank; a row of the wrong width raises."""
    if not "".join(row).strip():
        return
    if len(row) != width:
        raise reject(
            file,
            "row has the wrong number of fields (truncated or malformed row?)",
            record=f"line {line}",
            expected=f"{width} fields",
            found=f"{len(row)} fields",
        )
    rows.append(row)
    lines.append(line)
