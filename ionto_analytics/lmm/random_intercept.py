"""Random-intercept linear mixed model by a 1-D search on the variance ratio.

Model: ``y_ij = x_ij' beta + b_i + e_ij`` with ``b_i ~ N(0, tau^2)`` and ``e_ij ~ N(0,
sigma^2)``, so ``V_i = sigma^2 (I + gamma J)`` with ``gamma = tau^2 / sigma^2``. For a given
``gamma``, ``beta`` is the GLS solution and ``sigma^2`` has a closed form, so the
(restricted) likelihood depends on ``gamma`` alone::

    -2 l_R(gamma) = (N-p) log(2 pi q/(N-p)) + (N-p) + sum_i log(1 + n_i gamma) + log|A|
    -2 l(gamma)   =  N    log(2 pi q/N)     +  N    + sum_i log(1 + n_i gamma)

with ``A = X'W^{-1}X``, ``q = (y - X beta)' W^{-1} (y - X beta)`` and ``W = V / sigma^2``. Its
analytic derivative is scanned on a grid of ``gamma`` (0 and 1e-6 .. 1e6); each sign change
from - to + is refined by Brent's root finder to machine precision, and the boundary
``gamma = 0`` is taken when the derivative there is non-negative and no interior minimum is
lower. Every evaluation uses the per-size sums of :mod:`.sufficient` only.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> groups = np.repeat(np.arange(40), 5)
>>> X = np.column_stack([np.ones(200), rng.normal(size=200)])
>>> y = X @ [1.0, 0.5] + rng.normal(size=40)[groups] + rng.normal(size=200)
>>> fit = fit_random_intercept(y, X, groups)
>>> fit.convergence.converged, np.round(fit.beta, 3).tolist()
(True, [0.741, 0.567])
>>> round(fit.patient_variance, 3), round(fit.residual_variance, 3)
(0.622, 0.901)
>>> c = fit.contrast([0.0, 1.0]); round(float(c.df[0]), 1)
169.8
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize

from data_schemas.errors import StatisticalWarning

from .certify import certify, hessian_from_function
from .checks import check_method, design, full_rank
from .linear import spd_inverse
from .result import RandomInterceptFit
from .sufficient import SizeStats, size_stats

__all__ = ["fit_random_intercept"]

_GRID = np.concatenate([[0.0], np.logspace(-6, 6, 49)])
_LOG_2PI = float(np.log(2 * np.pi))


@dataclass(frozen=True)
class _Profile:
    """The criterion at one ``gamma``: value, derivative and what the fit reports."""

    value: float
    derivative: float
    beta: np.ndarray
    A_inv: np.ndarray
    q: float
    logdet_A: float


def _profile(s: SizeStats, gamma: float, reml: bool) -> _Profile:
    c = gamma / (1 + s.sizes * gamma)
    dc = 1 / (1 + s.sizes * gamma) ** 2
    A = s.xtx - np.tensordot(c, s.sxx, axes=1)
    b = s.xty - c @ s.sxy
    A_inv, logdet_A = spd_inverse(A)
    beta = A_inv @ b
    q = s.yty - c @ s.syy - b @ beta
    dof = s.n_obs - (b.size if reml else 0)
    cluster_ss = s.syy - 2 * s.sxy @ beta + np.einsum("kab,a,b->k", s.sxx, beta, beta)
    derivative = -dof * (dc @ cluster_ss) / q + s.counts @ (s.sizes / (1 + s.sizes * gamma))
    value = dof * (_LOG_2PI + np.log(q / dof) + 1) + s.counts @ np.log1p(s.sizes * gamma)
    if reml:
        value += logdet_A
        derivative -= dc @ np.einsum("ab,kab->k", A_inv, s.sxx)
    return _Profile(float(value), float(derivative), beta, A_inv, float(q), logdet_A)


def _deviance(s: SizeStats, tau2: float, sigma2: float, reml: bool) -> float:
    """-2 log-likelihood (REML or ML) at variances (tau^2, sigma^2), beta profiled out."""
    prof = _profile(s, tau2 / sigma2, reml)
    dof = s.n_obs - (prof.beta.size if reml else 0)
    gamma = tau2 / sigma2
    return float(
        dof * (_LOG_2PI + np.log(sigma2))
        + s.counts @ np.log1p(s.sizes * gamma)
        + (prof.logdet_A if reml else 0.0)
        + prof.q / sigma2
    )


def _dcov_beta(s: SizeStats, cov: np.ndarray, tau2: float, sigma2: float) -> np.ndarray:
    """d (X'V^{-1}X)^{-1} / d (tau^2, sigma^2), analytic: -C (dA/dtheta) C."""
    denom = (sigma2 + s.sizes * tau2) ** 2
    dA_tau = -np.tensordot(1 / denom, s.sxx, axes=1)
    dA_sigma = -s.xtx / sigma2**2 + np.tensordot(
        tau2 * (2 * sigma2 + s.sizes * tau2) / (sigma2**2 * denom), s.sxx, axes=1
    )
    return np.stack([-cov @ dA @ cov for dA in (dA_tau, dA_sigma)])


def _search(s: SizeStats, reml: bool) -> tuple[float, int, str]:
    """The minimizing ``gamma``, the evaluations used and what was found."""
    evaluations = 0

    def slope(gamma: float) -> float:
        nonlocal evaluations
        evaluations += 1
        return _profile(s, gamma, reml).derivative

    slopes = np.array([slope(g) for g in _GRID])
    candidates = [0.0] if slopes[0] >= 0 else []
    for i in np.flatnonzero((slopes[:-1] < 0) & (slopes[1:] >= 0)):
        candidates.append(
            optimize.brentq(
                slope, _GRID[i], _GRID[i + 1], xtol=1e-300, rtol=4 * np.finfo(float).eps
            )
        )
    if slopes[-1] < 0:
        candidates.append(_GRID[-1])
    values = [_profile(s, g, reml).value for g in candidates]
    best = candidates[int(np.argmin(values))]
    note = f"{len(candidates)} candidate(s) for gamma, best {best:.6g}"
    return best, evaluations, note


def fit_random_intercept(
    y: ArrayLike, X: ArrayLike, groups: ArrayLike, method: str = "REML"
) -> RandomInterceptFit:
    """Fit ``y = X beta + b_patient + e`` by REML (default) or ML.

    Parameters
    ----------
    y : array_like
        Outcome, one value per row (finite).
    X : array_like
        Fixed-effects design (n, p), full column rank, intercept included by the caller.
    groups : array_like
        Patient (or episode) label of each row.
    method : {"REML", "ML"}
        Restricted or full maximum likelihood.

    Returns
    -------
    RandomInterceptFit
        ``beta``, ``cov_beta``, the two variances, ``loglik`` (with all constants, as
        statsmodels and lme4 report it), a convergence certificate and ``contrast()`` with
        Satterthwaite df. A variance ratio at 0 (or beyond 1e6) issues a
        :class:`~data_schemas.errors.StatisticalWarning`.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.ones((6, 1)); y = np.array([1.0, 2.0, 1.5, 2.5, 1.0, 2.0])
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     fit = fit_random_intercept(y, X, [1, 1, 2, 2, 3, 3])
    >>> fit.patient_variance, fit.convergence.at_boundary, len(seen)
    (0.0, True, 1)
    """
    reml = check_method(method) == "REML"
    y_arr, X_arr, codes, n_groups = design(y, X, groups)
    s = size_stats(y_arr, X_arr, codes, n_groups)
    full_rank(s.xtx)
    gamma, evaluations, note = _search(s, reml)
    prof = _profile(s, gamma, reml)
    p = prof.beta.size
    sigma2 = prof.q / (s.n_obs - (p if reml else 0))
    tau2 = gamma * sigma2
    at_boundary = bool(gamma == 0.0 or gamma >= _GRID[-1])
    if at_boundary:
        which = "patient" if gamma == 0.0 else "residual"
        warnings.warn(
            f"random intercept: the {which} variance is estimated at the boundary "
            f"(variance ratio {gamma:.3g}); the model reduces to "
            f"{'ordinary least squares' if gamma == 0.0 else 'patient means'}, and the "
            f"variance's SE and the df are unreliable",
            StatisticalWarning,
            stacklevel=2,
        )
    H_unit = hessian_from_function(
        lambda u: _deviance(s, u[0] * sigma2, u[1] * sigma2, reml), np.array([gamma, 1.0])
    )
    hessian = H_unit / sigma2**2
    gradient = np.array([0.0 if at_boundary else prof.derivative * max(gamma, 1.0)])
    cert = certify(
        gradient, H_unit, True, evaluations, note, at_boundary=at_boundary, what="random intercept"
    )
    cov = sigma2 * prof.A_inv
    if at_boundary:
        theta_cov = np.zeros((2, 2))
        theta_cov[1, 1] = 2 / hessian[1, 1]
    else:
        theta_cov = 2 * np.linalg.inv(hessian)
    return RandomInterceptFit(
        beta=prof.beta,
        cov_beta=cov,
        dcov_beta=_dcov_beta(s, cov, tau2, sigma2),
        theta_cov=theta_cov,
        loglik=-prof.value / 2,
        method="REML" if reml else "ML",
        n_obs=s.n_obs,
        n_groups=s.n_groups,
        convergence=cert,
        patient_variance=float(tau2),
        residual_variance=float(sigma2),
    )
