"""Read the store into the tidy, validated frames of :mod:`data_schemas.frames`.

One SQLAlchemy Core query per frame, built from the ``Table`` objects of
``SQLModel.metadata`` (so unit-suffixed column names such as ``prescribed_dose_mA_min`` are
quoted correctly on PostgreSQL), then vectorized pandas. Every frame is checked with
:func:`data_schemas.frames.validate_frame` before it is returned.

* :func:`load_episodes` – one row per episode. ``arm`` is the arm of the modalities
  actually delivered across the episode's interventions
  (:func:`data_schemas.vocabulary.arm_from_modalities`); ``planned_arm`` is the plan of care
  (for intention-to-treat). ``episode_id`` is the episode's ``episode_key``, ``patient_id``
  the patient's pseudonym, ``clinic_id`` the ``clinic_key``.
* :func:`load_outcomes` – long; ``days_from_intake`` = measured_on − episode start date.
* :func:`load_sessions` – current versions of device sessions only (``is_current``).
* :func:`load_interventions` – one row per billed/documented intervention.
* :func:`load` – the four at once, from an engine, a URL or the default store.

Rows the frame contract cannot hold (an episode whose age is unknown, a session whose
delivered dose is unknown, a measurement dated before intake) are left out with a
:class:`~ionto_analytics.errors.StatisticalWarning` that gives the count: nothing is
dropped silently.

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://")
>>> store.upgrade(engine)
>>> load_episodes(engine).shape
(0, 12)
>>> sorted(load_sessions(engine).columns)[:3]
['clinic_id', 'current_limited', 'delivered_dose_mA_min']
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    func,
    select,
    true,
)

from data_schemas import tables as _tables  # noqa: F401  (registers the tables)
from data_schemas.frames import validate_frame
from data_schemas.vocabulary import OLDEST_POOLED_AGE, arm_from_modalities
from ionto_analytics.errors import StatisticalWarning
from ionto_analytics.loaders.access import (
    naive_dates,
    open_store,
    read,
    read_columns,
    table,
    utc_times,
)

__all__ = ["load", "load_episodes", "load_interventions", "load_outcomes", "load_sessions"]


def _str_or_none(s: pd.Series) -> pd.Series:
    return s.astype(object).where(s.notna(), None)


def _warn_dropped(n: int, what: str, why: str) -> None:
    if n:
        warnings.warn(f"{n} {what} left out of the frame: {why}", StatisticalWarning, stacklevel=3)


def _arms_by_code() -> np.ndarray:
    # code = 4 * iontophoresis + 2 * exercise + manual therapy -> the arm those make
    arms = []
    for code in range(8):
        on = (code & 4, code & 2, code & 1)
        modalities = ("iontophoresis", "exercise", "manual_therapy")
        mods = [m for m, o in zip(modalities, on, strict=True) if o]
        arms.append(arm_from_modalities(mods))
    return np.array(arms, dtype=object)


def _objects(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype=object)


def _flag(values: np.ndarray) -> np.ndarray:
    """0/1, bool or NULL as the driver returns them, as int 0/1 (NULL is 0)."""
    return _objects(values).fillna(0).astype(int).to_numpy()


def _days_after(later: ColumnElement, earlier: ColumnElement, dialect: str) -> ColumnElement:
    """Whole days from the date ``earlier`` to the date ``later``, computed in the query."""
    if dialect == "sqlite":  # dates are ISO text there
        return cast(func.julianday(later) - func.julianday(earlier), Integer)
    return later - earlier  # PostgreSQL: date - date is an integer


def load_episodes(engine: Engine) -> pd.DataFrame:
    """One row per episode, validated against :data:`data_schemas.frames.EpisodeFrame`.

    ``arm`` comes from the modalities of the episode's interventions (null when they make
    no arm, e.g. no intervention recorded yet); ``planned_arm`` is the plan of care.
    ``age_years`` is the age at intake (90 for the Safe Harbor "90+" group; from the birth
    year when the age at intake is missing); ``n_visits`` counts the episode's visits
    except post-discharge follow-ups.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store (SQLite or PostgreSQL).

    Returns
    -------
    DataFrame
        Columns of ``FRAME_COLUMNS["episode"]``.

    Warns
    -----
    StatisticalWarning
        When episodes with an unknown age are left out (count given).

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> from data_schemas.frames import FRAME_COLUMNS
    >>> list(load_episodes(engine).columns) == list(FRAME_COLUMNS["episode"])
    True
    """
    ep, pt, cl = table("episode"), table("patient"), table("clinic")
    vi, iv = table("visit"), table("intervention")
    visits = (
        select(
            vi.c.episode_id.label("episode_pk"),
            func.count(vi.c.id).label("n_visits"),
        )
        .where(vi.c.kind != "follow_up")
        .group_by(vi.c.episode_id)
        .subquery("visits")
    )

    def has(modality: str):
        return func.max(case((iv.c.modality == modality, 1), else_=0))

    mods = (
        select(
            vi.c.episode_id.label("episode_pk"),
            has("iontophoresis").label("has_ionto"),
            has("exercise").label("has_exercise"),
            has("manual_therapy").label("has_manual"),
        )
        .select_from(iv.join(vi, iv.c.visit_id == vi.c.id))
        .group_by(vi.c.episode_id)
        .subquery("mods")
    )
    query = (
        select(
            ep.c.episode_key.label("episode_id"),
            pt.c.pseudonym.label("patient_id"),
            cl.c.clinic_key.label("clinic_id"),
            ep.c.condition,
            ep.c.planned_arm,
            ep.c.age_at_intake_years,
            pt.c.birth_year,
            pt.c.aged_90_plus,
            pt.c.sex,
            ep.c.symptom_duration_weeks,
            ep.c.start_date,
            ep.c.end_date,
            visits.c.n_visits,
            mods.c.has_ionto,
            mods.c.has_exercise,
            mods.c.has_manual,
        )
        .select_from(
            ep.join(pt, pt.c.id == ep.c.patient_id)
            .join(cl, cl.c.id == ep.c.clinic_id)
            .outerjoin(visits, visits.c.episode_pk == ep.c.id)
            .outerjoin(mods, mods.c.episode_pk == ep.c.id)
        )
        .order_by(ep.c.id)
    )
    raw = read_columns(engine, query)
    start = naive_dates(_objects(raw["start_date"]))
    age = pd.to_numeric(_objects(raw["age_at_intake_years"]), errors="coerce").astype(float)
    from_year = start.dt.year.astype(float) - pd.to_numeric(_objects(raw["birth_year"])).astype(
        float
    )
    age = age.fillna(from_year)
    age = age.mask(raw["aged_90_plus"].astype(bool), float(OLDEST_POOLED_AGE))
    age = age.clip(upper=float(OLDEST_POOLED_AGE))
    code = 4 * _flag(raw["has_ionto"]) + 2 * _flag(raw["has_exercise"]) + _flag(raw["has_manual"])
    out = pd.DataFrame(
        {
            "episode_id": _objects(raw["episode_id"]),
            "patient_id": _objects(raw["patient_id"]),
            "clinic_id": _objects(raw["clinic_id"]),
            "condition": _objects(raw["condition"]),
            "arm": _objects(_arms_by_code()[code]),
            "planned_arm": _objects(raw["planned_arm"]),
            "age_years": age,
            "sex": _objects(raw["sex"]),
            "symptom_duration_weeks": pd.to_numeric(_objects(raw["symptom_duration_weeks"])).astype(
                float
            ),
            "start_date": start,
            "end_date": naive_dates(_objects(raw["end_date"])),
            "n_visits": _objects(raw["n_visits"]).fillna(0).astype(np.int64),
        }
    )
    unknown_age = out["age_years"].isna()
    _warn_dropped(int(unknown_age.sum()), "episode(s)", "age at intake and birth year both unknown")
    out = out[~unknown_age.to_numpy()].reset_index(drop=True)
    return validate_frame(out, "episode")


def load_outcomes(
    engine: Engine,
    *,
    instruments: Sequence[str] | None = None,
    conditions: Sequence[str] | None = None,
    clinics: Sequence[str] | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    episodes: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The long outcome frame, validated against :data:`data_schemas.frames.OutcomeFrame`.

    ``days_from_intake`` = ``measured_on`` − the episode's ``start_date`` in days. The
    optional filters are applied in the query, so only the rows a cohort can use are read
    (an outcome registry holds about ten rows per episode); the rows returned are exactly
    those of the unfiltered frame that pass them, in the same order.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.
    instruments : sequence of str, optional
        Instrument keys to keep.
    conditions : sequence of str, optional
        Episode condition keys to keep (a family expanded, e.g. with
        :func:`data_schemas.vocabulary.conditions_in`).
    clinics : sequence of str, optional
        Clinic keys (``clinic_id``) of the episodes to keep.
    start, end : date, optional
        Intake window (the episode's ``start_date``), inclusive.
    episodes : iterable of str, optional
        Episode keys (``episode_id``) to keep, e.g. a cohort's candidates (sent in the
        query's text, so any number of them fits).

    Warns
    -----
    StatisticalWarning
        When measurements dated before intake are left out (count given).

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> load_outcomes(engine).columns.tolist()
    ['episode_id', 'instrument', 'score', 'days_from_intake', 'visit_id']
    >>> len(load_outcomes(engine, instruments=["prtee"], conditions=["plantar_fasciitis"]))
    0
    """
    om, ep, vi, cl = (
        table("outcome_measurement"),
        table("episode"),
        table("visit"),
        table("clinic"),
    )
    rows = om.join(ep, ep.c.id == om.c.episode_id).outerjoin(vi, vi.c.id == om.c.visit_id)
    where = []
    if instruments is not None:
        where.append(om.c.instrument.in_(list(instruments)))
    if conditions is not None:
        where.append(ep.c.condition.in_(list(conditions)))
    if clinics is not None:
        rows = rows.join(cl, cl.c.id == ep.c.clinic_id)
        where.append(cl.c.clinic_key.in_(list(clinics)))
    if start is not None:
        where.append(ep.c.start_date >= start)
    if end is not None:
        where.append(ep.c.start_date <= end)
    if episodes is not None:
        keys = bindparam("episode_keys", list(episodes), expanding=True, literal_execute=True)
        where.append(ep.c.episode_key.in_(keys))
    query = (
        select(
            om.c.episode_id.label("episode_pk"),
            ep.c.episode_key.label("episode_id"),
            om.c.instrument,
            om.c.score,
            _days_after(om.c.measured_on, ep.c.start_date, engine.dialect.name).label("days"),
            vi.c.visit_key.label("visit_id"),
        )
        .select_from(rows)
        .where(and_(true(), *where))
    )
    raw = read_columns(engine, query)
    # Ordered here, not in the query (a sort of a million wide rows is most of the query's
    # time): by episode, instrument key, then date (the days after the episode's intake).
    days = raw["days"].astype(np.int64)
    instrument_codes, _ = pd.factorize(raw["instrument"], sort=True)
    order = np.lexsort((days, instrument_codes, raw["episode_pk"].astype(np.int64)))
    out = pd.DataFrame(
        {
            "episode_id": _objects(raw["episode_id"][order]),
            "instrument": _objects(raw["instrument"][order]),
            "score": raw["score"][order].astype(float),
            "days_from_intake": days[order],
            "visit_id": _objects(raw["visit_id"][order]),
        }
    )
    before = out["days_from_intake"] < 0
    _warn_dropped(int(before.sum()), "outcome measurement(s)", "dated before the intake date")
    out = out[~before.to_numpy()].reset_index(drop=True)
    return validate_frame(out, "outcome")


