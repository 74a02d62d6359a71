"""A small emulated clinic network shared by the import tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from device_import.emulator import EmulationSummary, emulate

NETWORK = {"patients": 150, "clinics": 6, "seed": 11}
SITE_KEY = b"import-test-site-key"


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory) -> EmulationSummary:
    """One small emulation (150 episodes, 6 clinics, all three device formats)."""
    return emulate(tmp_path_factory.mktemp("network") / "out", **NETWORK)


@pytest.fixture(scope="session")
def truth(network: EmulationSummary) -> dict[str, Any]:
    """The parsed ground truth of ``network``."""
    return json.loads(Path(network.ground_truth).read_text(encoding="utf-8"))


def device_files(network: EmulationSummary, suffix: str) -> list[Path]:
    """The network's device files of one format (by file ending), sorted."""
    return sorted((Path(network.out_dir) / "devices").rglob(f"*{suffix}"))
