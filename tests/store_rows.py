"""A minimal valid graph of store rows, one per table, for constraint tests."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, MetaData

UTC = dt.UTC


def valid_rows() -> dict[str, dict[str, object]]:
    """One valid row per table, in an order that satisfies the foreign keys."""
    start = dt.datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    return {
        "import_file": {
            "id": 1,
            "sha256": "a" * 64,
            "file_name_hash": "f" * 64,
            "file_extension": ".csv",
            "format": "ehr_csv",
            "importer_version": "0.1.0",
            "status": "imported",
            "imported_at_utc": start,
            "row_count": 1,
        },
        "clinic": {"id": 1, "clinic_key": "C01", "name": "North", "timezone": "Europe/Paris"},
        "device": {
            "id": 1,
            "serial_hash": "d" * 64,
            "vendor": "Acme",
            "model": "IontoPro 2",
            "kind": "clinic_unit",
            "clinic_id": 1,
        },
        "patient": {
            "id": 1,
            "pseudonym": "p" * 64,
            "sex": "female",
            "birth_year": 1970,
            "aged_90_plus": False,
        },
        "episode": {
            "id": 1,
            "episode_key": "e" * 64,
            "patient_id": 1,
            "clinic_id": 1,
            "condition": "lateral_epicondylitis",
            "condition_family": "epicondylitis",
            "icd10_code": "M77.11",
            "side": "right",
            "symptom_duration_weeks": 10.0,
            "start_date": dt.date(2026, 3, 2),
            "end_date": dt.date(2026, 4, 20),
            "planned_arm": "ionto+exercise",
        },
        "prescription": {
            "id": 1,
            "prescription_key": "r" * 64,
            "episode_id": 1,
            "drug": "dexamethasone_sodium_phosphate",
            "concentration_mg_per_mL": 4.0,
            "volume_mL": 2.5,
            "prescriber_role": "physician",
            "prescribed_on": dt.date(2026, 2, 25),
        },
        "visit": {
            "id": 1,
            "visit_key": "v" * 64,
            "episode_id": 1,
            "visit_date": dt.date(2026, 3, 2),
            "kind": "evaluation",
        },
        "intervention": {
            "id": 1,
            "visit_id": 1,
            "modality": "iontophoresis",
            "cpt_code": "97033",
            "minutes": 15.0,
        },
        "ionto_session": {
            "id": 1,
            "session_key": "s" * 64,
            "version": 1,
            "is_current": True,
            "content_sha256": "c" * 64,
            "device_id": 1,
            "clinic_id": 1,
            "patient_id": 1,
            "episode_id": 1,
            "visit_id": 1,
            "link_status": "linked",
            "setting": "clinic_unit",
            "drug": "dexamethasone_sodium_phosphate",
            "active_polarity": "cathode",
            "wrong_polarity": False,
            "electrode_area_cm2": 10.0,
            "prescribed_current_mA": 4.0,
            "peak_current_mA": 4.0,
            "prescribed_dose_mA_min": 40.0,
            "delivered_dose_mA_min": 40.1,
            "recomputed_dose_mA_min": 40.0,
            "dose_mismatch": False,
            "current_limited": False,
            "duration_s": 660.0,
            "started_at_utc": start,
            "ended_at_utc": start + dt.timedelta(seconds=660),
            "clock_source": "device_offset",
            "end_reason": "DOSE_COMPLETE",
            "fault_codes": "",
            "skin_check_after": "erythema",
            "truncated": False,
        },
        "session_trace": {"session_id": 1, "sample_count": 0, "packed_samples": b""},
        "outcome_measurement": {
            "id": 1,
            "episode_id": 1,
            "visit_id": 1,
            "instrument": "prtee",
            "score": 52.0,
            "measured_on": dt.date(2026, 3, 2),
        },
        "adverse_event": {
            "id": 1,
            "episode_id": 1,
            "session_id": 1,
            "event_type": "erythema",
            "grade": 1,
            "onset_date": dt.date(2026, 3, 2),
        },
        "site_key": {"id": 1, "fingerprint": "k" * 64, "recorded_at_utc": start},
    }


def rows_before_0004() -> dict[str, dict[str, object]]:
    """The valid graph as revisions 0002 and 0003 stored it: a file name, free-text details."""
    rows = valid_rows()
    del rows["site_key"]
    ledger = {k: v for k, v in rows["import_file"].items() if not k.startswith("file_")}
    rows["import_file"] = {**ledger, "file_name": "Nguyen_Bobby_1964-05-06.CSV"}
    rows["intervention"] = {**rows["intervention"], "details": "Pt Bobby Nguyen, (436) 555-0169"}
    return rows


def insert_as_stored(connection: Connection, rows: dict[str, dict[str, object]]) -> None:
    """Insert rows into the tables as the store holds them now, whatever its revision."""
    metadata = MetaData()
    metadata.reflect(connection)
    for name, values in rows.items():
        connection.execute(metadata.tables[name].insert().values(**values))


BAD_VALUES: dict[str, tuple[str, dict[str, object]]] = {
    # constraint name: (table, values that break only that constraint)
    "ck_import_file_status": ("import_file", {"status": "half_done"}),
    "ck_import_file_extension": ("import_file", {"file_extension": ".bobby"}),
    "ck_device_kind": ("device", {"kind": "implant"}),
    "ck_patient_sex": ("patient", {"sex": "F"}),
    "ck_patient_birth_year": ("patient", {"aged_90_plus": True, "birth_year": 1920}),
    "ck_episode_condition": ("episode", {"condition": "tennis_elbow"}),
    "ck_episode_side": ("episode", {"side": "R"}),
    "ck_episode_planned_arm": ("episode", {"planned_arm": "ultrasound"}),
    "ck_episode_symptom_weeks": ("episode", {"symptom_duration_weeks": -1.0}),
    "ck_episode_dates": ("episode", {"end_date": dt.date(2026, 1, 1)}),
    "ck_prescription_role": (
        "prescription",
        {"prescriber_role": "receptionist", "drug": "acetic_acid"},
    ),
    "ck_prescription_corticosteroid_by_doctor": (
        "prescription",
        {"prescriber_role": "physical_therapist"},
    ),
    "ck_prescription_concentration": ("prescription", {"concentration_mg_per_mL": -4.0}),
    "ck_prescription_volume": ("prescription", {"volume_mL": 250.0}),
    "ck_visit_kind": ("visit", {"kind": "party"}),
    "ck_intervention_modality": ("intervention", {"modality": "acupuncture"}),
    "ck_intervention_minutes": ("intervention", {"minutes": -15.0}),
    "ck_session_polarity": ("ionto_session", {"active_polarity": "negative"}),
    "ck_session_end_reason": ("ionto_session", {"end_reason": "DONE"}),
    "ck_session_skin": ("ionto_session", {"skin_check_after": "red"}),
    "ck_session_link": ("ionto_session", {"link_status": "maybe"}),
    "ck_session_clock": ("ionto_session", {"clock_source": "guess"}),
    "ck_session_current": ("ionto_session", {"prescribed_current_mA": 12.5}),
    "ck_session_peak_current": ("ionto_session", {"peak_current_mA": -0.5}),
    "ck_session_prescribed_dose": ("ionto_session", {"prescribed_dose_mA_min": 400.0}),
    "ck_session_delivered_dose": ("ionto_session", {"delivered_dose_mA_min": 200.5}),
    "ck_session_recomputed_dose": ("ionto_session", {"recomputed_dose_mA_min": -1.0}),
    "ck_session_area": ("ionto_session", {"electrode_area_cm2": 0.0}),
    "ck_session_duration": ("ionto_session", {"duration_s": -5.0}),
    "ck_session_times": (
        "ionto_session",
        {"ended_at_utc": dt.datetime(2026, 3, 1, tzinfo=UTC)},
    ),
    "ck_outcome_instrument": ("outcome_measurement", {"instrument": "happiness"}),
    "ck_outcome_score_range": ("outcome_measurement", {"instrument": "nprs", "score": 11.0}),
    "ck_adverse_event_type": ("adverse_event", {"event_type": "headache"}),
    "ck_adverse_event_grade": ("adverse_event", {"grade": 4}),
}
