"""Multiply a store's patients in place, for the registry-scale benchmarks (not a test).

Emulating and importing 100,000 episodes takes far too long on this machine (10,000 take
about five minutes), so the large stores are built from an imported network whose
patient-level rows are copied inside the database, ``times - 1`` more times::

    ionto emulate --out net10k --seed 1 --clinics 20 --patients 10000
    ionto --db sqlite:///s10k.db import net10k/ehr net10k/devices
    cp s10k.db s100k.db            # PostgreSQL: CREATE DATABASE scale_100k TEMPLATE scale_10k
    PYTHONPATH=. .venv/bin/python bench/make_scale_store.py sqlite:///s100k.db --times 10

Each copy is one ``INSERT ... SELECT`` per table over the original rows: every id is
offset by ``copy x`` the table's largest original id, and every foreign key to a copied
table by the same offset of the table it refers to; every natural key (pseudonym,
episode, visit, prescription, session and patient-link keys, all keyed hashes of 64
characters) keeps its first 58 characters and gets ``~`` and the copy's number, so it
stays unique and within its column's 64 characters. What the copies share with the
original: the clinics, the devices, the site key and the import ledger (each copied row
keeps the ``source_file_id`` of its original, a valid file of the ledger, so the store's
``data_hash`` does not change). Scores, dates and every other column are copied as they
are: a copy is the same network treated again, so an estimate on the large store equals
the one on the original and only its standard error shrinks (a check that the copies are
complete). Copied tables: patient, patient_link, episode, prescription, visit,
intervention, ionto_session, session_trace, outcome_measurement, adverse_event.

The whole copy is one transaction, with the store's own constraints and foreign keys
enforced (SQLite: ``PRAGMA foreign_keys=ON``, then ``PRAGMA foreign_key_check``);
PostgreSQL's id sequences are moved past the new ids and the tables analysed.
Run ``ionto --db URL db info`` afterwards to see the counts.
"""

from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy import Connection, Table, text
from sqlmodel import SQLModel

from data_schemas import store
from data_schemas import tables as _tables  # noqa: F401  (registers the tables)

COPIED = (
    "patient",
    "patient_link",
    "episode",
    "prescription",
    "visit",
    "intervention",
    "ionto_session",
    "session_trace",
    "outcome_measurement",
    "adverse_event",
)
"""Tables copied, parents before children."""

NATURAL_KEYS = {
    "patient": "pseudonym",
    "patient_link": "source_key",
    "episode": "episode_key",
    "prescription": "prescription_key",
    "visit": "visit_key",
    "ionto_session": "session_key",
}
"""The unique keyed-hash column of each copied table that has one."""

KEPT_CHARS = 58
"""Characters of a natural key kept in a copy (+ ``~`` + 5 digits = 64)."""


def _id_column(table: Table) -> str:
    return "session_id" if table.name == "session_trace" else "id"


def _largest_ids(connection: Connection) -> dict[str, int]:
    out = {}
    for name in COPIED:
        column = _id_column(SQLModel.metadata.tables[name])
        query = text(f"SELECT COALESCE(MAX({column}), 0) FROM {name}")
        out[name] = connection.execute(query).scalar_one()
    return out


def _copy_statement(table: Table, copy: int, largest: dict[str, int]) -> str:
    """``INSERT ... SELECT`` of the original rows of ``table`` as copy number ``copy``."""
    select = []
    for column in table.columns:
        name = f'"{column.name}"'
        targets = {fk.column.table.name for fk in column.foreign_keys}
        copied_parent = next((t for t in targets if t in largest), None)
        if column.primary_key and copied_parent is None:
            select.append(f"{name} + {copy * largest[table.name]}")
        elif copied_parent is not None:
            select.append(f"{name} + {copy * largest[copied_parent]}")
        elif NATURAL_KEYS.get(table.name) == column.name:
            select.append(f"substr({name}, 1, {KEPT_CHARS}) || '~{copy:05d}'")
        else:
            select.append(name)
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    original = f"{_id_column(table)} <= {largest[table.name]}"
    return (
        f"INSERT INTO {table.name} ({columns}) "
        f"SELECT {', '.join(select)} FROM {table.name} WHERE {original}"
    )


def multiply(url: str, times: int) -> dict[str, int]:
    """Copy the patient-level rows of the store at ``url`` so it holds ``times`` x them.

    Returns
    -------
    dict
        Rows per copied table afterwards.
    """
    engine = store.connect(url, create=False)
    with engine.begin() as connection:
        largest = _largest_ids(connection)
        for copy in range(1, times):
            t0 = time.perf_counter()
            for name in COPIED:
                connection.execute(
                    text(_copy_statement(SQLModel.metadata.tables[name], copy, largest))
                )
            print(f"copy {copy}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        if engine.dialect.name == "sqlite":
            broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
            if broken:
                raise SystemExit(f"foreign keys broken by the copy: {broken[:5]}")
        else:
            for name in COPIED:
                if name != "session_trace":
                    connection.execute(
                        text(
                            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                            f"(SELECT MAX(id) FROM {name}))"
                        )
                    )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
    with engine.connect() as connection:
        counts = {
            name: connection.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar_one()
            for name in COPIED
        }
    engine.dispose()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="store URL (SQLite or PostgreSQL), changed in place")
    parser.add_argument("--times", type=int, required=True, help="how many times the patients")
    args = parser.parse_args()
    if args.times < 2:
        raise SystemExit("--times must be at least 2")
    t0 = time.perf_counter()
    counts = multiply(args.url, args.times)
    print(f"{args.url}: {counts} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
