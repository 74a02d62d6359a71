"""Import speed: rows per second per format, and the full import against a bare parse.

Emulates a network (or takes an existing emulated folder), then, side by side in one run:

1. a bare read of the same files with the plainest library call (pyarrow.csv for the CSV
   and semicolon logs, json.loads for the JSON documents), in 1 and in N processes;
2. the full import into a fresh SQLite store with N parser processes, one format at a
   time (rows/s per format), as one batch (the ratio to the bare read of every file),
   and the device logs alone into a store holding their EHR (the ratio to the bare read
   of the device files).

Run: ``.venv/bin/python bench/bench_import.py [--patients 2000] [--workers 2] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pyarrow.csv as pacsv

from data_schemas import store
from device_import.emulator import emulate
from device_import.pipeline import Importer
from device_import.privacy import Keyer

SKIP_BAD_ROWS = pacsv.ParseOptions(invalid_row_handler=lambda row: "skip")
PATCH_OPTIONS = pacsv.ParseOptions(delimiter=";", invalid_row_handler=lambda row: "skip")


def bare_read(path: Path) -> int:
    """Rows of one file read with the plainest call for its kind (no validation)."""
    if path.suffix == ".json":
        return len(json.loads(path.read_bytes())["samples"]["current_uA"])
    if path.suffix == ".log":
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows=14),
                               parse_options=PATCH_OPTIONS)
        return table.num_rows
    if path.parent.parent.name == "ehr":
        return pacsv.read_csv(path).num_rows
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(skip_rows=15),
                           parse_options=SKIP_BAD_ROWS)
    return table.num_rows


def timed_bare(files: list[Path], workers: int) -> tuple[float, int]:
    started = time.perf_counter()
    if workers == 1:
        rows = sum(bare_read(path) for path in files)
    else:
        with ProcessPoolExecutor(workers) as pool:
            rows = sum(pool.map(bare_read, files, chunksize=16))
    return time.perf_counter() - started, rows


def timed_import(url: str, paths: list[Path], workers: int) -> tuple[float, dict]:
    engine = store.connect(url)
    store.upgrade(engine)
    importer = Importer(engine, Keyer(b"bench"), workers=workers, today=dt.date(2026, 1, 1))
    started = time.perf_counter()
    report = importer.run(paths)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, report.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--clinics", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="emulated folder to reuse or keep")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp()) / "net"
    if not (folder / "ground_truth.json").exists():
        emulate(folder, patients=args.patients, clinics=args.clinics, seed=1)
    ehr = sorted((folder / "ehr").rglob("*.csv"))
    by_format = {
        "kathodyne_csv": sorted((folder / "devices").rglob("*.csv")),
        "phoresys_json": sorted((folder / "devices").rglob("*.json")),
        "dermapatch_log": sorted((folder / "devices").rglob("*.log")),
    }
    devices = [path for files in by_format.values() for path in files]
    megabytes = sum(path.stat().st_size for path in [*ehr, *devices]) / 1e6
    print(f"{args.patients} patients: {len(ehr)} EHR tables, {len(devices)} device logs, "
          f"{megabytes:.0f} MB; {args.workers} workers")

    bare_1, bare_rows = timed_bare([*ehr, *devices], 1)
    bare_n, _ = timed_bare([*ehr, *devices], args.workers)
    devices_bare_1, _ = timed_bare(devices, 1)
    devices_bare_n, _ = timed_bare(devices, args.workers)
    print(f"bare read, 1 process:  {bare_1:6.1f} s  ({bare_rows / bare_1:,.0f} rows/s)")
    print(f"bare read, {args.workers} processes: {bare_n:6.1f} s")
    print(f"bare read of the device logs: {devices_bare_1:.1f} s (1 process), "
          f"{devices_bare_n:.1f} s ({args.workers} processes)")

    with tempfile.TemporaryDirectory() as scratch:
        print("\n| format | files | rows | seconds | rows/s |\n|---|---|---|---|---|")
        url = f"sqlite:///{scratch}/per_format.db"
        elapsed, report = timed_import(url, [folder / "ehr"], args.workers)
        rows = sum(report["rows"].values())
        print(f"| ehr_csv | {len(ehr)} | {rows:,} | {elapsed:.1f} | {rows / elapsed:,.0f} |")
        for name, files in by_format.items():
            engine_url = url
            elapsed, report = timed_import(engine_url, files, args.workers)
            samples = sum(bare_read(path) for path in files)
            print(f"| {name} | {len(files)} | {samples:,} samples | {elapsed:.1f} | "
                  f"{samples / elapsed:,.0f} |")
        timed_import(f"sqlite:///{scratch}/devices.db", [folder / "ehr"], args.workers)
        device_import, _ = timed_import(f"sqlite:///{scratch}/devices.db",
                                        [folder / "devices"], args.workers)
        full, report = timed_import(f"sqlite:///{scratch}/full.db",
                                    [folder / "ehr", folder / "devices"], args.workers)
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nfull import into SQLite: {full:.1f} s; quarantined {report['files']['quarantined']}")
    print(f"ratio full import / bare read ({args.workers} processes each): {full / bare_n:.1f}x")
    print(f"ratio full import / bare read (1 process): {full / bare_1:.1f}x")
    print(f"device logs into a store holding their EHR: {device_import:.1f} s; ratio to the "
          f"bare read of the device logs: {device_import / devices_bare_1:.1f}x (1 process), "
          f"{device_import / devices_bare_n:.1f}x ({args.workers} processes)")
    print(f"peak memory: main process {peak_self:.0f} MB, largest worker {peak_children:.0f} MB")


if __name__ == "__main__":
    main()
