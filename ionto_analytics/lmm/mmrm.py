"""Mixed model for repeated measures (MMRM): one covariance matrix over the windows.

Model: ``y_i = X_i beta + e_i``, ``e_i ~ N(0, Sigma[s_i, s_i])`` where ``s_i`` are the
windows patient ``i`` was seen in (any missingness pattern). ``beta`` is profiled out
(GLS); the -2 (restricted) log-likelihood in the covariance parameters ``theta`` is::

    -2 l_R = (N-p) log 2 pi + sum_P m_P log|Sigma_P| + log|X'V^{-1}X| + sum_P tr(W_P R_P)

with ``W_P = Sigma_P^{-1}`` and ``R_P`` the residual cross-products of pattern ``P`` (ML:
``N log 2 pi`` and no ``log|X'V^{-1}X|``). Its gradient is the standard one,
``d(-2 l_R) = tr(G dSigma)`` with ``G = sum_P W_P (m_P Sigma_P - R_P - M_P) W_P`` and
``M_P[j,k] = tr((X'V^{-1}X)^{-1} C_P[j,k])``, chained to ``theta`` through the complex-step
Jacobian of :mod:`.covariance`. L-BFGS-B minimizes it from a moment start (the residual
covariance of OLS) and a few Newton steps on the finite-difference Hessian of the analytic
gradient polish the optimum; that Hessian then certifies it and gives the Satterthwaite df.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(2)
>>> n, T = 60, 3
>>> patient = np.repeat(np.arange(n), T); window = np.tile(np.arange(T), n)
>>> arm = (patient % 2).astype(float)
>>> X = np.column_stack([np.ones(n * T), arm, window == 1, window == 2])
>>> S = np.array([[1.0, 0.6, 0.4], [0.6, 1.5, 0.8], [0.4, 0.8, 2.0]])
>>> e = rng.multivariate_normal(np.zeros(T), S, size=n).ravel()
>>> fit = fit_mmrm(X @ [1.0, -0.5, 0.2, 0.4] + e, X, patient, window)
>>> fit.convergence.converged, fit.n_patterns, np.round(fit.beta, 3).tolist()
(True, 1, [1.007, -0.355, 0.192, 0.424])
>>> c = fit.contrast([0, 1, 0, 0]); round(float(c.df[0]), 2)
58.0
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize

from data_schemas.errors import InputError, StatisticalWarning

from .certify import certify, hessian_from_gradient
from .checks import check_method, design, full_rank, window_codes
from .covariance import Structure, at_boundary, get_structure, jacobian
from .kenward_roger import DDF_METHODS, kenward_roger
from .linear import spd_inverse
from .result import MMRMFit
from .sufficient import PatternStats, pattern_stats

__all__ = ["fit_mmrm"]

_LOG_2PI = float(np.log(2 * np.pi))
_NEWTON_STEPS = 8


@dataclass(frozen=True)
class _Evaluation:
    """The criterion at one ``Sigma``: value, the gradient matrix ``G`` and the GLS fit."""

    value: float
    G: np.ndarray
    W: np.ndarray
    beta: np.ndarray
    A_inv: np.ndarray


class _Criterion:
    """-2 log-likelihood of an MMRM as a function of ``theta``, on pattern statistics."""

    def __init__(self, stats: PatternStats, structure: Structure, T: int, reml: bool):
        self.s, self.structure, self.T, self.reml = stats, structure, T, reml
        P, p = stats.C.shape[0], stats.C.shape[-1]
        self.p = p
        self.pair = stats.masks[:, :, None] & stats.masks[:, None, :]
        self.C_flat = stats.C.reshape(P * T * T, p * p)
        self.D_flat = stats.D.reshape(P * T * T, p)
        self.dof = stats.n_obs - (p if reml else 0)

    # The per-evaluation products over the pattern statistics use np.einsum (numpy's own
    # loops) rather than BLAS GEMV: with OpenBLAS's threads on a loaded machine each such
    # GEMV woke the thread pool and cost milliseconds (bench/RESULTS.md).
    def evaluate(self, sigma: np.ndarray) -> _Evaluation:
        """Everything at ``sigma``; LinAlgError when a pattern's block is not positive definite."""
        s, T, p = self.s, self.T, self.p
        blocks = np.where(self.pair, sigma, np.eye(T))
        chol = np.linalg.cholesky(blocks)
        W = np.linalg.inv(blocks) * self.pair
        logdets = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        w = W.reshape(-1)
        A = np.einsum("i,ij->j", w, self.C_flat).reshape(p, p)
        A_inv, logdet_A = spd_inverse(A)
        beta = A_inv @ np.einsum("i,ij->j", w, self.D_flat)
        R = self.residual_products(beta)
        value = self.dof * _LOG_2PI + s.counts @ logdets + float(np.sum(W * R))
        inner = s.counts[:, None, None] * blocks * self.pair - R
        if self.reml:
            value += logdet_A
            inner = inner - np.einsum("ij,j->i", self.C_flat, A_inv.ravel()).reshape(-1, T, T)
        G = np.einsum("Pij,Pjk,Pkl->il", W, inner, W)
        return _Evaluation(float(value), G, W, beta, A_inv)

    def residual_products(self, beta: np.ndarray) -> np.ndarray:
        """``R_P[j,k] = sum_i r_ij r_ik`` per pattern (P, T, T), residuals ``y - X beta``."""
        T = self.T
        Db = np.einsum("ij,j->i", self.D_flat, beta).reshape(-1, T, T)
        bCb = np.einsum("ij,j->i", self.C_flat, np.kron(beta, beta)).reshape(-1, T, T)
        return self.s.E - Db - Db.transpose(0, 2, 1) + bCb

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """(-2 l, its gradient in theta); +inf where Sigma is not positive definite."""
        try:
            ev = self.evaluate(self.structure.sigma(theta, self.T))
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(theta)
        jac = jacobian(self.structure, theta, self.T)
        return ev.value, np.einsum("ij,kij->k", ev.G, jac)

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """The analytic gradient alone (for the finite-difference Hessian)."""
        return self.value_and_gradient(theta)[1]

    def dcov_beta(self, theta: np.ndarray, ev: _Evaluation) -> np.ndarray:
        """``d (X'V^{-1}X)^{-1} / d theta_k = C (sum_P <W dSigma_k W, C_P>) C``."""
        p = self.p
        jac = jacobian(self.structure, theta, self.T)
        out = np.empty((theta.size, p, p))
        for k, dsigma in enumerate(jac):
            wdw = np.einsum("Pij,jk,Pkl->Pil", ev.W, dsigma, ev.W).reshape(-1)
            out[k] = ev.A_inv @ (wdw @ self.C_flat).reshape(p, p) @ ev.A_inv
        return out


