"""Zip archives: an export imported as a folder and zipped, before and after, side by side.

Emulates a network (or takes an existing emulated folder), zips its ``ehr/`` and
``devices/`` folders into one archive, and, in one run, imports both layouts with each code
version: every ``--baseline`` git revision (extracted with ``git archive``) and the working
tree. Each import runs in a child process of its own, into a fresh SQLite store, so its
time and peak memory (``ru_maxrss``, and Linux's ``VmHWM``) are its own (this process
stays small, as a child's ``ru_maxrss`` starts from its parent's size at the fork). Then
a 1 MB zip of 1 GiB of zeros is imported by each version: its peak memory, and the bytes
it wrote to the quarantine folder.

Run: ``.venv/bin/python bench/bench_zip.py [--patients 400] [--keep DIR] [--workers 1]
[--repeat 2] [--baseline REV ...]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GiB = 1024**3
MiB = 1024**2


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (user and system)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _high_water_mb() -> float:
    """This process's own peak resident memory (Linux ``VmHWM``; not inherited at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child_import(db: str, paths: list[Path], workers: int, quarantine: Path) -> None:
    """Import ``paths`` (in this child process) and print time, files and peak memory."""
    from data_schemas import store
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer

    engine = store.connect(db, create=True)
    store.upgrade(engine)
    key = bytes.fromhex(os.environ["BENCH_SITE_KEY"])
    importer = Importer(engine, Keyer(key), workers=workers, quarantine_dir=quarantine)
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    report = importer.run(paths)
    elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_started
    engine.dispose()
    written = sum(path.stat().st_size for path in quarantine.rglob("*") if path.is_file())
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu_seconds": cpu,
                "files": report.to_dict()["files"],
                "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "hwm_mb": _high_water_mb(),
                "workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "quarantine_bytes": written,
            }
        )
    )


def run_child(tree: Path, paths: list[Path], workers: int, scratch: Path) -> dict:
    """One import by the code in ``tree``, in a child process; its JSON line."""
    folder = Path(tempfile.mkdtemp(dir=scratch))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(folder / "s.db")]
    command += ["--workers", str(workers), *map(str, paths)]
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 4):
        raise SystemExit(f"child failed ({tree}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def extracted(revision: str, scratch: Path) -> Path:
    """The project's tree at ``revision``, extracted from git into ``scratch``."""
    tree = scratch / f"tree-{revision.replace('/', '_').replace('^', '_parent')}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree


def zipped_export(folder: Path, target: Path) -> int:
    """Zip the export's ``ehr/`` and ``devices/`` files under their relative names."""
    files = sorted(
        path for part in ("ehr", "devices") for path in (folder / part).rglob("*") if path.is_file()
    )
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(folder).as_posix())
    return len(files)


def zip_bomb(target: Path) -> None:
    """One member of 1 GiB of zeros, deflated (about 1 MB), written as a stream."""
    chunk = bytes(MiB)
    with (
        zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open("zeros.csv", "w", force_zip64=True) as member,
    ):
        for _ in range(GiB // MiB):
            member.write(chunk)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=400)
    parser.add_argument("--clinics", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="emulated folder to reuse or keep")
    parser.add_argument("--baseline", action="append", default=[], help="git revision")
    parser.add_argument("--child", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        quarantine = Path(args.child).parent / "quarantine"
        child_import(f"sqlite:///{args.child}", args.paths, args.workers, quarantine)
        return
    os.environ["BENCH_SITE_KEY"] = secrets.token_hex(32)
    with tempfile.TemporaryDirectory() as name:
        scratch = Path(name)
        folder = args.keep or scratch / "net"
        if not (folder / "ground_truth.json").exists():  # in a child: this process stays small
            emulation = "from emulator import emulate; import sys; from pathlib import Path; "
            emulation += "emulate(Path(sys.argv[1]), patients=int(sys.argv[2]), "
            emulation += "clinics=int(sys.argv[3]), seed=1)"
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    emulation,
                    str(folder),
                    str(args.patients),
                    str(args.clinics),
                ],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                check=True,
            )
        archive = scratch / "export.zip"
        count = zipped_export(folder, archive)
        bomb = scratch / "bomb.zip"
        zip_bomb(bomb)
        trees = {revision: extracted(revision, scratch) for revision in args.baseline}
        trees["working tree"] = ROOT
        print(
            f"{count} files ({archive.stat().st_size / 1e6:.0f} MB zipped), "
            f"{args.workers} worker(s), {args.repeat} repeat(s); zip bomb "
            f"{bomb.stat().st_size / 1e6:.1f} MB → 1 GiB\n"
        )
        print(
            "| code | repeat | folder: wall / CPU | zipped: wall / CPU | zipped / folder, "
            "wall / CPU |\n|---|---|---|---|---|"
        )
        ratios: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for repeat in range(1, args.repeat + 1):
            for name, tree in trees.items():
                layout = [folder / "ehr", folder / "devices"]
                as_folder = run_child(tree, layout, args.workers, scratch)
                as_zip = run_child(tree, [archive], args.workers, scratch)
                assert as_zip["files"] == as_folder["files"], (as_zip, as_folder)
                ratios[name].append(
                    (
                        as_zip["seconds"] / as_folder["seconds"],
                        as_zip["cpu_seconds"] / as_folder["cpu_seconds"],
                    )
                )
                print(
                    f"| {name} | {repeat} | {as_folder['seconds']:.1f} / "
                    f"{as_folder['cpu_seconds']:.1f} s | {as_zip['seconds']:.1f} / "
                    f"{as_zip['cpu_seconds']:.1f} s | {ratios[name][-1][0]:.2f}x / "
                    f"{ratios[name][-1][1]:.2f}x |"
                )
        for name, values in ratios.items():
            wall, cpu = (statistics.median(column) for column in zip(*values, strict=True))
            print(f"median zipped / folder, {name}: wall {wall:.2f}x, CPU {cpu:.2f}x")
        print(
            "\n| code | zip bomb: seconds | peak memory of the importing process, ru_maxrss "
            "/ VmHWM | largest worker | written to quarantine | outcome |\n"
            "|---|---|---|---|---|---|"
        )
        for name, tree in trees.items():
            found = run_child(tree, [bomb], args.workers, scratch)
            print(
                f"| {name} | {found['seconds']:.2f} s | {found['self_mb']:.0f} / "
                f"{found['hwm_mb']:.0f} MB | "
                f"{found['workers_mb']:.0f} MB | {found['quarantine_bytes']:,} bytes | "
                f"{found['files']} |"
            )


if __name__ == "__main__":
    main()
