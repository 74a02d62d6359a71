"""Meta-analysis of one contrast (ionto_analytics.study.meta) against a hand computation,
statsmodels called directly and a published worked example."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from data_schemas.errors import InputError
from ionto_analytics.study.meta import meta_analysis

# BCG vaccine trials (Colditz et al. 1994), the data set `dat.bcg` of the R package metafor:
# tpos, tneg (vaccinated: TB, no TB), cpos, cneg (control). Effect: log risk ratio.
BCG = np.array(
    [
        [4, 119, 11, 128],
        [6, 300, 29, 274],
        [3, 228, 11, 209],
        [62, 13536, 248, 12619],
        [33, 5036, 47, 5761],
        [180, 1361, 372, 1079],
        [8, 2537, 10, 619],
        [505, 87886, 499, 87892],
        [29, 7470, 45, 7232],
        [17, 1699, 65, 1600],
        [186, 50448, 141, 27197],
        [5, 2493, 3, 2338],
        [27, 16886, 29, 17825],
    ],
    dtype=float,
)


def _bcg() -> tuple[np.ndarray, np.ndarray]:
    tp, tn, cp, cn = BCG.T
    yi = np.log((tp / (tp + tn)) / (cp / (cp + cn)))
    vi = 1 / tp - 1 / (tp + tn) + 1 / cp - 1 / (cp + cn)  # metafor escalc(measure="RR")
    return yi, vi


SITES = ["north", "south", "east", "west"]
Y = np.array([-0.8, -0.2, -1.4, 0.3])
SE = np.array([0.30, 0.25, 0.45, 0.35])


def test_fixed_effect_equals_inverse_variance_by_hand() -> None:
    m = meta_analysis(Y, SE, SITES)
    w = 1 / SE**2
    est = float(np.sum(w * Y) / np.sum(w))
    se = float(1 / np.sqrt(np.sum(w)))
    assert m["fixed_estimate"] == pytest.approx(est, abs=1e-10)
    assert m["fixed_se"] == pytest.approx(se, abs=1e-10)
    assert m["fixed_ci_low"] == pytest.approx(est - stats.norm.ppf(0.975) * se, abs=1e-10)
    q = float(np.sum(w * (Y - est) ** 2))
    assert m["q"] == pytest.approx(q, abs=1e-10)
    assert m["i2"] == pytest.approx(max(0.0, (q - 3) / q), abs=1e-10)
    assert sum(m["weights_fixed"].values()) == pytest.approx(1.0)
    assert m["weights_fixed"]["east"] == pytest.approx(w[2] / w.sum(), abs=1e-12)


@pytest.mark.parametrize(("key", "method_re"), [("pm", "iterated"), ("dl", "chi2")])
def test_random_effects_equal_statsmodels_called_directly(key: str, method_re: str) -> None:
    m = meta_analysis(Y, SE, SITES, tau2_method=key)
    res = combine_effects(Y, SE**2, method_re=method_re)
    assert m["random_estimate"] == pytest.approx(res.mean_effect_re, abs=1e-10)
    assert m["random_se"] == pytest.approx(res.sd_eff_w_re, abs=1e-10)
    assert m["tau2"] == pytest.approx(res.tau2, abs=1e-10)
    assert m["tau2"] > 0  # these four sites disagree: the test is not about τ² = 0
    frame = res.summary_frame()
    assert m["random_ci_low"] == pytest.approx(frame.loc["random effect", "ci_low"], abs=1e-10)
    assert m["random_ci_high"] == pytest.approx(frame.loc["random effect", "ci_upp"], abs=1e-10)


def test_prediction_interval_by_hand() -> None:
    """Higgins, Thompson & Spiegelhalter (2009): μ̂ ± t(k − 2) √(τ² + SE²)."""
    m = meta_analysis(Y, SE, SITES)
    half = stats.t.ppf(0.975, 2) * np.sqrt(m["tau2"] + m["random_se"] ** 2)
    assert m["pi_low"] == pytest.approx(m["random_estimate"] - half, abs=1e-12)
    assert m["pi_high"] - m["pi_low"] > m["random_ci_high"] - m["random_ci_low"]
    assert np.isnan(meta_analysis(Y[:2], SE[:2], SITES[:2])["pi_low"])


def test_bcg_worked_example_of_metafor() -> None:
    """metafor documentation, ``rma(yi, vi, data=dat.bcg, method="DL")`` and
    ``method="FE"``: estimate −0.7141 (SE 0.1787), 95% CI −1.0644 to −0.3638,
    τ² = 0.3088, I² = 92.12%, Q(df = 12) = 152.2330; fixed effect −0.4303 (SE 0.0405).
    Published to 4 decimals, so the tolerance is half the last digit (5e-5); statsmodels
    itself is matched to 1e-10 above."""
    yi, vi = _bcg()
    m = meta_analysis(yi, np.sqrt(vi), [str(i) for i in range(13)], tau2_method="dl")
    tol = 5e-5
    assert m["random_estimate"] == pytest.approx(-0.7141, abs=tol)
    assert m["random_se"] == pytest.approx(0.1787, abs=tol)
    assert m["random_ci_low"] == pytest.approx(-1.0644, abs=tol)
    assert m["random_ci_high"] == pytest.approx(-0.3638, abs=tol)
    assert m["tau2"] == pytest.approx(0.3088, abs=tol)
    assert 100 * m["i2"] == pytest.approx(92.12, abs=5e-3)
    assert m["q"] == pytest.approx(152.2330, abs=tol)
    assert m["fixed_estimate"] == pytest.approx(-0.4303, abs=tol)
    assert m["fixed_se"] == pytest.approx(0.0405, abs=tol)


def test_one_site_is_its_own_pooled_estimate() -> None:
    m = meta_analysis([0.5], [0.2], ["north"])
    assert (m["fixed_estimate"], m["random_estimate"], m["tau2"]) == (0.5, 0.5, 0.0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(InputError, match="SE positive"):
        meta_analysis([0.1, 0.2], [0.1, 0.0], ["a", "b"])
    with pytest.raises(InputError, match="one estimate and one SE per site"):
        meta_analysis([0.1, 0.2], [0.1], ["a", "b"])


def test_sites_that_agree_exactly_have_no_heterogeneity() -> None:
    m = meta_analysis([0.4, 0.4, 0.4], [0.2, 0.3, 0.25], ["a", "b", "c"])
    assert (m["q"], m["i2"], m["tau2"]) == (0.0, 0.0, 0.0)
    assert m["random_estimate"] == pytest.approx(0.4, abs=1e-12)
