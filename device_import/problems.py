"""Why a file was set aside: file, record, field, expected and got.

A value read from a file is never repeated in a problem: it may be a name, a phone number
or a date of birth typed into the wrong field. ``got`` says what kind of value it was
(``text of 10 characters``); only numbers, and the importer's own words passed as
``found``, are shown as they are.

Examples
--------
>>> problem = Problem("a.csv", "line 17", "current_mA", "0-5 mA", "12.5", "out of range")
>>> problem.message()
'a.csv, line 17, field current_mA: out of range (expected 0-5 mA, got 12.5)'
>>> str(reject("b.csv", "bad date", field="dob", expected="YYYY-MM-DD", got="03/07/1972"))
'b.csv, field dob: bad date (expected YYYY-MM-DD, got text of 10 characters)'
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from data_schemas.errors import InputError


@dataclass(frozen=True)
class Problem:
    """One reason a file cannot be imported, precise enough for an IT person to act on."""

    file: str
    record: str | None
    field: str | None
    expected: str | None
    got: str | None
    reason: str

    def message(self) -> str:
        """One readable line: where, what, expected and got."""
        where = ", ".join(
            part
            for part in (self.file, self.record, f"field {self.field}" if self.field else None)
            if part
        )
        detail = ", ".join(
            part
            for part in (
                f"expected {self.expected}" if self.expected else None,
                f"got {self.got}" if self.got is not None else None,
            )
            if part
        )
        return f"{where}: {self.reason}" + (f" ({detail})" if detail else "")

    def to_dict(self) -> dict[str, str | None]:
        """The problem as a JSON-ready dict."""
        return asdict(self)

    def filed_as(self, sha256: str) -> Problem:
        """The problem as stored: the file named by its SHA-256, never by its name.

        A file name may hold a patient's name; the ledger row and the ``.reason.json``
        beside the quarantine copy name the file by the hash of its bytes instead.

        Examples
        --------
        >>> Problem("Doe_Jane.csv", None, None, None, None, "empty").filed_as("ab" * 32).file
        'file with SHA-256 abababababab…'
        """
        return replace(self, file=f"file with SHA-256 {sha256[:12]}…")


class FileRejected(InputError):
    """A file cannot be imported; it is quarantined whole and the batch goes on."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message())
        self.problem = problem


def described(value: object) -> str | None:
    """What kind of value was found, without repeating it (numbers excepted).

    Examples
    --------
    >>> described("Bobby Nguyen"), described(12.5), described(["a", "b"]), described(True)
    ('text of 12 characters', '12.5', 'a list of 2 items', 'true')
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return f"{value:g}" if math.isfinite(value) else "a number that is not finite"
    if isinstance(value, str):
        return f"text of {len(value)} characters" if value else "empty text"
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object with {len(value)} fields"
    return f"a value of type {type(value).__name__}"


def reject(
    file: str,
    reason: str,
    *,
    record: str | None = None,
    field: str | None = None,
    expected: str | None = None,
    got: object = None,
    found: str | None = None,
) -> FileRejected:
    """Build the exception for a rejected file (raise the result).

    ``got`` is a value read from the file (described, never repeated); ``found`` is the
    importer's own description of what it found (shown as it is).

    Examples
    --------
    >>> str(reject("x.json", "not JSON", record="byte 12"))
    'x.json, byte 12: not JSON'
    >>> str(reject("x.csv", "truncated", found="end of file"))
    'x.csv: truncated (got end of file)'
    """
    shown = found if found is not None else described(got)
    return FileRejected(Problem(file, record, field, expected, shown, reason))
