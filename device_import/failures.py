"""Any failure on one file, turned into the reason it is quarantined: the batch goes on.

Each stage of an import (reading a file or a zip member, parsing it, writing it to the
store) hands the error it met on one file to :func:`problem_from`, which says what went
wrong in words an IT person can act on, without quoting a value of the file (an error's
own text may hold one, so only its kind is kept).

Examples
--------
>>> import zipfile
>>> problem_from("a.json", RecursionError("maximum recursion depth exceeded")).reason
'the document is nested too deeply to be an export (a hostile file?)'
>>> problem_from("a.zip!b.csv", zipfile.BadZipFile("Bad CRC-32 for file 'b.csv'")).reason
'the zip member is damaged (its CRC-32 checksum does not match): copy the archive again'
"""

from __future__ import annotations

import csv
import zipfile

from sqlalchemy.exc import DBAPIError

from device_import.problems import FileRejected, Problem


def _reason(error: BaseException) -> tuple[str, str | None]:
    """The reason and what was found, by the kind of error."""
    text = str(error)
    if isinstance(error, RecursionError):
        return "the document is nested too deeply to be an export (a hostile file?)", None
    if isinstance(error, MemoryError):
        return "the file is too large to read into memory; split it", None
    if isinstance(error, zipfile.BadZipFile) and "CRC" in text:
        reason = "the zip member is damaged (its CRC-32 checksum does not match)"
        return f"{reason}: copy the archive again", None
    if isinstance(error, (zipfile.BadZipFile, EOFError)):
        return "the zip member is damaged: copy the archive again or re-create it", None
    if isinstance(error, RuntimeError) and "encrypted" in text:
        return "the zip member is encrypted: unpack it with its password first", None
    if isinstance(error, NotImplementedError) and "compression" in text:
        return "the zip member's compression cannot be read: re-create it with Deflate", None
    if isinstance(error, csv.Error) and "field larger than field limit" in text:
        return "a field is longer than 131,072 characters: not an export's value", None
    if isinstance(error, OverflowError):
        return "a number too large for any field of an export", None
    if isinstance(error, OSError):
        return f"the file could not be read ({error.strerror or type(error).__name__})", None
    if isinstance(error, DBAPIError):
        kind = type(error.orig).__name__ if error.orig is not None else type(error).__name__
        return (
            "the store refused a value of this file; report the file's SHA-256 to the "
            "toolkit's maintainers (the importer should have checked it first)",
            kind,
        )
    return (
        "the importer failed on this file; report the file's SHA-256 to the toolkit's maintainers",
        type(error).__name__,
    )


def problem_from(file: str, error: BaseException) -> Problem:
    """The problem to quarantine ``file`` with, for an error met while importing it.

    A :class:`~device_import.problems.FileRejected` carries its own problem.
    """
    if isinstance(error, FileRejected):
        return error.problem
    reason, found = _reason(error)
    return Problem(file, None, None, None, found, reason)
