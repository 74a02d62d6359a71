"""Kenward–Roger small-sample inference for an MMRM: the adjusted covariance and its df.

The model-based covariance of the fixed effects, ``Phi = (X'V^{-1}X)^{-1}`` at the REML
estimate of the covariance, ignores that the covariance was estimated: with an
unstructured 4 x 4 matrix (10 parameters) and 30-60 patients its intervals are too narrow
(the whole-grid coverage bench, bench/RESULTS.md). Kenward & Roger (1997, Biometrics 53:
983-997) correct it to second order::

    Phi_A = Phi + 2 Phi [ sum_ab W_ab (Q_ab - P_a Phi P_b - R_ab / 4) ] Phi
    P_a  = -X' V^{-1} G_a V^{-1} X
    Q_ab =  X' V^{-1} G_a V^{-1} G_b V^{-1} X
    R_ab =  X' V^{-1} (d^2 V / d phi_a d phi_b) V^{-1} X

with ``G_a = dV / d phi_a`` and ``W`` the inverse expected REML information of the
covariance parameters ``phi`` (``W = 2 I^{-1}``, ``I_ab = tr(P G_a P G_b)`` with the REML
projection ``P = V^{-1} - V^{-1} X Phi X' V^{-1}``). For one contrast ``l`` the KR F test
reduces to a t test on ``sqrt(l' Phi_A l)`` with ``df = 2 (l' Phi_A l)^2 / (g' W g)``,
``g_a = l' (d Phi / d phi_a) l`` (the scale factor is 1), which is what
:meth:`~ionto_analytics.lmm.result.FixedEffectsFit.contrast` computes from a fit whose
``cov_beta``, ``dcov_beta`` and ``theta_cov`` are ``Phi_A``, ``d Phi / d phi`` and ``W``.

The adjustment depends on how the covariance is parametrized; it is offered where
``Sigma`` is linear in its parameters (unstructured: its elements; compound symmetry:
``a I + b J``; the diagonal), so that ``R = 0``, as in SAS ``DDFM=KR`` for ``TYPE=UN`` and in R
pbkrtest (``vcovAdj``, variance components). For AR(1) and the heterogeneous structures
it would need second derivatives in a parametrization of our choosing, and the result
depends on that choice (no reference to check it against): they keep Satterthwaite.

Every product runs on the pattern statistics of :mod:`.sufficient`: ``X' M X =
sum_P sum_jk M_P[j,k] C_P[j,k]`` for any per-pattern ``T x T`` matrix ``M_P``.

Examples
--------
>>> import numpy as np
>>> from ionto_analytics.lmm import fit_mmrm
>>> rng = np.random.default_rng(3)
>>> n, T = 24, 3
>>> patient = np.repeat(np.arange(n), T); window = np.tile(np.arange(T), n)
>>> X = np.column_stack([window == 0, window == 1, window == 2, (patient % 2) * (window == 2)])
>>> S = np.array([[1.0, 0.6, 0.4], [0.6, 1.5, 0.8], [0.4, 0.8, 2.0]])
>>> y = rng.multivariate_normal(np.zeros(T), S, size=n).ravel()
>>> plain = fit_mmrm(y, X.astype(float), patient, window)
>>> kr = fit_mmrm(y, X.astype(float), patient, window, ddf="kenward-roger")
>>> bool(kr.se[3] > plain.se[3]), bool(np.allclose(kr.beta, plain.beta))
(True, True)
"""

from __future__ import annotations

import numpy as np

from .covariance import Structure

__all__ = ["DDF_METHODS", "kenward_roger"]

DDF_METHODS: tuple[str, ...] = ("satterthwaite", "kenward-roger")
"""Small-sample inference of :func:`~ionto_analytics.lmm.fit_mmrm`: Satterthwaite df on the
model-based covariance, or the Kenward–Roger adjusted covariance with its df."""


def kenward_roger(
    structure: Structure,
    W: np.ndarray,
    counts: np.ndarray,
    C_flat: np.ndarray,
    cov_beta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The Kenward–Roger adjusted covariance, its parameter derivatives and ``W``.

    Parameters
    ----------
    structure : Structure
        The fitted covariance structure; it must have a ``linear_basis`` (the caller,
        :func:`~ionto_analytics.lmm.fit_mmrm`, refuses the others before fitting).
    W : numpy.ndarray
        Per pattern the inverse of its covariance block, zero outside its windows (P, T, T).
    counts : numpy.ndarray
        Patients per pattern (P,).
    C_flat : numpy.ndarray
        The pattern cross-products ``C`` of :class:`~.sufficient.PatternStats` as a
        (P T T, p p) matrix.
    cov_beta : numpy.ndarray
        ``Phi = (X'V^{-1}X)^{-1}`` at the estimate (p, p).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray, numpy.ndarray) or None
        ``Phi_A`` (p, p); ``d Phi / d phi_a`` (K, p, p); ``W`` (K, K), the covariance of
        the parameters ``phi`` the adjustment uses. None when the expected information
        is not positive definite (the caller keeps the model-based covariance).
    """
    T = W.shape[-1]
    p = cov_beta.shape[0]
    G = structure.linear_basis(T)
    K = G.shape[0]
    WGW = np.einsum("Pij,ajk,Pkl->aPil", W, G, W)  # V^{-1} G_a V^{-1}, per pattern
    P_a = -(WGW.reshape(K, -1) @ C_flat).reshape(K, p, p)
    WGWGW = np.einsum("aPij,bjk,Pkl->abPil", WGW, G, W)
    Q = (WGWGW.reshape(K * K, -1) @ C_flat).reshape(K, K, p, p)
    PhiP = np.einsum("ij,ajk->aik", cov_beta, P_a)  # Phi P_a
    # REML expected information: tr(V^-1 G_a V^-1 G_b) - 2 tr(Phi Q_ab) + tr(Phi P_a Phi P_b)
    info = (
        np.einsum("P,aPij,bji->ab", counts.astype(float), WGW, G)
        - 2 * np.einsum("ij,abji->ab", cov_beta, Q)
        + np.einsum("aij,bji->ab", PhiP, PhiP)
    )
    info = 0.5 * (info + info.T)
    values = np.linalg.eigvalsh(info)
    if values[0] <= 1e-10 * values[-1]:
        return None  # the parameters are not identified: no adjustment to make
    theta_cov = 2 * np.linalg.inv(info)
    inner = Q - np.einsum("aij,bjk->abik", P_a, PhiP)  # Q_ab - P_a Phi P_b
    U = np.einsum("ab,abij->ij", theta_cov, inner)
    adjusted = cov_beta + 2 * cov_beta @ U @ cov_beta
    dcov = -np.einsum("aij,jk->aik", PhiP, cov_beta)  # d Phi / d phi_a = -Phi P_a Phi
    return 0.5 * (adjusted + adjusted.T), dcov, theta_cov
