"""Validation of the plain arrays the engine takes: outcome, design matrix, patients, windows.

Bad input is refused with an :class:`~data_schemas.errors.InputError` that says what,
where, expected, got and the fix. Nothing is dropped: a missing outcome is an error, since
the caller decides (and counts) which rows to leave out.

Examples
--------
>>> import numpy as np
>>> y, X, codes, n_groups = design([1.0, 2.0, 3.0], np.ones((3, 1)), ["a", "b", "a"])
>>> codes.tolist(), n_groups
([0, 1, 0], 2)
>>> design([1.0, np.nan], np.ones((2, 1)), [1, 2])
Traceback (most recent call last):
...
data_schemas.errors.InputError: y must be finite (got 1 missing or infinite value(s), first \
at row 1); drop or impute those rows before fitting and report how many
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from data_schemas.errors import InputError

__all__ = ["check_method", "design", "full_rank", "window_codes"]


def check_method(method: str) -> str:
    """``"REML"`` or ``"ML"`` (any case).

    Examples
    --------
    >>> check_method("reml")
    'REML'
    """
    upper = str(method).upper()
    if upper not in ("REML", "ML"):
        raise InputError(f"method must be 'REML' or 'ML' (got {method!r})")
    return upper


def _finite(name: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        rows = np.flatnonzero(bad.reshape(len(values), -1).any(axis=1))
        raise InputError(
            f"{name} must be finite (got {rows.size} missing or infinite value(s), first at "
            f"row {rows[0]}); drop or impute those rows before fitting and report how many"
        )


def design(
    y: ArrayLike, X: ArrayLike, groups: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Check ``y`` (n,), ``X`` (n, p) and ``groups`` (n,); code the patients 0..m-1.

    Returns
    -------
    tuple
        ``(y, X, codes, n_groups)`` as float arrays and integer patient codes.
    """
    y_arr = np.asarray(y, dtype=float)
    X_arr = np.asarray(X, dtype=float)
    groups_arr = np.asarray(groups)
    if y_arr.ndim != 1 or X_arr.ndim != 2 or groups_arr.ndim != 1:
        raise InputError(
            f"expected y of shape (n,), X of shape (n, p) and groups of shape (n,) "
            f"(got {y_arr.shape}, {X_arr.shape}, {groups_arr.shape}); pass one row per "
            f"observation"
        )
    n = y_arr.size
    if X_arr.shape[0] != n or groups_arr.size != n:
        raise InputError(
            f"y, X and groups must have the same number of rows (got {n}, {X_arr.shape[0]}, "
            f"{groups_arr.size})"
        )
    if n <= X_arr.shape[1]:
        raise InputError(
            f"need more rows than fixed effects (got {n} rows for {X_arr.shape[1]} columns)"
        )
    _finite("y", y_arr)
    _finite("X", X_arr)
    _, codes = np.unique(groups_arr, return_inverse=True)
    return y_arr, X_arr, codes.astype(np.intp), int(codes.max()) + 1


def window_codes(windows: ArrayLike, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Code the windows 0..T-1 in sorted order of their labels.

    Examples
    --------
    >>> codes, labels = window_codes([12, 4, 6, 4], 4)
    >>> codes.tolist(), labels.tolist()
    ([2, 0, 1, 0], [4, 6, 12])
    """
    arr = np.asarray(windows)
    if arr.ndim != 1 or arr.size != n:
        raise InputError(f"windows must have shape ({n},), one per row (got {arr.shape})")
    labels, codes = np.unique(arr, return_inverse=True)
    return codes.astype(np.intp), labels


def full_rank(xtx: np.ndarray) -> None:
    """Refuse a design whose cross-product ``X'X`` is singular, naming a column to drop.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.column_stack([np.ones(4), [0, 1, 0, 1], [1, 0, 1, 0]])
    >>> full_rank(X.T @ X)
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: X is not of full column rank: column 2 is (nearly) a \
linear combination of the others (smallest scaled eigenvalue 0); drop it or a reference \
level
    """
    scale = np.sqrt(np.diag(xtx))
    if np.any(scale == 0):
        col = int(np.flatnonzero(scale == 0)[0])
        raise InputError(f"X column {col} is all zeros; drop it")
    values, vectors = np.linalg.eigh(xtx / np.outer(scale, scale))
    if values[0] < 1e-10 * values[-1]:
        weight = np.abs(vectors[:, 0])
        col = int(np.flatnonzero(weight > 1e-3 * weight.max())[-1])
        raise InputError(
            f"X is not of full column rank: column {col} is (nearly) a linear combination "
            f"of the others (smallest scaled eigenvalue {max(values[0], 0):.3g}); drop it or "
            f"a reference level"
        )
