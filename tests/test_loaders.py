"""Loading the store into validated frames, on SQLite and PostgreSQL.

Expected values come from the tiny hand-written export in ``tests/ehr_export.py`` (read off
by hand: EP001 got exercise 97110 and iontophoresis 97033, EP002 only an evaluation) and
from hand-built store rows (``tests/store_rows.py``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, insert
from sqlmodel import SQLModel

from data_schemas import store
from data_schemas.errors import StoreError
from data_schemas.frames import FRAME_COLUMNS, validate_frame
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from ionto_analytics.errors import StatisticalWarning
from ionto_analytics.loaders import (
    load,
    load_episodes,
    load_interventions,
    load_outcomes,
    load_sessions,
    open_store,
)
from tests.ehr_export import write_ehr_export
from tests.store_rows import valid_rows

TABLES = SQLModel.metadata.tables
KEY = b"test-site-key"


@pytest.fixture
def tiny(engine: Engine, tmp_path: Path) -> Engine:
    """The two-patient EHR export of tests/ehr_export.py imported."""
    report = Importer(engine, Keyer(KEY), today=dt.date(2026, 1, 1)).run(
        [write_ehr_export(tmp_path / "ehr")]
    )
    assert not report.quarantine
    return engine


def test_every_frame_validates_and_has_exactly_the_contract_columns(tiny: Engine) -> None:
    frames = load(tiny)
    for name, frame in frames.items():
        assert list(frame.columns) == list(FRAME_COLUMNS[name])
        validate_frame(frame, name)
    assert len(frames["episode"]) == 2
    assert len(frames["outcome"]) == 3
    assert len(frames["intervention"]) == 4
    assert frames["session"].empty


def test_arm_comes_from_delivered_modalities_and_planned_arm_is_kept(tiny: Engine) -> None:
    ep = load_episodes(tiny).sort_values("condition").reset_index(drop=True)
    achilles, lateral = ep.iloc[0], ep.iloc[1]
    assert achilles["condition"] == "achilles_tendinopathy"
    assert achilles["arm"] is None  # only an evaluation billed: no arm yet
    assert achilles["planned_arm"] == "exercise"
    assert lateral["arm"] == "ionto+exercise"
    assert lateral["planned_arm"] == "ionto+exercise"
    assert lateral["n_visits"] == 2 and achilles["n_visits"] == 1
    assert lateral["age_years"] == 55.0  # intake year 2025 − birth year 1970 (year only)
    assert achilles["age_years"] == 90.0  # born 1930: Safe Harbor 90+
    assert lateral["start_date"] == pd.Timestamp("2025-03-03")
    assert lateral["end_date"] == pd.Timestamp("2025-04-14")
    assert lateral["clinic_id"] == "clinic_01"
    assert len(lateral["episode_id"]) == 64 and len(lateral["patient_id"]) == 64
    assert lateral["patient_id"] != achilles["patient_id"]
    assert lateral["symptom_duration_weeks"] == pytest.approx(3 * 52 / 12, abs=0.01)


def test_outcomes_days_from_intake_and_ids_match_episodes(tiny: Engine) -> None:
    ep = load_episodes(tiny)
    out = load_outcomes(tiny)
    assert set(out["episode_id"]) <= set(ep["episode_id"])
    assert sorted(out["instrument"]) == ["nprs", "prtee", "visa_a"]
    assert (out["days_from_intake"] == 0).all()
    assert out["visit_id"].notna().all()
    iv = load_interventions(tiny)
    assert sorted(iv["modality"]) == ["exercise", "iontophoresis", "other", "other"]
    assert set(iv["episode_id"]) == set(ep["episode_id"])


def _insert_graph(engine: Engine) -> None:
    rows = valid_rows()
    with engine.begin() as connection:
        for table, row in rows.items():
            if table in ("session_trace", "adverse_event"):
                continue
            connection.execute(insert(TABLES[table]), [row])
        old = dict(rows["ionto_session"])
        new = dict(old, id=2, version=2, supersedes_id=1, content_sha256="d" * 64)
        new["delivered_dose_mA_min"] = None  # corrected export: only the recomputed dose
        new["wrong_polarity"] = True
        new["fault_codes"] = "CURRENT_LIMITED;PAUSED"
        connection.execute(
            TABLES["ionto_session"].update().where(TABLES["ionto_session"].c.id == 1),
            {"is_current": False},
        )
        connection.execute(insert(TABLES["ionto_session"]), [new])
        # A second visit 14 days later with a score, and an unlinked session.
        connection.execute(
            insert(TABLES["visit"]),
            [{"id": 2, "visit_key": "w" * 64, "episode_id": 1,
              "visit_date": dt.date(2026, 3, 16), "kind": "treatment"}],
        )  # fmt: skip
        connection.execute(
            insert(TABLES["outcome_measurement"]),
            [{"id": 2, "episode_id": 1, "visit_id": 2, "instrument": "prtee", "score": 40.0,
              "measured_on": dt.date(2026, 3, 16)}],
        )  # fmt: skip
        lone = dict(old, id=3, session_key="t" * 64, episode_id=None, visit_id=None,
                    patient_id=None, clinic_id=None, link_status="unlinked",
                    content_sha256="e" * 64, fault_codes="")  # fmt: skip
        connection.execute(insert(TABLES["ionto_session"]), [lone])


def test_sessions_current_versions_only_with_dose_fallback(engine: Engine) -> None:
    _insert_graph(engine)
    s = load_sessions(engine)
    validate_frame(s, "session")
    assert len(s) == 2  # version 1 superseded; version 2 and the unlinked one
    linked = s[s["episode_id"].notna()].iloc[0]
    assert linked["session_id"] == "s" * 64
    assert linked["delivered_dose_mA_min"] == 40.0  # recomputed, device figure missing
    assert bool(linked["wrong_polarity"]) is True
    assert linked["fault_codes"] == "CURRENT_LIMITED;PAUSED"
    assert linked["device_model"] == "IontoPro 2" and linked["device_kind"] == "clinic_unit"
    assert str(s["started_at_utc"].dtype) == "datetime64[ns, UTC]"
    assert s["started_at_utc"].iloc[0] == pd.Timestamp("2026-03-02 09:30", tz="UTC")
    lone = s[s["episode_id"].isna()].iloc[0]
    assert lone["clinic_id"] == "C01"  # the device's clinic
    assert lone["fault_codes"] is None


def test_load_all_opens_a_url_or_the_environment_store(tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'file.db'}"
    engine = store.connect(url)
    store.upgrade(engine)
    _insert_graph(engine)
    engine.dispose()
    by_url = load(url)
    assert len(by_url["session"]) == 2 and by_url["episode"]["arm"].tolist() == ["ionto"]
    monkeypatch.setenv("IONTO_DATABASE_URL", url)
    by_env = load()
    for name, frame in by_url.items():
        pd.testing.assert_frame_equal(by_env[name], frame)


def test_open_store_refuses_a_missing_sqlite_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IONTO_DATABASE_URL", f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(StoreError, match="make demo"):
        open_store()
    with pytest.raises(StoreError, match="make demo"):
        load(f"sqlite:///{tmp_path / 'other.db'}")
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "other.db").exists()


def test_hand_built_store_episode_and_outcome_days(engine: Engine) -> None:
    _insert_graph(engine)
    ep = load_episodes(engine)
    assert ep["arm"].tolist() == ["ionto"]  # only 97033 billed
    assert ep["n_visits"].tolist() == [2]
    out = load_outcomes(engine).sort_values("days_from_intake")
    assert out["days_from_intake"].tolist() == [0, 14]


def test_episode_with_unknown_age_is_left_out_with_a_warning(engine: Engine) -> None:
    _insert_graph(engine)
    with engine.begin() as connection:
        connection.execute(TABLES["patient"].update(), {"birth_year": None, "aged_90_plus": False})
    with pytest.warns(StatisticalWarning, match="1 episode"):
        ep = load_episodes(engine)
    assert ep.empty
    validate_frame(ep, "episode")


def test_outcome_filters_in_the_query_keep_exactly_the_matching_rows(tiny: Engine) -> None:
    """Each filter returns the rows of the unfiltered frame that pass it, in order."""
    every = load_outcomes(tiny)
    ep = load_episodes(tiny).set_index("episode_id")
    cond = every["episode_id"].map(ep["condition"])
    clinic = every["episode_id"].map(ep["clinic_id"])
    start = every["episode_id"].map(ep["start_date"])
    first = ep["start_date"].min()
    cases = [
        ({"instruments": ["prtee", "nprs"]}, every["instrument"].isin(["prtee", "nprs"])),
        ({"conditions": [cond.iloc[0]]}, cond == cond.iloc[0]),
        ({"conditions": ["bursitis"]}, cond == "bursitis"),
        ({"clinics": [clinic.iloc[-1]]}, clinic == clinic.iloc[-1]),
        ({"start": first.date(), "end": first.date()}, start == first),
        ({"start": (first + pd.Timedelta(days=1)).date()}, start > first),
        (
            {"episodes": [every["episode_id"].iloc[-1]]},
            every["episode_id"] == every["episode_id"].iloc[-1],
        ),
        ({"episodes": []}, every["episode_id"].isna()),
        (
            {"episodes": ["no-such-episode"], "conditions": [cond.iloc[0]]},
            every["episode_id"].isna(),
        ),
    ]
    for filters, keep in cases:
        got = load_outcomes(tiny, **filters)
        expected = every[keep.to_numpy()].reset_index(drop=True)
        assert got.equals(expected), filters
    assert 0 < len(load_outcomes(tiny, instruments=["prtee", "nprs"])) < len(every)
