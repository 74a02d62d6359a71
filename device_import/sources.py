"""Files to import: plain files, folders (recursively) and zip archives.

Each source is named by the path a person would recognize (``exports.zip!clinic-a/
session.csv`` for a zip entry) and read on demand. A zip's members are streamed from the
archive opened once per import (:class:`ArchiveReader`), within limits on their number
and expanded size (:class:`ZipLimits`); an encrypted member, one compressed in a way
Python cannot read, two members of one name, or a path that would escape the archive are
refused before a byte is unpacked. A symbolic link is never followed: it is reported,
and its target is not read (a link in an export folder may point anywhere,
``/etc/passwd`` included).

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
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import TracebackType

from device_import.problems import FileRejected, Problem

EMULATOR_FILES = frozenset({"ground_truth.json", "manifest.json", "scenario.yaml"})
"""The emulator's own files, skipped in a folder that holds its ``ground_truth.json``
(an emulator output folder, given itself or found inside a given folder)."""
READABLE_COMPRESSION = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
MiB = 1024**2
OPEN_ARCHIVES = 64
"""Zip archives an import keeps open at once (each holds a file descriptor)."""


@dataclass(frozen=True)
class ZipLimits:
    """How far a zip archive may expand before it is refused as a zip bomb.

    ``archive_bytes`` bounds the expanded size of the whole archive and ``member_bytes``
    that of each member (a member is read into memory whole, so it is also bounded by the
    archive's limit); a member that expands more than ``ratio`` times is refused once it is
    over ``ratio_from_bytes`` (small text files compress well and are harmless). ``ionto
    import`` sets the ratio, the archive's expanded size and the member count
    (``--zip-max-ratio``, ``--zip-max-size``, ``--zip-max-members``).
    """

    member_bytes: int = 512 * MiB
    archive_bytes: int = 2048 * MiB
    ratio: int = 100
    ratio_from_bytes: int = 1 * MiB
    members: int = 100_000

    @property
    def largest_member(self) -> int:
        """The most bytes one member may expand to."""
        return min(self.member_bytes, self.archive_bytes)


@dataclass(frozen=True)
class SourceFile:
    """Where one file's bytes are, and the name it is reported under.

    The bytes are read on demand (a plain file in a worker process, a zip member by the
    importing process's :class:`ArchiveReader`), so a batch of thousands of files never
    sits in memory at once.
    """

    name: str
    path: Path
    member: str | None = None

    @property
    def base_name(self) -> str:
        """The file's own name, without folders or archive."""
        return PurePosixPath(self.name.replace("!", "/")).name


def read_file(path: Path) -> bytes:
    """The bytes of a plain file; a symbolic link put in its place is refused (OSError)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as file:
        return file.read()


class ArchiveReader:
    """Reads the sources of one import, each zip archive opened once for all its members.

    The archive opened to list its members stays open, and every member (fingerprint,
    parse, quarantine copy) is streamed from it: its directory is read once per import,
    not once per member or per group of files. At most :data:`OPEN_ARCHIVES` archives stay
    open at once (the least recently read is closed), so a batch of many archives never
    runs out of file descriptors. A member is read within the limits: never more than
    ``ZipLimits.largest_member`` bytes are unpacked, whatever its header says.
    """

    def __init__(self, limits: ZipLimits | None = None) -> None:
        self.limits = limits or ZipLimits()
        self._open: OrderedDict[Path, zipfile.ZipFile] = OrderedDict()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def archive(self, path: Path) -> zipfile.ZipFile:
        """The open archive at ``path`` (opened on first use; raises for a damaged one)."""
        found = self._open.get(path)
        if found is None:
            found = zipfile.ZipFile(path)
            self._open[path] = found
            if len(self._open) > OPEN_ARCHIVES:
                self._open.popitem(last=False)[1].close()
        self._open.move_to_end(path)
        return found

    def read(self, source: SourceFile) -> bytes:
        """The bytes of ``source``; a damaged zip member raises ``zipfile.BadZipFile``."""
        if source.member is None:
            return read_file(source.path)
        limit = self.limits.largest_member
        with self.archive(source.path).open(source.member) as member:
            data = member.read(limit + 1)  # unpacked in chunks, never past the limit
        if len(data) > limit:
            raise FileRejected(_too_large(source.name, limit, f"more than {limit:,} bytes"))
        return data


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


def _too_large(shown: str, limit: int, got: str) -> Problem:
    return _refused(
        shown,
        f"at most {limit:,} bytes unpacked",
        got,
        "the zip member unpacks to more than the limit (a zip bomb?); unpack it and import "
        "the files if it is a real export",
    )


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
    if info.file_size > limits.largest_member:
        return _too_large(shown, limits.largest_member, f"{info.file_size:,} bytes")
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


def _from_zip(path: Path, archives: ArchiveReader, collected: Collected) -> None:
    limits = archives.limits
    try:
        members = [member for member in archives.archive(path).infolist() if not member.is_dir()]
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


def collect_sources(paths: Iterable[Path], archives: ArchiveReader | None = None) -> Collected:
    """Expand paths into source files, with the problems found on the way.

    Folders are walked recursively in sorted order; hidden files inside them are skipped;
    symbolic links are reported, never followed. Zip archives are listed within the limits
    of ``archives``, which keeps them open for reading their members (without it, they are
    listed within the default limits and closed).
    """
    if archives is None:
        with ArchiveReader() as reader:
            return collect_sources(paths, reader)
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
                _from_zip(file, archives, collected)
            else:
                collected.sources.append(SourceFile(shown_name(file), file))
    return collected
