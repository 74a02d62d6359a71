"""Scoring an instrument from its item responses, by the scoring manuals' rules.

Examples
--------
>>> score_items("quickdash", [3] * 11)
50.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ionto_analytics.errors import InputError
from ionto_analytics.instruments.scores import check_scores, get_instrument

__all__ = ["score_items"]


def _items(responses: Sequence[float] | np.ndarray | pd.DataFrame) -> np.ndarray:
    arr = np.asarray(responses, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputError("item responses must be 1-D (one respondent) or 2-D (rows)")
    return arr


def _check_items(arr: np.ndarray, instrument: str, lo: float, hi: float) -> None:
    bad = ~np.isnan(arr) & ((arr < lo) | (arr > hi))
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise InputError(
            f"{instrument} item {c + 1} response {float(arr[r, c])!r} (row {r}) is outside "
            f"the expected item range [{lo}, {hi}]"
        )


def _need(arr: np.ndarray, instrument: str, n_items: int | tuple[int, int]) -> None:
    lo_n, hi_n = (n_items, n_items) if isinstance(n_items, int) else n_items
    if not lo_n <= arr.shape[1] <= hi_n:
        raise InputError(
            f"{instrument} needs {lo_n}"
            + (f"–{hi_n}" if hi_n != lo_n else "")
            + f" item responses, got {arr.shape[1]}"
        )


def _percent_of_answered(
    arr: np.ndarray, instrument: str, item_max: float, min_answered: int
) -> np.ndarray:
    answered = (~np.isnan(arr)).sum(axis=1)
    if (answered < min_answered).any():
        r = int(np.flatnonzero(answered < min_answered)[0])
        raise InputError(
            f"{instrument}: row {r} has {answered[r]} answered items; at least {min_answered} "
            "needed to score"
        )
    return np.nansum(arr, axis=1) / (item_max * answered) * 100.0


def score_items(
    instrument: str, responses: Sequence[float] | np.ndarray | pd.DataFrame
) -> float | np.ndarray:
    """Score an instrument from its item responses (NaN = item not answered / not applicable).

    Rules (standard scoring manuals; [K] unless stated):

    * ``prtee``: 15 items 0–10, first 5 pain, next 10 function; pain sum + function sum / 2.
      All items required.
    * ``quickdash``: 11 items 1–5, ≥10 answered; ``((sum / n) − 1) × 25``.
    * ``dash``: 30 items 1–5, ≥27 answered; same formula.
    * ``lefs``: 20 items 0–4; sum (all required).
    * ``ffi``: 23 items 0–10; mean percent of answered items (sum / (10 × answered) × 100),
      ≥12 answered [A].
    * ``faam_adl`` (21 items) / ``faam_sports`` (8): items 0–4, N/A allowed; percent of the
      answered maximum, ≥ half answered [A].
    * ``visa_a``: 8 items (1–7: 0–10, 8: 0–30); sum (all required).
    * ``psfs``: 3–5 activities 0–10; mean of the rated activities.

    Parameters
    ----------
    instrument : str
        Instrument key.
    responses : array-like
        One respondent (1-D) or several (2-D, one row each), items in questionnaire order.

    Returns
    -------
    float or numpy.ndarray
        The score (a float for 1-D input), always within the instrument's range.

    Raises
    ------
    InputError
        Unknown instrument, an instrument without item scoring, wrong item count, an item
        out of range, or too few answered items.

    Examples
    --------
    >>> score_items("prtee", [5] * 5 + [4] * 10)
    45.0
    >>> score_items("lefs", [[4] * 20, [0] * 20])
    array([80.,  0.])
    >>> score_items("psfs", [3, 4, 5])
    4.0
    """
    inst = get_instrument(instrument)
    arr = _items(responses)
    key = inst.key
    if key == "prtee":
        _need(arr, key, 15)
        _check_items(arr, key, 0, 10)
        if np.isnan(arr).any():
            raise InputError("prtee: all 15 items are required (a missing item was found)")
        out = arr[:, :5].sum(axis=1) + arr[:, 5:].sum(axis=1) / 2.0
    elif key in ("quickdash", "dash"):
        n_items, min_n = (11, 10) if key == "quickdash" else (30, 27)
        _need(arr, key, n_items)
        _check_items(arr, key, 1, 5)
        answered = (~np.isnan(arr)).sum(axis=1)
        if (answered < min_n).any():
            r = int(np.flatnonzero(answered < min_n)[0])
            raise InputError(
                f"{key}: row {r} has {answered[r]} of {n_items} items answered; "
                f"at least {min_n} needed"
            )
        out = (np.nansum(arr, axis=1) / answered - 1.0) * 25.0
    elif key == "lefs":
        _need(arr, key, 20)
        _check_items(arr, key, 0, 4)
        if np.isnan(arr).any():
            raise InputError("lefs: all 20 items are required")
        out = arr.sum(axis=1)
    elif key == "ffi":
        _need(arr, key, 23)
        _check_items(arr, key, 0, 10)
        out = _percent_of_answered(arr, key, 10.0, 12)
    elif key in ("faam_adl", "faam_sports"):
        n_items = 21 if key == "faam_adl" else 8
        _need(arr, key, n_items)
        _check_items(arr, key, 0, 4)
        out = _percent_of_answered(arr, key, 4.0, math.ceil(n_items / 2))
    elif key == "visa_a":
        _need(arr, key, 8)
        _check_items(arr[:, :7], key, 0, 10)
        _check_items(arr[:, 7:], key, 0, 30)
        if np.isnan(arr).any():
            raise InputError("visa_a: all 8 items are required")
        out = arr.sum(axis=1)
    elif key == "psfs":
        _need(arr, key, (3, 5))
        _check_items(arr, key, 0, 10)
        if (np.isnan(arr).all(axis=1)).any():
            raise InputError("psfs: a row has no rated activity")
        out = np.nanmean(arr, axis=1)
    else:
        raise InputError(
            f"{key} has no item scoring here ({inst.name} is a single score"
            + (", proprietary scoring" if key.startswith("fhsq") else "")
            + "); store the score directly"
        )
    check_scores(out, key, where="score_items")
    return float(out[0]) if np.ndim(responses) == 1 else out
