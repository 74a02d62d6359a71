"""Read the store tables the quarterly report needs besides the four analysis frames.

Visit dates, screening answers, adverse events, session link status, the iontophoresis
interventions and the import ledger: small read-only queries built on
:func:`~ionto_analytics.loaders.access.table` and
:func:`~ionto_analytics.loaders.access.read`. Nothing identifying is read: no names, no birth
dates, no free text (``quarantine_reason`` and file names are not read either).

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> sorted(load_report_tables(engine))
['adverse_events', 'interventions', 'ledger', 'screening', 'session_links', 'visits']
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
from sqlalchemy import Engine, func, select

from data_schemas.vocabulary import CONTRAINDICATIONS
from ionto_analytics.loaders.access import naive_dates, read, table

__all__ = ["last_visit_date", "load_ledger", "load_report_tables"]


def _session_links(engine: Engine) -> pd.DataFrame:
    se, dv, cl = table("ionto_session"), table("device"), table("clinic")
    dev_clinic = cl.alias("device_clinic")
    links = read(
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
        driver_rows=True,
    )
    links["clinic_id"] = links["session_clinic"].fillna(links["device_clinic"])
    links = links.drop(columns=["session_clinic", "device_clinic"])
    links["started_at_utc"] = pd.to_datetime(links["started_at_utc"], utc=True)
    return links


def load_report_tables(engine: Engine) -> dict[str, pd.DataFrame]:
    """The report's extra tables by name.

    Rows are read as the driver returns them (``driver_rows``: the visit table has a
    quarter of a million rows in a 10,000-episode quarter); dates are parsed and booleans
    made nullable here.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.

    Returns
    -------
    dict of DataFrame
        ``interventions`` (iontophoresis lines: ``episode_id``, ``visit_id``,
        ``modality``), ``visits`` (``visit_id``, ``episode_id``, ``visit_date``, ``kind``),
        ``screening`` (``episode_id`` and one nullable boolean per contraindication),
        ``adverse_events`` (``episode_id``, ``event_type``, ``grade``, ``onset_date``),
        ``session_links`` (current sessions: ``session_id``, ``link_status``,
        ``started_at_utc``, ``device_model``, ``clinic_id`` — the session's, else the
        device's) and ``ledger`` (``sha256``, ``format``, ``status``, ``imported_at_utc``,
        ``row_count``).
    """
    vi, ep, ae = table("visit"), table("episode"), table("adverse_event")
    iv = table("intervention")
    interventions = read(
        engine,
        select(
            ep.c.episode_key.label("episode_id"), vi.c.visit_key.label("visit_id"), iv.c.modality
        )
        .select_from(iv.join(vi, vi.c.id == iv.c.visit_id).join(ep, ep.c.id == vi.c.episode_id))
        .where(iv.c.modality == "iontophoresis"),
        driver_rows=True,
    )
    visits = read(
        engine,
        select(
            vi.c.visit_key.label("visit_id"),
            ep.c.episode_key.label("episode_id"),
            vi.c.visit_date,
            vi.c.kind,
        ).select_from(vi.join(ep, ep.c.id == vi.c.episode_id)),
        driver_rows=True,
    )
    visits["visit_date"] = naive_dates(visits["visit_date"])
    screening = read(
        engine,
        select(ep.c.episode_key.label("episode_id"), *(ep.c[c] for c in CONTRAINDICATIONS)),
        driver_rows=True,
    )
    for c in CONTRAINDICATIONS:
        screening[c] = screening[c].astype("boolean")
    adverse = read(
        engine,
        select(
            ep.c.episode_key.label("episode_id"), ae.c.event_type, ae.c.grade, ae.c.onset_date
        ).select_from(ae.join(ep, ep.c.id == ae.c.episode_id)),
        driver_rows=True,
    )
    adverse["onset_date"] = naive_dates(adverse["onset_date"])
    return {
        "interventions": interventions,
        "visits": visits,
        "screening": screening,
        "adverse_events": adverse,
        "session_links": _session_links(engine),
        "ledger": load_ledger(engine),
    }


def load_ledger(engine: Engine) -> pd.DataFrame:
    """The import ledger: ``sha256``, ``format``, ``status``, ``imported_at_utc``,
    ``row_count`` per imported file, by ``sha256`` (no file names).

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> load_ledger(engine).columns.tolist()
    ['sha256', 'format', 'status', 'imported_at_utc', 'row_count']
    """
    imp = table("import_file")
    ledger = read(
        engine,
        select(
            imp.c.sha256, imp.c.format, imp.c.status, imp.c.imported_at_utc, imp.c.row_count
        ).order_by(imp.c.sha256),
        driver_rows=True,
    )
    ledger["imported_at_utc"] = pd.to_datetime(ledger["imported_at_utc"], utc=True)
    return ledger


def last_visit_date(engine: Engine) -> dt.date | None:
    """The date of the store's last visit (None for a store without visits): one query.

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> last_visit_date(engine) is None
    True
    """
    vi = table("visit")
    days = naive_dates(read(engine, select(func.max(vi.c.visit_date).label("day")))["day"])
    return None if days.isna().all() else days.iloc[0].date()
