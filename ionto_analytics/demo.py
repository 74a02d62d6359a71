"""The demo job: emulate a clinic network, import it, analyse it, write the report.

A stage of the toolkit that is not built yet is reported as missing, never faked.

Examples
--------
>>> run_demo  # doctest: +ELLIPSIS
<function run_demo at ...>
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from data_schemas import store
from ionto_analytics.progress import progress_bar

NOT_BUILT_STAGES: tuple[tuple[str, int], ...] = (
    ("import the exports into the store", 4),
    ("analyse outcomes (adjusted cohort comparisons)", 5),
    ("write the quarterly report", 7),
)
"""Demo stages whose part of the toolkit is not built yet, with the issue that builds it."""


@dataclass
class DemoResult:
    """What the demo produced, and what it could not do yet."""

    exports_dir: Path
    store_url: str
    ground_truth: Path
    not_built: list[str] = field(default_factory=list)


def run_demo(
    engine: Engine,
    out_dir: Path,
    *,
    patients: int | None = None,
    seed: int = 0,
    console: Console | None = None,
) -> DemoResult:
    """Run every built stage of the main job on ``engine`` and ``out_dir``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store (the demo uses the embedded SQLite file by default).
    out_dir : pathlib.Path
        Where the emulated exports are written.
    patients : int, optional
        Size of the emulated network; the default scenario's size when None.
    seed : int
        Seed of the emulator.
    console : rich.console.Console, optional
        Where progress messages go.
    """
    from device_import.emulator import emulate

    console = console or Console(stderr=True)
    exports_dir = out_dir / "exports"
    with progress_bar("emulating the clinic network", unit="patients") as advance:
        summary = emulate(exports_dir, seed=seed, patients=patients, progress=advance)
    console.print(f"emulated exports: {exports_dir}")
    store.upgrade(engine)
    console.print(f"store ready at revision {store.current_revision(engine)}")
    missing = [f"{what} (issue #{issue})" for what, issue in NOT_BUILT_STAGES]
    for what in missing:
        console.print(f"[yellow]not built yet: {what}[/yellow]")
    return DemoResult(
        exports_dir=exports_dir,
        store_url=engine.url.render_as_string(hide_password=True),
        ground_truth=summary.ground_truth,
        not_built=missing,
    )
