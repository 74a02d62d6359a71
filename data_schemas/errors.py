"""The one exception hierarchy of ionto-analytics.

Every error the package raises on purpose is an :class:`IontoError`; bad input
is an :class:`InputError` (also a :class:`ValueError`, so generic handlers still
catch it); a DataFrame that breaks its contract is a :class:`SchemaError`.
Statistical caveats the user should see (few clusters, extreme weights,
non-convergence) are issued as :class:`StatisticalWarning`.

Examples
--------
>>> from data_schemas.errors import InputError, IontoError
>>> issubclass(InputError, IontoError) and issubclass(InputError, ValueError)
True
"""

from __future__ import annotations

__all__ = ["InputError", "IontoError", "SchemaError", "StatisticalWarning"]


class IontoError(Exception):
    """Base class of every exception raised on purpose by ionto-analytics."""


class InputError(IontoError, ValueError):
    """An argument or value is invalid: says what, where, expected, got and the fix."""


class SchemaError(IontoError):
    """A DataFrame does not meet its contract (missing column, wrong dtype, bad value)."""


class StatisticalWarning(UserWarning):
    """A statistical caveat: few clusters, extreme weights, non-convergence, small cells."""
