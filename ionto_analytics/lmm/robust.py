"""Cluster-robust (CR2) covariance of a random-intercept or MMRM fit, with Satterthwaite df.

A random intercept says every pair of an episode's scores has the same covariance. When
the patient effect grows over the weeks (it does in the emulator, and in natural history:
a patient's course diverges), the model-based ``(X'V^{-1}X)^{-1}`` is too small for late
windows and too large for early ones (whole-grid coverage bench: the mixed model covered
0.921 at week 12, 0.956 at week 2; bench/RESULTS.md). The sandwich over episodes keeps the
GLS estimate of the working model and is valid whatever the true covariance; its CR2
form (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018, J. Bus. Econ. Stat. 36: 672-683)
is unbiased when the working model holds, and its Satterthwaite df (computed under the
working model) make the t interval hold with few episodes. With ``Theta_i`` the working
covariance of episode ``i``, ``W_i = Theta_i^{-1}``, ``M = (X'WX)^{-1}``, ``e_i`` the
residuals::

    V_CR2 = M [ sum_i X_i' W_i A_i e_i e_i' A_i W_i X_i ] M
    A_i   = D_i' B_i^{-1/2} D_i,  B_i = D_i (Theta_i - X_i M X_i') D_i',  D_i' D_i = Theta_i

and for a contrast ``c``, with ``g_i = A_i W_i X_i M c`` and ``u_i = X_i' g_i``::

    df = (sum_i g_i' Theta_i g_i - u_i' M u_i)^2 / sum_ij (delta_ij g_i' Theta_i g_i - u_i' M u_j)^2

as R clubSandwich computes them (``vcovCR(type = "CR2")``, ``coef_test(test =
"Satterthwaite")`` on an ``nlme::lme`` or ``nlme::gls`` fit; tests/reference/). For an
MMRM fit ``Theta_i`` is the block of its unstructured (or other) ``Sigma`` of the windows
episode ``i`` was seen in, and the sandwich holds whether or not one matrix fits both
arms. Episodes are taken by size (random intercept) or by missingness pattern (MMRM), so
every step is a batch of ``k x k`` matrices (``k`` ≤ the number of windows).

Examples
--------
>>> import numpy as np
>>> from ionto_analytics.lmm import fit_random_intercept
>>> rng = np.random.default_rng(5)
>>> n = 60
>>> g = np.repeat(np.arange(n), 3); t = np.tile(np.arange(3), n); arm = (g % 2).astype(float)
>>> X = np.column_stack([t == 0, t == 1, t == 2, arm * (t == 2)]).astype(float)
>>> y = rng.normal(0, 1, n)[g] * (1 + t) + rng.normal(0, 0.5, 3 * n)  # spread grows
>>> fit = fit_random_intercept(y, X, g)
>>> robust = cluster_robust(fit, y, X, g)
>>> bool(robust.se[3] > fit.se[3]), robust.n_clusters
(True, 60)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from data_schemas.errors import InputError

from .checks import design, window_codes
from .result import Contrast, MMRMFit, RandomInterceptFit, contrast_rows
from .sufficient import missingness_patterns

__all__ = ["ClusterRobust", "cluster_robust"]


def _sym_power(B: np.ndarray, power: float) -> np.ndarray:
    """``B^power`` of a batch of symmetric PSD matrices (the pseudo-inverse root at 0)."""
    values, vectors = np.linalg.eigh(B)
    keep = values > 1e-12 * np.max(values, axis=-1, keepdims=True)
    scaled = np.where(keep, np.abs(values) ** power, 0.0)
    return np.einsum("mij,mj,mkj->mik", vectors, scaled, vectors)


@dataclass(frozen=True)
class ClusterRobust:
    """The CR2 covariance of a GLS fit and what its Satterthwaite df need.

    Attributes
    ----------
    beta : numpy.ndarray
        The fit's fixed effects (p,).
    cov_beta : numpy.ndarray
        ``V_CR2`` (p, p).
    model_cov : numpy.ndarray
        The working model's ``M = (X'WX)^{-1}`` (p, p).
    n_clusters : int
        Episodes (clusters).
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    model_cov: np.ndarray
    n_clusters: int
    _F: tuple[np.ndarray, ...]
    _X: tuple[np.ndarray, ...]
    _theta: tuple[np.ndarray, ...]

    @property
    def se(self) -> np.ndarray:
        """CR2 standard errors of ``beta``."""
        return np.sqrt(np.diag(self.cov_beta))

    def contrast(self, L: ArrayLike, level: float = 0.95) -> Contrast:
        """``L @ beta`` with its CR2 SE and Satterthwaite df (one row of ``L`` each).

        Examples
        --------
        >>> import numpy as np
        >>> from ionto_analytics.lmm import fit_random_intercept
        >>> rng = np.random.default_rng(1)
        >>> g = np.repeat(np.arange(12), 2); X = np.column_stack([np.ones(24), g % 2])
        >>> y = rng.normal(size=24)
        >>> r = cluster_robust(fit_random_intercept(y, X, g), y, X, g)
        >>> c = r.contrast([0.0, 1.0]); bool(0 < c.df[0] < 12)
        True
        """
        p = self.beta.size
        rows = contrast_rows(L, p, level)
        M = self.model_cov
        df = np.empty(rows.shape[0])
        for r, c in enumerate(rows):
            Mc = M @ c
            total, square, cross = 0.0, 0.0, np.zeros((p, p))
            for F, X, theta in zip(self._F, self._X, self._theta, strict=True):
                g = F @ Mc  # (m, k)
                a = np.einsum("mi,ij,mj->m", g, theta, g)
                u = np.einsum("mki,mk->mi", X, g)  # (m, p)
                uMu = np.einsum("mi,ij,mj->m", u, M, u)
                total += float(np.sum(a - uMu))
                square += float(np.sum(a**2 - 2 * a * uMu))
                cross += u.T @ u
            MU = M @ cross
            square += float(np.sum(MU * MU.T))
            df[r] = total**2 / square if square > 0 else np.inf
        variance = np.einsum("mi,ij,mj->m", rows, self.cov_beta, rows)
        return Contrast(rows @ self.beta, np.sqrt(variance), df, level)


