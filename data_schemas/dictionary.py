"""The data dictionary of the store, generated from the SQLModel tables.

``python -m data_schemas.dictionary`` rewrites ``data_schemas/README.md``; a test fails
when the committed file differs from what the models say.

Examples
--------
>>> "## ionto_session" in render_data_dictionary()
True
"""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy import CheckConstraint, Column, Table
from sqlmodel import SQLModel

from data_schemas import tables
from data_schemas.tables import SCHEMA_REVISION

DICTIONARY_PATH = Path(__file__).parent / "README.md"

_PREAMBLE = f"""# Data dictionary of the ionto-analytics store

Generated from `data_schemas/tables.py` by `python -m data_schemas.dictionary`; do not
edit by hand (a test fails when this file is stale). Schema revision {SCHEMA_REVISION}.

Units are in the column names: mA (milliampere), mA_min (mA·min, the iontophoresis dose),
V (volt), ohm, cm2 (cm²), mg_per_mL, mL, s (seconds), weeks. Timestamps ending in `_utc`
are timezone-aware UTC; `_date`/`_on` columns are calendar dates. Keys ending in `_key`,
`serial_hash` and `pseudonym` are keyed hashes (HMAC-SHA256 with the site key): the store
holds no direct identifier.
"""


def _column_type(column: Column) -> str:
    type_name = column.type.__class__.__name__
    rename = {"AutoString": "text", "UTCDateTime": "timestamp (UTC)", "LargeBinary": "bytes"}
    return rename.get(type_name, type_name.lower())


def _column_notes(table: Table, column: Column) -> str:
    notes = []
    if column.primary_key:
        notes.append("primary key")
    if column.unique:
        notes.append("unique")
    for key in column.foreign_keys:
        notes.append(f"→ {key.target_fullname}")
    return ", ".join(notes)


def _generic_description(column: Column) -> str:
    if column.name == "id":
        return "surrogate key"
    if column.name == "source_file_id":
        return "provenance: the imported file (SHA-256, format, importer version)"
    if column.name.endswith("_key"):
        return "natural key: keyed hash of the source system's identifier"
    for key in column.foreign_keys:
        return f"the {key.column.table.name} row"
    return ""


def _render_table(table: Table, model: type[SQLModel]) -> list[str]:
    doc = (model.__doc__ or "").strip().splitlines()[0]
    fields = model.model_fields
    lines = [f"## {table.name}", "", doc, "", "| column | type | null | keys | description |"]
    lines.append("|---|---|---|---|---|")
    for column in table.columns:
        field = fields.get(column.name)
        description = (field.description if field else None) or _generic_description(column)
        description = description.replace("|", "\\|")
        lines.append(
            f"| `{column.name}` | {_column_type(column)} | "
            f"{'yes' if column.nullable else 'no'} | {_column_notes(table, column)} | "
            f"{description} |"
        )
    checks = sorted(
        (constraint.name, str(constraint.sqltext))
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    )
    uniques = sorted(
        constraint.name
        for constraint in table.constraints
        if constraint.__class__.__name__ == "UniqueConstraint" and len(constraint.columns) > 1
    )
    if checks:
        lines += ["", "Checks:", ""]
        lines += [f"- `{name}`: `{text}`" for name, text in checks]
    for name in uniques:
        constraint = next(c for c in table.constraints if c.name == name)
        columns = ", ".join(column.name for column in constraint.columns)
        lines += ["", f"Unique together (`{name}`): {columns}"]
    return [*lines, ""]


def render_data_dictionary() -> str:
    """The data dictionary as Markdown, one section per table."""
    models = {
        model.__tablename__: model
        for model in vars(tables).values()
        if isinstance(model, type) and issubclass(model, SQLModel) and model is not SQLModel
    }
    lines = [_PREAMBLE]
    for table in SQLModel.metadata.sorted_tables:
        lines += _render_table(table, models[table.name])
    return "\n".join(lines)


def main() -> None:
    """Write the data dictionary next to the models."""
    DICTIONARY_PATH.write_text(render_data_dictionary(), encoding="utf-8")
    sys.stdout.write(f"wrote {DICTIONARY_PATH}\n")


if __name__ == "__main__":
    main()
