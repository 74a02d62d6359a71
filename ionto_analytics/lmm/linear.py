"""The one dense linear-algebra step of every likelihood evaluation: an SPD inverse.

``X'V^{-1}X`` is factored once (LAPACK ``dpotrf``) and inverted from its Cholesky factor
(``dpotri``); the log-determinant comes from the same factor. Both models use it, and
``beta = A^{-1} b`` then needs no second solve.

Examples
--------
>>> import numpy as np
>>> inverse, logdet = spd_inverse(np.array([[4.0, 2.0], [2.0, 3.0]]))
>>> np.round(inverse * 8, 6).tolist(), round(logdet, 6) == round(float(np.log(8.0)), 6)
([[3.0, -2.0], [-2.0, 4.0]], True)
>>> spd_inverse(np.array([[1.0, 2.0], [2.0, 1.0]]))
Traceback (most recent call last):
...
numpy.linalg.LinAlgError: matrix is not positive definite (leading minor 2)
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

__all__ = ["spd_inverse"]


def spd_inverse(A: np.ndarray) -> tuple[np.ndarray, float]:
    """Inverse and log-determinant of a symmetric positive-definite matrix.

    Raises ``numpy.linalg.LinAlgError`` when ``A`` is not positive definite.
    """
    factor, info = lapack.dpotrf(A, lower=False, clean=True)
    if info > 0:
        raise np.linalg.LinAlgError(f"matrix is not positive definite (leading minor {info})")
    logdet = 2 * float(np.sum(np.log(np.diag(factor))))
    upper, info = lapack.dpotri(factor, lower=False)
    if info > 0:
        raise np.linalg.LinAlgError(f"matrix is singular (pivot {info})")
    return np.triu(upper) + np.triu(upper, 1).T, logdet
