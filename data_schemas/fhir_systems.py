"""Identifier systems and code systems of the FHIR exchange, shared by writer and reader.

The emulator writes FHIR with these systems and the importer reads them, so the two cannot
drift apart; ``data_schemas/formats/fhir_r4.json`` declares them for other systems.

Examples
--------
>>> CLINIC_SYSTEM
'https://ionto-analytics.example/fhir/sid/clinic-id'
"""

from __future__ import annotations

SID = "https://ionto-analytics.example/fhir/sid"
CLINIC_SYSTEM = f"{SID}/clinic-id"
"""Identifier system of a clinic's Organization: the value is the EHR's ``clinic_id``."""
EPISODE_SYSTEM = f"{SID}/episode-id"
"""Identifier system of a Condition that is an episode: the EHR's ``episode_id``."""
ENCOUNTER_SYSTEM = f"{SID}/encounter-id"
"""Identifier system of an Encounter: the EHR's ``encounter_id``."""
DEVICE_SERIAL_SYSTEM = f"{SID}/device-serial"
"""Identifier system of a device serial number (kept only as a keyed hash)."""
TIMEZONE_EXTENSION = "https://ionto-analytics.example/fhir/StructureDefinition/clinic-timezone"
"""Extension on an Organization: the clinic's IANA time zone (``valueCode``)."""
INSTRUMENT_SYSTEM = "https://ionto-analytics.example/fhir/CodeSystem/instrument"
"""Local CodeSystem of outcome instruments; codes are instrument keys."""
LOINC_SYSTEM = "http://loinc.org"
NPRS_LOINC = "72514-3"
"""LOINC code of the 0-10 numeric pain rating (DOMAIN.md section 4 [S53])."""
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT_SYSTEM = "http://www.ama-assn.org/go/cpt"
