"""Reading, hashing and parsing files in worker processes that die with their parent.

A worker never raises for a file: whatever goes wrong on one file (a damaged zip member,
a document nested 100,000 deep, a bug) comes back as a :class:`Problem`, so the batch goes
on. On Linux each worker asks the kernel to kill it when the importing process dies
(``PR_SET_PDEATHSIG``), so an import killed with SIGKILL leaves no orphaned parser behind.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "a.txt").write_text("hello")
>>> found = fingerprint_all([SourceFile("a.txt", folder / "a.txt")])
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
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice

from pydantic import ValidationError

from device_import.failures import problem_from
from device_import.formats import SNIFF_BYTES, Detected, detect
from device_import.looks import looks_like
from device_import.parsed import ParseContext, ParsedFile
from device_import.problems import FileRejected, Problem
from device_import.sources import ArchiveReader, SourceFile

PARSE_GROUP = 8
"""Files handed to a worker process at a time."""
PARSE_GROUPS_AHEAD = 64
"""Groups parsed ahead of the loader: bounds the memory that parsed files hold."""
FINGERPRINT_GROUP = 64
"""Files read and hashed by a worker at a time (members of one zip share its reader)."""
PR_SET_PDEATHSIG = 1
"""The Linux prctl option: the signal a process gets when its parent dies."""


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


def _fingerprint(source: SourceFile, reader: ArchiveReader) -> Fingerprint | Problem:
    try:
        data = reader.read(source)
        detected = detect(data[:SNIFF_BYTES], source.name)
        looks = None if detected else looks_like(data, in_zip=source.member is not None)
        return Fingerprint(hashlib.sha256(data).hexdigest(), detected, looks)
    except Exception as error:  # any failure on one file is that file's problem
        return problem_from(source.name, error)


def fingerprint_all(sources: list[SourceFile]) -> list[Fingerprint | Problem]:
    """Each source's fingerprint (or why it could not be read), in order."""
    with ArchiveReader() as reader:
        return [_fingerprint(source, reader) for source in sources]


def _parse(job: Job, context: ParseContext, reader: ArchiveReader) -> ParsedFile | Problem:
    """Parse one file; problems come back as values."""
    context = replace(context, file=job.source.name)
    try:
        parsed = job.detected.format.parse(reader.read(job.source), context)
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


def parse_all(jobs: list[Job], context: ParseContext) -> list[ParsedFile | Problem]:
    """Parse ``jobs`` in order, members of one zip archive from one open archive."""
    with ArchiveReader() as reader:
        return [_parse(job, context, reader) for job in jobs]


def _in_order(jobs: list[Job], context: ParseContext) -> Iterator[tuple[Job, ParsedFile | Problem]]:
    with ArchiveReader() as reader:
        for job in jobs:
            yield job, _parse(job, context, reader)


class Parser:
    """Parses jobs in worker processes, a bounded number of files ahead of the loader."""

    def __init__(self, workers: int) -> None:
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

    def fingerprints(self, sources: list[SourceFile]) -> Iterator[Fingerprint | Problem]:
        """Each source's fingerprint, in order: read and hashed in the worker processes."""
        groups = [
            sources[at : at + FINGERPRINT_GROUP] for at in range(0, len(sources), FINGERPRINT_GROUP)
        ]
        if self.pool is None:
            return (found for group in groups for found in fingerprint_all(group))
        results = self.pool.map(fingerprint_all, groups)
        return (found for group in results for found in group)

    def parse(
        self, jobs: list[Job], context: ParseContext
    ) -> Iterator[tuple[Job, ParsedFile | Problem]]:
        """Results in the order of ``jobs``; with workers, parsing starts at once."""
        if self.pool is None or len(jobs) <= 1:
            return _in_order(jobs, context)
        pool = self.pool
        groups = iter([jobs[at : at + PARSE_GROUP] for at in range(0, len(jobs), PARSE_GROUP)])
        pending = deque(
            (group, pool.submit(parse_all, group, context))
            for group in islice(groups, PARSE_GROUPS_AHEAD)
        )

        def results() -> Iterator[tuple[Job, ParsedFile | Problem]]:
            while pending:
                group, future = pending.popleft()
                following = next(groups, None)
                if following is not None:
                    pending.append((following, pool.submit(parse_all, following, context)))
                yield from zip(group, future.result(), strict=True)

        return results()
