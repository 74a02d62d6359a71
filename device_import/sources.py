"""Files to import: plain files, folders (recursively) and zip archives.

Each source is read into memory once and named by the path a person would recognize
(``exports.zip!clinic-a/session.csv`` for a zip entry). A zip entry whose path would
escape the archive (``../``, an absolute path) is refused, never written anywhere. A
symbolic link is never followed: it is reported, and its target is not read (a link in
an export folder may point anywhere, ``/etc/passwd`` included).

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.csv").write_text("x")
>>> [source.name for source in collect_sources([folder])[0]]  # doctest: +ELLIPSIS
['.../a.csv']
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from device_import.problems import Problem

ZIP_LIMIT_BYTES = 2 * 1024**3
"""Refuse a zip whose entries would unpack to more than this (a zip bomb)."""


@dataclass(frozen=True)
class SourceFile:
    """Where one file's bytes are, and the name it is reported under.

    The bytes are read on demand (in a worker process), so a batch of thousands of files
    never sits in memory at once.
    """

    name: str
    path: Path
    member: str | None = None

    def read(self) -> bytes:
        """The file's bytes (a zip entry is read from its archive)."""
        if self.member is None:
            descriptor = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor, "rb") as file:
                return file.read()
        with zipfile.ZipFile(self.path) as archive:
            return archive.read(self.member)

    @property
    def base_name(self) -> str:
        """The file's own name, without folders or archive."""
        return PurePosixPath(self.name.replace("!", "/")).name


def _unsafe_member(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def _from_zip(path: Path) -> tuple[list[SourceFile], list[Problem]]:
    sources: list[SourceFile] = []
    problems: list[Problem] = []
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        return [], [Problem(str(path), None, None, "a zip archive", "a damaged file", str(error))]
    with archive:
        members = [member for member in archive.infolist() if not member.is_dir()]
        if sum(member.file_size for member in members) > ZIP_LIMIT_BYTES:
            reason = "the archive unpacks to more than 2 GiB"
            return [], [Problem(str(path), None, None, "at most 2 GiB", None, reason)]
        for member in sorted(members, key=lambda item: item.filename):
            shown = f"{path}!{member.filename}"
            if _unsafe_member(member.filename):
                problems.append(
                    Problem(
                        shown,
                        None,
                        None,
                        "a path inside the archive",
                        f"a path of {len(member.filename)} characters that leaves it",
                        "zip entry path escapes the archive; entry refused",
                    )
                )
                continue
            sources.append(SourceFile(shown, path, member.filename))
    return sources, problems


def _is_zip(path: Path) -> bool:
    """A zip archive by its content (a look at the first bytes spares most files more)."""
    with path.open("rb") as file:
        start = file.read(4)
    return start in (b"PK\x03\x04", b"PK\x05\x06") and zipfile.is_zipfile(path)


def _link(path: Path) -> Problem:
    return Problem(
        str(path),
        None,
        None,
        "a regular file or folder",
        "a symbolic link",
        "symbolic links are not followed; its target was not read. Copy the file itself "
        "into the export folder",
    )


def _walk(folder: Path, problems: list[Problem]) -> list[Path]:
    """Regular files under ``folder`` (hidden ones skipped); links become problems."""
    files: list[Path] = []
    for item in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in item.parts):
            continue
        if item.is_symlink():
            problems.append(_link(item))
        elif item.is_file():
            files.append(item)
    return files


def collect_sources(paths: Iterable[Path]) -> tuple[list[SourceFile], list[Problem]]:
    """Expand paths into source files, with the problems found on the way.

    Folders are walked recursively in sorted order; hidden files are skipped; symbolic
    links are reported, never followed.
    """
    sources: list[SourceFile] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_symlink():
            problems.append(_link(path))
            continue
        if path.is_dir():
            files = _walk(path, problems)
        elif path.exists():
            files = [path]
        else:
            problems.append(Problem(str(path), None, None, "an existing path", None, "not found"))
            continue
        for file in files:
            if _is_zip(file):
                found, trouble = _from_zip(file)
                sources += found
                problems += trouble
            else:
                sources.append(SourceFile(str(file), file))
    return sources, problems
