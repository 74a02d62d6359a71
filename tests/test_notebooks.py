"""Every notebook in notebooks/ runs headless against a small store and draws its figures;
committed notebooks carry no outputs and no execution counts."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import ionto_analytics as ia
from data_schemas.windows import window_days
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


FULL_ROUND = "05_network_study"
"""The network-study notebook: every site pools both real contrasts (no ``small_arm``) and the
exact pooled ANCOVA stands beside the meta-analysis for each (no missing ``exact_*``)."""


PUBLIC_API_ONLY = (
    "01_clinic_outcomes_explorer",
    "03_device_sessions_and_dose",
    "04_quarterly_report",
)
"""Notebooks that use the package only as ``import ionto_analytics as ia`` and ``ia.<name>``."""
PROJECT = ("ionto_analytics", "data_schemas", "device_import", "emulator", "ionto")


def _code_names(path: Path) -> tuple[list[str], set[str], set[str]]:
    """The project modules a notebook imports, the ``ia.<name>`` attributes it uses and
    those of them it calls."""
    nb = nbformat.read(path, as_version=4)
    tree = ast.parse("\n".join(c.source for c in nb.cells if c.cell_type == "code"))
    imports: list[str] = []
    used: set[str] = set()
    called = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "ia"
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imports += [f"import {a.name} as {a.asname}" for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imports.append(f"from {node.module} import ...")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "ia"
        ):
            used.add(node.attr)
    project = [i for i in imports if i.split()[1].split(".")[0] in PROJECT]
    return project, used, called


@pytest.mark.parametrize("name", PUBLIC_API_ONLY)
def test_notebook_uses_only_the_public_api(name: str) -> None:
    project, used, called = _code_names(NOTEBOOK_DIR / f"{name}.ipynb")
    assert project == ["import ionto_analytics as ia"], f"{name}: imports {project}"
    assert used, f"{name}: uses nothing of ia"
    assert used <= set(ia.__all__), f"{name}: not in the public API: {used - set(ia.__all__)}"
    # Every subpackage loaded first: a submodule of the same name as a public function
    # would then shadow it on the package (the import system binds submodules there).
    importlib.import_module("ionto_analytics.report")
    importlib.import_module("ionto_analytics.widgets")
    not_callable = sorted(n for n in called if not callable(getattr(ia, n)))
    assert not not_callable, f"{name}: ia.{not_callable} are modules, not functions"


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


WINDOWED = ("01_clinic_outcomes_explorer", "02_cohort_comparison")
"""Notebooks whose sections and figures are about a follow-up window (03 and 04 are not:
03 is about device sessions, 04 shows the report's own titles)."""


def _unnamed_windows(text: str) -> list[str]:
    """The week mentions in a title that do not say their days (``week 6 = days 36–49``)."""
    out = []
    for week in re.findall(r"\bweek[ -](\d+)\b", text):
        first, last = window_days(int(week))
        if f"days {first}–{last}" not in text:
            out.append(f"week {week}")
    return out


@pytest.mark.parametrize("name", WINDOWED)
def test_every_section_title_names_its_window(name: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    titles = [
        line
        for c in nb.cells
        if c.cell_type == "markdown"
        for line in c.source.splitlines()
        if line.startswith("#")
    ]
    assert [t for t in titles if _unnamed_windows(t)] == []
    assert any("days" in t for t in titles), titles


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
    if path.stem in WINDOWED:  # every figure title that names a week names its days
        titles = [
            o["data"][PLOTLY]["layout"].get("title", {}).get("text", "")
            for o in outs
            if PLOTLY in o.get("data", {})
        ]
        assert [t for t in titles if _unnamed_windows(t)] == []
        assert sum("days" in t or "after day" in t for t in titles) >= 2, titles
    if path.stem == FULL_ROUND:
        _assert_full_round(outs)


def _assert_full_round(outs: list[dict]) -> None:
    """Every pooled contrast pooled every site, with its exact pooled ANCOVA."""
    texts = [o["data"]["text/plain"] for o in outs if "text/plain" in o.get("data", {})]
    assert not any("small_arm" in t for t in texts), "a site left a contrast out (small_arm)"
    exact = [t for t in texts if "exact_ci_high" in t]
    assert exact, "no table of the exact pooled ANCOVA"
    assert not any("NaN" in t for t in exact), f"an exact pooled ANCOVA is missing:\n{exact[0]}"
