"""Scenario files: every shipped scenario loads; the validator reports every error with its path."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from data_schemas.vocabulary import ARMS
from emulator import emulate
from emulator.assignment import arm_probabilities, assign_arms, true_arm_probabilities
from emulator.scenario import (
    ScenarioError,
    load_scenario,
    resolve_clinics,
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


DEFAULT_DIGEST = "caabb05fd1c3a9acbda4d7ff0f6fe8fb2ec73c73cab654d20becd55a712f1adb"
"""SHA-256 over (relative path, bytes) of every file of ``emulate(patients=60, clinics=3,
seed=3)`` on the default scenario, computed on main before the ``severity_squared``
assignment term existed, and again when ``ground_truth.json`` gained the windowed estimand
(every other file byte-identical, and the effects' earlier fields too). An intended change
of the default output updates it (and says so in the commit)."""


def _tree_digest(root: Path, skip: tuple[str, ...] = ()) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.name not in skip:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_default_output_bytes_unchanged_by_the_nonlinear_term(tmp_path: Path) -> None:
    """The default scenario's output is byte-identical to before the term existed, and
    stating ``severity_squared: 0`` explicitly changes nothing but the copy of the scenario
    file (and the manifest that hashes it)."""
    plain = emulate(tmp_path / "plain", patients=60, clinics=3, seed=3)
    assert _tree_digest(plain.out_dir) == DEFAULT_DIGEST
    s = copy.deepcopy(load_scenario())
    s["assignment"]["ionto"]["severity_squared"] = 0.0
    s["assignment"]["manual"]["severity_squared"] = 0.0
    path = tmp_path / "explicit_zero.yaml"
    # key order kept: the emulator draws in the scenario's order
    path.write_text(yaml.safe_dump(s, sort_keys=False), encoding="utf-8")
    explicit = emulate(tmp_path / "explicit", scenario=path, patients=60, clinics=3, seed=3)
    copies = ("scenario.yaml", "manifest.json")
    assert _tree_digest(explicit.out_dir, copies) == _tree_digest(plain.out_dir, copies)


def test_severity_squared_is_validated() -> None:
    s = copy.deepcopy(load_scenario())
    s["assignment"]["ionto"]["severity_squared"] = 7.0
    s["assignment"]["manual"]["severity_squared"] = "curved"
    assert validate_scenario(s) == [
        "assignment.ionto.severity_squared: expected a number in [-3, 3], got 7.0",
        "assignment.manual.severity_squared: expected a number, got 'curved'",
    ]


def test_severity_squared_makes_treatment_choice_non_linear() -> None:
    """With a convex term, both ends of severity get iontophoresis more often than the
    middle; without it the share rises monotonically with the linear severity term."""
    s = copy.deepcopy(load_scenario())
    sev = np.array([-2.0, 0.0, 2.0])
    eps = pd.DataFrame(
        {
            "severity_z": sev,
            "age": 47,
            "female": False,
            "symptom_duration_months": 4.0,
            "clinic": 0,
            "contraindicated": False,
        }
    )
    clinics = resolve_clinics(s, 1)
    ionto = [j for j, a in enumerate(ARMS) if "iontophoresis" in s["arms"][a]["modalities"]]
    linear = arm_probabilities(s, clinics, eps)[:, ionto].sum(axis=1)
    assert linear[0] < linear[1] < linear[2]
    s["assignment"]["ionto"]["severity"] = s["assignment"]["manual"]["severity"] = 0.0
    s["assignment"]["ionto"]["severity_squared"] = 0.6
    curved = arm_probabilities(s, clinics, eps)[:, ionto].sum(axis=1)
    assert curved[0] == pytest.approx(curved[2]) and curved[0] > curved[1] + 0.3


def test_true_arm_probabilities_are_the_delivered_arms_frequencies() -> None:
    """Over 200,000 draws of three covariate profiles (one contraindicated), the delivered
    arms of ``assign_arms`` fall with the frequencies ``true_arm_probabilities`` states,
    which move the no-prescription share of each planned iontophoresis arm elsewhere."""
    s = copy.deepcopy(load_scenario())
    s["assignment"]["deviation_no_ionto"] = 0.2
    n = 200_000
    eps = pd.DataFrame(
        {
            "severity_z": np.tile([-1.0, 0.5, 1.5], n // 2)[:n],
            "age": 55,
            "female": True,
            "symptom_duration_months": 6.0,
            "clinic": 1,
            "contraindicated": np.tile([False, False, True], n // 2)[:n],
        }
    )
    clinics = resolve_clinics(s, 2)
    p = true_arm_probabilities(s, clinics, eps)
    planned = arm_probabilities(s, clinics, eps)
    assert not np.allclose(p, planned)
    _, true = assign_arms(np.random.default_rng(11), s, clinics, eps)
    for profile in range(3):
        rows = np.arange(n) % 3 == profile
        seen = np.array([(true[rows] == a).mean() for a in ARMS])
        expected = p[rows][0]
        sd = np.sqrt(expected * (1 - expected) / rows.sum())
        assert np.all(np.abs(seen - expected) <= 4 * sd + 1e-12), (profile, seen, expected)


def test_stress_scenario_differs_in_the_three_mechanisms() -> None:
    default, stress = load_scenario("default"), load_scenario("stress")
    assert stress["dropout"]["rate"] > default["dropout"]["rate"]
    assert (
        stress["dropout"]["improvement_log_odds_per_sd"]
        > 2 * default["dropout"]["improvement_log_odds_per_sd"]
    )
    assert stress["assignment"]["ionto"]["severity_squared"] > 0
    assert max(c["ionto_log_odds"] for c in stress["clinics"]["templates"]) >= 4
    same = ("effects", "arms", "conditions", "instruments", "population", "schedule")
    assert all(stress[k] == default[k] for k in same)