def _moment_start(crit: _Criterion) -> np.ndarray:
    """Start values from the pairwise residual covariance of the OLS fit."""
    s, T = crit.s, crit.T
    R = crit.residual_products(crit.evaluate(np.eye(T)).beta).sum(axis=0)
    pairs = np.einsum("P,Pjk->jk", s.counts, crit.pair.astype(float))
    S = np.where(pairs > 0, R / np.maximum(pairs, 1), 0.0)
    S[np.diag_indices(T)] = np.maximum(np.diag(S), 1e-8 * max(np.max(np.diag(S)), 1e-300))
    return crit.structure.start(S)


def _optimize(crit: _Criterion, theta0: np.ndarray) -> tuple[np.ndarray, bool, int, str]:
    """L-BFGS-B, then Newton polish on the analytic gradient's finite-difference Hessian."""
    scale = max(crit.s.n_obs, 1)

    def scaled(theta):
        value, grad = crit.value_and_gradient(theta)
        return value / scale, grad / scale

    res = optimize.minimize(
        scaled,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10},
    )
    theta, iterations = res.x, int(res.nit)
    value, grad = crit.value_and_gradient(theta)
    for _ in range(_NEWTON_STEPS):
        if np.max(np.abs(grad)) < 1e-9 * max(1.0, abs(value) / scale):
            break
        H = hessian_from_gradient(crit.gradient, theta)
        try:
            step = np.linalg.solve(H, grad)
        except np.linalg.LinAlgError:
            break
        for shrink in (1.0, 0.5, 0.25, 0.125):
            trial = theta - shrink * step
            t_value, t_grad = crit.value_and_gradient(trial)
            if t_value <= value + 1e-12 * abs(value):
                theta, value, grad = trial, t_value, t_grad
                iterations += 1
                break
        else:
            break
    ok = bool(res.success) or np.max(np.abs(grad)) < 1e-6
    return theta, ok, iterations, str(res.message)


