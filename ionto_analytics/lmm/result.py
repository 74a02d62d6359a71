"""Result objects of the mixed-model engine: the fit, its convergence certificate, a contrast.

Every fit carries what a contrast needs: the fixed effects ``beta``, their covariance
``cov_beta`` (the model-based ``(X' V^{-1} X)^{-1}``), the derivatives of ``cov_beta`` with
respect to the covariance parameters and the asymptotic covariance of those parameters
(twice the inverse Hessian of the -2 log-likelihood), from which
:meth:`FixedEffectsFit.contrast` computes Satterthwaite degrees of freedom.

Examples
--------
>>> import numpy as np
>>> cert = Convergence(converged=True, gradient_norm=1e-9, hessian_min_eigenvalue=3.0,
...                    at_boundary=False, iterations=7, message="ok")
>>> fit = FixedEffectsFit(beta=np.array([1.0, 2.0]), cov_beta=np.diag([0.25, 1.0]),
...                       dcov_beta=np.zeros((1, 2, 2)), theta_cov=np.eye(1),
...                       loglik=-10.0, method="REML", n_obs=20, n_groups=5,
...                       convergence=cert)
>>> fit.se.tolist()
[0.5, 1.0]
>>> c = fit.contrast([1.0, -1.0])
>>> round(float(c.estimate[0]), 3), round(float(c.se[0]), 4)
(-1.0, 1.118)
>>> bool(np.isinf(c.df[0]))  # cov_beta does not depend on the parameters: normal reference
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from data_schemas.errors import InputError

__all__ = ["Contrast", "Convergence", "FixedEffectsFit", "MMRMFit", "RandomInterceptFit"]


@dataclass(frozen=True)
class Convergence:
    """Certificate that an optimum was reached, kept in every fit.

    Attributes
    ----------
    converged : bool
        True when the gradient is small, the Hessian positive definite (away from a
        boundary) and the optimizer reported success.
    gradient_norm : float
        Largest absolute gradient of the -2 log-likelihood w.r.t. the optimized
        parameters at the estimate (scaled by the parameter where it is a ratio).
    hessian_min_eigenvalue : float
        Smallest eigenvalue of the Hessian of the -2 log-likelihood w.r.t. the
        covariance parameters (for the random intercept: the two variances in units of the
        residual variance); positive means a strict local minimum.
    at_boundary : bool
        A variance estimate is 0 or a correlation is at +-1 (or a covariance matrix is
        singular): standard errors of those parameters and the df are unreliable.
    iterations : int
        Criterion evaluations (1-D search) or optimizer iterations.
    message : str
        What the optimizer said, and what was found.
    """

    converged: bool
    gradient_norm: float
    hessian_min_eigenvalue: float
    at_boundary: bool
    iterations: int
    message: str

    def to_dict(self) -> dict[str, object]:
        """The certificate as plain JSON-able values.

        Examples
        --------
        >>> Convergence(True, 0.0, 1.0, False, 3, "ok").to_dict()["iterations"]
        3
        """
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Contrast:
    """Estimates of ``L @ beta``, one per row of ``L``, with Satterthwaite df.

    Examples
    --------
    >>> c = Contrast(np.array([1.0]), np.array([0.5]), np.array([10.0]), 0.95)
    >>> round(float(c.ci_low[0]), 4), round(float(c.p_value[0]), 4)
    (-0.1141, 0.0734)
    """

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    level: float

    @property
    def t(self) -> np.ndarray:
        """The t statistic ``estimate / se``."""
        return self.estimate / self.se

    @property
    def _quantile(self) -> np.ndarray:
        return stats.t.ppf(0.5 + self.level / 2, self.df)

    @property
    def ci_low(self) -> np.ndarray:
        """Lower limit of the ``level`` confidence interval (t with ``df``)."""
        return self.estimate - self._quantile * self.se

    @property
    def ci_high(self) -> np.ndarray:
        """Upper limit of the ``level`` confidence interval (t with ``df``)."""
        return self.estimate + self._quantile * self.se

    @property
    def p_value(self) -> np.ndarray:
        """Two-sided p-value of ``L @ beta = 0`` against t with ``df``."""
        return 2 * stats.t.sf(np.abs(self.t), self.df)


def contrast_rows(L: ArrayLike, p: int, level: float) -> np.ndarray:
    """``L`` as rows of ``p`` finite coefficients, and ``level`` in (0, 1), or an InputError.

    Examples
    --------
    >>> contrast_rows([0.0, 1.0], 2, 0.95).tolist()
    [[0.0, 1.0]]
    >>> contrast_rows([1.0], 2, 0.95)
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: contrast L must have 1 column per fixed effect \
(expected 2, got shape (1,)); pass one row of 2 coefficients per contrast
    """
    L_arr = np.asarray(L, dtype=float)
    rows = np.atleast_2d(L_arr)
    if rows.ndim != 2 or rows.shape[1] != p or not np.all(np.isfinite(rows)):
        raise InputError(
            f"contrast L must have 1 column per fixed effect (expected {p}, got shape "
            f"{L_arr.shape}); pass one row of {p} coefficients per contrast"
        )
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1) (got {level}); e.g. level=0.95")
    return rows


@dataclass(frozen=True)
class FixedEffectsFit:
    """What every mixed-model fit has: fixed effects, their covariance, a certificate.

    Attributes
    ----------
    beta, cov_beta : numpy.ndarray
        Fixed effects (p,) and their model-based covariance (p, p).
    dcov_beta : numpy.ndarray
        ``d cov_beta / d theta_k`` for each covariance parameter (k, p, p).
    theta_cov : numpy.ndarray
        Asymptotic covariance of the covariance parameters (k, k): ``2 H^{-1}`` with ``H`` the
        Hessian of the -2 log-likelihood (REML or ML, as fitted).
    loglik : float
        Maximized log-likelihood (restricted under REML), with all constants.
    method : str
        ``"REML"`` or ``"ML"``.
    n_obs, n_groups : int
        Rows and patients used (every row given; nothing is dropped).
    convergence : Convergence
        The certificate.
    """

    beta: np.ndarray
    cov_beta: np.ndarray
    dcov_beta: np.ndarray
    theta_cov: np.ndarray
    loglik: float
    method: str
    n_obs: int
    n_groups: int
    convergence: Convergence

    @property
    def se(self) -> np.ndarray:
        """Standard errors of ``beta``."""
        return np.sqrt(np.diag(self.cov_beta))

    def to_dict(self) -> dict[str, object]:
        """The fit as JSON-able values (arrays as nested lists).

        Examples
        --------
        >>> cert = Convergence(True, 0.0, 1.0, False, 1, "ok")
        >>> fit = FixedEffectsFit(np.array([3.0]), np.array([[4.0]]), np.zeros((1, 1, 1)),
        ...                       np.eye(1), -1.0, "ML", 10, 5, cert)
        >>> d = fit.to_dict(); d["se"], d["convergence"]["converged"]
        ([2.0], True)
        """
        out: dict[str, object] = {}
        for name, value in asdict(self).items():
            if name == "convergence":
                value = self.convergence.to_dict()
            elif isinstance(value, np.ndarray):
                value = value.tolist()
            elif isinstance(value, np.generic):
                value = value.item()
            out[name] = value
        out["se"] = self.se.tolist()
        return out

    def contrast(self, L: ArrayLike, level: float = 0.95) -> Contrast:
        """Estimate ``L @ beta`` with SE, Satterthwaite df and a t-based CI.

        Parameters
        ----------
        L : array_like
            One contrast (p,) or several as rows (m, p).
        level : float
            Confidence level of the interval.

        Returns
        -------
        Contrast
            Per row: ``estimate = l' beta``, ``se = sqrt(l' C l)`` and
            ``df = 2 (l' C l)^2 / (g' theta_cov g)`` with ``g_k = l' (dC/dtheta_k) l``
            (Satterthwaite, 1946; as in SAS ``DDFM=SATTERTHWAITE`` and R lmerTest).

        Examples
        --------
        >>> import numpy as np
        >>> cert = Convergence(True, 0.0, 1.0, False, 1, "ok")
        >>> fit = FixedEffectsFit(np.array([3.0]), np.array([[4.0]]), np.array([[[2.0]]]),
        ...                       np.array([[0.5]]), -1.0, "REML", 10, 5, cert)
        >>> c = fit.contrast([[1.0]])
        >>> float(c.se[0]), float(c.df[0])  # 2 * 16 / (2 * 0.5 * 2)
        (2.0, 16.0)
        >>> fit.contrast([1.0, 2.0])
        Traceback (most recent call last):
        ...
        data_schemas.errors.InputError: contrast L must have 1 column per fixed effect \
