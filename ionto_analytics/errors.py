"""The one exception hierarchy of ionto-analytics (re-exported from :mod:`data_schemas.errors`).

The classes live in :mod:`data_schemas.errors` because the schema layer sits above the
analysis layer and raises them too; this module re-exports the *same* classes so that
``except ionto_analytics.errors.SchemaError`` catches what ``data_schemas`` raises.

Every error the package raises on purpose is an :class:`IontoError`; bad input
is an :class:`InputError` (also a :class:`ValueError`, so generic handlers still
catch it); a DataFrame that breaks its contract is a :class:`SchemaError`.
Statistical caveats the user should see (few clusters, extreme weights,
non-convergence) are issued as :class:`StatisticalWarning`.

Examples
--------
>>> from ionto_analytics.errors import InputError, IontoError
>>> import data_schemas.errors
>>> issubclass(InputError, IontoError) and issubclass(InputError, ValueError)
True
>>> InputError is data_schemas.errors.InputError
True
"""

from __future__ import annotations

from data_schemas.errors import InputError, IontoError, SchemaError, StatisticalWarning

__all__ = ["InputError", "IontoError", "SchemaError", "StatisticalWarning"]
