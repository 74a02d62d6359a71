"""Tests of the IPCW estimator (``ionto_analytics.compare.ipcw``).

* History-driven dropout: patients whose NPRS improved most by day 14 stop coming (as in the
  emulator's ``apply_dropout``), and the analysed instrument is the PRTEE, scored only at
  intake and week 12. The complete-case ANCOVA is biased (its mean z over 20 seeds beyond
  1); IPCW, whose censoring models see the day-14 NPRS, is not (mean z within ±0.5,
  coverage ≥ 85 %). Under dropout completely at random the two agree.
* Nobody lost: every weight is 1 and the estimate is the ANCOVA's.
* Guards, the ``ionto compare --method ipcw`` JSON, and the result contract.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special
from typer.testing import CliRunner

import ionto_analytics as ia
from ionto.cli import app
from ionto_analytics.compare.ancova import ancova
from ionto_analytics.compare.command import compare_frames
from ionto_analytics.compare.fit import logistic_coefficients
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.ipcw import censoring_weights, ipcw, observed_history
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.errors import InputError
from tests.proof_fixtures import EmulatedStore

ARMS = ("ionto+exercise", "exercise")
SEEDS = range(20)


def history_dropout(
    seed: int, n: int = 800, *, slope: float = 1.5, rate: float = 0.3
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Episodes and long outcomes: NPRS at days 0, 14, 84 and PRTEE at days 0, 84.

    A latent response drives both the day-14 NPRS improvement and the week-12 PRTEE change;
    the arm improves the early NPRS only (planted PRTEE arm effect at week 12: 0). A share
    ``rate`` of episodes is lost after day 14, with log-odds ``slope`` per SD of the NPRS
    improvement at day 14 (0: completely at random; ``rate`` 0: nobody is lost).
    """
    rng = np.random.default_rng(seed)
    ids = np.array([f"h{seed}-{i:04d}" for i in range(n)])
    treated = rng.random(n) < 0.5
    episodes = pd.DataFrame(
        {
            "episode_id": ids,
            "patient_id": ids,
            "clinic_id": rng.choice(["c1", "c2", "c3", "c4"], n),
            "condition": "lateral_epicondylitis",
            "arm": np.where(treated, ARMS[0], ARMS[1]),
            "age_years": rng.uniform(20, 75, n),
            "sex": np.where(rng.random(n) < 0.45, "male", "female"),
            "symptom_duration_weeks": rng.gamma(2.0, 6.0, n),
            "n_visits": 8,
        }
    )
    nprs0 = np.clip(rng.normal(6, 1.2, n), 1, 9.5)
    prtee0 = np.clip(40 + 4 * (nprs0 - 6) + rng.normal(0, 8, n), 5, 95)
    response = rng.normal(0, 1, n)
    nprs2 = np.clip(nprs0 - 1 - 0.8 * treated - response + rng.normal(0, 0.5, n), 0, 10)
    prtee12 = np.clip(prtee0 - 15 - 10 * response + rng.normal(0, 4, n), 0, 100)
    nprs12 = np.clip(nprs0 - 2.5 - response + rng.normal(0, 0.8, n), 0, 10)
    z = nprs0 - nprs2
    z = slope * (z - z.mean()) / z.std()
    lo, hi = -30.0, 30.0
    for _ in range(60):  # the intercept that makes the share lost equal ``rate``
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.mean(1 / (1 + np.exp(-(mid + z)))) < rate else (lo, mid)
    lost = (rng.random(n) < 1 / (1 + np.exp(-(lo + z)))) & (rate > 0)

    def scores(keep: np.ndarray, instrument: str, day: int, score: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "episode_id": ids[keep],
                "instrument": instrument,
                "days_from_intake": day,
                "score": score[keep],
            }
        )

    everyone = np.ones(n, dtype=bool)
    outcomes = pd.concat(
        [
            scores(everyone, "nprs", 0, nprs0),
            scores(everyone, "prtee", 0, prtee0),
            scores(everyone, "nprs", 14, nprs2),
            scores(~lost, "nprs", 84, nprs12),
            scores(~lost, "prtee", 84, prtee12),
        ],
        ignore_index=True,
    )
    return episodes, outcomes


def _z(r: ComparisonResult) -> float:
    return r.estimate / ((r.ci_high - r.ci_low) / 3.919927969)


def test_history_driven_dropout_biases_ancova_not_ipcw() -> None:
    z_ancova, z_ipcw, covered = [], [], []
    for seed in SEEDS:
        af = comparison_frame(*history_dropout(seed), "prtee", 12, ARMS)
        z_ancova.append(_z(ancova(af, se="hc2")))
        r = ipcw(af, se="hc2")
        z_ipcw.append(_z(r))
        covered.append(r.ci_low <= 0.0 <= r.ci_high)
    assert np.mean(z_ancova) > 1.0
    assert abs(np.mean(z_ipcw)) < 0.5
    assert np.mean(covered) >= 0.85


