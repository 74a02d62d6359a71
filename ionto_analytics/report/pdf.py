"""Print the HTML report to PDF with headless Chromium.

Chromium is looked up as ``$IONTO_CHROMIUM``, then ``chromium``, ``chromium-browser``,
``google-chrome`` on the ``PATH``. It runs with a fresh throw-away profile and the
background-networking features off (a closed network refuses those connections), prints
with ``--print-to-pdf`` after a virtual-time budget that lets plotly draw every chart, and
must leave a non-empty ``%PDF`` file; anything else raises :class:`PdfError` saying what
to install or what Chromium printed.

Examples
--------
>>> find_chromium({"IONTO_CHROMIUM": "/nonexistent/chromium", "PATH": ""}) is None
True
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ionto_analytics.errors import IontoError

__all__ = [
    "CHROMIUM_FLAGS",
    "PRINT_LAYOUT",
    "PRINT_WIDTH_PX",
    "PdfError",
    "chromium_command",
    "find_chromium",
    "print_pdf",
]

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
"""Flags for every headless run (offline, no sandbox: we run as a service user or root)."""

PRINT_WIDTH_PX = 1032
"""Width of the printed page's content in CSS pixels: A4 landscape (297 mm) less the
template's 12 mm ``@page`` margins, at 96 px per inch. Chromium lays the page out in a window
this wide before printing, so every plotly figure (drawn once, at its container's width) is
drawn at the width it will have on paper: in the default 800 px window a figure was drawn
narrow and the forest plot's axis title and "favours" labels were cut at its right edge."""

PRINT_LAYOUT: tuple[str, ...] = (
    f"--window-size={PRINT_WIDTH_PX},800",
    "--virtual-time-budget=15000",
    "--run-all-compositor-stages-before-draw",
)
"""How the page is laid out before it is printed: at the paper's width, with a virtual-time
budget that lets plotly draw every chart."""

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class PdfError(IontoError):
    """Chromium is missing, or it did not write the PDF."""


def find_chromium(environ: Mapping[str, str] | None = None) -> str | None:
    """Path of a Chromium executable, or None.

    Parameters
    ----------
    environ : mapping, optional
        Environment to read ``IONTO_CHROMIUM`` and ``PATH`` from (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    explicit = env.get("IONTO_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() and os.access(explicit, os.X_OK) else None
    for name in _NAMES:
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return found
    return None


def chromium_command(chromium: str, profile: Path, *extra: str) -> list[str]:
    """The command line: Chromium, the shared flags, a fresh profile, then ``extra``.

    Examples
    --------
    >>> chromium_command("chromium", Path("/tmp/p"), "--dump-dom", "x.html")[-3:]
    ['--user-data-dir=/tmp/p', '--dump-dom', 'x.html']
    """
    return [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra]


def print_pdf(
    html: Path, pdf: Path, *, timeout: float = 120.0, chromium: str | None = None
) -> Path:
    """Print ``html`` to ``pdf`` (A4, no browser header/footer) with headless Chromium.

    Raises
    ------
    PdfError
        No Chromium found, Chromium failed or timed out, or no PDF was written.
    """
    exe = chromium or find_chromium()
    if exe is None:
        raise PdfError(
            "--pdf needs headless Chromium, and none was found (looked for $IONTO_CHROMIUM, "
            f"{', '.join(_NAMES)} on PATH); install it (Debian: apt-get install -y chromium) "
            "or leave out --pdf (the HTML report was written)"
        )
    pdf = Path(pdf).resolve()
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="ionto-chromium-") as profile:
        cmd = chromium_command(
            exe,
            Path(profile),
            "--no-pdf-header-footer",
            *PRINT_LAYOUT,
            f"--print-to-pdf={pdf}",
            Path(html).resolve().as_uri(),
        )
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise PdfError(
                f"Chromium did not finish printing {html} within {timeout:g} s"
            ) from None
    if not pdf.exists() or pdf.stat().st_size == 0 or pdf.read_bytes()[:4] != b"%PDF":
        tail = (done.stderr or "").strip().splitlines()[-5:]
        raise PdfError(
            f"Chromium (exit {done.returncode}) wrote no PDF at {pdf}; its last messages: "
            + (" | ".join(tail) or "none")
        )
    return pdf
