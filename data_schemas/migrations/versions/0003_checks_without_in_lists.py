"""CHECK constraints test equalities instead of IN lists (same rules, cheaper to test)

SQLite builds an IN list's lookup table afresh for every row a CHECK constraint tests;
chains of equalities allow exactly the same values at a fraction of the cost of a bulk
insert. SQLite tables are rebuilt (batch mode), PostgreSQL constraints are replaced.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECREATE = "auto"
"""SQLite rebuilds a table to change its constraints; PostgreSQL alters it in place."""

CHECKS: tuple[tuple[str, str, str, str], ...] = (
    (
        "import_file",
        "ck_import_file_status",
        "\"status\" IN ('imported', 'quarantined')",
        "(\"status\" = 'imported' OR \"status\" = 'quarantined')",
    ),
    (
        "device",
        "ck_device_kind",
        "\"kind\" IN ('clinic_unit', 'wearable_patch')",
        "(\"kind\" = 'clinic_unit' OR \"kind\" = 'wearable_patch')",
    ),
    (
        "patient",
        "ck_patient_sex",
        "\"sex\" IN ('female', 'male', 'other', 'unknown')",
        "(\"sex\" = 'female' OR \"sex\" = 'male' OR \"sex\" = 'other' OR \"sex\" = 'unknown')",
    ),
    (
        "episode",
        "ck_episode_side",
        "side IS NULL OR \"side\" IN ('bilateral', 'left', 'right', 'unspecified')",
        "side IS NULL OR (\"side\" = 'bilateral' OR \"side\" = 'left' OR \"side\" = 'right' OR \"side\" = 'unspecified')",
    ),
    (
        "episode",
        "ck_episode_planned_arm",
        "planned_arm IS NULL OR \"planned_arm\" IN ('exercise', 'exercise+manual', 'ionto', 'ionto+exercise', 'ionto+exercise+manual')",
        "planned_arm IS NULL OR (\"planned_arm\" = 'exercise' OR \"planned_arm\" = 'exercise+manual' OR \"planned_arm\" = 'ionto' OR \"planned_arm\" = 'ionto+exercise' OR \"planned_arm\" = 'ionto+exercise+manual')",
    ),
    (
        "episode",
        "ck_episode_condition",
        "\"condition\" IN ('achilles_tendinopathy', 'bursitis', 'lateral_epicondylitis', 'medial_epicondylitis', 'other_tendinopathy', 'plantar_fasciitis', 'rheumatoid')",
        "(\"condition\" = 'achilles_tendinopathy' OR \"condition\" = 'bursitis' OR \"condition\" = 'lateral_epicondylitis' OR \"condition\" = 'medial_epicondylitis' OR \"condition\" = 'other_tendinopathy' OR \"condition\" = 'plantar_fasciitis' OR \"condition\" = 'rheumatoid')",
    ),
    (
        "prescription",
        "ck_prescription_corticosteroid_by_doctor",
        "NOT (\"drug\" IN ('dexamethasone_sodium_phosphate')) OR \"prescriber_role\" IN ('nurse_practitioner', 'physician', 'physician_assistant', 'podiatrist')",
        "NOT ((\"drug\" = 'dexamethasone_sodium_phosphate')) OR (\"prescriber_role\" = 'nurse_practitioner' OR \"prescriber_role\" = 'physician' OR \"prescriber_role\" = 'physician_assistant' OR \"prescriber_role\" = 'podiatrist')",
    ),
    (
        "prescription",
        "ck_prescription_role",
        "\"prescriber_role\" IN ('nurse_practitioner', 'physical_therapist', 'physician', 'physician_assistant', 'podiatrist')",
        "(\"prescriber_role\" = 'nurse_practitioner' OR \"prescriber_role\" = 'physical_therapist' OR \"prescriber_role\" = 'physician' OR \"prescriber_role\" = 'physician_assistant' OR \"prescriber_role\" = 'podiatrist')",
    ),
    (
        "visit",
        "ck_visit_kind",
        "\"kind\" IN ('discharge', 'evaluation', 'follow_up', 're_evaluation', 'treatment')",
        "(\"kind\" = 'discharge' OR \"kind\" = 'evaluation' OR \"kind\" = 'follow_up' OR \"kind\" = 're_evaluation' OR \"kind\" = 'treatment')",
    ),
    (
        "intervention",
        "ck_intervention_modality",
        "\"modality\" IN ('exercise', 'iontophoresis', 'manual_therapy', 'other')",
        "(\"modality\" = 'exercise' OR \"modality\" = 'iontophoresis' OR \"modality\" = 'manual_therapy' OR \"modality\" = 'other')",
    ),
    (
        "ionto_session",
        "ck_session_clock",
        "\"clock_source\" IN ('clinic_timezone', 'device_offset')",
        "(\"clock_source\" = 'clinic_timezone' OR \"clock_source\" = 'device_offset')",
    ),
    (
        "ionto_session",
        "ck_session_end_reason",
        "\"end_reason\" IN ('BATTERY_DEPLETED', 'DOSE_COMPLETE', 'EARLY_STOP_CLINICIAN', 'EARLY_STOP_PATIENT', 'ELECTRODE_REJECT', 'HIGH_IMPEDANCE', 'LOW_BATTERY', 'OVERCURRENT', 'POWER_LOSS')",
        "(\"end_reason\" = 'BATTERY_DEPLETED' OR \"end_reason\" = 'DOSE_COMPLETE' OR \"end_reason\" = 'EARLY_STOP_CLINICIAN' OR \"end_reason\" = 'EARLY_STOP_PATIENT' OR \"end_reason\" = 'ELECTRODE_REJECT' OR \"end_reason\" = 'HIGH_IMPEDANCE' OR \"end_reason\" = 'LOW_BATTERY' OR \"end_reason\" = 'OVERCURRENT' OR \"end_reason\" = 'POWER_LOSS')",
    ),
    (
        "ionto_session",
        "ck_session_polarity",
        "\"active_polarity\" IN ('anode', 'cathode')",
        "(\"active_polarity\" = 'anode' OR \"active_polarity\" = 'cathode')",
    ),
    (
        "ionto_session",
        "ck_session_skin",
        "\"skin_check_after\" IN ('burn', 'erythema', 'normal', 'not_checked', 'vesicles')",
        "(\"skin_check_after\" = 'burn' OR \"skin_check_after\" = 'erythema' OR \"skin_check_after\" = 'normal' OR \"skin_check_after\" = 'not_checked' OR \"skin_check_after\" = 'vesicles')",
    ),
    (
        "ionto_session",
        "ck_session_link",
        "\"link_status\" IN ('linked', 'unlinked')",
        "(\"link_status\" = 'linked' OR \"link_status\" = 'unlinked')",
    ),
    (
        "outcome_measurement",
        "ck_outcome_instrument",
        "\"instrument\" IN ('dash', 'faam_adl', 'faam_sports', 'ffi', 'fhsq_function', 'fhsq_pain', 'grip_pain_free_kg', 'groc', 'lefs', 'nprs', 'prtee', 'psfs', 'quickdash', 'vas', 'visa_a')",
        "(\"instrument\" = 'dash' OR \"instrument\" = 'faam_adl' OR \"instrument\" = 'faam_sports' OR \"instrument\" = 'ffi' OR \"instrument\" = 'fhsq_function' OR \"instrument\" = 'fhsq_pain' OR \"instrument\" = 'grip_pain_free_kg' OR \"instrument\" = 'groc' OR \"instrument\" = 'lefs' OR \"instrument\" = 'nprs' OR \"instrument\" = 'prtee' OR \"instrument\" = 'psfs' OR \"instrument\" = 'quickdash' OR \"instrument\" = 'vas' OR \"instrument\" = 'visa_a')",
    ),
    (
        "outcome_measurement",
        "ck_outcome_score_range",
        "NOT (\"instrument\" IN ('dash', 'faam_adl', 'faam_sports', 'ffi', 'fhsq_function', 'fhsq_pain', 'grip_pain_free_kg', 'groc', 'lefs', 'nprs', 'prtee', 'psfs', 'quickdash', 'vas', 'visa_a')) OR (instrument = 'nprs' AND score >= 0.0 AND score <= 10.0) OR (instrument = 'vas' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'visa_a' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'prtee' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'quickdash' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'dash' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'grip_pain_free_kg' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'ffi' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'faam_adl' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'faam_sports' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'fhsq_pain' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'fhsq_function' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'lefs' AND score >= 0.0 AND score <= 80.0) OR (instrument = 'psfs' AND score >= 0.0 AND score <= 10.0) OR (instrument = 'groc' AND score >= -7.0 AND score <= 7.0)",
        "NOT ((\"instrument\" = 'dash' OR \"instrument\" = 'faam_adl' OR \"instrument\" = 'faam_sports' OR \"instrument\" = 'ffi' OR \"instrument\" = 'fhsq_function' OR \"instrument\" = 'fhsq_pain' OR \"instrument\" = 'grip_pain_free_kg' OR \"instrument\" = 'groc' OR \"instrument\" = 'lefs' OR \"instrument\" = 'nprs' OR \"instrument\" = 'prtee' OR \"instrument\" = 'psfs' OR \"instrument\" = 'quickdash' OR \"instrument\" = 'vas' OR \"instrument\" = 'visa_a')) OR (instrument = 'nprs' AND score >= 0.0 AND score <= 10.0) OR (instrument = 'vas' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'visa_a' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'prtee' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'quickdash' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'dash' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'grip_pain_free_kg' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'ffi' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'faam_adl' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'faam_sports' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'fhsq_pain' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'fhsq_function' AND score >= 0.0 AND score <= 100.0) OR (instrument = 'lefs' AND score >= 0.0 AND score <= 80.0) OR (instrument = 'psfs' AND score >= 0.0 AND score <= 10.0) OR (instrument = 'groc' AND score >= -7.0 AND score <= 7.0)",
    ),
    (
        "adverse_event",
        "ck_adverse_event_type",
        "\"event_type\" IN ('burn', 'erythema', 'other', 'rash', 'staining', 'tingling', 'vesicles')",
        "(\"event_type\" = 'burn' OR \"event_type\" = 'erythema' OR \"event_type\" = 'other' OR \"event_type\" = 'rash' OR \"event_type\" = 'staining' OR \"event_type\" = 'tingling' OR \"event_type\" = 'vesicles')",
    ),
)
"""(table, constraint, IN-list text, equalities text) of every CHECK this revision rewrites."""


def _rewrite(*, to_equalities: bool) -> None:
    for table in dict.fromkeys(table for table, *_ in CHECKS):
        with op.batch_alter_table(table, recreate=RECREATE) as batch:
            for owner, name, in_list, equalities in CHECKS:
                if owner == table:
                    batch.drop_constraint(name, type_="check")
                    batch.create_check_constraint(name, equalities if to_equalities else in_list)


def upgrade() -> None:
    _rewrite(to_equalities=True)


def downgrade() -> None:
    _rewrite(to_equalities=False)
