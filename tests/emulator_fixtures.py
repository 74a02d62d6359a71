"""Shared fixtures for the emulator tests (imported by tests/test_emulator_*.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emulator import EmulationSummary, emulate

SMALL = {"patients": 400, "clinics": 6, "seed": 7}


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> EmulationSummary:
    """One small emulation shared by the output tests (400 episodes, 6 clinics)."""
    return emulate(tmp_path_factory.mktemp("emu") / "out", **SMALL)


@pytest.fixture(scope="session")
def small_truth(small_run: EmulationSummary) -> dict[str, Any]:
    """The parsed ground_truth.json of ``small_run``."""
    return json.loads(Path(small_run.ground_truth).read_text(encoding="utf-8"))
