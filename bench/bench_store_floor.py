"""SQLite's own share of an import: the finished store's rows inserted with nothing else.

Imports an emulated network into a fresh SQLite store, then copies every row of it into
a second, empty store with the driver's ``executemany`` in one transaction (constraints,
indexes and foreign keys on, as in the store). No parsing, no validation, no lookups: the
time is what SQLite itself needs to write the rows, the floor under any importer that
keeps the store's integrity rules.

Run: ``.venv/bin/python bench/bench_store_floor.py --keep /tmp/emu2k``.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from bench_import import emulated_network, timed_import
from sqlmodel import SQLModel

from data_schemas import store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="emulated folder to reuse or keep")
    args = parser.parse_args()
    folder = emulated_network(args.keep, args.patients, clinics=6)
    with tempfile.TemporaryDirectory() as scratch:
        full, empty = Path(scratch) / "full.db", Path(scratch) / "empty.db"
        elapsed, _ = timed_import(f"sqlite:///{full}", [folder / "ehr", folder / "devices"], 2)
        print(f"full import: {elapsed:.2f} s")
        engine = store.connect(f"sqlite:///{empty}")
        store.upgrade(engine)
        engine.dispose()
        source = sqlite3.connect(full)
        target = sqlite3.connect(empty, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            target.execute(f"PRAGMA {pragma}")
        print("\n| table | rows | seconds |\n|---|---|---|")
        total = 0.0
        target.execute("BEGIN")
        for table in SQLModel.metadata.sorted_tables:
            cursor = source.execute(f'SELECT * FROM "{table.name}"')
            names = ", ".join(f'"{column[0]}"' for column in cursor.description)
            rows = cursor.fetchall()
            marks = ", ".join("?" * len(cursor.description))
            started = time.perf_counter()
            target.executemany(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', rows)
            elapsed = time.perf_counter() - started
            total += elapsed
            print(f"| {table.name} | {len(rows):,} | {elapsed:.2f} |")
        started = time.perf_counter()
        target.execute("COMMIT")
        total += time.perf_counter() - started
        print(f"\nSQLite alone, every row of the store in one transaction: {total:.2f} s")


if __name__ == "__main__":
    main()