def _working_blocks(
    fit: RandomInterceptFit | MMRMFit,
    codes: np.ndarray,
    n_groups: int,
    windows: ArrayLike | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(rows, Theta)`` per set of episodes sharing a working covariance: ``rows`` (m, k)
    the row indices of each episode (by window for an MMRM), ``Theta`` (k, k)."""
    n = codes.size
    if isinstance(fit, MMRMFit):
        if windows is None:
            raise InputError("cluster_robust of an MMRM fit needs the windows of its rows")
        win, labels = window_codes(windows, n)
        if not np.array_equal(labels, fit.windows):
            raise InputError(
                f"cluster_robust: the windows {labels.tolist()} are not the fit's "
                f"{fit.windows.tolist()}: pass the windows the MMRM was fitted on"
            )
        seen, key = missingness_patterns(codes, n_groups, win, labels.size)
        order = np.lexsort((win, codes))
    else:
        key = np.bincount(codes, minlength=n_groups)
        order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes, minlength=n_groups)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    blocks = []
    for value in np.unique(key):
        members = np.flatnonzero(key == value)
        k = int(sizes[members[0]])
        rows = order[starts[members][:, None] + np.arange(k)[None, :]]
        if isinstance(fit, MMRMFit):
            mask = seen[members[0]]
            theta = fit.covariance[np.ix_(mask, mask)]
        else:
            theta = fit.residual_variance * np.eye(k) + fit.patient_variance * np.ones((k, k))
        blocks.append((rows, theta))
    return blocks


def cluster_robust(
    fit: RandomInterceptFit | MMRMFit,
    y: ArrayLike,
    X: ArrayLike,
    groups: ArrayLike,
    windows: ArrayLike | None = None,
) -> ClusterRobust:
    """The CR2 covariance over the groups of a random-intercept or MMRM fit (see the module).

    Parameters
    ----------
    fit : RandomInterceptFit or MMRMFit
        The fit of ``y`` on ``X`` by ``groups``: its working covariance of an episode of
        ``k`` rows is ``sigma^2 I + tau^2 J``
        (:func:`~ionto_analytics.lmm.fit_random_intercept`), or the rows and columns of
        ``fit.covariance`` of the windows it was seen in (:func:`~ionto_analytics.lmm.fit_mmrm`).
    y, X, groups : array_like
        The fit's data.
    windows : array_like or None
        The window of each row, as passed to :func:`~ionto_analytics.lmm.fit_mmrm` (an
        MMRM fit only).

    Returns
    -------
    ClusterRobust
    """
    if isinstance(fit, MMRMFit) and fit.ddf != "satterthwaite":
        raise InputError(
            "cluster_robust needs the model-based (X'V^-1 X)^-1 of the MMRM, not its "
            "Kenward-Roger adjustment: fit it with ddf='satterthwaite'"
        )
    y_arr, X_arr, codes, n_groups = design(y, X, groups)
    M = fit.cov_beta
    resid = y_arr - X_arr @ fit.beta
    meat = np.zeros_like(M)
    F_parts, X_parts, theta_parts = [], [], []
    for idx, theta in _working_blocks(fit, codes, n_groups, windows):
        Xk, ek = X_arr[idx], resid[idx]
        W = np.linalg.inv(theta)
        root = _sym_power(theta[None], 0.5)[0]  # D_i' = D_i, D_i' D_i = Theta
        B = root @ (theta - np.einsum("mki,ij,mlj->mkl", Xk, M, Xk)) @ root
        A = root @ _sym_power(B, -0.5) @ root
        F = np.einsum("mkl,lj,mji->mki", A, W, Xk)  # A_i W_i X_i (m, k, p)
        v = np.einsum("mki,mk->mi", F, ek)  # X_i' W_i A_i e_i
        meat += v.T @ v
        F_parts.append(F)
        X_parts.append(Xk)
        theta_parts.append(theta)
    cov = M @ meat @ M
    return ClusterRobust(
        beta=fit.beta,
        cov_beta=0.5 * (cov + cov.T),
        model_cov=M,
        n_clusters=n_groups,
        _F=tuple(F_parts),
        _X=tuple(X_parts),
        _theta=tuple(theta_parts),
    )
