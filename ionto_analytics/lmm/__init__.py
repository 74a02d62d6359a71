"""A fast, exact mixed-model engine on plain arrays: random intercept and MMRM.

Both fits reduce the data once to sufficient statistics (per cluster size, or per
missingness pattern), so each likelihood evaluation costs a few small matrix products
whatever the number of rows. Only numpy and scipy are used.

* :func:`fit_random_intercept` (REML or ML): a 1-D search on the variance ratio.
* :func:`fit_mmrm` (REML or ML): one covariance matrix over the windows (unstructured,
  compound symmetry, AR(1), their heterogeneous versions, or independent windows).

Every result has ``beta``, ``cov_beta``, ``se``, the variance parameters, ``loglik``, a
convergence certificate and ``contrast(L)`` with Satterthwaite degrees of freedom;
:func:`fit_mmrm` offers the Kenward–Roger adjustment (``ddf="kenward-roger"``) and
:func:`cluster_robust` the CR2 covariance of a random-intercept fit.

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
from .robust import ClusterRobust, cluster_robust

__all__ = [
    "STRUCTURES",
    "ClusterRobust",
    "Contrast",
    "Convergence",
    "FixedEffectsFit",
    "MMRMFit",
    "RandomInterceptFit",
    "cluster_robust",
    "fit_mmrm",
    "fit_random_intercept",
]
