"""Covariance structures over the windows: ``Sigma(theta)``, start values and the boundary.

Each structure maps an unconstrained parameter vector ``theta`` to a positive-definite
``T x T`` matrix, so the optimizer needs no bounds:

=====================  =====================================================  ============
structure              Sigma                                                  parameters
=====================  =====================================================  ============
``unstructured``       ``L L'``, L lower triangular with log diagonal         T(T+1)/2
``cs``                 ``s^2 ((1-r) I + r J)``, ``r`` in (-1/(T-1), 1)          2
``ar1``                ``s^2 r^|j-k|``, ``r = tanh(z)``                         2
``heterogeneous_cs``   ``D ((1-r) I + r J) D``, ``D = diag(s_1..s_T)``          T + 1
``heterogeneous_ar1``  ``D r^|j-k| D``                                          T + 1
``diagonal``           ``D^2`` (independent windows, own variances)             T
=====================  =====================================================  ============

``Sigma(theta)`` is written with operations that accept complex numbers, so its Jacobian
``d Sigma / d theta_k`` comes from the complex step ``Im Sigma(theta + i h e_k) / h``, exact
to rounding (Squire and Trapp, 1998).

Examples
--------
>>> import numpy as np
>>> ar1 = STRUCTURES["ar1"]
>>> np.round(ar1.sigma(np.array([np.log(4.0), np.arctanh(0.5)]), 3), 3).tolist()
[[4.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 4.0]]
>>> jac = jacobian(ar1, np.array([0.0, 0.0]), 2)
>>> np.round(jac, 6).tolist()
[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from data_schemas.errors import InputError

__all__ = ["STRUCTURES", "Structure", "at_boundary", "get_structure", "jacobian"]

_Z_LIMIT = 12.0
"""A correlation parameter beyond this (|r| within ~1e-10 of its limit) is on the boundary."""


def _expit(z):
    return 1 / (1 + np.exp(-z))


def _cs_r(z, T: int):
    low = -1 / (T - 1) if T > 1 else 0.0
    return low + (1 - low) * _expit(z)


def _cs_z(r: float, T: int) -> float:
    low = -1 / (T - 1) if T > 1 else 0.0
    u = np.clip((r - low) / (1 - low), 1e-3, 1 - 1e-3)
    return float(np.log(u / (1 - u)))


def _cs_corr(r, T: int):
    return (1 - r) * np.eye(T) + r * np.ones((T, T))


def _ar1_corr(r, T: int):
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    return r**lag


def _unstructured(theta, T: int):
    rows, cols = np.tril_indices(T)
    values = np.where(rows == cols, np.exp(theta), theta)
    L = np.zeros((T, T), dtype=values.dtype)
    L[rows, cols] = values
    return L @ L.T


def _unstructured_start(S: np.ndarray) -> np.ndarray:
    T = S.shape[0]
    try:
        L = np.linalg.cholesky(S)
    except np.linalg.LinAlgError:
        L = np.diag(np.sqrt(np.diag(S)))
    rows, cols = np.tril_indices(T)
    values = L[rows, cols]
    diagonal = rows == cols
    values[diagonal] = np.log(np.abs(values[diagonal]))
    return values


def _mean_offdiag_corr(S: np.ndarray, lag1: bool) -> float:
    sd = np.sqrt(np.diag(S))
    R = S / np.outer(sd, sd)
    T = S.shape[0]
    if T == 1:
        return 0.0
    values = np.diag(R, 1) if lag1 else R[np.triu_indices(T, 1)]
    return float(np.clip(np.mean(values), -0.9, 0.9))


@dataclass(frozen=True)
class Structure:
    """One covariance structure: its parameter count, ``Sigma(theta)`` and start values.

    ``linear_basis``, where ``Sigma`` is linear in some parameters ``phi`` (``Sigma =
    sum_a phi_a G_a``), gives the matrices ``G_a`` (K, T, T) for the Kenward–Roger
    adjustment (:mod:`.kenward_roger`); None for the structures that are not.
    """

    name: str
    n_params: Callable[[int], int]
    sigma: Callable[[np.ndarray, int], np.ndarray]
    start: Callable[[np.ndarray], np.ndarray]
    correlation_params: Callable[[int], slice]
    linear_basis: Callable[[int], np.ndarray] | None = None


def _element_basis(T: int) -> np.ndarray:
    """``G`` of an unstructured matrix: one per element on and below the diagonal.

    Examples
    --------
    >>> _element_basis(2).tolist()
    [[[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]
    """
    rows, cols = np.tril_indices(T)
    G = np.zeros((rows.size, T, T))
    G[np.arange(rows.size), rows, cols] = 1.0
    G[np.arange(rows.size), cols, rows] = 1.0
    return G


def _diagonal_basis(T: int) -> np.ndarray:
    G = np.zeros((T, T, T))
    G[np.arange(T), np.arange(T), np.arange(T)] = 1.0
    return G


def _het(corr: Callable, r_of: Callable) -> Callable:
    def sigma(theta, T: int):
        sd = np.exp(theta[:T])
        return sd[:, None] * corr(r_of(theta[T], T), T) * sd[None, :]

    return sigma


STRUCTURES: dict[str, Structure] = {
    "unstructured": Structure(
        "unstructured",
        lambda T: T * (T + 1) // 2,
        _unstructured,
        _unstructured_start,
        lambda T: slice(0, 0),
        _element_basis,
    ),
    "cs": Structure(
        "cs",
        lambda T: 2,
        lambda th, T: np.exp(th[0]) * _cs_corr(_cs_r(th[1], T), T),
        lambda S: np.array(
            [np.log(np.mean(np.diag(S))), _cs_z(_mean_offdiag_corr(S, False), S.shape[0])]
        ),
        lambda T: slice(1, 2),
        lambda T: np.stack([np.eye(T), np.ones((T, T))]),  # Sigma = a I + b J
    ),
    "ar1": Structure(
        "ar1",
        lambda T: 2,
        lambda th, T: np.exp(th[0]) * _ar1_corr(np.tanh(th[1]), T),
        lambda S: np.array([np.log(np.mean(np.diag(S))), np.arctanh(_mean_offdiag_corr(S, True))]),
        lambda T: slice(1, 2),
    ),
    "heterogeneous_cs": Structure(
        "heterogeneous_cs",
        lambda T: T + 1,
        _het(_cs_corr, _cs_r),
        lambda S: np.r_[0.5 * np.log(np.diag(S)), _cs_z(_mean_offdiag_corr(S, False), S.shape[0])],
        lambda T: slice(T, T + 1),
    ),
    "heterogeneous_ar1": Structure(
        "heterogeneous_ar1",
        lambda T: T + 1,
        _het(_ar1_corr, lambda z, T: np.tanh(z)),
        lambda S: np.r_[0.5 * np.log(np.diag(S)), np.arctanh(_mean_offdiag_corr(S, True))],
        lambda T: slice(T, T + 1),
    ),
    "diagonal": Structure(
        "diagonal",
        lambda T: T,
        lambda th, T: np.diag(np.exp(2 * th[:T])),
        lambda S: 0.5 * np.log(np.diag(S)),
        lambda T: slice(0, 0),
        _diagonal_basis,
    ),
}


def get_structure(name: str, T: int) -> Structure:
    """The structure called ``name``, checked against the number of windows.

    Examples
    --------
    >>> get_structure("toeplitz", 4)
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: covariance 'toeplitz' is not known; choose one of \
ar1, cs, diagonal, heterogeneous_ar1, heterogeneous_cs, unstructured
    """
    if name not in STRUCTURES:
        raise InputError(
            f"covariance {name!r} is not known; choose one of {', '.join(sorted(STRUCTURES))}"
        )
    if T < 2 and name != "diagonal":
        raise InputError(
            f"covariance {name!r} needs at least 2 windows (got {T}); with one window fit "
            f"an ordinary linear model"
        )
    return STRUCTURES[name]


def jacobian(structure: Structure, theta: np.ndarray, T: int) -> np.ndarray:
    """``d Sigma / d theta_k`` for every ``k`` (k, T, T), by the complex step."""
    h = 1e-30
    out = np.empty((theta.size, T, T))
    for k in range(theta.size):
        shifted = theta.astype(complex)
        shifted[k] += 1j * h
        out[k] = structure.sigma(shifted, T).imag / h
    return out


def at_boundary(structure: Structure, theta: np.ndarray, sigma: np.ndarray) -> bool:
    """A correlation at its limit, or ``Sigma`` (numerically) singular.

    Examples
    --------
    >>> import numpy as np
    >>> at_boundary(STRUCTURES["cs"], np.array([0.0, 20.0]), np.eye(3))
    True
    """
    corr = theta[structure.correlation_params(sigma.shape[0])]
    values = np.linalg.eigvalsh(sigma)
    return bool(np.any(np.abs(corr) > _Z_LIMIT) or values[0] < 1e-10 * values[-1])