def test_dropout_completely_at_random_ipcw_agrees_with_ancova() -> None:
    diff, se = [], []
    for seed in SEEDS:
        af = comparison_frame(*history_dropout(seed, slope=0.0), "prtee", 12, ARMS)
        a, r = ancova(af, se="hc2"), ipcw(af, se="hc2")
        diff.append(r.estimate - a.estimate)
        se.append((a.ci_high - a.ci_low) / 3.92)
        assert r.n == a.n
    assert np.mean(np.abs(diff)) < 0.2 * np.mean(se)
    assert np.mean(np.abs(diff)) > 0  # the weights are estimated, not all 1


def test_nobody_lost_gives_weights_one_and_the_ancova_estimate() -> None:
    af = comparison_frame(*history_dropout(3, n=300, rate=0.0), "prtee", 12, ARMS)
    a, r = ancova(af, se="hc2"), ipcw(af, se="hc2")
    assert r.estimate == pytest.approx(a.estimate, abs=1e-10)
    assert r.ci_low == pytest.approx(a.ci_low, abs=1e-10)
    t = r.table.set_index("term")["estimate"]
    assert t["largest weight (before truncation)"] == 1.0
    assert t["weights truncated"] == 0
    for arm in ARMS:
        assert t[f"effective sample size {arm}"] == pytest.approx(r.n[arm])


def test_censoring_weights_follow_the_observation_rule() -> None:
    episodes, outcomes = history_dropout(4, n=400)
    af = comparison_frame(episodes, outcomes, "prtee", 12, ARMS)
    w, by_week, text = censoring_weights(af, af.data, ("baseline",), False)
    assert by_week["week"].tolist() == [2, 4, 6, 8, 12]
    assert by_week["first_day"].tolist() == [8, 22, 36, 50, 71]
    observed = af.data["has_follow_up"].to_numpy()
    # everyone is scored at day 14; only the lost miss day 84, so only week 4 loses anyone
    assert by_week["at_risk"].tolist() == [400, 400] + [int(observed.sum())] * 3
    assert np.isinf(w[~observed]).all() and (w[observed] > 1).all()
    # the weights stand for the episodes lost: about as many in each arm as there were
    for t in (0, 1):
        arm = af.data["treated"].to_numpy() == t
        assert w[observed & arm].sum() == pytest.approx(arm.sum(), rel=0.05)
    assert "history before window k" in text


def test_firth_logistic_maximizes_the_penalized_likelihood() -> None:
    rng = np.random.default_rng(11)
    x = np.column_stack([np.ones(40), rng.normal(size=40), rng.normal(size=40)])
    y = (x[:, 1] + 0.5 * rng.normal(size=40) > 1.2).astype(float)  # few events

    def penalized(a: np.ndarray) -> float:
        eta = x @ a
        e = special.expit(eta)
        info = x.T @ (x * (e * (1 - e))[:, None])
        return float(np.sum(y * eta - np.logaddexp(0, eta)) + 0.5 * np.linalg.slogdet(info)[1])

    direct = optimize.minimize(lambda a: -penalized(a), np.zeros(3), method="BFGS").x
    firth = logistic_coefficients(x, y, firth=True)
    assert firth == pytest.approx(direct, abs=1e-4)
    assert not np.allclose(firth, logistic_coefficients(x, y), atol=1e-2)
    aliased = np.column_stack([x, x[:, 1]])  # a repeated column changes no probability
    p = special.expit(aliased @ logistic_coefficients(aliased, y, firth=True))
    assert p == pytest.approx(special.expit(x @ firth), abs=1e-8)


def test_observed_history_change_raw_transition_and_missing() -> None:
    out = pd.DataFrame(
        {
            "episode_id": ["e1", "e1", "e1", "e1", "e2", "e2", "e2"],
            "instrument": ["nprs", "nprs", "nprs", "groc", "nprs", "prtee", "groc"],
            "score": [7.0, 4.0, 1.0, 3.0, 6.0, 50.0, -2.0],
            "days_from_intake": [0, 20, 40, 14, 0, 15, 10],
        }
    )
    h = observed_history(out, pd.Series(["e2", "e1"]), 22)
    assert list(h.columns) == [
        "history_groc",
        "history_nprs",
        "history_prtee",
        "history_prtee_missing",
    ]
    assert h["history_groc"].tolist() == [-2.0, 3.0]  # raw: a transition rating
    assert h["history_nprs"].tolist() == [0.0, -3.0]  # the day-40 score is not history yet
    # e2's PRTEE has no baseline (first score at day 15), e1 has none at all
    assert h["history_prtee_missing"].tolist() == [1, 1]


