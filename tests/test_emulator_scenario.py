"""Scenario files: every shipped scenario loads; the validator reports every error with its path."""

from __future__ import annotations

import copy

import pytest
import yaml

from emulator.scenario import (
    ScenarioError,
    load_scenario,
    shipped_scenarios,
    validate_scenario,
)


@pytest.mark.parametrize("name", shipped_scenarios())
def test_every_shipped_scenario_loads(name: str) -> None:
    s = load_scenario(name)
    assert validate_scenario(s) == []
    assert s["scenario_version"] == 1


def test_validator_reports_every_error_with_its_path() -> None:
    s = copy.deepcopy(load_scenario())
    s["effects"]["ionto_smd"] = "x"
    s["physics"]["clinic_unit"]["impedance_initial_kohm"] = [15.0, 5.0]
    del s["dropout"]["source"]
    s["population"]["source"] = "S10, maybe"
    s["arms"]["ionto+exercise"]["intercept"] = "high"
    s["conditions"]["plantar_fasciitis"]["baseline"]["ffi"] = [50.0]
    s["instruments"]["bogus"] = {}
    errors = validate_scenario(s)
    expected = [
        "effects.ionto_smd: expected a number, got 'x'",
        "physics.clinic_unit.impedance_initial_kohm: low 15.0 is above high 5.0",
        "dropout.source: required key is missing",
        "population.source: expected DOMAIN.md tags like 'S10, K, A', got 'S10, maybe'",
        "arms.ionto+exercise.intercept: expected a number, got 'high'",
        "conditions.plantar_fasciitis.baseline.ffi: expected a [mean, sd] pair, got list [50.0]",
        "instruments.bogus: unknown key",
    ]
    for e in expected:
        assert e in errors
    assert len(errors) == len(expected)


def test_cross_checks_run_when_shapes_are_right() -> None:
    s = copy.deepcopy(load_scenario())
    s["population"]["condition_mix"]["bursitis"] = 0.5
    s["conditions"]["rheumatoid"]["primary"] = "visa_a"
    errors = validate_scenario(s)
    prefix = "population.condition_mix: expected shares summing to 1"
    assert any(e.startswith(prefix) for e in errors)
    assert "conditions.rheumatoid.primary: 'visa_a' is not in instruments" in errors


def test_load_raises_with_all_errors(tmp_path) -> None:
    s = copy.deepcopy(load_scenario())
    s["effects"]["ionto_smd"] = "x"
    s["dropout"]["rate"] = 2.0
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(s), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert len(info.value.errors) == 2
    assert "dropout.rate" in str(info.value)


def test_every_parameter_block_has_a_source() -> None:
    s = load_scenario()
    for key in (
        "defaults",
        "clinics",
        "devices",
        "faults",
        "skin",
        "drug",
        "population",
        "instruments",
        "arms",
        "assignment",
        "effects",
        "schedule",
        "dropout",
    ):
        assert s[key]["source"], key
    for cond in s["conditions"].values():
        assert cond["source"]
