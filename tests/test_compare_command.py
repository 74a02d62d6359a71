"""``ionto compare`` on a small emulated store: JSON shape, readable table, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import patsy
import pytest
from typer.testing import CliRunner

from ionto.cli import app
from ionto_analytics.compare.command import compare_frames, run_compare
from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.errors import InputError
from ionto_analytics.loaders import load_episodes, load_outcomes, load_sessions
from tests.proof_fixtures import EmulatedStore

runner = CliRunner()
ARGS = ["--condition", "epicondylitis", "--instrument", "prtee"]
ARMS = ["--arms", "ionto+exercise+manual", "exercise"]
KEYS = {
    "condition",
    "instrument",
    "arms",
    "week",
    "method",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "n",
    "excluded",
}


@pytest.mark.parametrize("method", ["ancova", "iptw", "mixed"])
def test_json_has_the_documented_shape(emulated_store: EmulatedStore, method: str) -> None:
    result = runner.invoke(
        app,
        ["--db", emulated_store.url, "compare", *ARGS, *ARMS, "--at-weeks", "12",
         "--method", method, "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) >= KEYS
    assert out["arms"] == ["ionto+exercise+manual", "exercise"]
    assert out["week"] == 12 and out["method"] == method
    assert out["ci_low"] < out["estimate"] < out["ci_high"]
    assert 0 <= out["p_value"] <= 1
    assert set(out["n"]) == set(out["arms"]) and min(out["n"].values()) > 20
    assert out["excluded"]["other_condition"] > 0
    assert all(isinstance(v, int) and v > 0 for v in out["excluded"].values())


def test_mmrm_covariance_is_chosen_by_aic_unless_pre_specified(
    emulated_store: EmulatedStore,
) -> None:
    """``--method mmrm`` keeps the structure of smallest REML AIC and says which;
    ``--covariance unstructured`` pre-specifies the unstructured matrix (Kenward–Roger); an
    unknown structure is one line with exit status 2 naming the choices."""
    mmrm = ["--db", emulated_store.url, "compare", *ARGS, *ARMS, "--at-weeks", "12",
            "--method", "mmrm", "--json"]  # fmt: skip
    chosen = runner.invoke(app, mmrm)
    assert chosen.exit_code == 0, chosen.output
    by_aic = json.loads(chosen.stdout)
    assert "(the smallest AIC)" in by_aic["estimator"]
    assert any("covariance chosen by the smallest REML AIC" in n for n in by_aic["notes"])
    pre = runner.invoke(app, [*mmrm, "--covariance", "unstructured"])
    assert pre.exit_code == 0, pre.output
    unstructured = json.loads(pre.stdout)
    assert "unstructured covariance over weeks" in unstructured["estimator"]
    assert "Kenward–Roger" in unstructured["estimator"]
    assert not any("AIC" in n for n in unstructured["notes"])
    # this cell (about 290 episodes) supports the unstructured matrix: AIC keeps the same fit
    assert "unstructured covariance (the smallest AIC)" in by_aic["estimator"]
    assert by_aic["estimate"] == pytest.approx(unstructured["estimate"], rel=1e-10)
    assert by_aic["ci_low"] == pytest.approx(unstructured["ci_low"], rel=1e-10)
    bad = runner.invoke(app, [*mmrm[:-1], "--covariance", "toeplitz"])
    assert bad.exit_code == 2
    assert "or 'aic', got 'toeplitz'" in bad.output and "Traceback" not in bad.output


def test_readable_table(emulated_store: EmulatedStore) -> None:
    result = runner.invoke(app, ["--db", emulated_store.url, "compare", *ARGS, *ARMS])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "ionto+exercise+manual − exercise" in text
    assert "week 6" in text and "ancova" in text and "95% CI" in text
    assert "excluded:" in text and "other_condition" in text
    assert "HC2" in text  # 6 clinics: HC2 chosen explicitly and said so


def _hand_ancova_arm_coefficient(d: pd.DataFrame) -> float:
    """The ANCOVA arm coefficient by numpy least squares on a design built by hand."""
    dummies = pd.get_dummies(d[["sex", "clinic_id"]], drop_first=True, dtype=float)
    x = np.column_stack(
        [
            d["treated"].to_numpy(float),
            np.ones(len(d)),
            d["baseline"],
            d["age_years"],
            d["symptom_duration_weeks"],
            dummies.to_numpy(),
        ]
    )
    beta, *_ = np.linalg.lstsq(x, d["follow_up"].to_numpy(float), rcond=None)
    return float(beta[0])


def test_per_protocol_json_matches_the_cohort_and_a_hand_fit(
    emulated_store: EmulatedStore,
) -> None:
    from data_schemas import store

    arms = ("ionto+exercise", "exercise")
    engine = store.connect(emulated_store.url)
    try:
        itt_like = run_compare(engine, ComparisonSpec("epicondylitis", "prtee", arms, week=12))
        linear = ("age_years", "sex", "symptom_duration_weeks")
        pp = run_compare(
            engine,
            ComparisonSpec(
                "epicondylitis", "prtee", arms, week=12, per_protocol=True, adjust_for=linear
            ),
        )
        sessions = load_sessions(engine)
    finally:
        engine.dispose()
    if sessions.empty:
        pytest.skip("no device sessions imported (device parsers not available)")
    assert pp.result.n["ionto+exercise"] < itt_like.result.n["ionto+exercise"]
    out = json.loads(pp.to_json())
    # the cohort's exclusions come from its attrition table, one row per step
    steps = pp.cohort.attrition.iloc[1:]
    for key, k in zip(steps["key"], steps["excluded"], strict=True):
        if k:
            assert out["excluded"][key] == k
    assert any(out["excluded"][k] > 0 for k in out["excluded"] if k.startswith("pp_"))
    # the estimate and n against an independent fit on the per-protocol episodes: numpy
    # least squares (same closed form as statsmodels, so only floating-point order differs)
    d, dropped = comparison_frame(
        pp.cohort.episodes, pp.cohort.outcomes, "prtee", 12, arms
    ).complete_cases()
    # the override holds (no intake score), and the stated set is the one fitted: numpy
    # least squares on the patsy design of exactly out["adjustment_set"]
    assert not any(t.startswith("intake_") for t in out["adjustment_set"])
    x = patsy.dmatrix(" + ".join(["treated", *out["adjustment_set"]]), d)
    beta, *_ = np.linalg.lstsq(np.asarray(x), d["follow_up"].to_numpy(float), rcond=None)
    arm = x.design_info.column_names.index("treated")
    assert out["estimate"] == pytest.approx(float(beta[arm]), abs=1e-8)
    if not any(t.startswith("cr(") for t in out["adjustment_set"]):
        assert out["estimate"] == pytest.approx(_hand_ancova_arm_coefficient(d), abs=1e-8)
    assert out["n"] == {a: int((d["arm"] == a).sum()) for a in arms}
    assert out["excluded"]["no_follow_up_in_window"] == dropped["no_follow_up_in_window"]
    assert out["ci_low"] < out["estimate"] < out["ci_high"]


def test_unknown_keys_and_empty_arms_fail_with_exit_2(emulated_store: EmulatedStore) -> None:
    bad = runner.invoke(
        app, ["--db", emulated_store.url, "compare", "--condition", "knee",
              "--instrument", "prtee", *ARMS],
    )  # fmt: skip
    assert bad.exit_code == 2 and "unknown condition" in bad.stderr
    none = runner.invoke(
        app, ["--db", emulated_store.url, "compare", "--condition", "bursitis",
              "--instrument", "prtee", *ARMS],
    )  # fmt: skip
    assert none.exit_code == 2 and "no episode is left" in " ".join(none.stderr.split())


def test_compare_frames_leaves_inputs_unchanged(emulated_store: EmulatedStore) -> None:
    from data_schemas import store

    engine = store.connect(emulated_store.url)
    try:
        ep, out = load_episodes(engine), load_outcomes(engine)
    finally:
        engine.dispose()
    ep0, out0 = ep.copy(deep=True), out.copy(deep=True)
    arms = ("exercise+manual", "exercise")
    r = compare_frames(ep, out, None, ComparisonSpec("plantar_fasciitis", "ffi", arms, week=12))
    assert r.cohort.attrition["excluded"].sum() + len(r.cohort.episodes) == len(ep)
    assert ep.equals(ep0) and out.equals(out0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "bayes"}, "method must be one of"),
        ({"week": 1}, "week must be 2 or more"),
        ({"week": "six"}, "whole number of weeks"),
        ({"arms": ("exercise",)}, "exactly two arms"),
        ({"per_protocol": True, "intention_to_treat": True}, "exclude each other"),
        ({"covariance": "unstructured"}, "covariance is an option of method 'mmrm'"),
    ],
)
def test_spec_refuses_bad_options(options: dict, message: str) -> None:
    base = {"condition": "plantar_fasciitis", "instrument": "ffi",
            "arms": ("exercise+manual", "exercise")}  # fmt: skip
    with pytest.raises(InputError, match=message):
        ComparisonSpec(**{**base, **options})


@pytest.mark.parametrize(
    "analysis_set",
    [{}, {"intention_to_treat": True}, {"per_protocol": True}],
    ids=["as_treated", "intention_to_treat", "per_protocol"],
)
def test_filtered_read_gives_the_unfiltered_answer(
    emulated_store: EmulatedStore, analysis_set: dict[str, bool]
) -> None:
    """run_compare reads only the cohort's outcome rows (condition, and the episodes of the
    compared arms: delivered, or planned for intention to treat); compare_frames on every
    row of the store must give the same estimate, counts and exclusions."""
    from data_schemas import store

    spec = ComparisonSpec(
        "epicondylitis", "prtee", ("ionto+exercise+manual", "exercise"), **analysis_set
    )
    engine = store.connect(emulated_store.url)
    try:
        filtered = run_compare(engine, spec)
        sessions = load_sessions(engine) if spec.per_protocol else None
        every = compare_frames(load_episodes(engine), load_outcomes(engine), sessions, spec)
        n_all = len(load_outcomes(engine))
    finally:
        engine.dispose()
    assert len(filtered.cohort.outcomes) < n_all
    assert filtered.result.estimate == every.result.estimate
    assert (filtered.result.ci_low, filtered.result.ci_high) == (
        every.result.ci_low,
        every.result.ci_high,
    )
    assert filtered.result.n == every.result.n and filtered.excluded == every.excluded
    assert filtered.cohort.outcomes.reset_index(drop=True).equals(
        every.cohort.outcomes.reset_index(drop=True)
    )


def test_text_fits_80_columns_and_names_window_analysis_set_and_mcid(
    emulated_store: EmulatedStore,
) -> None:
    from data_schemas.windows import window_text

    result = runner.invoke(
        app,
        ["--db", emulated_store.url, "compare", *ARGS, *ARMS, "--at-weeks", "12",
         "--per-protocol"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert window_text(12) in result.stdout  # "week 12 = days 70–98, nearest to day 84"
    assert "analysis set: per protocol" in result.stdout
    assert "MCID:" in result.stdout and "points" in result.stdout
    plain = runner.invoke(app, ["--db", emulated_store.url, "compare", *ARGS, *ARMS])
    assert "not per protocol" in plain.stdout


def test_json_carries_direction_mcid_window_and_provenance(emulated_store: EmulatedStore) -> None:
    from ionto_analytics.instruments import select_mcid
    from ionto_analytics.provenance import code_version

    result = runner.invoke(app, ["--db", emulated_store.url, "compare", *ARGS, *ARMS, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["higher_is_better"] is False  # PRTEE: lower is better
    assert out["mcid"]["points"] == select_mcid("prtee", week=6, allow_unverified=True).points
    assert out["window"] == {"week": 6, "first_day": 36, "last_day": 49,
                             "text": "week 6 = days 36–49, nearest to day 42"}  # fmt: skip
    assert len(out["data_hash"]) == 64 and int(out["data_hash"], 16) > 0
    assert out["code_version"] == code_version()
    assert out["analysis_set"].startswith("as treated")


def test_keys_ignore_case_and_a_typo_gets_did_you_mean(emulated_store: EmulatedStore) -> None:
    upper = runner.invoke(
        app,
        ["--db", emulated_store.url, "compare", "--condition", "Epicondylitis",
         "--instrument", "PRTEE", "--arms", "Ionto+Exercise+Manual", "EXERCISE", "--json"],
    )  # fmt: skip
    assert upper.exit_code == 0, upper.output
    assert json.loads(upper.stdout)["arms"] == ["ionto+exercise+manual", "exercise"]
    typo = runner.invoke(
        app,
        ["--db", emulated_store.url, "compare", "--condition", "epicondilitis",
         "--instrument", "prtee", *ARMS],
    )  # fmt: skip
    assert typo.exit_code == 2
    assert "did you mean epicondylitis" in typo.stderr
    arm = runner.invoke(
        app,
        ["--db", emulated_store.url, "compare", *ARGS, "--arms", "ionto+exercise", "exercse"],
    )  # fmt: skip
    assert arm.exit_code == 2 and "unknown arm 'exercse'; did you mean exercise" in arm.stderr


def test_a_week_without_follow_ups_says_so(emulated_store: EmulatedStore) -> None:
    result = runner.invoke(
        app, ["--db", emulated_store.url, "compare", *ARGS, *ARMS, "--at-weeks", "52"]
    )
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "has a prtee score in the window week 52 = days" in message
    assert "choose an earlier --at-weeks" in message and "{}" not in message


def test_an_empty_store_says_it_has_no_episodes(tmp_path) -> None:
    from data_schemas import store

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = store.connect(url)
    store.upgrade(engine)
    engine.dispose()
    result = runner.invoke(app, ["--db", url, "compare", *ARGS, *ARMS])
    assert result.exit_code == 2
    assert "the store has 0 episodes" in " ".join(result.stderr.split())


def test_json_errors_are_a_json_object_on_stdout(emulated_store: EmulatedStore, tmp_path) -> None:
    for db, instrument, expected in (
        (emulated_store.url, "prte", "unknown instrument 'prte'; did you mean prtee?"),
        (f"sqlite:///{tmp_path / 'missing.db'}", "prtee", "no store at"),
    ):
        result = runner.invoke(
            app,
            ["--db", db, "compare", "--condition", "epicondylitis", "--instrument", instrument,
             *ARMS, "--json"],
        )  # fmt: skip
        assert result.exit_code == 2
        out = json.loads(result.stdout)
        assert set(out) == {"error", "exit_status"} and out["exit_status"] == 2
        assert expected in out["error"]
    assert not (tmp_path / "missing.db").exists()


def test_known_key_refuses_with_every_key() -> None:
    from ionto_analytics.compare.command import known_key

    with pytest.raises(InputError, match=r"unknown arm 'yoga'; expected one of: a, b$"):
        known_key("yoga", ["a", "b"], "arm")
