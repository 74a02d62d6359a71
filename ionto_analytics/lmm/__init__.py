"""A fast, exact mixed-model engine on plain arrays: random intercept and MMRM.

Both fits reduce the data once to sufficient statistics (per cluster size, or per
missingness pattern), so each likelihood evaluation costs a few small matrix products
whatever the number of rows. Only numpy and scipy are used.

* :func:`fit_random_intercept` (REML or ML): a 1-D search on the variance ratio.
* :func:`fit_mmrm` (REML or ML): one covariance matrix over the windows (unstructured,
  compound symmetry, AR(1), their heterogeneous versions, or independent windows).

Every result has ``beta``, ``cov_beta``, ``se``, the variance parameters, ``loglik``, a
convergence certificate and ``contrast(L)`` with Satterthwaite degrees of freedom.

Examples
--------
>>> from ionto_analytics import lmm
>>> sorted(lmm.STRUCTURES)[:3]
['ar1', 'cs', 'diagonal']
"""

from .covariance import STRUCTURES
from .mmrm import fit_mmrm
from .random_intercept import fit_random_intercept
from .result import Contrast, Convergence, FixedEffectsFit, MMRMFit, RandomInterceptFit

__all__ = [
    "STRUCTURES",
    "Contrast",
    "Convergence",
    "FixedEffectsFit",
    "MMRMFit",
    "RandomInterceptFit",
    "fit_mmrm",
    "fit_random_intercept",
]
