"""Convergence certificates: numerical Hessian, checks, and the warnings they raise.

A fit is never returned silently when something is off: a large gradient, a Hessian that
is not positive definite, or an estimate on the boundary of the parameter space each issue
a :class:`~data_schemas.errors.StatisticalWarning` naming the quantity and what to do.

Examples
--------
>>> import numpy as np
>>> H = hessian_from_gradient(lambda t: np.array([2 * t[0], 6 * t[1]]), np.array([1.0, 1.0]))
>>> np.round(H, 6).tolist()
[[2.0, 0.0], [0.0, 6.0]]
>>> cert = certify(np.array([1e-9, 0.0]), H, True, 5, "ok", at_boundary=False, what="demo")
>>> cert.converged, round(cert.hessian_min_eigenvalue, 6)
(True, 2.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from data_schemas.errors import StatisticalWarning

from .result import Convergence

__all__ = ["GRADIENT_TOLERANCE", "certify", "hessian_from_function", "hessian_from_gradient"]

GRADIENT_TOLERANCE = 1e-4
"""Largest acceptable |gradient| of the -2 log-likelihood (a change of 1e-4 per unit of a
parameter on the optimizer's scale is far below any inferential relevance)."""


def _steps(theta: np.ndarray, relative: float) -> np.ndarray:
    return relative * np.maximum(np.abs(theta), 1e-2)


def hessian_from_gradient(
    gradient: Callable[[np.ndarray], np.ndarray], theta: np.ndarray, relative: float = 1e-5
) -> np.ndarray:
    """Central-difference Hessian of an analytic gradient, symmetrized."""
    k = theta.size
    H = np.empty((k, k))
    for j, h in enumerate(_steps(theta, relative)):
        step = np.zeros(k)
        step[j] = h
        H[:, j] = (gradient(theta + step) - gradient(theta - step)) / (2 * h)
    return (H + H.T) / 2


def hessian_from_function(
    f: Callable[[np.ndarray], float], theta: np.ndarray, relative: float = 1e-4
) -> np.ndarray:
    """Central-difference Hessian of a scalar function (4 evaluations per entry).

    Examples
    --------
    >>> H = hessian_from_function(lambda t: t[0] ** 2 * t[1], np.array([1.0, 2.0]))
    >>> np.round(H, 5).tolist()
    [[4.0, 2.0], [2.0, 0.0]]
    """
    k = theta.size
    h = _steps(theta, relative)
    H = np.empty((k, k))
    for i in range(k):
        for j in range(i, k):
            ei = np.zeros(k)
            ej = np.zeros(k)
            ei[i], ej[j] = h[i], h[j]
            H[i, j] = H[j, i] = (
                f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej) + f(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    return H


def certify(
    gradient: np.ndarray,
    hessian: np.ndarray,
    optimizer_ok: bool,
    iterations: int,
    message: str,
    *,
    at_boundary: bool,
    what: str,
) -> Convergence:
    """Check gradient, Hessian and boundary; warn for each failure; return the certificate.

    ``hessian`` is that of the -2 log-likelihood w.r.t. the covariance parameters; at a
    boundary its positive-definiteness is not required (the optimum is a constrained one).
    """
    grad_norm = float(np.max(np.abs(gradient))) if gradient.size else 0.0
    min_eig = float(np.linalg.eigvalsh(hessian)[0]) if hessian.size else np.inf
    problems = []
    if not optimizer_ok:
        problems.append(f"the optimizer stopped early ({message})")
    if grad_norm > GRADIENT_TOLERANCE:
        problems.append(f"the gradient is {grad_norm:.3g} (tolerance {GRADIENT_TOLERANCE:g})")
    if not at_boundary and not min_eig > 0:
        problems.append(f"the Hessian is not positive definite (smallest eigenvalue {min_eig:.3g})")
    for problem in problems:
        warnings.warn(
            f"{what}: {problem}; the estimates may not be a maximum of the likelihood: "
            f"check the design (collinearity, tiny groups) or try a simpler covariance",
            StatisticalWarning,
            stacklevel=3,
        )
    return Convergence(
        converged=not problems,
        gradient_norm=grad_norm,
        hessian_min_eigenvalue=min_eig,
        at_boundary=at_boundary,
        iterations=iterations,
        message="; ".join([message, *problems]),
    )
