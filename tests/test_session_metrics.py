"""Figures derived from a session's samples agree with their plain numpy definitions."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from device_import.session_metrics import median, recomputed_dose_mA_min

FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(arrays(np.float64, st.integers(1, 300), elements=FINITE))
def test_median_is_numpys_median(values: np.ndarray) -> None:
    assert median(values.copy()) == float(np.median(values))


def test_median_leaves_its_input_alone() -> None:
    values = np.array([5.0, 1.0, 4.0, 2.0])
    median(values)
    assert values.tolist() == [5.0, 1.0, 4.0, 2.0]


def test_recomputed_dose_of_a_ramped_session() -> None:
    t_s = np.arange(0.0, 721.0)
    current = np.minimum(t_s / 60.0, 4.0)  # 4-minute ramp to 4 mA (8 mA·min), 8 flat (32)
    assert abs(recomputed_dose_mA_min(t_s, current) - 40.0) < 1e-9
