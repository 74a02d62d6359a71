"""The ``ionto`` command line: store selection, db upgrade and info, exit statuses.

Bad input to every subcommand is in ``test_cli_errors.py``.
"""

from __future__ import annotations

import json
import os
import secrets
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_schemas.tables import SCHEMA_REVISION
from ionto.cli import app, main

runner = CliRunner()


def test_db_upgrade_then_info_on_each_backend(store_url: str) -> None:
    upgraded = runner.invoke(app, ["--db", store_url, "db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    shown = runner.invoke(app, ["--db", store_url, "db", "info", "--json"])
    assert shown.exit_code == 0, shown.output
    details = json.loads(shown.stdout)
    assert details["revision"] == SCHEMA_REVISION
    assert details["backend"] == ("sqlite" if store_url.startswith("sqlite") else "postgresql")
    assert details["rows"]["ionto_session"] == 0


def test_default_store_is_ionto_db_in_the_working_directory_and_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IONTO_DATABASE_URL", raising=False)
    first = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "ionto.db").exists()
    assert "Using the default store" in first.stderr
    second = runner.invoke(app, ["db", "info"])
    assert "Using the default store" not in second.stderr


def test_environment_variable_chooses_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IONTO_DATABASE_URL", f"sqlite:///{tmp_path / 'network.db'}")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "network.db").exists()
    assert not (tmp_path / "ionto.db").exists()


def test_info_on_an_empty_store_says_how_to_create_it(tmp_path: Path) -> None:
    (tmp_path / "new.db").touch()
    result = runner.invoke(app, ["--db", f"sqlite:///{tmp_path / 'new.db'}", "db", "info"])
    assert result.exit_code == 0, result.output
    assert "none (run: ionto db upgrade)" in result.stdout


def test_info_on_a_missing_store_fails_without_creating_it(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--db", f"sqlite:///{tmp_path / 'new.db'}", "db", "info"])
    assert result.exit_code == 2
    assert "ionto db upgrade" in result.stderr
    assert not (tmp_path / "new.db").exists()


def test_main_passes_the_import_status_through(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("IONTO_SITE_KEY", secrets.token_hex(32))
    (tmp_path / "notes.txt").write_text("call Ann back on Tuesday\n")
    url = f"sqlite:///{tmp_path / 'ionto.db'}"
    argv = ["--db", url, "import", str(tmp_path / "notes.txt"), "--json"]
    assert main([*argv, "--quarantine", str(tmp_path / "q")]) == 4
    assert main(["--db", url, "db", "info", "--json"]) == 0


def test_help_exits_0_and_no_arguments_show_the_help_with_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    assert "Usage" in capsys.readouterr().out
    assert main([]) == 2


def test_help_imports_no_database_layer_and_db_info_no_alembic() -> None:
    """``ionto --help`` and ``ionto db info`` start fast: the help imports neither the
    store nor pandas, and db info does not import Alembic (measured: bench/RESULTS.md)."""
    import subprocess
    import sys

    probe = (
        "import sys, contextlib, io\n"
        "from ionto.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(sys.argv[1:])\n"
        "print(sorted(m for m in ('sqlalchemy', 'pandas', 'alembic', 'sqlmodel')"
        " if m in sys.modules))\n"
    )
    run = [sys.executable, "-c", probe]
    help_mods = subprocess.run([*run, "--help"], capture_output=True, text=True, check=True)
    assert help_mods.stdout.strip() == "[]", help_mods.stderr
    info = subprocess.run(
        [*run, "--db", "sqlite://", "db", "info"], capture_output=True, text=True, check=True
    )
    assert "alembic" not in info.stdout and "pandas" not in info.stdout, info.stdout


@pytest.mark.parametrize("command", [["compare"], ["db", "info"], ["import"], ["report"]])
def test_help_shows_flags_as_flags(command: list[str]) -> None:
    shown = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"})
    assert shown.exit_code == 0, shown.output
    assert "<bool>" not in shown.stdout
    flag = next(line for line in shown.stdout.splitlines() if "--json" in line or "--pdf" in line)
    assert flag.split()[1][0].isupper()  # the flag, then its help: no metavar between
    assert max(len(line) for line in shown.stdout.splitlines()) <= 80


def test_import_summary_shows_file_names_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Brackets and colons in a file name are the user's text, never rich markup."""
    monkeypatch.setenv("IONTO_SITE_KEY", secrets.token_hex(32))
    folder = tmp_path / "in"
    folder.mkdir()
    names = ["visit[1].csv", "[bold]x.csv", "a:warning:b.csv"]
    for number, name in enumerate(names):
        (folder / name).write_text(f"not an export, number {number}\n")
    archive = folder / "export.zip"
    with zipfile.ZipFile(archive, "w") as writing:
        writing.writestr("x[/b]y.csv", "a closing tag that opens nothing\n")
    url = f"sqlite:///{tmp_path / 'ionto.db'}"
    argv = ["--db", url, "import", str(folder), "--quarantine", str(tmp_path / "q")]
    assert main(argv) == 4
    out = capsys.readouterr().out.splitlines()
    lines = [line for line in out if line.startswith("quarantined ")]
    shown = {line.split(", ")[0].removeprefix("quarantined ") for line in lines}
    assert shown == {str(folder / name) for name in names} | {f"{archive}!x[/b]y.csv"}


def test_zip_limits_are_set_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IONTO_SITE_KEY", secrets.token_hex(32))
    monkeypatch.chdir(tmp_path)  # the default quarantine folder is made here
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as writing:
        writing.writestr("a.txt", "not an export\n")
        writing.writestr("zeros.bin", bytes(3 * 1024**2))
    url = f"sqlite:///{tmp_path / 'ionto.db'}"

    def reasons(*options: str) -> list[str]:
        argv = ["--db", url, "import", str(archive), "--json", *options]
        result = runner.invoke(app, argv)
        assert result.exit_code == 4, result.output
        return [problem["reason"] for problem in json.loads(result.stdout)["quarantine"]]

    by_default = reasons()  # the zeros expand about 1,000 times: over the ratio of 100
    assert len(by_default) == 2
    assert sum("expands far more than an export does" in reason for reason in by_default) == 1
    allowed = reasons("--zip-max-ratio", "5000")  # both read: two unknown formats
    assert len(allowed) == 2 and all(reason.startswith("unknown format") for reason in allowed)
    assert "more files than the limit" in reasons("--zip-max-members", "1")[0]
    assert "the archive unpacks to more than the limit" in reasons("--zip-max-size", "2")[0]


def test_main_runs_blas_on_one_thread_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second OpenBLAS thread only spins beside the first in ionto's small products."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    assert main(["--help"]) == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    assert main(["--help"]) == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"
    assert "compare" in capsys.readouterr().out
