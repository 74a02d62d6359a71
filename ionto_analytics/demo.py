"""The demo job: emulate a clinic network, import it, analyse it, write the report.

A stage of the toolkit that is not built yet is reported as missing, never faked.

Examples
--------
>>> [what for what, _ in NOT_BUILT_STAGES]  # doctest: +ELLIPSIS
[...]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from sqlalchemy import Engine

from data_schemas import store
from ionto_analytics.progress import progress_bar

NOT_BUILT_STAGES: tuple[tuple[str, int], ...] = (
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
    import_summary: dict
    not_built: list[str] = field(default_factory=list)


def run_demo(
    engine: Engine,
    out_dir: Path,
    *,
    patients: int | None = None,
    seed: int = 0,
    workers: int = 2,
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
    workers : int
        Parser processes for the import.
    console : rich.console.Console, optional
        Where progress messages go.
    """
    from device_import.emulator import emulate
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer, load_site_key

    console = console or Console(stderr=True)
    exports_dir = out_dir / "exports"
    with progress_bar("emulating the clinic network", unit="patients") as advance:
        summary = emulate(exports_dir, seed=seed, patients=patients, progress=advance)
    console.print(f"emulated exports: {exports_dir}")
    store.upgrade(engine)
    importer = Importer(
        engine, Keyer(load_site_key()), workers=workers, quarantine_dir=out_dir / "quarantine"
    )
    with progress_bar("importing", unit="files") as advance:
        report = importer.run([exports_dir / "ehr", exports_dir / "devices"], progress=advance)
    files = report.to_dict()["files"]
    console.print(
        f"imported {files['imported']} files ({files['unchanged']} unchanged, "
        f"{files['quarantined']} quarantined), {sum(report.rows.values()):,} rows"
    )
    missing = [f"{what} (issue #{issue})" for what, issue in NOT_BUILT_STAGES]
    for what in missing:
        console.print(f"[yellow]not built yet: {what}[/yellow]")
    return DemoResult(
        exports_dir=exports_dir,
        store_url=engine.url.render_as_string(hide_password=True),
        ground_truth=summary.ground_truth,
        import_summary=report.to_dict(),
        not_built=missing,
    )
