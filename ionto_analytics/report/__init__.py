"""The quarterly outcomes report (``ionto report``): store → sections → HTML (→ PDF).

Why a Jinja2 template rather than a parameterized notebook (papermill): the report's
logic lives in plain, tested functions (:mod:`~ionto_analytics.report.sections`,
:mod:`~ionto_analytics.report.combinations`), and rendering them through a template takes
well under a second with no Jupyter kernel, which keeps ``ionto report`` fast (the 15 s
budget for a 10,000-episode quarter), deterministic and testable section by section (the
tests read the computed tables, not scraped notebook output). Suppression is applied
before anything reaches the template, so no cell output can leak a small count.
``notebooks/04_quarterly_report.ipynb`` is kept as a thin, parameterized view (papermill
``parameters`` cell) that calls :func:`build_report` and displays the same sections.

Modules: :mod:`~.quarter` (quarters), :mod:`~.data` (one read of the store),
:mod:`~.sections`, :mod:`~.combinations` and :mod:`~.quality` (the tables),
:mod:`~.model` (containers), :mod:`~.render` (Jinja2 + plotly), :mod:`~.pdf` (Chromium).

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> report = build_report(engine, "2025Q3")
>>> [s.key for s in report.sections]
['volume', 'outcomes', 'combinations', 'devices', 'safety', 'data_quality']
>>> sorted(report.provenance)[:3]
['clinic', 'code_version', 'data_snapshot_sha256']
"""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from data_schemas.callbacks import ProgressCallback
from ionto_analytics.errors import InputError
from ionto_analytics.loaders import last_visit_date
from ionto_analytics.provenance import code_version, hash_ledger
from ionto_analytics.report.brief import Brief, quarter_brief
from ionto_analytics.report.combinations import combinations_section
from ionto_analytics.report.data import ReportData, load_report_data
from ionto_analytics.report.model import ReportFigure, ReportTable, Section
from ionto_analytics.report.pdf import PdfError, find_chromium, print_pdf
from ionto_analytics.report.quality import data_quality_section, device_section, safety_section
from ionto_analytics.report.quarter import Quarter, latest_complete_quarter
from ionto_analytics.report.render import render_html
from ionto_analytics.report.sections import active_episode_ids, outcomes_section, volume_section
from ionto_analytics.suppression import THRESHOLD

__all__ = [
    "Brief",
    "Quarter",
    "QuarterlyReport",
    "ReportFigure",
    "ReportFiles",
    "ReportTable",
    "Section",
    "build_report",
    "code_version",
    "data_snapshot_hash",
    "report_quarter",
    "write_report",
]

SECTIONS: tuple[Callable[[ReportData, Quarter, str | None], Section], ...] = (
    volume_section,
    outcomes_section,
    combinations_section,
    device_section,
    safety_section,
    data_quality_section,
)
"""Section builders, in report order."""


@dataclass(frozen=True, eq=False)
class QuarterlyReport:
    """A computed report, ready to render.

    Attributes
    ----------
    quarter : Quarter
    clinic : str or None
    sections : tuple of Section
    provenance : dict of str
        Snapshot hash, parameters, code version, generated-at (the footer).
    n_episodes : int
        Episodes active in the quarter (in the clinic, if one was chosen).
    brief : Brief or None
        "This quarter in brief", shown above the sections.
    """

    quarter: Quarter
    clinic: str | None
    sections: tuple[Section, ...]
    provenance: dict[str, str]
    n_episodes: int
    brief: Brief | None = None

    @property
    def empty(self) -> bool:
        """True when the quarter holds no episode and no session (``--strict`` exits 2)."""
        return self.brief is not None and self.brief.empty

    def section(self, key: str) -> Section:
        """The section with this key."""
        for s in self.sections:
            if s.key == key:
                return s
        raise KeyError(f"no section {key!r}; have {[s.key for s in self.sections]}")

    def _repr_html_(self) -> str:
        return render_html(self)


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    html: Path
    pdf: Path | None
    report: QuarterlyReport


def data_snapshot_hash(data: ReportData) -> str:
    """SHA-256 over the import ledger (file hash, status, rows) and the frames' row counts.

    The same imported files give the same hash on any backend; importing, re-importing a
    corrected file or quarantining one changes it.

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> data_snapshot_hash(load_report_data(engine))[:12]
    '94a05fa1d5ed'
    """
    h = hash_ledger(hashlib.sha256(), data.ledger)
    for name in ("episodes", "outcomes", "sessions", "interventions", "visits"):
        h.update(f"{name}\t{len(getattr(data, name))}\n".encode())
    return h.hexdigest()


def _check_clinic(data: ReportData, clinic: str | None) -> None:
    if clinic is None:
        return
    known = sorted(set(data.episodes["clinic_id"]) | set(data.sessions["clinic_id"]))
    if clinic not in known:
        raise InputError(
            f"--clinic {clinic!r} is not a clinic in this store; known clinics: "
            f"{', '.join(known) or 'none (is the store empty?)'}"
        )


