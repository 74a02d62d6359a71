"""One small emulated clinic network imported into SQLite, shared by the report tests.

800 episodes over the emulator's default year (2025, six clinics), EHR export and device
logs imported with a fixed site key, built once per test session (per xdist worker): each
report test module declares a ``report_store`` fixture that calls
:func:`build_report_store`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from data_schemas import store
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from emulator import emulate

REPORT_NETWORK = {"patients": 800, "clinics": 6, "seed": 5}
SITE_KEY = b"report-test-site-key"
QUARTER = "2025Q3"


@dataclass(frozen=True)
class ReportStore:
    """The store URL and the emulator's output folder."""

    url: str
    out: Path


_BUILT: dict[str, ReportStore] = {}


def build_report_store(tmp_path_factory: pytest.TempPathFactory) -> ReportStore:
    """The imported 800-episode network (built once per test session and worker)."""
    root = str(tmp_path_factory.getbasetemp())
    if root not in _BUILT:
        base = tmp_path_factory.mktemp("report")
        out = base / "emu"
        emulate(out, **REPORT_NETWORK)
        url = f"sqlite:///{base / 'store.db'}"
        engine = store.connect(url)
        store.upgrade(engine)
        Importer(
            engine, Keyer(SITE_KEY), workers=2, quarantine_dir=base / "q", today=dt.date(2026, 6, 1)
        ).run([out / "ehr", out / "devices"])
        engine.dispose()
        _BUILT[root] = ReportStore(url=url, out=out)
    return _BUILT[root]
