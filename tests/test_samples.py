"""Packing session samples for the store: lossless and compact."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from data_schemas.samples import SessionSamples, pack_samples, unpack_samples

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(
    st.integers(min_value=0, max_value=500).flatmap(
        lambda n: st.tuples(*(arrays(np.float64, n, elements=finite) for _ in range(4)))
    )
)
def test_pack_then_unpack_is_lossless(columns: tuple[np.ndarray, ...]) -> None:
    samples = SessionSamples(*columns)
    restored = unpack_samples(pack_samples(samples))
    for name in ("t_s", "current_mA", "voltage_V", "impedance_ohm"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(samples, name))


def test_a_clinic_session_packs_smaller_than_its_raw_floats() -> None:
    t = np.arange(900.0)
    current = np.clip(t / 30.0, 0, 1) * 4.0
    impedance = 10_000 * (0.6 + 0.4 * np.exp(-t / 120))
    samples = SessionSamples(t, current, current * impedance / 1000, impedance)
    assert len(pack_samples(samples)) < 4 * 8 * len(t)
    assert len(samples.to_frame()) == 900
