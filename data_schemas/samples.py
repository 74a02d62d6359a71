"""Packing of session samples into one compact value per session.

Samples (time from session start in s, current mA, voltage V, impedance ohm) are stored as
an Arrow IPC stream with LZ4 compression in :class:`data_schemas.tables.SessionTrace`.

Examples
--------
>>> import numpy as np
>>> samples = SessionSamples(
...     t_s=np.array([0.0, 1.0]), current_mA=np.array([0.1, 0.2]),
...     voltage_V=np.array([1.0, 2.0]), impedance_ohm=np.array([10_000.0, 9_000.0]))
>>> unpack_samples(pack_samples(samples)).current_mA.tolist()
[0.1, 0.2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

COLUMNS = ("t_s", "current_mA", "voltage_V", "impedance_ohm")
_SCHEMA = pa.schema([(name, pa.float64()) for name in COLUMNS])
_WRITE_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4", use_threads=False)
"""A session is small: compressing its four columns on threads costs more than it saves."""


@dataclass(frozen=True)
class SessionSamples:
    """The samples of one session, as equal-length float arrays in SI-clinic units."""

    t_s: np.ndarray
    current_mA: np.ndarray
    voltage_V: np.ndarray
    impedance_ohm: np.ndarray

    def __len__(self) -> int:
        return len(self.t_s)

    def to_frame(self) -> pd.DataFrame:
        """The samples as a tidy DataFrame with one column per quantity."""
        return pd.DataFrame({name: getattr(self, name) for name in COLUMNS})


def pack_samples(samples: SessionSamples) -> bytes:
    """Serialize samples to compressed Arrow IPC bytes (one record batch)."""
    batch = pa.RecordBatch.from_arrays(
        [pa.array(np.asarray(getattr(samples, name), dtype=np.float64)) for name in COLUMNS],
        schema=_SCHEMA,
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, _SCHEMA, options=_WRITE_OPTIONS) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def unpack_samples(packed: bytes) -> SessionSamples:
    """Read samples written by :func:`pack_samples`."""
    table = pa.ipc.open_stream(pa.py_buffer(packed)).read_all()
    return SessionSamples(**{name: table.column(name).to_numpy() for name in COLUMNS})
