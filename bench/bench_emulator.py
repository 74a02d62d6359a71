"""Benchmark the emulator (not a timed test).

Prints sample generation throughput per core and the time and peak memory of a
20-clinic, 10,000-patient year. Run: ``.venv/bin/python bench/bench_emulator.py [out_dir]``.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emulator import emulate, load_scenario
from emulator.sessions import plan_sessions, simulate


def sample_throughput(n_sessions: int = 6000, repeats: int = 3) -> float:
    """Samples generated per second on one core (physics only, no file writing)."""
    s = load_scenario()
    rng = np.random.default_rng(0)
    kind = np.where(rng.random(n_sessions) < 0.2, "wearable_patch", "clinic_unit").astype(object)
    plans = plan_sessions(rng, s, np.zeros(n_sessions, int), kind)
    best = 0.0
    for r in range(repeats):
        t0 = time.perf_counter()
        out = simulate(np.random.default_rng(r), s, plans)
        best = max(best, out.n_samples / (time.perf_counter() - t0))
    return best


def main() -> None:
    # The year runs first: the throughput test's sample arrays would otherwise set the
    # process's peak memory (ru_maxrss never goes down).
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp) / "bench"
        t0 = time.perf_counter()
        res = emulate(out, clinics=20, patients=10_000, seed=1)
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
        print(f"20 clinics, 10,000 patients, one year: {wall:.1f} s, peak RSS {peak_mb:.0f} MB, "
              f"{size:.0f} MB written")
        print(res.summary().to_string(index=False))
    rate = sample_throughput()
    print(f"sample generation: {rate / 1e6:.2f} million samples/s/core")


if __name__ == "__main__":
    main()
