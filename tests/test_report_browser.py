"""The report in a real headless Chromium: no console errors, every chart drawn, a PDF.

Skipped where no Chromium is installed, except under ``CI=true`` where that is a failure
(Debian: ``apt-get install -y chromium``). Playwright (a dev extra) drives the same
Debian Chromium at 1,280 and 1,024 px for the layout checks. The screenshots are kept under
``tests/artifacts/`` (their paths are printed).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import text

from data_schemas import store
from ionto_analytics.report import ReportFiles, write_report
from ionto_analytics.report.model import column_heading
from ionto_analytics.report.pdf import (
    PRINT_LAYOUT,
    PRINT_WIDTH_PX,
    chromium_command,
    find_chromium,
)
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


def _page_text(pdf: Path, page: int) -> str:
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext is not installed (apt-get install -y poppler-utils)")
    args = [pdftotext, "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def test_pdf_first_page_holds_the_brief_and_the_first_table(written: ReportFiles) -> None:
    assert written.pdf is not None and written.report.brief is not None
    first = " ".join(_page_text(written.pdf, 1).split())
    assert "This quarter in brief" in first
    for item in written.report.brief.items:
        assert item.label in first, item.label
    table = written.report.sections[0].tables[0]
    assert table.title in first  # the first table starts on page 1 ...
    assert str(table.frame.index[0]) in first  # ... with its first row


def test_pdf_pages_are_not_left_half_blank_without_need(written: ReportFiles) -> None:
    """Only the last page of a section may end short (the next section starts a new page)."""
    assert written.pdf is not None
    starts = [s.title for s in written.report.sections] + ["Provenance"]
    pages = [_page_text(written.pdf, i) for i in range(1, _pdf_pages(written.pdf) + 1)]
    short = []
    for i, (page, following) in enumerate(itertools.pairwise(pages), start=1):
        lines = [line for line in page.splitlines() if line.strip()]
        next_first = next((line.strip() for line in following.splitlines() if line.strip()), "")
        if len(lines) < 8 and next_first not in starts:
            short.append((i, len(lines), next_first))
    assert short == []


def test_no_pseudonym_reaches_the_pdf_text_layer(
    written: ReportFiles, report_store: ReportStore
) -> None:
    engine = store.connect(report_store.url)
    with engine.connect() as c:
        pseudonyms = [r[0] for r in c.execute(text("SELECT pseudonym FROM patient"))]
    engine.dispose()
    raw = written.pdf.read_bytes() if written.pdf else b""
    assert pseudonyms and not any(p[:16].encode() in raw for p in pseudonyms)


# --------------------------------------------------------------------------- Playwright

_LAYOUT_JS = """() => {
  const out = {overflow: [], plots: [], order: null, page: null};
  const doc = document.documentElement;
  out.page = [doc.scrollWidth, window.innerWidth];
  const brief = document.getElementById('brief').getBoundingClientRect();
  const table = document.querySelector('table.data');
  out.order = [brief.bottom, table ? table.getBoundingClientRect().top : 1e9];
  const boxes = document.querySelectorAll(
    'section > *, header > *, footer > *, .figure > *, table.data, .brief dl');
  for (const el of boxes) {
    const r = el.getBoundingClientRect(), p = el.parentElement.getBoundingClientRect();
    if (r.right > p.right + 1 || el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'TABLE')
      out.overflow.push([el.tagName, el.id || el.className, r.right, p.right]);
  }
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const box = (sel) => Array.from(plot.querySelectorAll(sel)).map(e => e.getBoundingClientRect())
      .filter(b => b.width > 0);
    const title = box('.g-gtitle text');
    const axes = box('.g-xtitle text, .g-ytitle text, .g-y2title text');
    const hits = [];
    for (const t of title) for (const a of axes)
      if (a.left < t.right && t.left < a.right && a.top < t.bottom && t.top < a.bottom)
        hits.push([t.top, t.bottom, a.top, a.bottom]);
    const svg = plot.querySelector('.main-svg').getBoundingClientRect();
    const clipped = Array.from(plot.querySelectorAll(
        'g.xtick text, g.ytick text, g.x2tick text, g.y2tick text, .g-xtitle text, '
        + '.g-x2title text, .g-ytitle text, .g-y2title text, g.annotation text'))
      .filter(e => { const b = e.getBoundingClientRect();
        return b.width > 0 && (b.left < svg.left - 1 || b.right > svg.right + 1
                               || b.top < svg.top - 1 || b.bottom > svg.bottom + 1); })
      .map(e => e.textContent);
    out.plots.push({id: plot.id, xticks: plot.querySelectorAll('g.xtick').length,
                    yticks: plot.querySelectorAll('g.ytick').length, overlaps: hits, clipped,
                    right: plot.getBoundingClientRect().right,
                    parent: plot.parentElement.getBoundingClientRect().right});
  }
  return out;
}"""


@pytest.fixture(scope="module")
def layouts(written: ReportFiles, chromium: str) -> dict[int, dict]:
    """The report opened in Playwright at 1,280 and 1,024 px: layout facts, console errors."""
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    out: dict[int, dict] = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            for width in (1280, 1024):
                page = browser.new_page(viewport={"width": width, "height": 900})
                errors: list[str] = []
                page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else 0)
                page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
                page.goto(written.html.resolve().as_uri())
                page.wait_for_function(
                    "() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                    ".every(p => p.querySelector('.main-svg'))",
                    timeout=30_000,
                )
                page.wait_for_timeout(500)
                facts = page.evaluate(_LAYOUT_JS)
                facts["errors"] = errors
                shot = ARTIFACTS / f"quarterly_report_{QUARTER}_{width}px.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
                out[width] = facts
                page.close()
        finally:
            browser.close()
    return out


@pytest.mark.parametrize("width", [1280, 1024])
def test_brief_comes_before_the_first_table(layouts: dict, width: int) -> None:
    brief_bottom, table_top = layouts[width]["order"]
    assert brief_bottom <= table_top


@pytest.mark.parametrize("width", [1280, 1024])
def test_nothing_overflows_its_container(layouts: dict, width: int) -> None:
    facts = layouts[width]
    assert facts["page"][0] <= facts["page"][1], facts["page"]  # no sideways scrolling
    assert facts["overflow"] == []
    for plot in facts["plots"]:
        assert plot["right"] <= plot["parent"] + 1, plot["id"]


@pytest.mark.parametrize("width", [1280, 1024])
def test_every_chart_has_axes_and_no_axis_title_runs_through_the_chart_title(
    layouts: dict, written: ReportFiles, width: int
) -> None:
    plots = layouts[width]["plots"]
    assert len(plots) == sum(len(s.figures) for s in written.report.sections)
    for plot in plots:
        assert plot["xticks"] > 0 and plot["yticks"] > 0, plot["id"]
        assert plot["overlaps"] == [], plot["id"]


@pytest.mark.parametrize("width", [1280, 1024])
def test_no_tick_label_or_axis_title_is_clipped(layouts: dict, width: int) -> None:
    """Every tick label (wrapped category labels included), axis title and annotation lies
    inside its chart's svg: nothing is cut off at the bottom or the sides."""
    clipped = {p["id"]: p["clipped"] for p in layouts[width]["plots"] if p["clipped"]}
    assert clipped == {}


