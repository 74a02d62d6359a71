"""``ionto compare`` on a small emulated store: JSON shape, readable table, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ionto.cli import app
from ionto_analytics.compare_command import compare_frames, run_compare
from ionto_analytics.errors import InputError
from ionto_analytics.load import load_episodes, load_outcomes, load_sessions
from tests.proof_fixtures import EmulatedStore

runner = CliRunner()
ARGS = ["--condition", "epicondylitis", "--instrument", "prtee"]
ARMS = ["--arms", "ionto+exercise+manual", "exercise"]
KEYS = {
    "condition",
    "instrument",
    "arms",
    "weeks",
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
    assert out["weeks"] == 12 and out["method"] == method
    assert out["ci_low"] < out["estimate"] < out["ci_high"]
    assert 0 <= out["p_value"] <= 1
    assert set(out["n"]) == set(out["arms"]) and min(out["n"].values()) > 20
    assert out["excluded"]["other_condition"] > 0
    assert all(isinstance(v, int) and v > 0 for v in out["excluded"].values())


def test_readable_table(emulated_store: EmulatedStore) -> None:
    result = runner.invoke(app, ["--db", emulated_store.url, "compare", *ARGS, *ARMS])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "ionto+exercise+manual − exercise" in text
    assert "week 6" in text and "ancova" in text and "95% CI" in text
    assert "excluded:" in text and "other_condition" in text
    assert "HC3" in text  # 6 clinics: HC3 chosen explicitly and said so


def test_per_protocol_uses_the_device_logs(emulated_store: EmulatedStore) -> None:
    from data_schemas import store

    engine = store.connect(emulated_store.url)
    try:
        itt_like = run_compare(
            engine, condition="epicondylitis", instrument="prtee",
            arms=("ionto+exercise", "exercise"), week=12,
        )  # fmt: skip
        pp = run_compare(
            engine, condition="epicondylitis", instrument="prtee",
            arms=("ionto+exercise", "exercise"), week=12, per_protocol=True,
        )  # fmt: skip
        sessions = load_sessions(engine)
    finally:
        engine.dispose()
    if sessions.empty:
        pytest.skip("no device sessions imported (device parsers not available)")
    assert pp.result.n["ionto+exercise"] < itt_like.result.n["ionto+exercise"]
    assert any(k.startswith("pp_") for k in pp.excluded)
    assert pp.to_dict()["excluded"] == pp.excluded


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
    assert none.exit_code == 2 and "no episode is left" in none.stderr


def test_compare_frames_leaves_inputs_unchanged(emulated_store: EmulatedStore) -> None:
    from data_schemas import store

    engine = store.connect(emulated_store.url)
    try:
        ep, out = load_episodes(engine), load_outcomes(engine)
    finally:
        engine.dispose()
    ep0, out0 = ep.copy(deep=True), out.copy(deep=True)
    r = compare_frames(
        ep, out, None, condition="plantar_fasciitis", instrument="ffi",
        arms=("exercise+manual", "exercise"), week=12,
    )  # fmt: skip
    assert r.cohort.attrition["excluded"].sum() + len(r.cohort.episodes) == len(ep)
    assert ep.equals(ep0) and out.equals(out0)
    with pytest.raises(InputError, match="method"):
        compare_frames(ep, out, None, condition="plantar_fasciitis", instrument="ffi",
                       arms=("exercise+manual", "exercise"), method="bayes")  # fmt: skip
