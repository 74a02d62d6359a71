"""Files to import: plain files, folders (recursively) and zip archives.

Each source is named by the path a person would recognize (``exports.zip!clinic-a/
session.csv`` for a zip entry) and read on demand. A zip's members are read from one open
archive (:class:`ArchiveReader`), within limits on their number and expanded size
(:class:`ZipLimits`); an encrypted member, one compressed in a way Python cannot read,
two members of one name, or a path that would escape the archive are refused before a
byte is unpacked. A symbolic link is never followed: it is reported, and its target is not
read (a link in an export folder may point anywhere, ``/etc/passwd`` included).

A path given by the user is taken as given (``../exports``, ``/srv/.exports``); hidden
files and folders *inside* it are skipped and reported, and so are the emulator's own
files in an emulator output folder (its answer key is not an export).

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.csv").write_text("x")
>>> _ = (folder / ".b.csv").write_text("x")
>>> found = collect_sources([folder])
>>> [source.name for source in found.sources], [item.reason for item in found.skipped]
... # doctest: +ELLIPSIS
(['.../a.csv'], ['a hidden file'])
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType

from device_import.problems import Problem

EMULATOR_FILES = frozenset({"ground_truth.json", "manifest.json", "scenario.yaml"})
"""The emulator's own files, skipped in a folder that holds its ``ground_truth.json``
(an emulator output folder, given itself or found inside a given folder)."""
READABLE_COMPRESSION = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
MiB = 1024**2


@dataclass(frozen=True)
class ZipLimits:
    """How far a zip archive may expand before it is refused as a zip bomb.

    A member that expands more than ``ratio`` times is refused once it is over
    ``ratio_from_bytes`` (small text files compress well and are harmless).
    """

    member_bytes: int = 512 * MiB
    archive_bytes: int = 2048 * MiB
    ratio: int = 100
    ratio_from_bytes: int = 1 * MiB
    members: int = 100_000


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
        """The file's bytes (a zip entry is read from its archive, opened for it alone)."""
        with ArchiveReader() as reader:
            return reader.read(self)

    @property
    def base_name(self) -> str:
        """The file's own name, without folders or archive."""
        return PurePosixPath(self.name.replace("!", "/")).name


class ArchiveReader:
    """Reads sources, keeping the last zip archive open for the members that follow it.

    Members of one archive come one after the other in a batch, so each archive's
    directory is read once per group of files rather than once per member.
    """

    def __init__(self) -> None:
        self._archive: zipfile.ZipFile | None = None

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def read(self, source: SourceFile) -> bytes:
        """The bytes of ``source``; a damaged zip member raises ``zipfile.BadZipFile``."""
        if source.member is None:
            descriptor = os.open(source.path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor, "rb") as file:
                return file.read()
        if self._archive is None or self._archive.filename != str(source.path):
            self.__exit__(None, None, None)
            self._archive = zipfile.ZipFile(source.path)
        return self._archive.read(source.member)


@dataclass(frozen=True)
class Skipped:
    """A file left out on purpose (not an error): its name and why."""

    name: str
    reason: str


