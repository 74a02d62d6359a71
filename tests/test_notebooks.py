"""Every notebook in notebooks/ runs headless against a small store and draws its figures;
committed notebooks carry no outputs and no execution counts."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.notebook_fixtures import notebook_store_url  # noqa: F401  (fixture)

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"

# Figures (plotly outputs) and widgets each notebook must show, at least.
EXPECTED: dict[str, dict[str, int]] = {
    "01_clinic_outcomes_explorer": {PLOTLY: 3, WIDGET: 1},
    "02_cohort_comparison": {PLOTLY: 6},
    "03_device_sessions_and_dose": {PLOTLY: 4, WIDGET: 1},
}


def test_there_are_notebooks() -> None:
    names = {p.stem for p in NOTEBOOKS}
    assert set(EXPECTED) <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_no_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and "How to read" in first.source
    assert any("IONTO_DATABASE_URL" in c.source for c in nb.cells if c.cell_type == "markdown")


def _outputs(nb: nbformat.NotebookNode) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_draws_its_figures(
    path: Path,
    notebook_store_url: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IONTO_DATABASE_URL", notebook_store_url)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb,
        timeout=240,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    ).execute()
    outs = _outputs(nb)
    errors = [o for o in outs if o.get("output_type") == "error"]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    stderr = [o["text"] for o in outs if o.get("output_type") == "stream" and o["name"] == "stderr"]
    assert not stderr, f"{path.name} wrote to stderr (a warning?): {stderr[0][:500]}"
    counts: dict[str, int] = {}
    for o in outs:
        for mime in o.get("data", {}):
            counts[mime] = counts.get(mime, 0) + 1
    for mime, k in EXPECTED.get(path.stem, {PLOTLY: 1}).items():
        assert counts.get(mime, 0) >= k, f"{path.name}: {counts.get(mime, 0)} {mime} < {k}"
