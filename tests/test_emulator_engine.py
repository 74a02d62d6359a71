"""The engine's plumbing: named random streams and the refusals of bad run settings."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from data_schemas.errors import InputError
from emulator import ScenarioError, emulate
from emulator.scenario import scenario_path
from emulator.streams import DRAWS, IDENTIFIERS, PURPOSES, id_keys, streams


def test_every_purpose_has_a_stream_of_its_own() -> None:
    assert len(set(PURPOSES)) == len(PURPOSES) == len(DRAWS) + len(IDENTIFIERS)
    firsts = {p: g.integers(0, 2**62) for p, g in streams(5, chunk=1).items()}
    assert len(set(firsts.values())) == len(DRAWS)
    assert len(set(id_keys(5).values())) == len(IDENTIFIERS)


def test_drawing_more_from_one_purpose_leaves_the_others_unchanged() -> None:
    greedy, plain = streams(5), streams(5)
    greedy["population"].random(10_000)
    for p in DRAWS:
        if p != "population":
            assert greedy[p].random() == plain[p].random(), p


def test_chunks_and_seeds_get_different_streams() -> None:
    first = streams(5, 0)["outcomes"].random(4)
    assert not np.array_equal(first, streams(5, 1)["outcomes"].random(4))
    assert not np.array_equal(first, streams(6, 0)["outcomes"].random(4))
    assert id_keys(5) != id_keys(6)


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"patients": 0}, "patients must be a whole number above 0 (got 0)"),
        ({"clinics": -2}, "clinics must be a whole number above 0 (got -2)"),
        ({"clinics": 2.5}, "clinics must be a whole number above 0 (got 2.5)"),
        ({"seed": -1}, "seed must be a non-negative integer (got -1)"),
        (
            {"start": dt.date(2025, 6, 1), "end": dt.date(2025, 1, 1)},
            "(got start 2025-06-01, end 2025-01-01); swap them",
        ),
    ],
)
def test_bad_run_settings_are_input_errors_that_touch_nothing(
    tmp_path: Path, settings: dict, says: str
) -> None:
    keep = tmp_path / "ehr" / "keep.csv"
    keep.parent.mkdir()
    keep.write_text("earlier output\n")
    with pytest.raises(InputError) as info:
        emulate(tmp_path, **settings)
    assert says in str(info.value)
    assert keep.read_text() == "earlier output\n"


def test_unknown_scenario_name_lists_the_shipped_ones() -> None:
    with pytest.raises(InputError, match=r"no shipped scenario named 'nope'.*default"):
        scenario_path("nope")


def test_scenario_errors_belong_to_the_project_hierarchy() -> None:
    error = ScenarioError("x.yaml", ["dropout.rate: expected a share"])
    assert isinstance(error, InputError) and isinstance(error, ValueError)