def test_guards() -> None:
    af = comparison_frame(*history_dropout(5, n=200), "prtee", 12, ARMS)
    with pytest.raises(InputError, match="AnalysisFrame of comparison_frame"):
        ipcw(af.data, se="hc2")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="not a follow-up week"):
        ipcw(comparison_frame(*history_dropout(5, n=200), "prtee", "discharge", ARMS))
    with pytest.raises(InputError, match="max_weight must be at least 1"):
        ipcw(af, se="hc2", max_weight=0.5)
    with pytest.raises(InputError, match="not a column"):
        ipcw(af, se="hc2", covariates=("bmi",))
    doubled = af.data.assign(age_twice=2 * af.data["age_years"])
    collinear = replace(af, data=doubled)
    with pytest.raises(InputError, match="rank"):
        ipcw(collinear, se="hc2", covariates=("age_years", "age_twice"), flexible=False)
    episodes, outcomes = history_dropout(6, n=200)
    treated = episodes.loc[episodes["arm"] == ARMS[0], "episode_id"]
    late = outcomes["episode_id"].isin(treated) & (outcomes["days_from_intake"] > 14)
    lost_arm = comparison_frame(episodes, outcomes[~late.to_numpy()], "prtee", 12, ARMS)
    with pytest.raises(InputError, match=r"arm 'ionto\+exercise' has 0 analysable"):
        ipcw(lost_arm, se="hc2")


def test_truncation_is_counted() -> None:
    af = comparison_frame(*history_dropout(7, n=400), "prtee", 12, ARMS)
    free = ipcw(af, se="hc2")
    largest = free.table.set_index("term").loc["largest weight (before truncation)", "estimate"]
    cut = ipcw(af, se="hc2", max_weight=2.0)
    t = cut.table.set_index("term")["estimate"]
    assert t["largest weight (before truncation)"] == largest > 2.0
    assert t["weights truncated"] > 0
    assert any("truncated at 2" in n for n in cut.notes)
    assert cut.estimate != free.estimate


def test_bootstrap_refits_the_censoring_models() -> None:
    af = comparison_frame(*history_dropout(1, n=500), "prtee", 12, ARMS)
    known = ipcw(af, se="hc2")
    boot = ipcw(af, se="hc2", variance="bootstrap", n_boot=60, seed=4)
    assert boot.estimate == known.estimate
    width, width_known = boot.ci_high - boot.ci_low, known.ci_high - known.ci_low
    assert width != width_known and 0.75 < width / width_known < 1.25
    assert "bootstrap, 60 resamples" in boot.estimator
    again = ipcw(af, se="hc2", variance="bootstrap", n_boot=60, seed=4)
    assert again.ci_low == boot.ci_low
    with pytest.raises(InputError, match="n_boot >= 50"):
        ipcw(af, se="hc2", variance="bootstrap", n_boot=10)
    with pytest.raises(InputError, match="variance must be"):
        ipcw(af, se="hc2", variance="jackknife")  # type: ignore[arg-type]


def test_result_contract_and_public_name() -> None:
    af = comparison_frame(*history_dropout(8, n=300), "prtee", 12, ARMS)
    r = ia.ipcw(af, se="hc2")
    assert ia.ipcw is ipcw
    s = r.summary()
    assert s["estimate"].iloc[0] == r.estimate and s["week"].iloc[0] == 12
    assert s["n"].iloc[0] == sum(r.n.values()) < 300
    assert r.excluded["no_follow_up_in_window"] == 300 - sum(r.n.values())
    assert "IPCW" in r.estimator and "HC2" in r.estimator
    assert "history of every instrument" in r.estimand
    assert any("weights treated as known" in n for n in r.notes)
    assert any(n.startswith("censoring weights: largest") for n in r.notes)
    assert np.isfinite(r.e_value) and r.e_value >= 1
    assert r.plot().data
    assert "<table" in r._repr_html_()
    d = json.loads(json.dumps(r.to_dict()))
    assert d["estimator"] == r.estimator and d["week"] == 12
    assert "C(clinic_id)" in r.adjustment_set


def test_compare_frames_method_ipcw() -> None:
    episodes, outcomes = history_dropout(9, n=400)
    episodes = episodes.assign(start_date=pd.Timestamp("2026-01-05"))
    spec = ComparisonSpec("lateral_epicondylitis", "prtee", ARMS, week=12, method="ipcw")
    report = compare_frames(episodes, outcomes, None, spec)
    direct = ipcw(comparison_frame(episodes, outcomes, "prtee", 12, ARMS), se="hc2")
    assert report.result.estimate == pytest.approx(direct.estimate, rel=1e-9)
    assert any("HC2" in note for note in report.to_dict()["notes"])


def test_cli_method_ipcw_json(emulated_store: EmulatedStore) -> None:
    result = CliRunner().invoke(
        app,
        ["--db", emulated_store.url, "compare", "--condition", "epicondylitis",
         "--instrument", "prtee", "--arms", "ionto+exercise", "exercise", "--at-weeks", "12",
         "--method", "ipcw", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["method"] == "ipcw" and out["estimator"].startswith("IPCW")
    assert any("weights treated as known" in n for n in out["notes"])
    assert out["ci_low"] < out["estimate"] < out["ci_high"]
