"""The bad-input corpus in one batch: every good file imports, every bad one is quarantined.

Each kind (tests/bad_inputs.py) sits in a folder of its own; its outcome is read off the
report by that folder. The whole corpus runs on SQLite; the kinds SQLite stores and
PostgreSQL might refuse (lengths, NUL, integer range) run on PostgreSQL too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from data_schemas import store
from device_import.pipeline import Importer, ImportReport
from device_import.privacy import Keyer
from emulator import EmulationSummary
from tests.bad_inputs import IMPORTED, KINDS, Kind, samples_of, write_kinds
from tests.import_fixtures import SITE_KEY

KEY = Keyer(SITE_KEY * 2)


def _outcomes(report: ImportReport, root: Path) -> dict[str, list[str]]:
    """Quarantine messages by kind (the folder under ``root`` the file sits in)."""
    found: dict[str, list[str]] = {}
    for problem in report.quarantine:
        relative = problem.file.split(str(root) + "/", 1)[-1]
        found.setdefault(relative.split("/", 1)[0], []).append(problem.message())
    return found


def _import(url: str, root: Path, network: EmulationSummary, kinds: tuple[Kind, ...]):
    write_kinds(root, samples_of(network), kinds)
    engine = store.connect(url)
    store.upgrade(engine)
    quarantine = root.parent / "quarantine"
    ehr = Path(network.out_dir) / "ehr"  # registers the devices the logs come from
    try:
        report = Importer(engine, KEY, workers=2, quarantine_dir=quarantine).run([ehr, root])
    finally:
        engine.dispose()  # an open PostgreSQL connection would warn in a later test
    return report, _outcomes(report, root)


def _check(kinds: tuple[Kind, ...], outcomes: dict[str, list[str]]) -> list[str]:
    wrong = []
    for kind in kinds:
        messages = outcomes.get(kind.name, [])
        if kind.expected == IMPORTED:
            if messages:
                wrong.append(f"{kind.name}: expected imported, got {messages}")
        elif not messages or not all(re.search(kind.expected, m) for m in messages):
            wrong.append(f"{kind.name}: expected /{kind.expected}/, got {messages or 'imported'}")
    return wrong


def test_the_corpus_has_at_least_sixty_kinds() -> None:
    assert len({kind.name for kind in KINDS}) == len(KINDS) >= 60


def test_every_good_file_imports_and_every_bad_one_is_quarantined_with_its_reason(
    tmp_path: Path, network: EmulationSummary
) -> None:
    _report, outcomes = _import(f"sqlite:///{tmp_path / 's.db'}", tmp_path / "in", network, KINDS)
    wrong = _check(KINDS, outcomes)
    assert not wrong, "\n".join(wrong)
    assert not set(outcomes) - {kind.name for kind in KINDS}, "the network's own files imported"


@pytest.mark.postgres
def test_the_postgres_subset_is_quarantined_before_postgresql_sees_it(
    postgres_url: str, tmp_path: Path, network: EmulationSummary
) -> None:
    kinds = tuple(kind for kind in KINDS if kind.postgres or kind.name.startswith("good"))
    _report, outcomes = _import(postgres_url, tmp_path / "in", network, kinds)
    wrong = _check(kinds, outcomes)
    assert not wrong, "\n".join(wrong)
