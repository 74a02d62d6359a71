"""Reading, hashing and parsing files in worker processes that die with their parent.

A worker never raises for a file: whatever goes wrong on one file (a damaged zip member,
a document nested 100,000 deep, a bug) comes back as a :class:`Problem`, so the batch goes
on. Zip members are read by the importing process, from the one archive it opened for
the whole import, and handed to the workers as bytes. On Linux each worker asks the
kernel to kill it when the importing process dies (``PR_SET_PDEATHSIG``), so an import
killed with SIGKILL leaves no orphaned parser behind.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_text("hello")
>>> found = fingerprint_all([(SourceFile("a.txt", folder / "a.txt"), None)])
>>> found[0].sha256[:12], found[0].detected, found[0].looks
('2cf24dba5fb0', None, '5 bytes of UTF-8 text')
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from typing import TypeVar

from pydantic import ValidationError

from device_import.failures import problem_from
from device_import.formats import SNIFF_BYTES, Detected, detect
from device_import.looks import looks_like
from device_import.parsed import ParseContext, ParsedFile
from device_import.problems import FileRejected, Problem
from device_import.sources import ArchiveReader, SourceFile, read_file

PARSE_GROUP = 8
"""Files handed to a worker process at a time."""
GROUPS_AHEAD = 64
"""Groups handed to the workers ahead of the loader: bounds what parsed files hold."""
BYTES_AHEAD = 64 * 1024**2
"""Bytes of zip members handed to the workers ahead of the loader, at most (one group
of files is always handed over, however large)."""
FINGERPRINT_GROUP = 64
"""Files read and hashed by a worker at a time."""
GROUP_BYTES = 16 * 1024**2
"""Bytes of zip members in one group, at most (a larger member makes a group alone)."""
PR_SET_PDEATHSIG = 1
"""The Linux prctl option: the signal a process gets when its parent dies."""

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass(frozen=True)
class Job:
    """One file to parse: where it is, its SHA-256 and its detected format."""

    source: SourceFile
    sha256: str
    detected: Detected


@dataclass(frozen=True)
class Fingerprint:
    """A readable file's SHA-256, its detected format, and what an unknown file looks like."""

    sha256: str
    detected: Detected | None
    looks: str | None


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; else nothing)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


Content = bytes | Problem | None
"""What the importing process hands a worker with a source: a zip member's bytes (or why
they could not be read), or None for a plain file, which the worker reads itself."""


def _data(source: SourceFile, content: Content) -> bytes | Problem:
    if content is None:
        return read_file(source.path)
    return content


def _fingerprint(source: SourceFile, content: Content) -> Fingerprint | Problem:
    try:
        data = _data(source, content)
        if isinstance(data, Problem):
            return data
        detected = detect(data[:SNIFF_BYTES], source.name)
        looks = None if detected else looks_like(data, in_zip=source.member is not None)
        return Fingerprint(hashlib.sha256(data).hexdigest(), detected, looks)
    except Exception as error:  # any failure on one file is that file's problem
        return problem_from(source.name, error)


def fingerprint_all(items: list[tuple[SourceFile, Content]]) -> list[Fingerprint | Problem]:
    """Each source's fingerprint (or why it could not be read), in order."""
    return [_fingerprint(source, content) for source, content in items]


def parse_all(
    items: list[tuple[Job, Content]], context: ParseContext
) -> list[ParsedFile | Problem]:
    """Parse each job, in order; problems come back as values."""
    return [_parse(job, content, context) for job, content in items]


def _parse(job: Job, content: Content, context: ParseContext) -> ParsedFile | Problem:
    context = replace(context, file=job.source.name)
    try:
        data = _data(job.source, content)
        if isinstance(data, Problem):
            return data
        parsed = job.detected.format.parse(data, context)
        parsed.dump()  # plain rows travel to the loading process far faster than models
    except FileRejected as error:
        return error.problem
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"])
        return Problem(job.source.name, None, location, None, None, first["msg"])
    except Exception as error:  # any failure on one file is that file's problem
        return problem_from(job.source.name, error)
    return parsed


def _weight(items: list[tuple[Item, Content]]) -> int:
    """The bytes a group carries to its worker (zip members' bytes)."""
    return sum(len(content) for _, content in items if isinstance(content, bytes))


def _ahead(
    pool: ProcessPoolExecutor,
    work: Callable[[list[tuple[Item, Content]]], list[Result]],
    groups: Iterator[list[tuple[Item, Content]]],
) -> Iterator[tuple[Item, Result]]:
    """``work`` on each group in ``pool``, results in order, a bounded amount ahead.

    At most :data:`GROUPS_AHEAD` groups, and :data:`BYTES_AHEAD` bytes of zip members,
    wait for a worker or for the loader (one group at least, whatever its size).
    """
    pending: deque[tuple[list[tuple[Item, Content]], int, Future[list[Result]]]] = deque()
    held = 0
    while True:
        while len(pending) < GROUPS_AHEAD and (held < BYTES_AHEAD or not pending):
            group = next(groups, None)
            if group is None:
                break
            weight = _weight(group)
            pending.append((group, weight, pool.submit(work, group)))
            held += weight
        if not pending:
            return
        group, weight, future = pending.popleft()
        held -= weight
        for (item, _), result in zip(group, future.result(), strict=True):
            yield item, result


class Parser:
    """Reads, fingerprints and parses files, in worker processes a bounded way ahead.

    Zip members are read by the importing process from its one open archive
    (``reader``) and their bytes handed to the workers; plain files are read by the
    workers themselves.
    """

    def __init__(self, workers: int, reader: ArchiveReader) -> None:
        self.reader = reader
        self.pool = (
            ProcessPoolExecutor(max_workers=workers, initializer=die_with_parent)
            if workers > 1
            else None
        )

    def __enter__(self) -> Parser:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def content(self, source: SourceFile) -> Content:
        """A zip member's bytes (or why they cannot be read); None for a plain file."""
        if source.member is None:
            return None
        try:
            return self.reader.read(source)
        except Exception as error:  # a damaged member is that member's problem
            return problem_from(source.name, error)

    def _groups(
        self, items: list[Item], size: int, source: Callable[[Item], SourceFile]
    ) -> Iterator[list[tuple[Item, Content]]]:
        """``items`` with their content, in groups of ``size`` (one without workers).

        A group is cut early once it holds :data:`GROUP_BYTES` of zip members, so a few
        large members never sit in memory together.
        """
        group: list[tuple[Item, Content]] = []
        for item in items:
            group.append((item, self.content(source(item))))
            if self.pool is None or len(group) == size or _weight(group) >= GROUP_BYTES:
                yield group
                group = []
        if group:
            yield group

    def fingerprints(self, sources: list[SourceFile]) -> Iterator[Fingerprint | Problem]:
        """Each source's fingerprint, in order: hashed and recognized in the workers."""
        groups = self._groups(sources, FINGERPRINT_GROUP, lambda source: source)
        if self.pool is None:
            return (found for group in groups for found in fingerprint_all(group))
        return (found for _, found in _ahead(self.pool, fingerprint_all, groups))

    def parse(
        self, jobs: list[Job], context: ParseContext
    ) -> Iterator[tuple[Job, ParsedFile | Problem]]:
        """Results in the order of ``jobs``; with workers, parsing starts at once."""
        groups = self._groups(jobs, PARSE_GROUP, lambda job: job.source)
        if self.pool is None:
            return (
                (job, _parse(job, content, context)) for group in groups for job, content in group
            )
        return _ahead(self.pool, partial(parse_all, context=context), groups)
