"""The conda environment and the pip project ask for the same runtime dependencies."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_dependencies() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return {req.name.lower(): str(req.specifier) for req in requirements}


def _conda_dependencies() -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [item for item in environment["dependencies"] if isinstance(item, str)]
    requirements = [Requirement(item) for item in conda if not item.startswith(("python=", "pip"))]
    return {req.name.lower(): str(req.specifier) for req in requirements}


def test_environment_yml_matches_pyproject() -> None:
    assert _conda_dependencies() == _pyproject_dependencies()


def test_environment_yml_installs_the_package_with_pip_editable() -> None:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(
        item["pip"] for item in environment["dependencies"] if isinstance(item, dict)
    )
    assert "-e ." in pip_section
    assert "python=3.11" in environment["dependencies"]
    assert environment["channels"] == ["conda-forge"]


def test_packaging_check_detects_a_disagreement(tmp_path: Path, monkeypatch) -> None:
    """The comparison is not vacuous: a dropped dependency makes the two differ."""
    dependencies = _pyproject_dependencies()
    dependencies.pop("pandas")
    assert dependencies != _conda_dependencies()
