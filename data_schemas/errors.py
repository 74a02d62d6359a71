"""The one exception hierarchy of ionto-analytics.

Every error the package raises on purpose is an :class:`IontoError`; bad input
is an :class:`InputError` (also a :class:`ValueError`, so generic handlers still
catch it); a DataFrame that breaks its contract is a :class:`SchemaError`.
Statistical caveats the user should see (few clusters, extreme weights,
non-convergence) are issued as :class:`StatisticalWarning`. A store that cannot be
used (no such file, an unsupported URL, a server that does not answer, a schema revision
the code does not read) is a :class:`StoreError`.

The ``ionto`` command prints any :class:`IontoError` as one line and exits
:data:`EXIT_COULD_NOT_RUN`; the exit statuses are defined here, beside the errors, so the
importer and the command line share them.

Examples
--------
>>> from data_schemas.errors import InputError, IontoError, StoreError
>>> issubclass(InputError, IontoError) and issubclass(InputError, ValueError)
True
>>> issubclass(StoreError, IontoError)
True
"""

from __future__ import annotations

__all__ = [
    "EXIT_COULD_NOT_RUN",
    "EXIT_OK",
    "EXIT_QUARANTINED",
    "InputError",
    "IontoError",
    "SchemaError",
    "StatisticalWarning",
    "StoreError",
]

EXIT_OK = 0
"""``ionto`` exit status: done (for ``ionto import``: every file imported or unchanged)."""
EXIT_COULD_NOT_RUN = 2
"""``ionto`` exit status: could not run (bad option or input, a store or path unusable)."""
EXIT_QUARANTINED = 4
"""``ionto import`` exit status when some files were quarantined and the rest imported."""


class IontoError(Exception):
    """Base class of every exception raised on purpose by ionto-analytics."""


class InputError(IontoError, ValueError):
    """An argument or value is invalid: says what, where, expected, got and the fix."""


class SchemaError(IontoError):
    """A DataFrame does not meet its contract (missing column, wrong dtype, bad value)."""


class StoreError(IontoError):
    """The store cannot be used: missing, unsupported, unreachable or at another revision."""


class StatisticalWarning(UserWarning):
    """A statistical caveat: few clusters, extreme weights, non-convergence, small cells."""
