"""One emulated clinic network imported into a store, shared by the analysis tests.

The fixture itself (``emulated_store``) lives in tests/conftest.py so that it is built
once per test session; this module holds what it builds.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_schemas import store
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from emulator import emulate

PROOF = {"seed": 20260, "patients": 2000}
KEY = b"proof-site-key"
TODAY = dt.date(2026, 6, 1)


@dataclass(frozen=True)
class EmulatedStore:
    """An emulated network imported into a SQLite store (EHR and device logs)."""

    url: str
    out: Path
    truth: dict[str, Any]


def build_emulated_store(base: Path) -> EmulatedStore:
    """Emulate 2,000 episodes of the default scenario and import them into ``base``."""
    out = base / "emu"
    summary = emulate(out, **PROOF)
    truth = json.loads(Path(summary.ground_truth).read_text(encoding="utf-8"))
    url = f"sqlite:///{base / 'store.db'}"
    engine = store.connect(url)
    store.upgrade(engine)
    report = Importer(engine, Keyer(KEY), workers=2, today=TODAY).run(
        [out / "ehr", out / "devices"]
    )
    engine.dispose()
    assert not report.quarantine, [p.message() for p in report.quarantine[:3]]
    return EmulatedStore(url=url, out=out, truth=truth)
