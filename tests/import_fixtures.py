"""A small emulated clinic network shared by the import tests (fixtures in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from emulator import EmulationSummary

NETWORK = {"patients": 150, "clinics": 6, "seed": 11}
SITE_KEY = b"import-test-site-key"


def device_files(network: EmulationSummary, suffix: str) -> list[Path]:
    """The network's device files of one format (by file ending), sorted."""
    return sorted((Path(network.out_dir) / "devices").rglob(f"*{suffix}"))
