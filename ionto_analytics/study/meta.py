"""Meta-analysis of one contrast across sites: fixed effect and random effects.

Both come from ``statsmodels.stats.meta_analysis.combine_effects``:

* fixed effect: inverse-variance weights ``wᵢ = 1 / seᵢ²``, estimate ``Σwᵢyᵢ / Σwᵢ``,
  SE ``1 / √Σwᵢ``, normal CI;
* random effects: τ² by Paule–Mandel (``method_re="iterated"``, the default here; the
  Cochrane Handbook 10.10.4.1 and Veroniki et al. 2016 prefer it to DerSimonian–Laird) or
  DerSimonian–Laird (``"dl"``), weights ``1 / (seᵢ² + τ²)``, normal CI; or τ² by REML
  (metafor's default, which statsmodels lacks: :func:`reml_tau2`), the estimate and its
  SE then computed here with the same weights and CI;
* heterogeneity: Cochran's Q with its χ²(k − 1) p-value and I² = max(0, (Q − (k − 1)) / Q);
* the 95% prediction interval for the effect in a new site (Higgins, Thompson &
  Spiegelhalter 2009): ``μ̂ ± t(k − 2) √(τ² + SE(μ̂)²)``, only with 3 or more sites.

Examples
--------
>>> m = meta_analysis([1.0, 2.0, 1.5], [0.1 ** 0.5, 0.2 ** 0.5, 0.3 ** 0.5], ["a", "b", "c"])
>>> round(m["fixed_estimate"], 6), m["sites"]
(1.363636, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from ionto_analytics.errors import InputError

__all__ = ["TAU2_METHODS", "Tau2Method", "meta_analysis", "reml_tau2"]

Tau2Method = Literal["pm", "dl", "reml"]
"""τ² estimator keys: Paule–Mandel, DerSimonian–Laird, REML."""

TAU2_METHODS: dict[str, str] = {"pm": "iterated", "dl": "chi2", "reml": "chi2"}
"""τ² estimator key → ``combine_effects(method_re=...)`` (REML: the DL fit gives the fixed
effect and Q; τ² comes from :func:`reml_tau2`)."""

TAU2_NAMES = {"pm": "Paule-Mandel", "dl": "DerSimonian-Laird", "reml": "REML"}


def reml_tau2(
    estimates: np.ndarray, variances: np.ndarray, *, tol: float = 1e-12, max_iter: int = 500
) -> float:
    """REML estimate of τ² by Fisher scoring (Viechtbauer 2005; metafor's ``rma`` default).

    With ``wᵢ = 1 / (vᵢ + τ²)`` and μ̂ the weighted mean, the step is
    ``(Σwᵢ²(yᵢ − μ̂)² − tr P) / tr P²`` with ``P = W − wwᵀ / Σw``, started at 0 and kept
    at 0 or above.

    Raises
    ------
    InputError
        The iteration did not settle within ``max_iter`` steps.

    Examples
    --------
    >>> reml_tau2(np.array([0.0, 0.0, 0.0]), np.array([0.1, 0.2, 0.3]))
    0.0
    """
    tau2 = 0.0
    for _ in range(max_iter):
        w = 1 / (variances + tau2)
        sw, sw2 = w.sum(), (w**2).sum()
        mu = float(w @ estimates) / sw
        trace_p = sw - sw2 / sw
        trace_pp = sw2 - 2 * (w**3).sum() / sw + sw2**2 / sw**2
        step = (float(w**2 @ (estimates - mu) ** 2) - trace_p) / trace_pp
        new = max(0.0, tau2 + step)
        if abs(new - tau2) <= tol * max(1.0, tau2):
            return new
        tau2 = new
    raise InputError(f"REML τ² did not converge in {max_iter} Fisher-scoring steps; use pm or dl")


def meta_analysis(
    estimates: Sequence[float],
    ses: Sequence[float],
    sites: Sequence[str],
    *,
    tau2_method: Tau2Method = "pm",
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Pool one contrast over sites.

    Parameters
    ----------
    estimates, ses : sequence of float
        Each site's estimate and standard error.
    sites : sequence of str
        Site names (same order).
    tau2_method : {"pm", "dl", "reml"}
        Paule–Mandel, DerSimonian–Laird or REML τ².
    alpha : float
        1 − confidence level.

    Returns
    -------
    dict
        ``sites``, ``fixed_estimate``, ``fixed_se``, ``fixed_ci_low``, ``fixed_ci_high``,
        ``random_estimate``, ``random_se``, ``random_ci_low``, ``random_ci_high``,
        ``tau2``, ``tau2_method``, ``q``, ``q_p_value``, ``i2``, ``pi_low``, ``pi_high``
        (NaN with fewer than 3 sites), ``weights_fixed`` and ``weights_random``
        (site → relative weight).
    """
    y = np.asarray(estimates, dtype=float)
    se = np.asarray(ses, dtype=float)
    if len(y) == 0 or len(y) != len(se) or len(y) != len(sites):
        raise InputError(
            f"meta_analysis: need one estimate and one SE per site, got {len(y)} estimates, "
            f"{len(se)} SEs and {len(sites)} sites"
        )
    if not (np.isfinite(y).all() and np.isfinite(se).all() and (se > 0).all()):
        raise InputError("meta_analysis: every estimate must be finite and every SE positive")
    if tau2_method not in TAU2_METHODS:
        raise InputError(f"tau2_method must be one of {list(TAU2_METHODS)}, got {tau2_method!r}")
    k = len(y)
    z = float(stats.norm.ppf(1 - alpha / 2))
    if k == 1:
        fe = re = float(y[0])
        fe_se = re_se = float(se[0])
        tau2 = q = 0.0
        w_fe = w_re = np.ones(1)
    else:
        # statsmodels divides by Q for its own I² (0 when every site agrees exactly);
        # I² is computed below with Q = 0 handled.
        with np.errstate(divide="ignore", invalid="ignore"):
            res = combine_effects(y, se**2, method_re=TAU2_METHODS[tau2_method], alpha=alpha)
        fe, fe_se = float(res.mean_effect_fe), float(res.sd_eff_w_fe)
        re, re_se = float(res.mean_effect_re), float(res.sd_eff_w_re)
        tau2, q = float(res.tau2), float(res.q)
        w_fe, w_re = np.asarray(res.weights_rel_fe), np.asarray(res.weights_rel_re)
        if tau2_method == "reml":
            tau2 = reml_tau2(y, se**2)
            w = 1 / (se**2 + tau2)
            re, re_se, w_re = float(w @ y / w.sum()), float(1 / np.sqrt(w.sum())), w / w.sum()
    df = k - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    if k >= 3:
        half = float(stats.t.ppf(1 - alpha / 2, k - 2)) * np.sqrt(tau2 + re_se**2)
        pi_low, pi_high = re - half, re + half
    else:
        pi_low = pi_high = float("nan")
    return {
        "sites": k,
        "fixed_estimate": fe,
        "fixed_se": fe_se,
        "fixed_ci_low": fe - z * fe_se,
        "fixed_ci_high": fe + z * fe_se,
        "random_estimate": re,
        "random_se": re_se,
        "random_ci_low": re - z * re_se,
        "random_ci_high": re + z * re_se,
        "tau2": tau2,
        "tau2_method": TAU2_NAMES[tau2_method],
        "q": q,
        "q_p_value": float(stats.chi2.sf(q, df)) if df > 0 else float("nan"),
        "i2": i2,
        "pi_low": float(pi_low),
        "pi_high": float(pi_high),
        "weights_fixed": dict(zip(sites, map(float, w_fe), strict=True)),
        "weights_random": dict(zip(sites, map(float, w_re), strict=True)),
    }
