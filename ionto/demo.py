"""The demo job: emulate a clinic network, import it, analyse it, write the report.

The report is for the most recent calendar quarter that is complete in the store (the
report's own default, :func:`ionto_analytics.report.report_quarter`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.text import Text
from sqlalchemy import Engine

from data_schemas import store
from data_schemas.errors import InputError
from device_import.pipeline import Importer
from device_import.privacy import Keyer, load_site_key
from emulator import emulate
from ionto.progress import progress_bar
from ionto_analytics.compare.command import compare_frames
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.loaders import load_episodes, load_outcomes
from ionto_analytics.report import write_report

DEMO_CONTRASTS: tuple[tuple[str, str, str, str], ...] = (
    # condition, instrument (the condition's primary one), arm, versus
    ("lateral_epicondylitis", "prtee", "ionto+exercise+manual", "exercise+manual"),
    ("achilles_tendinopathy", "visa_a", "ionto+exercise", "exercise"),
    ("plantar_fasciitis", "ffi", "ionto+exercise+manual", "exercise"),
)
"""What the demo compares: adding iontophoresis, and a full package against exercise."""
DEMO_WEEKS: tuple[int, ...] = (4, 6)


def analyse_against_truth(engine: Engine, truth: dict) -> pd.DataFrame:
    """ANCOVA of the demo contrasts beside the effects the emulator planted.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A store holding an emulated network.
    truth : dict
        That network's ``ground_truth.json``.

    Returns
    -------
    pandas.DataFrame
        One row per contrast and week: n per arm, planted difference, estimate, 95 % CI,
        whether the interval covers the planted value.
    """
    episodes, outcomes = load_episodes(engine), load_outcomes(engine)
    planted = {
        (e["condition"], e["instrument"], e["arm"], e["versus"], int(e["week"])): e["difference"]
        for e in truth["effects"]
    }
    rows = []
    for condition, instrument, arm, versus in DEMO_CONTRASTS:
        for week in DEMO_WEEKS:
            true = planted.get((condition, instrument, arm, versus, week))
            row = {
                "condition": condition,
                "instrument": instrument,
                "contrast": f"{arm} vs {versus}",
                "week": week,
                "planted": true,
            }
            try:
                spec = ComparisonSpec(condition, instrument, (arm, versus), week=week)
                result = compare_frames(episodes, outcomes, None, spec).result
            except InputError as error:  # too few patients in a small demo network
                rows.append({**row, "n": "", "not_estimable": str(error)})
                continue
            rows.append(
                {
                    **row,
                    "n": "/".join(str(result.n.get(a, 0)) for a in (arm, versus)),
                    "estimate": result.estimate,
                    "ci_low": result.ci_low,
                    "ci_high": result.ci_high,
                    "covers_planted": None
                    if true is None
                    else bool(result.ci_low <= true <= result.ci_high),
                }
            )
    return pd.DataFrame(rows)


@dataclass
class DemoResult:
    """What the demo produced, and what it could not do yet."""

    exports_dir: Path
    store_url: str
    ground_truth: Path
    import_summary: dict
    analysis: pd.DataFrame
    report: Path


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
    console = console or Console(stderr=True)
    exports_dir = out_dir / "exports"
    with progress_bar("emulating the clinic network", unit="patients") as advance:
        summary = emulate(exports_dir, seed=seed, patients=patients, progress=advance)
    console.print(Text(f"emulated exports: {exports_dir}"))
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
    truth = json.loads(Path(summary.ground_truth).read_text(encoding="utf-8"))
    analysis = analyse_against_truth(engine, truth)
    console.print("adjusted comparisons (ANCOVA) beside the planted effects:")
    estimable = analysis.drop(columns="not_estimable", errors="ignore")
    console.print(Text(estimable.round(2).to_string(index=False)))
    for r in analysis.reindex(columns=["contrast", "week", "not_estimable"]).dropna().itertuples():
        console.print(Text(f"not estimable: {r.contrast}, week {r.week}: {r.not_estimable}"))
    with progress_bar("quarterly report", unit="steps") as advance:
        files = write_report(
            engine,
            None,
            out_dir=out_dir / "reports",
            progress=advance,
            store_description=engine.url.render_as_string(hide_password=True),
        )
    return DemoResult(
        exports_dir=exports_dir,
        store_url=engine.url.render_as_string(hide_password=True),
        ground_truth=summary.ground_truth,
        import_summary=report.to_dict(),
        analysis=analysis,
        report=files.html,
    )
