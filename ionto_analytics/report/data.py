"""Read what the quarterly report needs from the store, once.

The four analysis frames come from :mod:`ionto_analytics.loaders` (validated; the loader's
warnings about rows it had to leave out are kept, not lost); the rest — visit dates,
screening answers, adverse events, link status and the import ledger — from
:func:`ionto_analytics.loaders.load_report_tables`. Nothing identifying is read.

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> data = load_report_data(engine)
>>> len(data.episodes), len(data.ledger), data.backend
(0, 0, 'sqlite')
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import Engine

from ionto_analytics.errors import StatisticalWarning
from ionto_analytics.loaders import (
    load_episodes,
    load_outcomes,
    load_report_tables,
    load_sessions,
)

__all__ = ["ReportData", "load_report_data"]


@dataclass(frozen=True, eq=False)
class ReportData:
    """Every frame the report's sections are computed from.

    Attributes
    ----------
    episodes, outcomes, sessions : DataFrame
        :mod:`ionto_analytics.loaders` frames (``patient_id`` is a pseudonym: never printed).
    interventions : DataFrame
        Iontophoresis lines only (``episode_id``, ``visit_id``, ``modality``): the report
        needs no other intervention, and the full frame is the slowest to load.
    visits : DataFrame
        ``visit_id``, ``episode_id``, ``visit_date``, ``kind``.
    screening : DataFrame
        ``episode_id`` and one nullable boolean column per contraindication.
    adverse_events : DataFrame
        ``episode_id``, ``event_type``, ``grade``, ``onset_date``.
    session_links : DataFrame
        Current sessions: ``session_id``, ``link_status``, ``started_at_utc``,
        ``device_model``, ``clinic_id`` (the session's, else the device's).
    ledger : DataFrame
        ``sha256``, ``format``, ``status``, ``imported_at_utc``, ``row_count``.
    load_warnings : tuple of str
        What the loader left out of its frames, and why.
    backend : str
    """

    episodes: pd.DataFrame
    outcomes: pd.DataFrame
    sessions: pd.DataFrame
    interventions: pd.DataFrame
    visits: pd.DataFrame
    screening: pd.DataFrame
    adverse_events: pd.DataFrame
    session_links: pd.DataFrame
    ledger: pd.DataFrame
    load_warnings: tuple[str, ...] = field(default=())
    backend: str = "sqlite"


def load_report_data(engine: Engine) -> ReportData:
    """Load the frames and tables of :class:`ReportData` from a migrated store.

    Parameters
    ----------
    engine : sqlalchemy.Engine

    Returns
    -------
    ReportData
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        episodes = load_episodes(engine)
        outcomes = load_outcomes(engine)
        sessions = load_sessions(engine)
    notes = tuple(str(w.message) for w in caught if issubclass(w.category, StatisticalWarning))
    tables = load_report_tables(engine)
    return ReportData(
        episodes=episodes,
        outcomes=outcomes,
        sessions=sessions,
        **tables,
        load_warnings=notes,
        backend=engine.dialect.name,
    )
