"""An allow-list store: no free text, no file names; the site key's fingerprint

``intervention.details`` (free text that carried names and phone numbers) is dropped; the
natural key of an intervention becomes (visit, CPT code). ``import_file.file_name`` is
replaced by ``file_name_hash`` (a keyed hash written by the importer; empty for files
recorded earlier, whose names are discarded, not hashed: the migration has no key) and
``file_extension`` (a known extension, else ``other``). ``quarantine_reason`` texts written
before this revision may quote values, so they are replaced by a note that says so. A new
``site_key`` table holds the keyed fingerprint of the site key. SQLite tables are rebuilt
(batch mode), PostgreSQL tables are altered in place.

Downgrade restores the columns, not their content: ``details`` is empty and ``file_name``
is the SHA-256 prefix plus the extension.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECREATE = "auto"
"""SQLite rebuilds a table to change its columns; PostgreSQL alters it in place."""

EXTENSIONS = ("", ".csv", ".dat", ".json", ".jsonl", ".log", ".ndjson", ".tsv", ".txt", ".xml")
"""``data_schemas.tables.FILE_EXTENSIONS`` at this revision (a migration never imports models)."""

EXTENSION_CHECK = (
    "(" + " OR ".join(f"\"file_extension\" = '{e}'" for e in (*EXTENSIONS, "other")) + ")"
)
OLD_REASON = "set aside before revision 0004; reimport the file to see the reason"

_LOG = logging.getLogger("alembic.runtime.migration")
_LEDGER = sa.table(
    "import_file",
    sa.column("id", sa.Integer),
    sa.column("sha256", sa.String),
    sa.column("file_name", sa.String),
    sa.column("file_extension", sa.String),
    sa.column("quarantine_reason", sa.String),
)
_INTERVENTION = sa.table(
    "intervention", sa.column("id", sa.Integer), sa.column("visit_id"), sa.column("cpt_code")
)


def _extension(name: str) -> str:
    dot = name.rfind(".")
    found = name[dot:].lower() if dot > 0 else ""
    return found if found in EXTENSIONS else "other"


def _drop_duplicate_interventions() -> None:
    """Keep one intervention per (visit, CPT code): rows that differed only in free text."""
    first = (
        sa.select(sa.func.min(_INTERVENTION.c.id))
        .group_by(_INTERVENTION.c.visit_id, _INTERVENTION.c.cpt_code)
        .scalar_subquery()
    )
    dropped = op.get_bind().execute(_INTERVENTION.delete().where(_INTERVENTION.c.id.not_in(first)))
    if dropped.rowcount:
        _LOG.warning(
            "revision 0004: %d interventions that repeated a visit's CPT code and differed "
            "only in their free-text details were merged into the first",
            dropped.rowcount,
        )


def upgrade() -> None:
    op.create_table(
        "site_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recorded_at_utc", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_key")),
        sa.UniqueConstraint("fingerprint", name=op.f("uq_site_key_fingerprint")),
    )
    with op.batch_alter_table("import_file", recreate=RECREATE) as batch:
        batch.add_column(
            sa.Column("file_name_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch.add_column(
            sa.Column(
                "file_extension",
                sqlmodel.sql.sqltypes.AutoString(length=8),
                nullable=False,
                server_default="",
            )
        )
    bind = op.get_bind()
    names = bind.execute(sa.select(_LEDGER.c.id, _LEDGER.c.file_name)).all()
    if names:
        bind.execute(
            _LEDGER.update()
            .where(_LEDGER.c.id == sa.bindparam("row_id"))
            .values(file_extension=sa.bindparam("extension")),
            [{"row_id": row_id, "extension": _extension(name)} for row_id, name in names],
        )
    bind.execute(
        _LEDGER.update()
        .where(_LEDGER.c.quarantine_reason.is_not(None))
        .values(quarantine_reason=OLD_REASON)
    )
    with op.batch_alter_table("import_file", recreate=RECREATE) as batch:
        batch.drop_column("file_name")
        batch.create_check_constraint("ck_import_file_extension", EXTENSION_CHECK)
    _drop_duplicate_interventions()
    with op.batch_alter_table("intervention", recreate=RECREATE) as batch:
        batch.drop_constraint("uq_intervention_visit_code", type_="unique")
        batch.drop_column("details")
        batch.create_unique_constraint("uq_intervention_visit_code", ["visit_id", "cpt_code"])


def downgrade() -> None:
    with op.batch_alter_table("intervention", recreate=RECREATE) as batch:
        batch.drop_constraint("uq_intervention_visit_code", type_="unique")
        batch.add_column(
            sa.Column(
                "details",
                sqlmodel.sql.sqltypes.AutoString(length=200),
                nullable=False,
                server_default="",
            )
        )
        batch.create_unique_constraint(
            "uq_intervention_visit_code", ["visit_id", "cpt_code", "details"]
        )
    with op.batch_alter_table("import_file", recreate=RECREATE) as batch:
        batch.drop_constraint("ck_import_file_extension", type_="check")
        batch.add_column(
            sa.Column(
                "file_name",
                sqlmodel.sql.sqltypes.AutoString(length=255),
                nullable=False,
                server_default="",
            )
        )
    bind = op.get_bind()
    rows = bind.execute(sa.select(_LEDGER.c.id, _LEDGER.c.sha256, _LEDGER.c.file_extension)).all()
    if rows:
        bind.execute(
            _LEDGER.update()
            .where(_LEDGER.c.id == sa.bindparam("row_id"))
            .values(file_name=sa.bindparam("name")),
            [
                {"row_id": row_id, "name": sha256[:12] + ("" if ext == "other" else ext)}
                for row_id, sha256, ext in rows
            ],
        )
    with op.batch_alter_table("import_file", recreate=RECREATE) as batch:
        batch.drop_column("file_extension")
        batch.drop_column("file_name_hash")
    op.drop_table("site_key")
