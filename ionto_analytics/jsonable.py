"""JSON-ready values: :func:`jsonable`, shared by every result's ``to_dict()``.

It sits below the analysis modules (cohorts, Table 1, comparisons, the clinic funnel) so
that each of them can serialise its result without importing another.

Examples
--------
>>> import json, numpy as np
>>> json.dumps(jsonable({"n": np.int64(3), "p": np.float64("nan")}))
'{"n": 3, "p": null}'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """Convert numpy/pandas values to JSON-serializable Python (non-finite floats → None).

    Examples
    --------
    >>> jsonable({"a": np.float64(1.5), "b": [np.nan, np.int64(2)]})
    {'a': 1.5, 'b': [None, 2]}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict("records")]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(float(value)) else None
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return str(value)
    return value
