"""Every ``ionto`` subcommand on bad input: exit 2, one line on stderr, no traceback, no file.

Each case runs in an empty working folder and checks that it is still empty afterwards.
The whole matrix (every subcommand against every kind of bad input) runs through
:func:`ionto.cli.main` in this process; one case per subcommand also runs the real entry
point (``python -m ionto.cli``) in a subprocess, where a traceback would be visible. Each
subprocess costs seconds of imports, so the matrix does not run that way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from data_schemas import store
from ionto.cli import main

IONTO = [sys.executable, "-m", "ionto.cli"]
SITE_KEY = "5f0c1e9a7d3b2a648e1f0c9d8b7a6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5"
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"
COMMANDS: dict[str, list[str]] = {
    "db upgrade": ["db", "upgrade"],
    "db info": ["db", "info"],
    "emulate": ["emulate", "--out", "exports"],
    "import": ["import", "exports"],
    "compare": [
        "compare",
        "--condition",
        "lateral_epicondylitis",
        "--instrument",
        "prtee",
        "--arms",
        "ionto+exercise+manual",
        "exercise+manual",
    ],
    "report": ["report", "--quarter", "2025Q3", "--out", "reports"],
    "demo": ["demo", "--out", "demo", "--patients", "50"],
}
STORE_COMMANDS = [name for name in COMMANDS if name != "emulate"]
READERS = ["db info", "compare", "report"]
ONE_PREFIX = re.compile(r"ionto: (?!ionto\b[\w ]*:)\S")
"""An error line: ``ionto: `` once, never ``ionto: ionto compare: ...``."""
WRITERS = ["db upgrade", "import", "demo"]
Refused = Callable[..., str]


def _files(folder: Path) -> set[Path]:
    return {path.relative_to(folder) for path in folder.rglob("*")}


def _check(status: int, stderr: str, expected: str, folder: Path, before: set[Path]) -> str:
    """The one stderr line, after checking exit 2, no traceback and no new file."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert status == 2, stderr
    assert "Traceback" not in stderr
    assert len(lines) == 1, stderr
    assert ONE_PREFIX.match(lines[0]), lines[0]
    assert expected in lines[0], lines[0]
    assert _files(folder) == before
    return lines[0]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


