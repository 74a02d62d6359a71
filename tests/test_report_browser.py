"""The report in a real headless Chromium: no console errors, every chart drawn, a PDF.

Skipped where no Chromium is installed, except under ``CI=true`` where that is a failure
(Debian: ``apt-get install -y chromium``). The screenshot is kept under
``tests/artifacts/`` (its path is printed).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from data_schemas import store
from ionto_analytics.report import ReportFiles, write_report
from ionto_analytics.report.pdf import chromium_command, find_chromium
from tests.report_fixtures import QUARTER, ReportStore, build_report_store

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="module")
def report_store(tmp_path_factory: pytest.TempPathFactory) -> ReportStore:
    return build_report_store(tmp_path_factory)


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None:
        message = "headless Chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run the browser tests")
        pytest.skip(message)
    return exe


@pytest.fixture(scope="module")
def written(
    report_store: ReportStore, chromium: str, tmp_path_factory: pytest.TempPathFactory
) -> ReportFiles:
    engine = store.connect(report_store.url)
    try:
        return write_report(engine, QUARTER, out_dir=tmp_path_factory.mktemp("html"), pdf=True)
    finally:
        engine.dispose()


def _run(chromium: str, *args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="ionto-test-chromium-") as profile:
        cmd = chromium_command(chromium, Path(profile), "--enable-logging=stderr", "--v=0", *args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_report_opens_without_console_errors_and_draws_every_chart(
    written: ReportFiles, chromium: str
) -> None:
    done = _run(
        chromium, "--virtual-time-budget=15000", "--dump-dom", written.html.resolve().as_uri()
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    errors = [c for c in console if re.search(r"Uncaught|Error|Failed to load", c)]
    assert errors == [], errors
    dom = done.stdout
    n_figures = sum(len(s.figures) for s in written.report.sections)
    assert n_figures >= 5
    assert dom.count('class="plot-container plotly"') == n_figures
    for s in written.report.sections:
        for f in s.figures:
            start = dom.index(f'id="fig-{s.key}-{f.key}"')
            assert 'class="main-svg"' in dom[start : start + 20000], f.key
    assert "Provenance" in dom


def test_screenshot_is_kept_as_an_artifact(written: ReportFiles, chromium: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"quarterly_report_{QUARTER}.png"
    shot.unlink(missing_ok=True)
    _run(
        chromium,
        "--hide-scrollbars",
        "--window-size=1280,4000",
        "--virtual-time-budget=15000",
        f"--screenshot={shot}",
        written.html.resolve().as_uri(),
    )
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 50_000  # tables and charts, not a blank page
    print(f"screenshot: {shot}")


def _pdf_pages(pdf: Path) -> int:
    try:
        import pypdf
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes()))
    return len(pypdf.PdfReader(str(pdf)).pages)


def test_pdf_has_a_page_per_section_and_the_provenance(written: ReportFiles) -> None:
    assert written.pdf is not None and written.pdf.read_bytes()[:5] == b"%PDF-"
    pages = _pdf_pages(written.pdf)
    # every section starts on a new page, and so does the provenance footer
    assert pages >= len(written.report.sections) + 1, pages
    assert pages < 60


def test_no_pseudonym_reaches_the_pdf_text_layer(
    written: ReportFiles, report_store: ReportStore
) -> None:
    engine = store.connect(report_store.url)
    with engine.connect() as c:
        pseudonyms = [r[0] for r in c.execute(text("SELECT pseudonym FROM patient"))]
    engine.dispose()
    raw = written.pdf.read_bytes() if written.pdf else b""
    assert pseudonyms and not any(p[:16].encode() in raw for p in pseudonyms)
