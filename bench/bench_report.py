"""Speed of ``ionto report`` on a 10,000-episode quarter (not a test).

The store is built once and cached (``IONTO_BENCH_DIR``, default ``/tmp/ionto_bench_report``):
the bundled emulator writes 10,000 episodes with intake in 2025Q3 across 20 clinics (their
care runs on into 2025Q4), and the importer loads the EHR export and the device logs. The
timed part is what ``ionto report --quarter 2025Q3`` does: load the frames, compute every
section, render the self-contained HTML (best of three runs, wall clock and CPU seconds of
the process). Target: < 15 s.

Run: ``.venv/bin/python bench/bench_report.py`` (first run: emulation and import take a few
minutes).
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

EPISODES = 10_000
CLINICS = 20
QUARTER = "2025Q3"
TARGET_S = 15.0


def build_store(root: Path) -> str:
    """Emulate and import the benchmark network once; return the store URL."""
    from data_schemas import store
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer
    from emulator import emulate

    db = root / "store.db"
    url = f"sqlite:///{db}"
    if (root / "built").exists():
        return url
    root.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    out = root / "emu"
    t0 = time.perf_counter()
    emulate(
        out,
        seed=3,
        patients=EPISODES,
        clinics=CLINICS,
        start=dt.date(2025, 7, 1),
        end=dt.date(2025, 9, 30),
    )
    t1 = time.perf_counter()
    engine = store.connect(url)
    store.upgrade(engine)
    Importer(engine, Keyer(b"bench-site-key"), workers=2, quarantine_dir=root / "q").run(
        [out / "ehr", out / "devices"]
    )
    engine.dispose()
    t2 = time.perf_counter()
    print(f"built: emulated in {t1 - t0:.0f} s, imported in {t2 - t1:.0f} s", file=sys.stderr)
    (root / "built").write_text("ok", encoding="utf-8")
    return url


def main() -> None:
    """Build (once), then time the report twice and print the best."""
    root = Path(os.environ.get("IONTO_BENCH_DIR", "/tmp/ionto_bench_report"))
    url = build_store(root)
    if "--build-only" in sys.argv:
        return
    from data_schemas import store
    from ionto_analytics.report import write_report

    times, cpus = [], []
    for _ in range(3):
        engine = store.connect(url)
        t0, c0 = time.perf_counter(), time.process_time()
        result = write_report(engine, QUARTER, out_dir=root / "report")
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        engine.dispose()
    n = result.report.n_episodes
    best = min(times)
    print(f"episodes active in {QUARTER}: {n:,}; load average {os.getloadavg()[0]:.1f}")
    print(f"report: best {best:.1f} s of {[round(t, 1) for t in times]} (target < {TARGET_S} s)")
    print(f"CPU: best {min(cpus):.1f} s of {[round(c, 1) for c in cpus]}")
    print(f"HTML: {result.html} ({result.html.stat().st_size / 1e6:.1f} MB)")
    print("PASS" if best < TARGET_S else "FAIL")


if __name__ == "__main__":
    main()