@pytest.mark.parametrize("width", [1280, 1024])
def test_no_console_error(layouts: dict, width: int) -> None:
    assert layouts[width]["errors"] == []


def test_pdf_text_has_every_table_column(written: ReportFiles) -> None:
    """Every word of every column heading, and each table's last column, reach the PDF."""
    pdftotext = shutil.which("pdftotext")
    if pdftotext is None:
        pytest.skip("pdftotext is not installed (apt-get install -y poppler-utils)")
    assert written.pdf is not None
    done = subprocess.run(
        [pdftotext, str(written.pdf), "-"], capture_output=True, text=True, check=True
    )
    words = set(re.findall(r"[A-Za-z]{3,}", done.stdout))
    missing = []
    for s in written.report.sections:
        for t in s.tables:
            for heading in (column_heading(c) for c in t.frame.columns):
                missing += [(t.key, w) for w in re.findall(r"[A-Za-z]{3,}", heading)
                            if w not in words]  # fmt: skip
            if len(t.frame.columns):
                last = t.frame.iloc[:, -1].astype(str)
                missing += [(t.key, v) for v in last if v.replace(",", "").isdigit()
                            and v not in done.stdout]  # fmt: skip
    assert missing == []


def _printed_column_px(html: Path) -> float:
    """The printed page's content width in CSS px, from the report's ``@page`` rule."""
    rule = re.search(r"@page\s*\{\s*size:\s*A4 landscape;\s*margin:\s*(\d+)mm", html.read_text())
    assert rule, "the report's @page rule changed: update this test"
    return (297 - 2 * int(rule.group(1))) / 25.4 * 96


def test_pdf_layout_draws_every_figure_at_the_printed_width(
    written: ReportFiles, chromium: str
) -> None:
    """The layout the PDF is printed from draws each plotly figure as wide as the printed
    column (less the body's padding): a figure drawn in a narrower window stays narrow on
    paper and loses the labels that run past its edge."""
    column = _printed_column_px(written.html)
    assert abs(PRINT_WIDTH_PX - column) < 1
    dom = _run(chromium, *PRINT_LAYOUT, "--dump-dom", written.html.resolve().as_uri()).stdout
    widths = [float(w) for w in re.findall(r'<svg class="main-svg"[^>]*?width="([\d.]+)"', dom)]
    n_figures = sum(len(s.figures) for s in written.report.sections)
    assert len(widths) >= n_figures
    narrow = [w for w in widths if not column - 64 <= w <= column]
    assert narrow == []
