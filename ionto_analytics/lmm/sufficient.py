"""Sufficient statistics computed once per fit, so each likelihood evaluation is cheap.

Random intercept: with ``V_i = sigma^2 (I + gamma J)``, ``V_i^{-1} = (I - c_i J) / sigma^2``
with ``c_i = gamma / (1 + n_i gamma)`` (Sherman-Morrison), so ``X'V^{-1}X``, ``X'V^{-1}y`` and
``y'V^{-1}y`` need only the totals ``X'X, X'y, y'y`` and, per distinct cluster size ``k``,
``sum s_x s_x'``, ``sum s_x s_y`` and ``sum s_y^2`` over patients of that size (``s_x, s_y``
are a patient's column sums). One pass over the rows; each evaluation then costs
``O(#sizes p^2 + p^3)``.

MMRM: patients are grouped by missingness pattern; within a pattern ``V_i^{-1} = W`` is the
same, so ``X'V^{-1}X = sum_P sum_jk W_P[j,k] C_P[j,k]`` with ``C_P[j,k] = sum_i x_ij x_ik'``
(window rows ``j, k`` of the patients in pattern ``P``), and likewise ``D_P[j,k] = sum_i
x_ij y_ik`` and ``E_P[j,k] = sum_i y_ij y_ik``. Missing windows are zero rows, so every
pattern uses the full ``T x T`` layout.

Examples
--------
>>> import numpy as np
>>> X = np.ones((5, 1)); y = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
>>> s = size_stats(y, X, np.array([0, 0, 1, 1, 2]), 3)
>>> s.sizes.tolist(), s.counts.tolist(), s.syy.tolist()
([1, 2], [1, 2], [25.0, 58.0])
>>> p = pattern_stats(y, X, np.array([0, 0, 1, 1, 2]), 3, np.array([0, 1, 0, 1, 1]), 2)
>>> p.masks.tolist(), p.counts.tolist()
([[False, True], [True, True]], [1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from data_schemas.errors import InputError

__all__ = ["PatternStats", "SizeStats", "missingness_patterns", "pattern_stats", "size_stats"]


@dataclass(frozen=True)
class SizeStats:
    """Totals and per-cluster-size sums for the random-intercept model."""

    xtx: np.ndarray
    xty: np.ndarray
    yty: float
    sizes: np.ndarray
    counts: np.ndarray
    sxx: np.ndarray
    sxy: np.ndarray
    syy: np.ndarray
    n_obs: int
    n_groups: int


def size_stats(y: np.ndarray, X: np.ndarray, codes: np.ndarray, n_groups: int) -> SizeStats:
    """Compute :class:`SizeStats` in one pass (``O(n p^2)``), without copying ``X``."""
    n = y.size
    member = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(n_groups, n))
    sx = np.asarray(member @ X)
    sy = np.bincount(codes, weights=y, minlength=n_groups)
    n_i = np.bincount(codes, minlength=n_groups)
    sizes, size_of = np.unique(n_i, return_inverse=True)
    sxx, sxy, syy, counts = [], [], [], []
    for k in range(sizes.size):
        rows = size_of == k
        sxk, syk = sx[rows], sy[rows]
        sxx.append(sxk.T @ sxk)
        sxy.append(sxk.T @ syk)
        syy.append(float(syk @ syk))
        counts.append(int(rows.sum()))
    return SizeStats(
        xtx=X.T @ X,
        xty=X.T @ y,
        yty=float(y @ y),
        sizes=sizes,
        counts=np.array(counts),
        sxx=np.array(sxx),
        sxy=np.array(sxy),
        syy=np.array(syy),
        n_obs=n,
        n_groups=n_groups,
    )


@dataclass(frozen=True)
class PatternStats:
    """Per missingness pattern: window masks, patient counts and cross-products.

    Shapes: ``masks`` (P, T), ``counts`` (P,), ``C`` (P, T, T, p, p), ``D`` (P, T, T, p),
    ``E`` (P, T, T).
    """

    masks: np.ndarray
    counts: np.ndarray
    C: np.ndarray
    D: np.ndarray
    E: np.ndarray
    n_obs: int
    n_groups: int


def _refuse_duplicates(codes: np.ndarray, windows: np.ndarray, T: int) -> None:
    key = codes * T + windows
    order = np.argsort(key, kind="stable")
    same = np.flatnonzero(key[order][1:] == key[order][:-1])
    if same.size:
        first, second = sorted((int(order[same[0]]), int(order[same[0] + 1])))
        raise InputError(
            f"rows {first} and {second} are the same patient in the same window (window "
            f"code {int(windows[first])}); an MMRM needs at most one row per patient and "
            f"window: average or choose one per window first"
        )


def missingness_patterns(
    codes: np.ndarray, n_groups: int, windows: np.ndarray, T: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which windows each patient was seen in (n_groups, T) and its pattern as an integer.

    Examples
    --------
    >>> seen, key = missingness_patterns(np.array([0, 0, 1]), 2, np.array([0, 1, 1]), 2)
    >>> seen.tolist(), key.tolist()
    ([[True, True], [False, True]], [3, 2])
    """
    seen = np.zeros((n_groups, T), dtype=bool)
    seen[codes, windows] = True
    return seen, seen @ (1 << np.arange(T))


def pattern_stats(
    y: np.ndarray,
    X: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    windows: np.ndarray,
    T: int,
) -> PatternStats:
    """Compute :class:`PatternStats`: one GEMM of size ``(T p)^2`` per pattern."""
    _refuse_duplicates(codes, windows, T)
    p = X.shape[1]
    _, pattern_id = missingness_patterns(codes, n_groups, windows, T)
    order = np.argsort(pattern_id, kind="stable")
    position = np.empty(n_groups, dtype=np.intp)
    position[order] = np.arange(n_groups)
    Xw = np.zeros((n_groups, T, p))
    Yw = np.zeros((n_groups, T))
    Xw[position[codes], windows] = X
    Yw[position[codes], windows] = y
    ids, starts, counts = np.unique(pattern_id[order], return_index=True, return_counts=True)
    P = ids.size
    C = np.empty((P, T, T, p, p))
    D = np.empty((P, T, T, p))
    E = np.empty((P, T, T))
    masks = ((ids[:, None] >> np.arange(T)) & 1).astype(bool)
    for q, (start, count) in enumerate(zip(starts, counts, strict=True)):
        xf = Xw[start : start + count].reshape(count, T * p)
        yf = Yw[start : start + count]
        C[q] = (xf.T @ xf).reshape(T, p, T, p).transpose(0, 2, 1, 3)
        D[q] = (xf.T @ yf).reshape(T, p, T).transpose(0, 2, 1)
        E[q] = yf.T @ yf
    return PatternStats(masks=masks, counts=counts, C=C, D=D, E=E, n_obs=y.size, n_groups=n_groups)
