"""The shape of the code: small modules, imports at the top, no private names across modules.

`lint-imports` (in ``make lint``) checks which package may import which; these tests check
what it cannot see: module size, imports hidden inside functions, and private names
(``_name``) taken from another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("data_schemas", "device_import", "emulator", "ionto_analytics", "ionto")
PROJECT = set(PACKAGES)
MAX_LINES = 600
LAZY_APP_MODULES = {"ionto/cli.py"}
"""The command line imports a subcommand's stage when the subcommand runs, so that
``ionto --help`` does not pay for pandas and statsmodels: its function-level imports are
deliberate (nothing else may have any)."""


def _modules() -> list[Path]:
    return sorted(
        p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py") if "migrations" not in p.parts
    )


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _project_module(node: ast.ImportFrom | ast.Import) -> str | None:
    if isinstance(node, ast.ImportFrom):
        if node.level:
            return "."
        name = node.module or ""
    else:
        name = node.names[0].name
    return name if name.split(".")[0] in PROJECT else None


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_module_is_small(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines; split it by concept"


def test_no_project_import_inside_a_function() -> None:
    hidden = []
    for path in _modules():
        if _rel(path) in LAZY_APP_MODULES:
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Import | ast.ImportFrom) and _project_module(node):
                    hidden.append(f"{_rel(path)}:{node.lineno}")
    assert hidden == [], f"imports inside functions (move them to the top): {hidden}"


def test_no_private_name_taken_from_another_module() -> None:
    taken = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and _project_module(node):
                taken += [
                    f"{_rel(path)}:{node.lineno} {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert taken == [], f"private names imported across modules (make them public): {taken}"


def test_the_checks_see_the_packages() -> None:
    """Guards the tests above against passing because they read nothing."""
    found = {_rel(p).split("/")[0] for p in _modules()}
    assert found == PROJECT
    assert len(_modules()) > 80
