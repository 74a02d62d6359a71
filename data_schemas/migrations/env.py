"""Alembic environment: runs on the engine/connection handed over by data_schemas.store."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from data_schemas import tables  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    with config.attributes["engine"].begin() as new_connection:
        _run(new_connection)
