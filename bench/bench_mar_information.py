"""Under MAR dropout, is the MMRM's expected-information SE too small? (not a test)

Kenward & Molenberghs (1998, Biometrika 85: 1-13) show that under missing at random the
expected information, which treats the missingness pattern as fixed, is not the valid one;
the observed information of the full likelihood in (beta, Sigma), with its fixed-effect x
covariance cross terms, is. This checks whether that explains short MMRM intervals.

Each replicate: ``n`` episodes, two arms, 4 windows, unstructured covariance growing over
the windows, no arm effect; an episode leaves after window 1 with probability
``logit^-1(1.5 y_1 - 1)`` and, if still there, after window 2 with 0.7 x
``logit^-1(1.5 y_2 - 1)``: dropout driven by the observed scores, strongly. Fitted with
:func:`ionto_analytics.lmm.fit_mmrm` (cell means by window and arm), the arm contrast at
the last window, with

* ``REML, model-based``: ``(X'V^-1X)^-1``, Satterthwaite df;
* ``REML, Kenward-Roger``: the default of :func:`ia.mmrm`;
* ``ML, expected``: the ML fit's ``(X'V^-1X)^-1``;
* ``ML, observed``: the inverse of the Hessian of the ML -2 log-likelihood in (beta, the
  elements of Sigma) at the ML estimate, the likelihood computed here episode by episode
  (not from the engine's pattern statistics), by central differences; its beta block.

Printed: coverage of the 95 % interval (t on the REML df), root mean square SE and the
empirical SD of the estimates. Run: ``PYTHONPATH=. .venv/bin/python
bench/bench_mar_information.py [episodes] [replicates] [seed]`` (defaults 40 600 2).
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
from scipy import stats

from ionto_analytics.lmm import fit_mmrm
from ionto_analytics.lmm.certify import hessian_from_function

T = 4
SIGMA = 0.5 + 0.5 * np.eye(T) + 0.4 * np.add.outer(np.arange(T), np.arange(T))


def replicate(rng: np.random.Generator, n: int):
    """One data set: rows (y, X, episode, window) after MAR dropout."""
    episode = np.repeat(np.arange(n), T)
    window = np.tile(np.arange(T), n)
    arm = (np.arange(n) % 2).astype(float)
    Y = rng.multivariate_normal(np.zeros(T), SIGMA, size=n)
    first = rng.random(n) < 1 / (1 + np.exp(-(1.5 * Y[:, 0] - 1.0)))
    second = ~first & (rng.random(n) < 0.7 / (1 + np.exp(-(1.5 * Y[:, 1] - 1.0))))
    seen = np.ones((n, T), bool)
    seen[first, 1:] = False
    seen[second, 2:] = False
    keep = seen.ravel()
    X = np.column_stack(
        [window == t for t in range(T)] + [arm[episode] * (window == t) for t in range(T)]
    ).astype(float)
    return Y.ravel()[keep], X[keep], episode[keep], window[keep]


def _sigma(elements: np.ndarray) -> np.ndarray:
    S = np.zeros((T, T))
    S[np.tril_indices(T)] = elements
    return S + np.tril(S, -1).T


def neg2_loglik(params: np.ndarray, y, X, episode, window) -> float:
    """ML -2 log-likelihood (without the constant), episode by episode: ``sum_i
    log|Sigma_i| + r_i' Sigma_i^-1 r_i`` with ``Sigma_i`` the rows and columns of
    ``Sigma`` of the windows episode ``i`` was seen in (batched by those windows)."""
    p = X.shape[1]
    beta, S = params[:p], _sigma(params[p:])
    R = np.zeros((episode.max() + 1, T))
    seen = np.zeros_like(R, dtype=bool)
    R[episode, window] = y - X @ beta
    seen[episode, window] = True
    total = 0.0
    for mask in np.unique(seen, axis=0):
        members = (seen == mask).all(axis=1)
        block, r = S[np.ix_(mask, mask)], R[members][:, mask]
        sign, logdet = np.linalg.slogdet(block)
        if sign <= 0:
            return np.inf
        total += members.sum() * logdet + float(np.sum(r.T * np.linalg.solve(block, r.T)))
    return total


def observed_se(fit, y, X, episode, window, j: int) -> float:
    """SE of ``beta_j`` from the observed information of (beta, Sigma's elements)."""
    params = np.r_[fit.beta, fit.covariance[np.tril_indices(T)]]
    H = hessian_from_function(lambda x: neg2_loglik(x, y, X, episode, window), params)
    return float(np.sqrt(np.linalg.inv(H / 2)[j, j]))


def main() -> None:
    """Print coverage, RMS SE and the SD of the estimates for the four variances."""
    args = [int(a) for a in sys.argv[1:]] + [40, 600, 2][len(sys.argv) - 1 :]
    n, reps, seed = args[:3]
    rng = np.random.default_rng(seed)
    j = 2 * T - 1  # the arm contrast at the last window
    e_j = np.eye(2 * T)[j]
    out: dict[str, list[tuple[float, float, float]]] = {}
    warnings.simplefilter("ignore")
    for _ in range(reps):
        y, X, episode, window = replicate(rng, n)
        reml = fit_mmrm(y, X, episode, window)
        kr = fit_mmrm(y, X, episode, window, ddf="kenward-roger")
        ml = fit_mmrm(y, X, episode, window, method="ML")
        df = float(reml.contrast(e_j).df[0])
        for name, est, se, dfree in (
            ("REML, model-based", reml.beta[j], reml.se[j], df),
            ("REML, Kenward-Roger", kr.beta[j], kr.se[j], float(kr.contrast(e_j).df[0])),
            ("ML, expected", ml.beta[j], ml.se[j], df),
            ("ML, observed", ml.beta[j], observed_se(ml, y, X, episode, window, j), df),
        ):
            out.setdefault(name, []).append((abs(est) <= stats.t.ppf(0.975, dfree) * se, se, est))
    print(f"{n} episodes, {reps} replicates, seed {seed}, no arm effect planted")
    print(f"{'variance':22s} {'coverage':>9s} {'RMS SE':>8s} {'SD of estimates':>16s}")
    for name, rows in out.items():
        a = np.array(rows, dtype=float)
        rms = np.sqrt(np.mean(a[:, 1] ** 2))
        print(f"{name:22s} {a[:, 0].mean():9.3f} {rms:8.4f} {a[:, 2].std():16.4f}")


if __name__ == "__main__":
    main()
