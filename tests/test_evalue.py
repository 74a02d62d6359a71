"""Tests of the E-values (compare/evalue) and their place in every result and in ``ionto compare``.

Outside references: VanderWeele & Ding (2017), Ann Intern Med 167:268-274. Worked example:
observed RR 3.9 (95 % CI 1.8 to 8.7) gives E-value 7.26 and 3.0 for the lower limit. For a
standardized mean difference d, RR ≈ exp(0.91 d): d = 0.5 → RR = exp(0.455) ≈ 1.576 →
E = 1.576 + sqrt(1.576 · 0.576) ≈ 2.53 (hand arithmetic, 2 decimals as published).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.command import compare_frames
from ionto_analytics.compare.evalue import (
    e_value_difference,
    e_value_ratio,
    e_value_rr,
    pooled_sd,
    rr_from_difference,
)
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.iptw import iptw
from ionto_analytics.compare.mice import mice_sensitivity
from ionto_analytics.compare.mixed import mixed_model
from ionto_analytics.compare.responders import responders
from ionto_analytics.compare.spec import ComparisonSpec
from tests.analysis_sim import simulate

ARMS = ("ionto+exercise", "exercise")


def test_published_worked_example() -> None:
    assert e_value_rr(3.9) == pytest.approx(7.26, abs=0.005)
    assert e_value_rr(1.8) == pytest.approx(3.0, abs=0.005)
    assert e_value_ratio(3.9, 1.8, 8.7) == pytest.approx((7.26, 3.0), abs=0.005)
    # a protective ratio is inverted first: 1/3.9 is as hard to explain away as 3.9
    assert e_value_rr(1 / 3.9) == pytest.approx(e_value_rr(3.9), rel=1e-12)
    assert e_value_ratio(1 / 3.9, 1 / 8.7, 1 / 1.8)[1] == pytest.approx(3.0, abs=0.005)
    assert e_value_ratio(1.3, 0.9, 1.8)[1] == 1.0


def test_standardized_difference_approximation() -> None:
    assert rr_from_difference(0.5, 1.0) == pytest.approx(math.exp(0.455), rel=1e-12)
    assert rr_from_difference(0.5, 1.0) == pytest.approx(1.576, abs=5e-4)
    e, e_ci = e_value_difference(-4.0, -6.0, -2.0, sd=8.0)  # d = -0.5 (a benefit)
    assert e == pytest.approx(2.53, abs=0.005)
    # CI limit nearest the null: -2 / 8 = -0.25 → RR = exp(0.2275) = 1.2555
    assert e_ci == pytest.approx(1.2555 + math.sqrt(1.2555 * 0.2555), abs=1e-3)
    assert e_value_difference(-4.0, -9.0, 1.0, sd=8.0)[1] == 1.0
    assert all(math.isnan(v) for v in e_value_difference(-4.0, -6.0, -2.0, sd=0.0))


def test_pooled_sd_is_the_within_arm_sd() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(-3, 2.0, 400), rng.normal(0, 2.0, 300)
    df = pd.DataFrame({"treated": [1] * 400 + [0] * 300, "change": np.r_[a, b]})
    expected = math.sqrt((399 * a.var(ddof=1) + 299 * b.var(ddof=1)) / 698)
    assert pooled_sd(df) == pytest.approx(expected, rel=1e-12)
    assert pooled_sd(df) == pytest.approx(2.0, rel=0.08)  # not the SD across arms (~2.5)
    assert math.isnan(pooled_sd(df[df["treated"] == 1]))


def test_every_estimator_reports_e_values() -> None:
    ep, out = simulate(400, 5, effect=-1.0)
    af = comparison_frame(ep, out, "nprs", 6, ARMS)
    d, _ = af.complete_cases()
    sd = pooled_sd(d)
    fits = {
        "ancova": ancova(af, se="hc3"),
        "iptw": iptw(af, se="hc3"),
        "mixed": mixed_model(af),
        "mice": mice_sensitivity(af, n_imputations=5, seed=1),
    }
    for name, r in fits.items():
        expected = e_value_difference(r.estimate, r.ci_low, r.ci_high, sd)
        assert (r.e_value, r.e_value_ci) == pytest.approx(expected, rel=1e-12), name
        assert r.e_value > 1.0, name
        row = r.summary().iloc[0]
        assert (row["e_value"], row["e_value_ci"]) == (r.e_value, r.e_value_ci)
        assert json.loads(json.dumps(r.to_dict()))["e_value"] == pytest.approx(r.e_value)
    # responders: a risk difference, so its E-values come from the risk ratio in its table
    r = responders(af)
    tab = r.table.set_index("term")
    rr = tab.loc[tab.index.str.contains("risk ratio")].iloc[0]
    assert (r.e_value, r.e_value_ci) == pytest.approx(
        e_value_ratio(rr["estimate"], rr["ci_low"], rr["ci_high"]), rel=1e-12
    )


def test_compare_json_and_text_carry_e_values() -> None:
    ep, out = simulate(300, 9, effect=-1.5)
    spec = ComparisonSpec("lateral_epicondylitis", "nprs", ARMS)
    report = compare_frames(ep, out, None, spec)
    body = json.loads(report.to_json())
    assert body["e_value"] == pytest.approx(report.result.e_value)
    assert body["e_value_ci"] == pytest.approx(report.result.e_value_ci)
    assert body["e_value"] > 1.0
    assert f"E-value: {report.result.e_value:.2f} for the estimate" in report.to_text()
