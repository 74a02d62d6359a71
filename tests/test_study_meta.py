"""Meta-analysis of one contrast (ionto_analytics.study.meta) against a hand computation,
statsmodels called directly and a published worked example."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


METAFOR = Path(__file__).parent / "reference" / "metafor_reference.json"
"""metafor's fits of dat.bcg with 15 significant digits (tests/reference/metafor_reference.R)."""


def _metafor() -> dict[str, Any]:
    return json.loads(METAFOR.read_text(encoding="utf-8"))


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
    Published to 4 decimals, so the tolerance is half the last digit (5e-5); metafor's own
    digits are matched to 1e-6 below, statsmodels itself to 1e-10 above."""
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


def test_bcg_data_and_log_risk_ratios_are_metafors() -> None:
    ref = _metafor()["data"]
    assert BCG.tolist() == np.array([ref[c] for c in ("tpos", "tneg", "cpos", "cneg")]).T.tolist()
    yi, vi = _bcg()
    assert yi == pytest.approx(ref["yi"], abs=1e-12)
    assert vi == pytest.approx(ref["vi"], abs=1e-12)


@pytest.mark.parametrize(("key", "method"), [("dl", "DL"), ("pm", "PM"), ("reml", "REML")])
def test_bcg_pooled_as_metafor_pools_it_to_1e6(key: str, method: str) -> None:
    """``rma(yi, vi, data = dat.bcg, method = "FE" / "DL" / "PM" / "REML")`` run by metafor 3.8 with
    tightened tolerances (tests/reference/metafor_reference.R), to 1e-6. I² here is the
    Q-based ``(Q − (k − 1)) / Q`` (Cochrane Handbook 10.10.2): metafor's I² for DL, which
    equals it; for PM and REML metafor computes I² from τ² and the typical within-trial
    variance (92.33% and 92.22% rather than 92.12%). The prediction interval is Higgins, Thompson &
    Spiegelhalter's, with t(k − 2), computed in the R script from metafor's estimates
    (metafor 3.8's ``predict`` uses the normal quantile)."""
    ref = _metafor()
    data, fe, re = ref["data"], ref["fits"]["FE"], ref["fits"][method]
    m = meta_analysis(
        data["yi"], np.sqrt(data["vi"]), [str(t) for t in data["trial"]], tau2_method=key
    )
    tol = 1e-6
    for ours, theirs in (
        ("random_estimate", "estimate"),
        ("random_se", "se"),
        ("random_ci_low", "ci_low"),
        ("random_ci_high", "ci_high"),
        ("tau2", "tau2"),
        ("q", "q"),
        ("q_p_value", "q_p_value"),
        ("pi_low", "pi_low_t"),
        ("pi_high", "pi_high_t"),
    ):
        assert m[ours] == pytest.approx(re[theirs], abs=tol), ours
    for ours, theirs in (
        ("fixed_estimate", "estimate"),
        ("fixed_se", "se"),
        ("fixed_ci_low", "ci_low"),
        ("fixed_ci_high", "ci_high"),
    ):
        assert m[ours] == pytest.approx(fe[theirs], abs=tol), ours
    assert 100 * m["i2"] == pytest.approx(ref["fits"]["DL"]["i2_percent"], abs=tol)
    assert m["tau2"] > 0.3  # the trials disagree: τ² is not at its boundary


def test_reml_weights_are_those_of_its_tau2() -> None:
    m = meta_analysis(Y, SE, SITES, tau2_method="reml")
    w = 1 / (SE**2 + m["tau2"])
    assert m["tau2"] > 0 and m["tau2_method"] == "REML"
    assert m["random_estimate"] == pytest.approx(float(w @ Y / w.sum()), abs=1e-12)
    assert m["weights_random"]["east"] == pytest.approx(w[2] / w.sum(), abs=1e-12)
    assert m["fixed_estimate"] == pytest.approx(meta_analysis(Y, SE, SITES)["fixed_estimate"])


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
