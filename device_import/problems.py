"""Why a file was set aside: file, record, field, expected and got.

Examples
--------
>>> problem = Problem("a.csv", "line 17", "current_mA", "0-5 mA", "12.5", "out of range")
>>> problem.message()
'a.csv, line 17, field current_mA: out of range (expected 0-5 mA, got 12.5)'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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


class FileRejected(InputError):
    """A file cannot be imported; it is quarantined whole and the batch goes on."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message())
        self.problem = problem


def reject(
    file: str,
    reason: str,
    *,
    record: str | None = None,
    field: str | None = None,
    expected: str | None = None,
    got: object = None,
) -> FileRejected:
    """Build the exception for a rejected file (raise the result).

    Examples
    --------
    >>> str(reject("x.json", "not JSON", record="byte 12"))
    'x.json, byte 12: not JSON'
    """
    shown = None if got is None else _shorten(repr(got) if not isinstance(got, str) else got)
    return FileRejected(Problem(file, record, field, expected, shown, reason))


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
