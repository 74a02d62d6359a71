"""Writers for the emulator's raw outputs: device session files, EHR CSV and FHIR."""
