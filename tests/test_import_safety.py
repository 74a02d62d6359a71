"""A killed import leaves nothing half-written; concurrent imports leave no duplicates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from data_schemas import store
from device_import.privacy import Keyer
from tests.ehr_export import EHR_TABLES, write_ehr_export

SITE_KEY = "8a015bc866008537b4018c8ab5e64aed4551c84d07d1ace97539d9c9c4cb05e0"
IONTO = [sys.executable, "-m", "ionto.cli"]


def _env() -> dict[str, str]:
    return {**os.environ, "IONTO_SITE_KEY": SITE_KEY}


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from data_schemas import store
    from device_import import loader
    from device_import.pipeline import Importer
    from device_import.privacy import Keyer

    original = loader.Loader._load_table

    def load_then_die(self, spec, *rest):
        original(self, spec, *rest)
        if spec.table == "visit":  # rows are written, the transaction is still open
            os.kill(os.getpid(), signal.SIGKILL)

    loader.Loader._load_table = load_then_die
    engine = store.connect(sys.argv[1])
    Importer(engine, Keyer(sys.argv[3].encode())).run([Path(sys.argv[2])])
    """
)


def test_a_killed_import_leaves_no_partial_file_and_a_rerun_completes(
    store_url: str, tmp_path: Path
) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    engine = store.connect(store_url)
    store.upgrade(engine)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, store_url, str(folder), SITE_KEY],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL
    ledger = SQLModel.metadata.tables["import_file"]
    with engine.connect() as connection:
        names = set(connection.execute(select(ledger.c.file_name_hash)).scalars())
    counts = store.info(engine).row_counts
    assert counts["visit"] == 0 and Keyer(SITE_KEY.encode()).file_name("visits.csv") not in names
    assert counts["episode"] == 2  # files before it were committed whole
    rerun = subprocess.run(
        [*IONTO, "--db", store_url, "import", str(folder), "--json", "--workers", "1"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rerun.returncode == 0, rerun.stderr
    report = json.loads(rerun.stdout)
    assert report["files"]["imported"] + report["files"]["unchanged"] == len(EHR_TABLES)
    assert store.info(engine).row_counts["visit"] == 3
    engine.dispose()


@pytest.mark.postgres
def test_two_overlapping_imports_at_once_leave_no_duplicates(
    postgres_url: str, tmp_path: Path
) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    engine = store.connect(postgres_url)
    store.upgrade(engine)
    command = [*IONTO, "--db", postgres_url, "import", str(folder), "--json", "--workers", "1"]
    runs = [
        subprocess.Popen(
            command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        reports.append(json.loads(out))
    assert sum(r["files"]["imported"] for r in reports) == len(EHR_TABLES)
    assert sum(r["files"]["unchanged"] for r in reports) == len(EHR_TABLES)
    counts = store.info(engine).row_counts
    assert counts["patient"] == 2 and counts["visit"] == 3 and counts["outcome_measurement"] == 3
    assert counts["import_file"] == len(EHR_TABLES)
    engine.dispose()


def test_store_unreachable_exits_with_could_not_run(tmp_path: Path) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    result = subprocess.run(
        [*IONTO, "--db", "postgresql://nobody@127.0.0.1:1/none", "import", str(folder)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "could not be reached" in result.stderr


def test_some_quarantined_files_exit_with_their_own_status(engine: Engine, tmp_path: Path) -> None:
    folder = write_ehr_export(tmp_path / "ehr")
    (folder / "notes.txt").write_text("call Ann back on Tuesday\n")
    url = engine.url.render_as_string(hide_password=False)
    result = subprocess.run(
        [*IONTO, "--db", url, "import", str(folder), "--json", "--quarantine", str(tmp_path / "q")],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 4, result.stderr
    report = json.loads(result.stdout)
    assert report["files"]["quarantined"] == 1
    assert report["quarantine"][0]["file"].endswith("notes.txt")
    assert report["formats"] == {"ehr_csv": len(EHR_TABLES)}
