"""A small emulated and imported store for executing the notebooks (built once per module)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_schemas import store
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from emulator import emulate

NOTEBOOK_NETWORK = {"patients": 400, "seed": 5}
"""Large enough for every notebook step (dose response needs ≥ 8 ionto episodes with a
week-6 PRTEE score), small enough to import in a few seconds on 2 cores."""


@pytest.fixture(scope="module")
def notebook_store_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLite URL of an emulated clinic network imported into a fresh store."""
    root: Path = tmp_path_factory.mktemp("notebook_store")
    summary = emulate(root / "network", **NOTEBOOK_NETWORK)
    url = f"sqlite:///{root / 'ionto.db'}"
    engine = store.connect(url)
    store.upgrade(engine)
    out = Path(summary.out_dir)
    Importer(engine, Keyer(b"k"), workers=2, today=dt.date(2026, 1, 1)).run(
        [out / "ehr", out / "devices"]
    )
    engine.dispose()
    yield url
