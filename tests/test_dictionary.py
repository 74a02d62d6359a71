"""The committed data dictionary is what the models say."""

from __future__ import annotations

from sqlmodel import SQLModel

from data_schemas.dictionary import DICTIONARY_PATH, render_data_dictionary


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    for block in text.split("\n## ")[1:]:
        name, *lines = block.splitlines()
        sections[name] = lines
    return sections


def test_data_dictionary_is_in_sync_with_the_models() -> None:
    committed = DICTIONARY_PATH.read_text(encoding="utf-8")
    assert committed == render_data_dictionary(), (
        "data_schemas/README.md is stale: run `make dictionary` and commit it"
    )


def test_every_table_and_column_is_described() -> None:
    sections = _sections(render_data_dictionary())
    undescribed = []
    for table in SQLModel.metadata.tables.values():
        rows = {line.split("`")[1]: line for line in sections[table.name] if line.startswith("| `")}
        for column in table.columns:
            if rows[column.name].endswith("|  |"):
                undescribed.append(f"{table.name}.{column.name}")
    assert undescribed == []
