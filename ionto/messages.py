"""How ``ionto`` tells a user what went wrong: one line on stderr, never a traceback.

:func:`user_errors` are the errors a user can cause (bad input, a refused or unreachable
store, a path that cannot be used); :func:`one_line` is the message ``ionto`` prints for
one, with :func:`say`; the exit status is in :mod:`ionto.cli`.
"""

from __future__ import annotations

import typer

from data_schemas.errors import IontoError


def user_errors() -> tuple[type[Exception], ...]:
    """What a user can cause: printed as one line, exit status 2, never a traceback.

    Examples
    --------
    >>> [e.__name__ for e in user_errors()]
    ['IontoError', 'OperationalError', 'ArgumentError', 'OSError']
    """
    from sqlalchemy.exc import ArgumentError, OperationalError

    return (IontoError, OperationalError, ArgumentError, OSError)


def one_line(error: BaseException) -> str:
    r"""The message of ``error`` on one line, as ``ionto`` prints it on stderr.

    Lines of a longer message are joined with "; " (with a space after a line that ends
    in a colon).

    Examples
    --------
    >>> one_line(FileExistsError(17, "File exists", "reports"))
    'reports: File exists'
    >>> one_line(ValueError("2 problems\n  row 3\n  row 9"))
    '2 problems; row 3; row 9'
    >>> one_line(ValueError("2 problems:\n  row 3\n  row 9"))
    '2 problems: row 3; row 9'
    """
    from sqlalchemy.exc import OperationalError

    if isinstance(error, OperationalError):
        text = f"the store failed: {error.orig}"
    elif isinstance(error, OSError) and error.filename is not None:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    out = ""
    for line in (line.strip() for line in text.splitlines()):
        if line:
            out += ("" if not out else " " if out.endswith(":") else "; ") + line
    return out


def say(text: str) -> None:
    """Print ``text`` on stderr as ``ionto`` prints every problem: one red line."""
    typer.secho(f"ionto: {text}", err=True, fg="red")
