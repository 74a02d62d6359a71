"""Read the device-quality columns and session samples from the store.

* :func:`load_session_details` – :func:`ionto_analytics.loaders.frames.load_sessions` plus the
  columns device quality needs (current, electrode area, recomputed dose, link status).
* :func:`load_session_samples` – one session's stored samples and what its trace viewer
  needs to place phases and faults.

Both use :func:`~ionto_analytics.loaders.access.table` and
:func:`~ionto_analytics.loaders.access.read`.

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> len(load_session_details(engine))
0
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sqlalchemy import Engine, and_, select

from data_schemas.samples import unpack_samples
from ionto_analytics.errors import InputError
from ionto_analytics.loaders.access import read, table
from ionto_analytics.loaders.frames import load_sessions

__all__ = ["StoredTrace", "load_session_details", "load_session_samples"]


def load_session_details(engine: Engine) -> pd.DataFrame:
    """The session frame plus the device-quality columns of the store.

    :func:`ionto_analytics.loaders.frames.load_sessions` (validated, current versions only) joined
    with ``prescribed_current_mA``, ``peak_current_mA``, ``electrode_area_cm2``,
    ``peak_density_mA_per_cm2``, ``recomputed_dose_mA_min``, ``dose_mismatch``,
    ``active_polarity``, ``drug``, ``duration_s``, ``truncated`` and ``link_status``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> "recomputed_dose_mA_min" in load_session_details(engine).columns
    True
    """
    base = load_sessions(engine)
    se = table("ionto_session")
    query = select(
        se.c.session_key.label("session_id"),
        se.c.prescribed_current_mA,
        se.c.peak_current_mA,
        se.c.electrode_area_cm2,
        se.c.recomputed_dose_mA_min,
        se.c.dose_mismatch,
        se.c.active_polarity,
        se.c.drug,
        se.c.duration_s,
        se.c.truncated,
        se.c.link_status,
    ).where(and_(se.c.is_current.is_(True)))
    extra = read(engine, query)
    for c in (
        "prescribed_current_mA",
        "peak_current_mA",
        "electrode_area_cm2",
        "recomputed_dose_mA_min",
        "duration_s",
    ):
        extra[c] = pd.to_numeric(extra[c]).astype(float)
    for c in ("dose_mismatch", "truncated"):
        extra[c] = extra[c].astype(bool)
    extra["peak_density_mA_per_cm2"] = extra["peak_current_mA"] / extra["electrode_area_cm2"]
    extra = extra.drop_duplicates("session_id")
    return base.merge(extra, on="session_id", how="left", validate="one_to_one")


@dataclass(frozen=True, eq=False)
class StoredTrace:
    """One session's samples and the session facts its trace needs.

    Attributes
    ----------
    samples : DataFrame
        ``t_s``, ``current_mA``, ``voltage_V``, ``impedance_ohm`` as stored.
    prescribed_current_mA : float or None
    fault_codes : str or None
        ';'-joined fault codes.
    end_reason : str or None
    device_model : str
    """

    samples: pd.DataFrame
    prescribed_current_mA: float | None
    fault_codes: str | None
    end_reason: str | None
    device_model: str


def load_session_samples(engine: Engine, session_id: str) -> StoredTrace:
    """The stored samples of the current version of one session.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.
    session_id : str
        ``session_id`` of the session frame (the store's ``session_key``).

    Raises
    ------
    InputError
        When the session, or its samples, are not in the store.

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> load_session_samples(engine, "nope")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: session 'nope' is not in the store ...
    """
    se, tr, dv = table("ionto_session"), table("session_trace"), table("device")
    query = (
        select(
            se.c.prescribed_current_mA,
            se.c.fault_codes,
            se.c.end_reason,
            dv.c.model,
            tr.c.packed_samples,
        )
        .select_from(
            se.join(dv, dv.c.id == se.c.device_id).outerjoin(tr, tr.c.session_id == se.c.id)
        )
        .where(and_(se.c.session_key == str(session_id), se.c.is_current.is_(True)))
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        raise InputError(
            f"session {session_id!r} is not in the store (or has no current version); "
            "take a session_id from load_sessions()"
        )
    if row.packed_samples is None:
        raise InputError(f"session {session_id!r} has no samples stored (session_trace table)")
    current = row.prescribed_current_mA
    return StoredTrace(
        samples=unpack_samples(bytes(row.packed_samples)).to_frame(),
        prescribed_current_mA=None if current is None else float(current),
        fault_codes=row.fault_codes,
        end_reason=row.end_reason,
        device_model=row.model,
    )
