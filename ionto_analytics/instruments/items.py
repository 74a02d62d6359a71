"""Scoring an instrument from its item responses, by the scoring manuals' rules.

Examples
--------
>>> score_items("quickdash", [3] * 11)
50.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
import pandas as pd

from ionto_analytics.errors import InputError
from ionto_analytics.instruments.scores import check_scores, get_instrument

__all__ = ["score_items"]

_VISA_A_ITEM_7: tuple[int, ...] = (0, 4, 7, 10)
"""VISA-A item 7 (sport participation): the possible scores (Robinson 2001 [S24]; [K])."""

_VISA_A_ITEM_8: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {"A": (0, 7, 14, 21, 30), "B": (0, 4, 10, 14, 20), "C": (0, 2, 5, 7, 10)}
)
"""VISA-A item 8 per branch: A no pain in sport, B pain but completes training, C pain stops
training; each by minutes of activity (Robinson 2001 [S24]; values [K])."""

_FFI_SUBSCALES: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"pain": (1, 9), "disability": (10, 18), "activity limitation": (19, 23)}
)
"""FFI subscales: first and last item number (Budiman-Mak 1991, via sralab.org)."""

_FFI_VARIANTS: tuple[str, ...] = ("subscales", "sum230", "sum207")
"""FFI totals: mean of the subscales (default), sum / 230 (0–10 items), sum / 207 (0–9 VAS)."""


def _items(responses: Sequence[float] | np.ndarray | pd.DataFrame) -> np.ndarray:
    arr = np.asarray(responses, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputError("item responses must be 1-D (one respondent) or 2-D (rows)")
    return arr


def _check_items(
    arr: np.ndarray,
    instrument: str,
    lo: float,
    hi: float,
    *,
    integer: bool = True,
    source: str = "",
) -> None:
    answered = ~np.isnan(arr)
    bad = answered & ((arr < lo) | (arr > hi))
    expected = f"the expected item range [{lo:g}, {hi:g}]"
    if integer and not bad.any():
        bad = answered & (arr != np.round(arr))
        expected = f"a whole number in [{lo:g}, {hi:g}]"
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise InputError(
            f"{instrument} item {c + 1} response {float(arr[r, c])!r} (row {r}) is "
            f"not {expected}"
            + (f" ({source})" if source else "")
            + "; check the form's item order and that no answer was averaged or rescaled"
        )


def _check_allowed(
    arr: np.ndarray, instrument: str, item: int, allowed: tuple[int, ...], what: str
) -> None:
    col = arr[:, item - 1]
    bad = ~np.isnan(col) & ~np.isin(col, allowed)
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{instrument} item {item} response {float(col[r])!r} (row {r}) is not a possible "
            f"answer; expected one of {list(allowed)} ({what}); check the form's item order"
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


def _visa_a(arr: np.ndarray) -> np.ndarray:
    _need(arr, "visa_a", 8)
    _check_items(arr[:, :6], "visa_a", 0, 10, source="items 1–6, Robinson 2001 [S24]")
    _check_allowed(arr, "visa_a", 7, _VISA_A_ITEM_7, "sport participation, Robinson 2001 [S24]")
    _check_allowed(
        arr,
        "visa_a",
        8,
        tuple(sorted(set().union(*_VISA_A_ITEM_8.values()))),
        "; ".join(f"branch {k}: {list(v)}" for k, v in _VISA_A_ITEM_8.items()),
    )
    if np.isnan(arr).any():
        raise InputError("visa_a: all 8 items are required (Robinson 2001 [S24])")
    return arr.sum(axis=1)


def _ffi(arr: np.ndarray, variant: str) -> np.ndarray:
    _need(arr, "ffi", 23)
    if variant not in _FFI_VARIANTS:
        raise InputError(f"ffi variant {variant!r} is unknown; expected one of {_FFI_VARIANTS}")
    item_max = 9.0 if variant == "sum207" else 10.0
    _check_items(arr, "ffi", 0, item_max, integer=False, source=f"variant {variant!r}")
    if variant != "subscales":
        missing = np.isnan(arr).sum(axis=1)
        if missing.any():
            r = int(np.flatnonzero(missing)[0])
            raise InputError(
                f"ffi variant {variant!r}: row {r} has {missing[r]} of 23 items unanswered; "
                "the published sum divides by the complete form's maximum, so it needs all 23; "
                "use variant='subscales' (applicable items only)"
            )
        return arr.sum(axis=1) / (23 * item_max) * 100.0
    subscales = []
    for name, (first, last) in _FFI_SUBSCALES.items():
        part = arr[:, first - 1 : last]
        n = last - first + 1
        need = math.ceil(n / 2)
        answered = (~np.isnan(part)).sum(axis=1)
        if (answered < need).any():
            r = int(np.flatnonzero(answered < need)[0])
            raise InputError(
                f"ffi: row {r} has {answered[r]} of the {n} {name} items (items {first}–{last}) "
                f"answered; at least {need} needed to score the subscale [A], and the total "
                "needs all three subscales"
            )
        subscales.append(np.nansum(part, axis=1) / (10.0 * answered) * 100.0)
    return np.mean(subscales, axis=0)


def score_items(
    instrument: str,
    responses: Sequence[float] | np.ndarray | pd.DataFrame,
    *,
    variant: str | None = None,
) -> float | np.ndarray:
    """Score an instrument from its item responses (NaN = item not answered / not applicable).

    Rules, each with its source (DOMAIN.md tags; [K] recalled from the manual, to re-check;
    [A] our own rule where the manual gives none). Items are whole numbers unless stated.

    * ``prtee``: 15 items 0–10, first 5 pain, next 10 function; pain sum + function sum / 2
      (MacDermid 2007 manual [K]). All items required [A].
    * ``quickdash``: 11 items 1–5, ≥10 answered; ``((sum / n) − 1) × 25`` (IWH manual [K]).
    * ``dash``: 30 items 1–5, ≥27 answered; same formula (IWH manual [K]).
    * ``lefs``: 20 items 0–4; sum (Binkley 1999 [S31]). All items required [A].
    * ``ffi``: 23 items, subscales pain (items 1–9), disability (10–18), activity limitation
      (19–23) (Budiman-Mak 1991, as summarised by sralab.org Rehabilitation Measures, read
      here). ``variant=``:

      - ``"subscales"`` (default): each subscale = sum of its answered items /
        (10 × answered) × 100, the total = mean of the three subscales (the "alternative"
        total of the same summary). Each subscale needs ≥ half of its items answered
        (pain 5, disability 5, activity 3) [A]: the source scores applicable items only and
        gives no minimum, so a form with a wholly missing subscale is refused.
      - ``"sum230"``: items 0–10 (not necessarily whole: VAS), sum / 230 × 100, complete
        forms only.
      - ``"sum207"``: the original 0–9 VAS version, sum / 207 × 100, complete forms only.

      The revised FFI-R (68 items, 1–5) is a different instrument and is not scored here.
    * ``faam_adl`` (21 items) / ``faam_sports`` (8): items 0–4, N/A allowed; percent of the
      answered maximum (Martin 2005 [S30]), ≥ half answered [A].
    * ``visa_a``: 8 items, sum (Robinson 2001 [S24]); items 1–6 are 0–10; item 7 (sport)
      is 0, 4, 7 or 10; item 8 is answered on one branch, A (no pain in sport) 0/7/14/21/30,
      B (pain, completes training) 0/4/10/14/20 or C (pain stops training) 0/2/5/7/10
      (item values [K]). All items required.
    * ``psfs``: 3–5 activities 0–10; mean of the rated activities (Stratford 1995 [K]).

    Parameters
    ----------
    instrument : str
        Instrument key.
    responses : array-like
        One respondent (1-D) or several (2-D, one row each), items in questionnaire order.
    variant : str or None
        Scoring variant, for ``ffi`` only (see above); None = the default.

    Returns
    -------
    float or numpy.ndarray
        The score (a float for 1-D input), always within the instrument's range.

    Raises
    ------
    InputError
        Unknown instrument, an instrument without item scoring, wrong item count, an item
        out of range or not a possible answer, too few answered items, or a ``variant``
        the instrument does not have.

    Examples
    --------
    >>> score_items("prtee", [5] * 5 + [4] * 10)
    45.0
    >>> score_items("lefs", [[4] * 20, [0] * 20])
    array([80.,  0.])
    >>> score_items("psfs", [3, 4, 5])
    4.0
    >>> round(score_items("ffi", [10] * 9 + [0] * 14), 2), round(
    ...     score_items("ffi", [10] * 9 + [0] * 14, variant="sum230"), 2)
    (33.33, 39.13)
    """
    inst = get_instrument(instrument)
    arr = _items(responses)
    key = inst.key
    if variant is not None and key != "ffi":
        raise InputError(
            f"{key} has one scoring rule; variant={variant!r} applies to ffi only (drop it)"
        )
    if key == "prtee":
        _need(arr, key, 15)
        _check_items(arr, key, 0, 10, source="MacDermid 2007 [K]")
        if np.isnan(arr).any():
            raise InputError("prtee: all 15 items are required (a missing item was found)")
        out = arr[:, :5].sum(axis=1) + arr[:, 5:].sum(axis=1) / 2.0
    elif key in ("quickdash", "dash"):
        n_items, min_n = (11, 10) if key == "quickdash" else (30, 27)
        _need(arr, key, n_items)
        _check_items(arr, key, 1, 5, source="IWH manual [K]")
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
        _check_items(arr, key, 0, 4, source="Binkley 1999 [S31]")
        if np.isnan(arr).any():
            raise InputError("lefs: all 20 items are required")
        out = arr.sum(axis=1)
    elif key == "ffi":
        out = _ffi(arr, "subscales" if variant is None else variant)
    elif key in ("faam_adl", "faam_sports"):
        n_items = 21 if key == "faam_adl" else 8
        _need(arr, key, n_items)
        _check_items(arr, key, 0, 4, source="Martin 2005 [S30]")
        out = _percent_of_answered(arr, key, 4.0, math.ceil(n_items / 2))
    elif key == "visa_a":
        out = _visa_a(arr)
    elif key == "psfs":
        _need(arr, key, (3, 5))
        _check_items(arr, key, 0, 10, source="Stratford 1995 [K]")
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