@pytest.fixture
def refused(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Refused:
    """``refused(argv, expected, **env)``: run ``ionto argv`` in ``folder``, check, return."""
    monkeypatch.chdir(folder)
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    monkeypatch.setenv("IONTO_SITE_KEY", SITE_KEY)

    def run(argv: list[str], expected: str, **env: str | None) -> str:
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        before = _files(folder)
        status = main(argv)
        return _check(status, capsys.readouterr().err, expected, folder, before)

    return run


@pytest.mark.parametrize("command", READERS)
def test_a_reader_on_a_missing_store_names_the_path_and_the_fix(
    refused: Refused, folder: Path, command: str
) -> None:
    missing = folder / "missing.db"
    line = refused(["--db", f"sqlite:///{missing}", *COMMANDS[command]], str(missing))
    assert "ionto db upgrade" in line and "make demo" in line


@pytest.mark.parametrize("command", READERS)
def test_a_reader_never_creates_the_default_store(
    refused: Refused, folder: Path, command: str
) -> None:
    line = refused(COMMANDS[command], str(folder / store.DEFAULT_SQLITE_FILE))
    assert "ionto db upgrade" in line


@pytest.mark.parametrize("command", WRITERS)
def test_a_writer_refuses_a_store_in_a_missing_folder(
    refused: Refused, folder: Path, command: str
) -> None:
    url = f"sqlite:///{folder / 'nowhere' / 'ionto.db'}"
    refused(["--db", url, *COMMANDS[command]], f"{folder / 'nowhere'} for the store")


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_an_unreachable_postgresql_is_one_line(refused: Refused, command: str) -> None:
    refused(["--db", UNREACHABLE, *COMMANDS[command]], "could not be reached")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_mysql_is_refused_naming_the_supported_stores(refused: Refused, command: str) -> None:
    line = refused(["--db", "mysql://x", *COMMANDS[command]], "mysql is not supported")
    assert "sqlite:///" in line and "postgresql://" in line


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_bare_file_name_gets_the_sqlite_hint(refused: Refused, command: str) -> None:
    refused(["--db", "ionto.db", *COMMANDS[command]], "sqlite:///ionto.db")


def test_a_bad_url_in_the_environment_names_the_variable(refused: Refused) -> None:
    refused(COMMANDS["db info"], store.ENV_VAR, **{store.ENV_VAR: "nonsense://x"})


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_db_after_the_subcommand_gets_a_hint(refused: Refused, command: str) -> None:
    argv = [*COMMANDS[command], "--db", "sqlite://"]
    refused(argv, f"--db goes before the subcommand: ionto --db URL {command}")


@pytest.mark.parametrize(
    ("command", "option"),
    [("emulate", "--out"), ("import", "--quarantine"), ("report", "--out"), ("demo", "--out")],
)
def test_a_folder_option_naming_a_file_is_refused(
    refused: Refused, folder: Path, command: str, option: str
) -> None:
    (folder / "taken").write_text("not a folder\n")
    argv = ["--db", f"sqlite:///{folder / 'ionto.db'}", *COMMANDS[command], option, "taken"]
    refused(argv, f"'{option}': taken is a file")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["emulate", "--out", "exports", "--seed", "abc"], "'--seed'"),
        (["emulate", "--out", "exports", "--start", "2025-13-01"], "'--start'"),
        (["emulate", "--out", "exports", "--scenario", "nosuch"], "nosuch"),
        (["import", "exports", "--workers", "abc"], "'--workers'"),
        (["import", "exports", "--zip-max-ratio", "1"], "'--zip-max-ratio'"),
        (["import", "exports", "--zip-max-ratio", "ten"], "'--zip-max-ratio'"),
        (["import", "exports", "--zip-max-size", "0"], "'--zip-max-size'"),
        (["import", "exports", "--zip-max-size", "2GiB"], "'--zip-max-size'"),
        (["import", "exports", "--zip-max-members", "-5"], "'--zip-max-members'"),
        (["compare", "--condition", "knee", "--instrument", "prtee"], "--arms"),
        (["demo", "--patients", "abc"], "'--patients'"),
        (["db", "nosuch"], "nosuch"),
        (["--nosuch"], "--nosuch"),
    ],
)
def test_bad_option_values_are_one_line(refused: Refused, argv: list[str], expected: str) -> None:
    refused(argv, expected)


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of a migrated, empty SQLite store outside the working folder."""
    path = tmp_path_factory.mktemp("upgraded") / "ionto.db"
    engine = store.connect(f"sqlite:///{path}")
    store.upgrade(engine)
    engine.dispose()
    return f"sqlite:///{path}"


@pytest.mark.parametrize(
    ("quarter", "expected"), [("0000Q1", "quarter year"), ("2025Q7", "expected a year")]
)
def test_report_refuses_a_quarter_that_does_not_exist(
    refused: Refused, upgraded: str, quarter: str, expected: str
) -> None:
    refused(["--db", upgraded, "report", "--quarter", quarter], expected)


@pytest.mark.parametrize("command", ["compare", "report"])
def test_an_analysis_on_an_empty_store_says_to_upgrade_it(
    refused: Refused, folder: Path, command: str
) -> None:
    empty = folder / "empty.db"
    empty.touch()
    refused(["--db", f"sqlite:///{empty}", *COMMANDS[command]], "is empty")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (COMMANDS["compare"], "the store has 0 episodes"),
        ([*COMMANDS["compare"][:3], "--instrument", "prtees", *COMMANDS["compare"][5:]], "prtee"),
        (["report", "--quarter", "2025Q9"], "expected a year"),
        (["import", "exports", "--workers", "abc"], "'--workers'"),
        (["db", "nosuch"], "nosuch"),
        (["study", "run", "study.yaml", "--site", "north"], "study.yaml"),
        (["study", "pool", "north.zip"], "north.zip"),
    ],
    ids=["compare", "compare key", "report", "import", "db", "study run", "study pool"],
)
def test_an_error_names_ionto_once(
    refused: Refused, upgraded: str, folder: Path, argv: list[str], expected: str
) -> None:
    """The library's messages carry no command prefix: the CLI adds ``ionto:`` once."""
    (folder / "study.yaml").write_text("name: x\n")
    line = refused(["--db", upgraded, *argv], expected)
    assert line.count("ionto:") == 1 and not re.search(r"ionto [a-z ]+: ", line), line