(expected 1, got shape (2,)); pass one row of 1 coefficients per contrast
        """
        rows = contrast_rows(L, self.beta.size, level)
        variance = np.einsum("mi,ij,mj->m", rows, self.cov_beta, rows)
        grad = np.einsum("mi,kij,mj->mk", rows, self.dcov_beta, rows)
        spread = np.einsum("mk,kl,ml->m", grad, self.theta_cov, grad)
        with np.errstate(divide="ignore"):
            df = np.where(spread > 0, 2 * variance**2 / np.where(spread > 0, spread, 1), np.inf)
        return Contrast(rows @ self.beta, np.sqrt(variance), df, level)


@dataclass(frozen=True)
class RandomInterceptFit(FixedEffectsFit):
    """A random-intercept fit: ``y = X beta + b_patient + e``.

    Attributes
    ----------
    patient_variance : float
        Variance of the patient intercepts (tau^2; 0 at the boundary).
    residual_variance : float
        Within-patient residual variance (sigma^2).

    ``theta`` of ``dcov_beta`` and ``theta_cov`` is ``(patient_variance, residual_variance)``.
    """

    patient_variance: float
    residual_variance: float

    @property
    def variance_ratio(self) -> float:
        """``patient_variance / residual_variance`` (gamma), the 1-D search variable."""
        return self.patient_variance / self.residual_variance

    @property
    def icc(self) -> float:
        """Intra-class correlation ``tau^2 / (tau^2 + sigma^2)``."""
        return self.patient_variance / (self.patient_variance + self.residual_variance)


@dataclass(frozen=True)
class MMRMFit(FixedEffectsFit):
    """A mixed model for repeated measures: one covariance matrix over the windows.

    Attributes
    ----------
    covariance : numpy.ndarray
        Estimated within-patient covariance over the windows (T, T).
    structure : str
        The covariance structure fitted (``"unstructured"``, ``"cs"``, ...).
    theta : numpy.ndarray
        Its parameters on the optimizer's scale (what ``dcov_beta`` and ``theta_cov`` use).
    windows : numpy.ndarray
        The window labels, in the order of ``covariance``'s rows.
    n_patterns : int
        Distinct missingness patterns among the patients.
    ddf : str
        ``"satterthwaite"``: ``cov_beta`` is model-based and ``theta_cov`` the observed
        information of ``theta``; ``"kenward-roger"``: ``cov_beta`` is the Kenward–Roger
        adjusted covariance, ``dcov_beta`` and ``theta_cov`` are in the parameters of the
        adjustment (:mod:`.kenward_roger`), so ``contrast()`` gives the KR SE and df.
    """

    covariance: np.ndarray
    structure: str
    theta: np.ndarray
    windows: np.ndarray
    n_patterns: int
    ddf: str = "satterthwaite"

    @property
    def correlation(self) -> np.ndarray:
        """The covariance as a correlation matrix."""
        sd = np.sqrt(np.diag(self.covariance))
        return self.covariance / np.outer(sd, sd)
