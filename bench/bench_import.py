"""Import speed: rows per second per format, and the full import against a bare parse.

Emulates a network (or takes an existing emulated folder), then, side by side in one run:

1. a bare read of the same files with the plainest library call (pyarrow.csv for the CSV
   and semicolon logs, json.loads for the JSON documents), in 1 and in N processes;
2. the full import into a fresh SQLite store with N parser processes, one format at a
   time (rows/s per format), as one batch (the ratio to the bare read of every file),
   and the device logs alone into a store holding their EHR (the ratio to the bare read
   of the device files), repeated side by side; the median ratios are reported.

Run: ``.venv/bin/python bench/bench_import.py [--patients 2000] [--workers 2] [--keep DIR]
[--repeat 3] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psycopg
import pyarrow.csv as pacsv
from psycopg import sql
from sqlalchemy.engine import make_url

from data_schemas import store
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from emulator import emulate

SKIP_BAD_ROWS = pacsv.ParseOptions(invalid_row_handler=lambda row: "skip")
PATCH_OPTIONS = pacsv.ParseOptions(delimiter=";", invalid_row_handler=lambda row: "skip")


def bare_read(path: Path) -> int:
    """Rows of one file read with the plainest call for its kind (no validation)."""
    if path.suffix == ".json":
        return len(json.loads(path.read_bytes())["samples"]["current_uA"])
    if path.suffix == ".log":
        table = pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(skip_rows=14), parse_options=PATCH_OPTIONS
        )
        return table.num_rows
    if path.parent.parent.name == "ehr":
        return pacsv.read_csv(path).num_rows
    table = pacsv.read_csv(
        path, read_options=pacsv.ReadOptions(skip_rows=15), parse_options=SKIP_BAD_ROWS
    )
    return table.num_rows


def timed_bare(files: list[Path], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    if workers == 1:
        rows = sum(bare_read(path) for path in files)
    else:
        with ProcessPoolExecutor(workers) as pool:
            rows = sum(pool.map(bare_read, files, chunksize=16))
    return time.perf_counter() - started, rows


def emulated_network(keep: Path | None, patients: int, clinics: int) -> Path:
    """The emulated network kept in ``keep`` (emulated there first if missing), or a new one."""
    folder = keep or Path(tempfile.mkdtemp()) / "net"
    if not (folder / "ground_truth.json").exists():
        emulate(folder, patients=patients, clinics=clinics, seed=1)
    return folder


def timed_import(url: str, paths: list[Path], workers: int) -> tuple[float, dict]:
    engine = store.connect(url)
    store.upgrade(engine)
    importer = Importer(engine, Keyer(b"bench"), workers=workers, today=dt.date(2026, 1, 1))
    started = time.perf_counter()
    report = importer.run(paths)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, report.to_dict()


@contextlib.contextmanager
def scratch_postgres(server_url: str) -> Iterator[str]:
    """A fresh database on the server of ``server_url``, dropped afterwards."""
    name = f"ionto_bench_{os.getpid()}"
    admin = make_url(server_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--clinics", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="emulated folder to reuse or keep")
    parser.add_argument("--repeat", type=int, default=3, help="side-by-side repeats")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also import into a scratch database created (and dropped) on this server, "
        "e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    args = parser.parse_args()
    folder = emulated_network(args.keep, args.patients, args.clinics)
    ehr = sorted((folder / "ehr").rglob("*.csv"))
    by_format = {
        "kathodyne_csv": sorted((folder / "devices").rglob("*.csv")),
        "phoresys_json": sorted((folder / "devices").rglob("*.json")),
        "dermapatch_log": sorted((folder / "devices").rglob("*.log")),
    }
    devices = [path for files in by_format.values() for path in files]
    megabytes = sum(path.stat().st_size for path in [*ehr, *devices]) / 1e6
    print(
        f"{args.patients} patients: {len(ehr)} EHR tables, {len(devices)} device logs, "
        f"{megabytes:.0f} MB; {args.workers} workers"
    )

    with tempfile.TemporaryDirectory() as scratch:
        print("\n| format | files | rows | seconds | rows/s |\n|---|---|---|---|---|")
        url = f"sqlite:///{scratch}/per_format.db"
        elapsed, report = timed_import(url, [folder / "ehr"], args.workers)
        rows = sum(report["rows"].values())
        print(f"| ehr_csv | {len(ehr)} | {rows:,} | {elapsed:.1f} | {rows / elapsed:,.0f} |")
        for name, files in by_format.items():
            elapsed, report = timed_import(url, files, args.workers)
            samples = sum(bare_read(path) for path in files)
            print(
                f"| {name} | {len(files)} | {samples:,} samples | {elapsed:.1f} | "
                f"{samples / elapsed:,.0f} |"
            )

    # The machine's speed drifts from minute to minute: each repeat measures the bare
    # reads and the imports side by side, and the ratios are taken within a repeat.
    n = args.workers
    print(
        f"\n| repeat | bare read, 1 / {n} processes | full import | ratio to 1 / {n} | "
        f"bare read of device logs, 1 / {n} | device-log import | ratio to 1 / {n} |\n"
        "|---|---|---|---|---|---|---|"
    )
    ratios: list[tuple[float, float, float, float]] = []
    for repeat in range(1, args.repeat + 1):
        bare_1, _ = timed_bare([*ehr, *devices], 1)
        bare_n, _ = timed_bare([*ehr, *devices], n)
        devices_bare_1, _ = timed_bare(devices, 1)
        devices_bare_n, _ = timed_bare(devices, n)
        with tempfile.TemporaryDirectory() as scratch:
            full, report = timed_import(
                f"sqlite:///{scratch}/full.db", [folder / "ehr", folder / "devices"], n
            )
            timed_import(f"sqlite:///{scratch}/devices.db", [folder / "ehr"], n)
            device_import, _ = timed_import(
                f"sqlite:///{scratch}/devices.db", [folder / "devices"], n
            )
        assert report["files"]["quarantined"] == 0, report["quarantine"][:3]
        ratios.append(
            (
                full / bare_1,
                full / bare_n,
                device_import / devices_bare_1,
                device_import / devices_bare_n,
            )
        )
        print(
            f"| {repeat} | {bare_1:.1f} / {bare_n:.1f} s | {full:.1f} s | "
            f"{ratios[-1][0]:.1f}x / {ratios[-1][1]:.1f}x | "
            f"{devices_bare_1:.1f} / {devices_bare_n:.1f} s | {device_import:.1f} s | "
            f"{ratios[-1][2]:.1f}x / {ratios[-1][3]:.1f}x |"
        )
    middle = [statistics.median(column) for column in zip(*ratios, strict=True)]
    print(
        f"\nmedian ratios: full import {middle[0]:.1f}x the bare read in 1 process "
        f"({middle[1]:.1f}x in {n}); device logs {middle[2]:.1f}x the bare read of the device "
        f"logs in 1 process ({middle[3]:.1f}x in {n})"
    )
    if args.postgres:
        with scratch_postgres(args.postgres) as url:
            on_postgres, _ = timed_import(url, [folder / "ehr", folder / "devices"], n)
        print(f"full import into PostgreSQL (COPY): {on_postgres:.1f} s")
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak memory: main process {peak_self:.0f} MB, largest worker {peak_children:.0f} MB")


if __name__ == "__main__":
    main()