def load_sessions(engine: Engine) -> pd.DataFrame:
    """Current device sessions, validated against :data:`data_schemas.frames.SessionFrame`.

    Superseded versions (``is_current`` false) are not read. ``episode_id`` is null for a
    session not linked to an episode; ``clinic_id`` is the session's clinic, else the
    device's. ``delivered_dose_mA_min`` is the device's figure, else the one recomputed
    from the samples; ``fault_codes`` is null when no fault was raised.

    Warns
    -----
    StatisticalWarning
        When sessions with no delivered dose at all, or no clinic, are left out.

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> len(load_sessions(engine))
    0
    """
    se, ep, dv, cl = table("ionto_session"), table("episode"), table("device"), table("clinic")
    dev_clinic = cl.alias("device_clinic")
    query = (
        select(
            se.c.session_key.label("session_id"),
            ep.c.episode_key.label("episode_id"),
            func.coalesce(cl.c.clinic_key, dev_clinic.c.clinic_key).label("clinic_id"),
            dv.c.model.label("device_model"),
            dv.c.kind.label("device_kind"),
            se.c.started_at_utc,
            se.c.prescribed_dose_mA_min,
            se.c.delivered_dose_mA_min,
            se.c.recomputed_dose_mA_min,
            se.c.end_reason,
            se.c.fault_codes,
            se.c.wrong_polarity,
            se.c.current_limited,
            se.c.skin_check_after,
        )
        .select_from(
            se.join(dv, dv.c.id == se.c.device_id)
            .outerjoin(ep, ep.c.id == se.c.episode_id)
            .outerjoin(cl, cl.c.id == se.c.clinic_id)
            .outerjoin(dev_clinic, dev_clinic.c.id == dv.c.clinic_id)
        )
        .where(and_(se.c.is_current.is_(True)))
        .order_by(se.c.started_at_utc, se.c.id)
    )
    raw = read(engine, query)
    delivered = pd.to_numeric(raw["delivered_dose_mA_min"]).astype(float)
    delivered = delivered.fillna(pd.to_numeric(raw["recomputed_dose_mA_min"]).astype(float))
    faults = raw["fault_codes"].astype(object)
    faults = faults.where(faults.notna() & (faults.astype(str) != ""), None)
    out = pd.DataFrame(
        {
            "session_id": raw["session_id"].astype(object),
            "episode_id": _str_or_none(raw["episode_id"]),
            "clinic_id": _str_or_none(raw["clinic_id"]),
            "device_model": raw["device_model"].astype(object),
            "device_kind": raw["device_kind"].astype(object),
            "started_at_utc": utc_times(raw["started_at_utc"]),
            "prescribed_dose_mA_min": pd.to_numeric(raw["prescribed_dose_mA_min"]).astype(float),
            "delivered_dose_mA_min": delivered,
            "end_reason": raw["end_reason"].astype(object),
            "fault_codes": faults,
            "wrong_polarity": raw["wrong_polarity"].astype(bool),
            "current_limited": raw["current_limited"].astype(bool),
            "skin_check_after": _str_or_none(raw["skin_check_after"]),
        }
    )
    no_dose = out["delivered_dose_mA_min"].isna()
    no_clinic = out["clinic_id"].isna()
    _warn_dropped(int(no_dose.sum()), "session(s)", "no delivered or recomputed dose")
    _warn_dropped(int((no_clinic & ~no_dose).sum()), "session(s)", "no clinic known")
    out = out[~(no_dose | no_clinic).to_numpy()].reset_index(drop=True)
    return validate_frame(out, "session")