def fit_mmrm(
    y: ArrayLike,
    X: ArrayLike,
    groups: ArrayLike,
    windows: ArrayLike,
    covariance: str = "unstructured",
    method: str = "REML",
    ddf: str = "satterthwaite",
) -> MMRMFit:
    """Fit an MMRM: fixed effects ``X beta`` and one covariance over the windows.

    Parameters
    ----------
    y : array_like
        Outcome, one value per row (finite); patients may miss any windows.
    X : array_like
        Fixed-effects design (n, p), full column rank (e.g. arm x window, baseline x
        window, adjustment set, clinic).
    groups : array_like
        Patient (or episode) label of each row.
    windows : array_like
        Follow-up window of each row (e.g. week 4, 6, 12); ordered by sorting the labels.
        At most one row per patient and window.
    covariance : str
        One of :data:`~ionto_analytics.lmm.covariance.STRUCTURES`: ``"unstructured"``
        (default), ``"cs"``, ``"ar1"``, ``"heterogeneous_cs"``, ``"heterogeneous_ar1"``,
        ``"diagonal"``.
    method : {"REML", "ML"}
        Restricted (default) or full maximum likelihood.
    ddf : {"satterthwaite", "kenward-roger"}
        Small-sample inference: ``"satterthwaite"`` (default) keeps the model-based
        ``cov_beta = (X'V^{-1}X)^{-1}`` (what nlme and SAS report) and the df from the
        observed information; ``"kenward-roger"`` (REML only) replaces ``cov_beta`` by the
        Kenward–Roger adjusted covariance and the df by theirs (:mod:`.kenward_roger`;
        for the structures linear in their parameters: unstructured, cs, diagonal). A fit
        that did not converge, is on the boundary or whose expected information is not
        positive definite keeps Satterthwaite, with a
        :class:`~data_schemas.errors.StatisticalWarning` (``ddf`` of the result says
        which was used).

    Returns
    -------
    MMRMFit
        ``beta``, ``cov_beta``, ``covariance`` (T x T), ``loglik``, the certificate and
        ``contrast()`` with the ``ddf`` df. A singular covariance or a correlation at
        +-1 issues a :class:`~data_schemas.errors.StatisticalWarning`.

    Examples
    --------
    >>> import numpy as np
    >>> fit_mmrm([1.0, 2.0, 3.0, 4.0], np.ones((4, 1)), [1, 1, 2, 2], [4, 4, 4, 6])
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: rows 0 and 1 are the same patient in the same window \
(window code 0); an MMRM needs at most one row per patient and window: average or choose \
one per window first
    """
    reml = check_method(method) == "REML"
    if ddf not in DDF_METHODS or (ddf == "kenward-roger" and not reml):
        raise InputError(
            f"ddf must be one of {list(DDF_METHODS)} (Kenward-Roger with method='REML'), "
            f"got ddf={ddf!r} with method={method!r}"
        )
    y_arr, X_arr, codes, n_groups = design(y, X, groups)
    win, labels = window_codes(windows, y_arr.size)
    T = labels.size
    structure = get_structure(covariance, T)
    if ddf == "kenward-roger" and structure.linear_basis is None:
        raise InputError(
            f"Kenward-Roger needs a covariance linear in its parameters (unstructured, cs, "
            f"diagonal); {covariance!r} is not: pass ddf='satterthwaite'"
        )
    stats = pattern_stats(y_arr, X_arr, codes, n_groups, win, T)
    full_rank(np.einsum("Pjjab->ab", stats.C))
    crit = _Criterion(stats, structure, T, reml)
    theta, ok, iterations, message = _optimize(crit, _moment_start(crit))
    sigma = structure.sigma(theta, T)
    ev = crit.evaluate(sigma)
    boundary = at_boundary(structure, theta, sigma)
    if boundary:
        warnings.warn(
            f"MMRM ({covariance}): the covariance estimate is on the boundary (a "
            f"correlation at +-1 or a singular matrix); its df and SEs are unreliable: try a "
            f"simpler structure or check for windows with few patients",
            StatisticalWarning,
            stacklevel=2,
        )
    hessian = hessian_from_gradient(crit.gradient, theta)
    _, grad = crit.value_and_gradient(theta)
    cert = certify(
        grad, hessian, ok, iterations, message, at_boundary=boundary, what=f"MMRM ({covariance})"
    )
    adjusted = None
    if ddf == "kenward-roger" and cert.converged and not boundary:
        adjusted = kenward_roger(structure, ev.W, stats.counts, crit.C_flat, ev.A_inv)
    if adjusted is not None:
        cov_beta, dcov_beta, theta_cov = adjusted
    else:
        if ddf == "kenward-roger":
            warnings.warn(
                f"MMRM ({covariance}): Kenward-Roger needs a converged fit away from the "
                f"boundary with a positive-definite information; this one is not, so its SEs "
                f"are model-based with Satterthwaite df",
                StatisticalWarning,
                stacklevel=2,
            )
            ddf = "satterthwaite"
        cov_beta, dcov_beta = ev.A_inv, crit.dcov_beta(theta, ev)
        theta_cov = 2 * np.linalg.pinv(hessian) if boundary else 2 * np.linalg.inv(hessian)
    return MMRMFit(
        beta=ev.beta,
        cov_beta=cov_beta,
        dcov_beta=dcov_beta,
        theta_cov=theta_cov,
        loglik=-ev.value / 2,
        method="REML" if reml else "ML",
        n_obs=stats.n_obs,
        n_groups=n_groups,
        convergence=cert,
        covariance=sigma,
        structure=covariance,
        theta=theta,
        windows=labels,
        n_patterns=stats.counts.size,
        ddf=ddf,
    )
