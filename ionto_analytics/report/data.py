"""Read what the quarterly report needs from the store, once.

The four analysis frames come from :mod:`ionto_analytics.load` (validated; the loader's
warnings about rows it had to leave out are kept, not lost); the rest — visit dates,
screening answers, adverse events, link status and the import ledger — are small
read-only queries on the store tables here. Nothing identifying is read: no names, no
birth dates, no free text (``quarantine_reason`` and file names are not read either).

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
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from data_schemas import tables as _tables  # noqa: F401  (registers the tables)
from data_schemas.vocabulary import CONTRAINDICATIONS
from ionto_analytics.errors import StatisticalWarning
from ionto_analytics.load import load_episodes, load_outcomes, load_sessions, naive_dates

__all__ = ["ReportData", "load_report_data"]


@dataclass(frozen=True, eq=False)
class ReportData:
    """Every frame the report's sections are computed from.

    Attributes
    ----------
    episodes, outcomes, sessions : DataFrame
        :mod:`ionto_analytics.load` frames (``patient_id`` is a pseudonym: never printed).
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


def _t(name: str):
    return SQLModel.metadata.tables[name]


def _read(engine: Engine, query) -> pd.DataFrame:
    """Rows as the driver returns them (plain tuples; no per-row SQLAlchemy ``Row``): the
    visit table has a quarter of a million rows in a 10,000-episode quarter. Types are
    set by the caller (dates parsed, booleans made nullable)."""
    with engine.connect() as connection:
        result = connection.execute(query)
        columns = list(result.keys())
        rows = result.cursor.fetchall() if result.cursor is not None else []
        return pd.DataFrame.from_records(rows, columns=columns)


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
    vi, ep, ae, se = _t("visit"), _t("episode"), _t("adverse_event"), _t("ionto_session")
    dv, cl, imp = _t("device"), _t("clinic"), _t("import_file")
    iv = _t("intervention")
    interventions = _read(
        engine,
        select(
            ep.c.episode_key.label("episode_id"), vi.c.visit_key.label("visit_id"), iv.c.modality
        )
        .select_from(iv.join(vi, vi.c.id == iv.c.visit_id).join(ep, ep.c.id == vi.c.episode_id))
        .where(iv.c.modality == "iontophoresis"),
    )
    visits = _read(
        engine,
        select(
            vi.c.visit_key.label("visit_id"),
            ep.c.episode_key.label("episode_id"),
            vi.c.visit_date,
            vi.c.kind,
        ).select_from(vi.join(ep, ep.c.id == vi.c.episode_id)),
    )
    visits["visit_date"] = naive_dates(visits["visit_date"])
    screening = _read(
        engine,
        select(ep.c.episode_key.label("episode_id"), *(ep.c[c] for c in CONTRAINDICATIONS)),
    )
    for c in CONTRAINDICATIONS:
        screening[c] = screening[c].astype("boolean")
    adverse = _read(
        engine,
        select(
            ep.c.episode_key.label("episode_id"), ae.c.event_type, ae.c.grade, ae.c.onset_date
        ).select_from(ae.join(ep, ep.c.id == ae.c.episode_id)),
    )
    adverse["onset_date"] = naive_dates(adverse["onset_date"])
    dev_clinic = cl.alias("device_clinic")
    links = _read(
        engine,
        select(
            se.c.session_key.label("session_id"),
            se.c.link_status,
            se.c.started_at_utc,
            dv.c.model.label("device_model"),
            cl.c.clinic_key.label("session_clinic"),
            dev_clinic.c.clinic_key.label("device_clinic"),
        )
        .select_from(
            se.join(dv, dv.c.id == se.c.device_id)
            .outerjoin(cl, cl.c.id == se.c.clinic_id)
            .outerjoin(dev_clinic, dev_clinic.c.id == dv.c.clinic_id)
        )
        .where(se.c.is_current.is_(True)),
    )
    links["clinic_id"] = links["session_clinic"].fillna(links["device_clinic"])
    links = links.drop(columns=["session_clinic", "device_clinic"])
    links["started_at_utc"] = pd.to_datetime(links["started_at_utc"], utc=True)
    ledger = _read(
        engine,
        select(
            imp.c.sha256, imp.c.format, imp.c.status, imp.c.imported_at_utc, imp.c.row_count
        ).order_by(imp.c.sha256),
    )
    ledger["imported_at_utc"] = pd.to_datetime(ledger["imported_at_utc"], utc=True)
    return ReportData(
        episodes=episodes,
        outcomes=outcomes,
        sessions=sessions,
        interventions=interventions,
        visits=visits,
        screening=screening,
        adverse_events=adverse,
        session_links=links,
        ledger=ledger,
        load_warnings=notes,
        backend=engine.dialect.name,
    )
