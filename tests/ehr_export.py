"""A tiny hand-written EHR CSV export: one clinic, one device, two patients."""

from __future__ import annotations

from pathlib import Path

EHR_TABLES: dict[str, str] = {
    "clinics.csv": "clinic_id,name,city,state,zip,time_zone\n"
    "clinic_01,Riverside PT,Peoria,IL,61602,America/Chicago\n",
    "devices.csv": "clinic_id,serial,vendor,model,firmware,kind,in_service_date\n"
    "clinic_01,KD4-000123,Kathodyne Medical,KD-400,2.3.1,clinic_unit,2024-01-01\n",
    "patients.csv": "clinic_id,mrn,first_name,last_name,birth_date,sex,phone,email,"
    "address_line,city,state,zip\n"
    "clinic_01,MRN001,Ann,Lee,1970-05-04,F,555-0100,ann@example.org,1 Main St,Peoria,IL,61602\n"
    "clinic_01,MRN002,Bob,Ray,1930-01-02,M,555-0101,bob@example.org,2 Main St,Peoria,IL,61602\n",
    "episodes.csv": "clinic_id,episode_id,mrn,referral_date,intake_date,icd10_code,side,"
    "symptom_duration_months,screen_pacemaker_or_implant,screen_pregnancy,"
    "screen_drug_hypersensitivity,planned_arm,planned_visits_per_week,planned_weeks,"
    "discharge_date\n"
    "clinic_01,EP001,MRN001,2025-02-20,2025-03-03,M77.11,right,3,N,N,N,ionto+exercise,2,6,"
    "2025-04-14\n"
    "clinic_01,EP002,MRN002,2025-02-21,2025-03-04,M76.62,left,6,N,N,N,exercise,2,6,"
    "2025-04-15\n",
    "prescriptions.csv": "clinic_id,prescription_id,episode_id,mrn,date_written,"
    "prescriber_name,prescriber_role,drug,concentration_mg_per_mL,volume_mL\n"
    "clinic_01,RX001,EP001,MRN001,2025-02-25,Dr. Helen Marsh,physician,"
    "Dexamethasone sodium phosphate,4,2.5\n",
    "visits.csv": "clinic_id,encounter_id,episode_id,mrn,visit_date,start_time,visit_type,"
    "therapist\n"
    'clinic_01,ENC1,EP001,MRN001,2025-03-03,09:00,evaluation,"Novak, PT"\n'
    'clinic_01,ENC2,EP001,MRN001,2025-03-05,09:00,treatment,"Novak, PT"\n'
    'clinic_01,ENC3,EP002,MRN002,2025-03-04,10:00,evaluation,"Okafor, PT"\n',
    "interventions.csv": "clinic_id,encounter_id,episode_id,service_date,cpt_code,minutes,"
    "detail,device_serial\n"
    "clinic_01,ENC1,EP001,2025-03-03,97162,45,,\n"
    "clinic_01,ENC2,EP001,2025-03-05,97110,20,eccentric loading,\n"
    "clinic_01,ENC2,EP001,2025-03-05,97033,15,dexamethasone,KD4-000123\n"
    "clinic_01,ENC3,EP002,2025-03-04,97163,45,,\n",
    "outcomes.csv": "clinic_id,encounter_id,episode_id,mrn,date,instrument,version,score,"
    "item_responses\n"
    "clinic_01,ENC1,EP001,MRN001,2025-03-03,nprs,,6,\n"
    "clinic_01,ENC1,EP001,MRN001,2025-03-03,prtee,,52,\n"
    "clinic_01,ENC3,EP002,MRN002,2025-03-04,visa_a,,48,\n",
}


def write_ehr_export(folder: Path, tables: dict[str, str] | None = None) -> Path:
    """Write the export (or the given tables) into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (tables or EHR_TABLES).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