def load_interventions(engine: Engine) -> pd.DataFrame:
    """Interventions, validated against :data:`data_schemas.frames.InterventionFrame`.

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> load_interventions(engine).columns.tolist()
    ['episode_id', 'visit_id', 'modality', 'cpt_code', 'minutes']
    """
    iv, vi, ep = table("intervention"), table("visit"), table("episode")
    query = (
        select(
            ep.c.episode_key.label("episode_id"),
            vi.c.visit_key.label("visit_id"),
            iv.c.modality,
            iv.c.cpt_code,
            iv.c.minutes,
        )
        .select_from(iv.join(vi, vi.c.id == iv.c.visit_id).join(ep, ep.c.id == vi.c.episode_id))
        .order_by(vi.c.episode_id, vi.c.visit_date, iv.c.id)
    )
    raw = read(engine, query)
    out = pd.DataFrame(
        {
            "episode_id": raw["episode_id"].astype(object),
            "visit_id": raw["visit_id"].astype(object),
            "modality": raw["modality"].astype(object),
            "cpt_code": _str_or_none(raw["cpt_code"]),
            "minutes": pd.to_numeric(raw["minutes"]).astype(float),
        }
    )
    return validate_frame(out, "intervention")


def load(engine_or_url: Engine | str | None = None) -> dict[str, pd.DataFrame]:
    """The four frames by name: ``episode``, ``outcome``, ``session``, ``intervention``.

    Parameters
    ----------
    engine_or_url : sqlalchemy.Engine, str or None
        A migrated store, or its URL, or None for the store :func:`open_store` chooses
        (a store opened here is closed again before returning).

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> sorted(load(engine))
    ['episode', 'intervention', 'outcome', 'session']
    """
    if not isinstance(engine_or_url, Engine):
        engine = open_store(engine_or_url)
        try:
            return load(engine)
        finally:
            engine.dispose()
    engine = engine_or_url
    return {
        "episode": load_episodes(engine),
        "outcome": load_outcomes(engine),
        "session": load_sessions(engine),
        "intervention": load_interventions(engine),
    }