def test_a_json_error_carries_no_prefix(
    folder: Path, upgraded: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(folder)
    assert main(["--db", upgraded, *COMMANDS["compare"], "--json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error.startswith("the store has 0 episodes"), error


def test_a_file_that_is_not_a_store_is_one_line(refused: Refused, folder: Path) -> None:
    (folder / "notes.db").write_text("call Ann back on Tuesday\n")
    refused(["--db", f"sqlite:///{folder / 'notes.db'}", "db", "info"], "file is not a database")


@pytest.mark.parametrize("problem", ["folder", "not UTF-8", "unreadable"])
def test_import_with_a_bad_site_key_file_names_it(
    refused: Refused, folder: Path, upgraded: str, tmp_path: Path, problem: str
) -> None:
    key = tmp_path / "site.key"
    if problem == "folder":
        key.mkdir()
    else:
        key.write_bytes(b"\xff\xfe secret" if problem == "not UTF-8" else b"secret\n")
    if problem == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads every file")
        key.chmod(0o000)
    (folder / "exports").mkdir()
    environment = {"IONTO_SITE_KEY": None, "IONTO_SITE_KEY_FILE": str(key)}
    line = refused(["--db", upgraded, "import", "exports"], str(key), **environment)
    assert "IONTO_SITE_KEY_FILE" in line


ENTRY_POINT_CASES = [
    # argv after ``--db``, expected in the line, whether ``--db`` names the migrated store
    (["--db", UNREACHABLE, "db", "upgrade"], "could not be reached", False),
    (["--db", "sqlite:///missing.db", "db", "info"], "missing.db: run `ionto db upgrade`", False),
    (["--db", "mysql://x", *COMMANDS["emulate"]], "mysql is not supported", False),
    (["--db", "sqlite:///ionto.db", "import", "exports", "--workers", "abc"], "'--workers'", False),
    (["--db", "ionto.db", *COMMANDS["compare"]], "sqlite:///ionto.db", False),
    (["report", "--quarter", "0000Q1"], "quarter year", True),
    ([*COMMANDS["demo"], "--db", "sqlite://"], "--db goes before the subcommand", False),
]


@pytest.mark.parametrize(
    ("argv", "expected", "on_upgraded"),
    ENTRY_POINT_CASES,
    ids=["db upgrade", "db info", "emulate", "import", "compare", "report", "demo"],
)
def test_the_entry_point_never_shows_a_traceback(
    folder: Path, upgraded: str, argv: list[str], expected: str, on_upgraded: bool
) -> None:
    environment = {key: value for key, value in os.environ.items() if key != store.ENV_VAR}
    environment["IONTO_SITE_KEY"] = SITE_KEY
    if on_upgraded:
        argv = ["--db", upgraded, *argv]
    before = _files(folder)
    result = subprocess.run(
        [*IONTO, *argv], cwd=folder, env=environment, capture_output=True, text=True, timeout=120
    )
    _check(result.returncode, result.stderr, expected, folder, before)