@dataclass
class Collected:
    """The sources to import, the problems found on the way, and what was skipped."""

    sources: list[SourceFile] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def shown_name(path: Path | str) -> str:
    """A path as text that can be printed: bytes that are not UTF-8 become U+FFFD.

    Examples
    --------
    >>> shown_name(os.fsdecode(b"caf\\xe9.csv"))
    'caf\ufffd.csv'
    """
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _unsafe_member(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def _refused(shown: str, expected: str, got: str, reason: str) -> Problem:
    return Problem(shown, None, None, expected, got, reason)


def _member_problem(info: zipfile.ZipInfo, shown: str, limits: ZipLimits) -> Problem | None:
    """Why one member cannot be read safely, or None."""
    if _unsafe_member(info.filename):
        return _refused(
            shown,
            "a path inside the archive",
            f"a path of {len(info.filename)} characters that leaves it",
            "zip entry path escapes the archive; entry refused",
        )
    if info.flag_bits & 0x1:
        return _refused(
            shown,
            "an unencrypted member",
            "an encrypted member",
            "the zip member is encrypted: unpack the archive with its password and import "
            "the files",
        )
    if info.compress_type not in READABLE_COMPRESSION:
        return _refused(
            shown,
            "stored, Deflate, bzip2 or LZMA compression",
            f"compression method {info.compress_type}",
            "the zip member uses a compression method this toolkit cannot read (Deflate64 "
            "or another): re-create the archive with standard Deflate, or unpack it first",
        )
    if info.file_size > limits.member_bytes:
        return _refused(
            shown,
            f"at most {limits.member_bytes:,} bytes unpacked",
            f"{info.file_size:,} bytes",
            "the zip member unpacks to more than the limit (a zip bomb?); unpack it and "
            "import the files if it is a real export",
        )
    if info.file_size > limits.ratio_from_bytes and info.file_size > limits.ratio * max(
        info.compress_size, 1
    ):
        return _refused(
            shown,
            f"at most {limits.ratio} times its compressed size",
            f"{info.file_size // max(info.compress_size, 1):,} times",
            "the zip member expands far more than an export does (a zip bomb?); unpack it "
            "and import the files if it is a real export",
        )
    return None


def _whole_zip_problem(
    path: Path, members: list[zipfile.ZipInfo], limits: ZipLimits
) -> Problem | None:
    shown = shown_name(path)
    if len(members) > limits.members:
        return _refused(
            shown,
            f"at most {limits.members:,} members",
            f"{len(members):,} members",
            "the archive holds more files than the limit; split it",
        )
    total = sum(member.file_size for member in members)
    if total > limits.archive_bytes:
        return _refused(
            shown,
            f"at most {limits.archive_bytes:,} bytes unpacked",
            f"{total:,} bytes",
            "the archive unpacks to more than the limit; split it or unpack it",
        )
    twice = [name for name, count in Counter(m.filename for m in members).items() if count > 1]
    if twice:
        return _refused(
            shown,
            "one member per name",
            f"{len(twice)} names held by more than one member",
            "the archive holds two files of the same name (one would be lost): refused "
            "whole; re-create it with each file once",
        )
    return None


def _from_zip(path: Path, limits: ZipLimits, collected: Collected) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as error:
        collected.problems.append(
            _refused(
                shown_name(path),
                "a zip archive",
                f"a damaged file ({type(error).__name__})",
                "the zip archive is damaged: copy it again or re-create it",
            )
        )
        return
    with archive:
        members = [member for member in archive.infolist() if not member.is_dir()]
    whole = _whole_zip_problem(path, members, limits)
    if whole is not None:
        collected.problems.append(whole)
        return
    for member in sorted(members, key=lambda item: item.filename):
        shown = f"{shown_name(path)}!{member.filename}"
        problem = _member_problem(member, shown, limits)
        if problem is not None:
            collected.problems.append(problem)
        else:
            collected.sources.append(SourceFile(shown, path, member.filename))


def _is_zip(path: Path) -> bool:
    """A zip archive by its content (a look at the first bytes spares most files more)."""
    with path.open("rb") as file:
        start = file.read(4)
    return start in (b"PK\x03\x04", b"PK\x05\x06") and zipfile.is_zipfile(path)


def _link(path: Path) -> Problem:
    return Problem(
        shown_name(path),
        None,
        None,
        "a regular file or folder",
        "a symbolic link",
        "symbolic links are not followed; its target was not read. Copy the file itself "
        "into the export folder",
    )


def _walk(folder: Path, collected: Collected) -> list[Path]:
    """Regular files under ``folder``; hidden ones inside it are skipped, links reported."""
    files: list[Path] = []
    for item in sorted(folder.rglob("*")):
        inside = item.relative_to(folder).parts
        if any(part.startswith(".") for part in inside):
            if item.name.startswith("."):  # one entry per hidden file or folder
                collected.skipped.append(Skipped(shown_name(item), "a hidden file"))
            continue
        if item.is_symlink():
            collected.problems.append(_link(item))
        elif item.name in EMULATOR_FILES and (item.parent / "ground_truth.json").is_file():
            collected.skipped.append(Skipped(shown_name(item), "the emulator's own file"))
        elif item.is_file():
            files.append(item)
    return files


def collect_sources(paths: Iterable[Path], limits: ZipLimits | None = None) -> Collected:
    """Expand paths into source files, with the problems found on the way.

    Folders are walked recursively in sorted order; hidden files inside them are skipped;
    symbolic links are reported, never followed.
    """
    collected = Collected()
    for path in paths:
        if path.is_symlink():
            collected.problems.append(_link(path))
            continue
        if path.is_dir():
            files = _walk(path, collected)
        elif path.exists():
            files = [path]
        else:
            collected.problems.append(
                Problem(shown_name(path), None, None, "an existing path", None, "not found")
            )
            continue
        for file in files:
            if _is_zip(file):
                _from_zip(file, limits or ZipLimits(), collected)
            else:
                collected.sources.append(SourceFile(shown_name(file), file))
    return collected