def report_quarter(source: ReportData | Engine, quarter: str | Quarter | None = None) -> Quarter:
    """The quarter asked for, or the latest complete quarter of the store's visits.

    Parameters
    ----------
    source : ReportData or sqlalchemy.Engine
        The report's data, or a store (one query for its last visit date): a notebook
        takes the report's default quarter from here.
    quarter : str or Quarter, optional
        ``"2025Q3"``; None for the default.

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> str(report_quarter(load_report_data(engine), "2025q3"))
    '2025Q3'
    >>> report_quarter(engine) == latest_complete_quarter(dt.date.today())  # no visit yet
    True
    """
    if isinstance(quarter, Quarter):
        return quarter
    if quarter is not None:
        return Quarter.parse(quarter)
    if isinstance(source, ReportData):
        days = source.visits["visit_date"].dropna()
        last = days.max().date() if len(days) else None
    else:
        last = last_visit_date(source)
    return latest_complete_quarter(last or dt.date.today())


def build_report(
    source: Engine | ReportData,
    quarter: str | Quarter | None,
    clinic: str | None = None,
    *,
    progress: ProgressCallback | None = None,
    store_description: str = "",
) -> QuarterlyReport:
    """Compute every section of the quarterly report.

    Parameters
    ----------
    source : sqlalchemy.Engine or ReportData
        A migrated store, or data already loaded with :func:`load_report_data`.
    quarter : str or Quarter or None
        ``"2025Q3"``; None for the latest complete quarter of the store's visits.
    clinic : str, optional
        A clinic key: that clinic's report (the funnel still shows its peers).
    progress : callable, optional
        ``progress(done, total)`` after each step.
    store_description : str
        How the store is named in the provenance (a URL without its password).

    Returns
    -------
    QuarterlyReport
    """
    tick = progress or (lambda done, total: None)
    total = len(SECTIONS) + 1
    data = source if isinstance(source, ReportData) else load_report_data(source)
    q = report_quarter(data, quarter)
    tick(1, total)
    _check_clinic(data, clinic)
    sections = []
    for i, build in enumerate(SECTIONS, start=2):
        sections.append(build(data, q, clinic))
        tick(i, total)
    provenance = {
        "data_snapshot_sha256": data_snapshot_hash(data),
        "files_in_ledger": f"{len(data.ledger):,}",
        "quarter": str(q),
        "previous_quarter": str(q.previous()),
        "clinic": clinic or "all clinics",
        "store": store_description or data.backend,
        "suppression": f"counts 1-{THRESHOLD - 1} hidden, complementary suppression",
        "code_version": code_version(),
        "python": platform.python_version(),
        "generated_at_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    return QuarterlyReport(
        quarter=q,
        clinic=clinic,
        sections=tuple(sections),
        provenance=provenance,
        n_episodes=len(active_episode_ids(data, q, clinic)),
        brief=quarter_brief(data, q, clinic, {s.key: s for s in sections}),
    )


def report_file_stem(quarter: Quarter, clinic: str | None) -> str:
    """``quarterly_report_2025Q3`` (``_clinic_03`` appended for one clinic).

    Examples
    --------
    >>> report_file_stem(Quarter(2025, 3), "clinic 03")
    'quarterly_report_2025Q3_clinic_03'
    """
    tail = "" if clinic is None else "_" + "".join(ch if ch.isalnum() else "_" for ch in clinic)
    return f"quarterly_report_{quarter}{tail}"


def write_report(
    engine: Engine,
    quarter: str | Quarter | None,
    clinic: str | None = None,
    *,
    out_dir: Path = Path("."),
    pdf: bool = False,
    progress: ProgressCallback | None = None,
    store_description: str = "",
) -> ReportFiles:
    """Build the report and write ``quarterly_report_<quarter>[_<clinic>].html`` (and .pdf).

    Parameters
    ----------
    engine : sqlalchemy.Engine
    quarter, clinic
        As in :func:`build_report`.
    out_dir : Path
        Folder for the files (created).
    pdf : bool
        Also print a PDF with headless Chromium (:func:`ionto_analytics.report.pdf.print_pdf`).
    progress : callable, optional
        ``progress(done, total)``.
    store_description : str

    Returns
    -------
    ReportFiles
    """
    if pdf and find_chromium() is None:  # fail before the work, not after it
        raise PdfError(
            "--pdf needs headless Chromium, and none was found ($IONTO_CHROMIUM, chromium, "
            "chromium-browser or google-chrome on PATH); install it (Debian: apt-get install "
            "-y chromium) or leave out --pdf"
        )
    steps = len(SECTIONS) + 2 + int(pdf)
    tick = progress or (lambda done, total: None)
    report = build_report(
        engine,
        quarter,
        clinic,
        progress=lambda done, _total: tick(done, steps),
        store_description=store_description,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = out / f"{report_file_stem(report.quarter, clinic)}.html"
    html_path.write_text(render_html(report), encoding="utf-8")
    tick(len(SECTIONS) + 2, steps)
    pdf_path = None
    if pdf:
        pdf_path = print_pdf(html_path, html_path.with_suffix(".pdf"))
        tick(steps, steps)
    return ReportFiles(html=html_path, pdf=pdf_path, report=report)
