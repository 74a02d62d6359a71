"""Where session samples live: one SQL row per sample, or one packed row per session.

Writes the same emulated-looking clinic sessions (1 Hz, ~15 min) both ways into SQLite
and PostgreSQL and prints write throughput, bytes on disk per sample and the time to read
one session back. Run: ``.venv/bin/python bench/bench_samples_store.py [n_sessions]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import (
    Column,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    create_engine,
    insert,
    select,
    text,
)

from data_schemas.samples import SessionSamples, pack_samples, unpack_samples

POSTGRES = os.environ.get("IONTO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def make_session(rng: np.random.Generator) -> SessionSamples:
    n = int(rng.integers(600, 1200))
    t = np.arange(n, dtype=float)
    current = np.clip(t / 30.0, 0, 1) * 4.0 + rng.normal(0, 0.01, n)
    impedance = 10_000 * (1 - 0.45 * (1 - np.exp(-t / 120))) * (1 + rng.normal(0, 0.02, n))
    return SessionSamples(t, current, current * impedance / 1000.0, impedance)


def tables(metadata: MetaData) -> tuple[Table, Table]:
    rows = Table(
        "sample_row", metadata,
        Column("session_id", Integer, primary_key=True), Column("t_s", Float, primary_key=True),
        Column("current_mA", Float), Column("voltage_V", Float), Column("impedance_ohm", Float),
    )
    packed = Table(
        "sample_packed", metadata,
        Column("session_id", Integer, primary_key=True), Column("packed", LargeBinary),
    )
    return rows, packed


def run(url: str, sessions: list[SessionSamples], label: str, size_of) -> None:
    engine = create_engine(url)
    metadata = MetaData()
    rows_table, packed_table = tables(metadata)
    metadata.create_all(engine)
    total = sum(len(s) for s in sessions)
    started = time.perf_counter()
    with engine.begin() as connection:
        for index, samples in enumerate(sessions):
            frame = samples.to_frame()
            frame.insert(0, "session_id", index)
            connection.execute(insert(rows_table), frame.to_dict("records"))
    per_row = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.execute(
            insert(packed_table),
            [{"session_id": i, "packed": pack_samples(s)} for i, s in enumerate(sessions)],
        )
    packed = time.perf_counter() - started
    with engine.connect() as connection:
        started = time.perf_counter()
        for index in range(0, len(sessions), max(1, len(sessions) // 20)):
            connection.execute(
                select(rows_table).where(rows_table.c.session_id == index)
            ).all()
        read_rows = (time.perf_counter() - started) / 20
        started = time.perf_counter()
        for index in range(0, len(sessions), max(1, len(sessions) // 20)):
            blob = connection.execute(
                select(packed_table.c.packed).where(packed_table.c.session_id == index)
            ).scalar_one()
            unpack_samples(blob)
        read_packed = (time.perf_counter() - started) / 20
        size_rows, size_packed = size_of(connection)
    engine.dispose()
    print(f"| {label} | one row per sample | {total / per_row:,.0f} | {size_rows / total:.1f} | "
          f"{read_rows * 1000:.1f} |")
    print(f"| {label} | one packed row per session | {total / packed:,.0f} | "
          f"{size_packed / total:.1f} | {read_packed * 1000:.1f} |")


def main() -> None:
    n_sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    rng = np.random.default_rng(0)
    sessions = [make_session(rng) for _ in range(n_sessions)]
    print(f"{n_sessions} sessions, {sum(len(s) for s in sessions):,} samples")
    print("| backend | layout | samples written/s | bytes/sample | ms to read a session |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"

        def sqlite_sizes(connection) -> tuple[int, int]:
            sizes = dict(connection.execute(text(
                "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")).all())
            rows = sum(v for k, v in sizes.items() if "sample_row" in k)
            packed = sum(v for k, v in sizes.items() if "sample_packed" in k)
            return rows, packed

        run(f"sqlite:///{path}", sessions, "SQLite", sqlite_sizes)
    name = f"ionto_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True)
    except psycopg.OperationalError:
        print("PostgreSQL not reachable: skipped")
        return
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            def pg_sizes(connection) -> tuple[int, int]:
                query = "SELECT pg_total_relation_size(:t)"
                return (connection.execute(text(query), {"t": "sample_row"}).scalar_one(),
                        connection.execute(text(query), {"t": "sample_packed"}).scalar_one())

            url = POSTGRES.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
            run(f"{url}/{name}", sessions, "PostgreSQL", pg_sizes)
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
