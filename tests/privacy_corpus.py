"""An attacker's corpus: known identifiers in every free-text field of every format.

Names, phone numbers, e-mail addresses, street addresses, dates of birth and MRNs are
written into EHR CSV free-text columns (intervention detail, therapist, prescriber), FHIR
narrative, notes, ``code.text`` and extensions, device-log free fields (drug, model,
firmware, run and session ids), unknown files, a zip, a symbolic link and file names.
Some of these files import (the identifier lands in a field that is hashed or dropped),
the others are quarantined (the identifier lands in a field that is checked).
"""

from __future__ import annotations

import copy
import json
import zipfile
from pathlib import Path
from typing import Any

from emulator import EmulationSummary
from tests import fhir_fixtures as fx
from tests.ehr_export import EHR_TABLES, write_ehr_export
from tests.import_fixtures import device_files

NAME = "Bobby Nguyen"
OTHER_NAME = "Quentin Abernathy"
PHONE = "(436) 555-0169"
OTHER_PHONE = "436-555-0188"
EMAIL = "bobby.nguyen@example.org"
ADDRESS = "742 Evergreen Terrace"
BIRTH_DATE = "1964-05-06"
US_BIRTH_DATE = "03/07/1972"
MRN = "MRN-99887766"
PATIENT_FILE = f"Nguyen_Bobby_{BIRTH_DATE}"
CLINIC = "clinic_77"
"""The corpus's own clinic, apart from the emulated network's (which registers devices)."""

NEEDLES = (
    "nguyen",
    "bobby",
    "abernathy",
    "quentin",
    "555-0169",
    "555-0188",
    "example.org",
    "evergreen",
    BIRTH_DATE,
    US_BIRTH_DATE,
    "99887766",
)
"""Lower-case fragments of the identifiers: none may appear in any stored text."""

NOTE = f"Pt {NAME} called from {PHONE}, {EMAIL}, lives at {ADDRESS}, DOB {US_BIRTH_DATE}, {MRN}"


def _ehr_tables() -> dict[str, str]:
    """The small EHR export with the identifiers in every column that takes text."""
    tables = {
        name: text.replace("MRN001", MRN).replace("clinic_01", CLINIC)
        for name, text in EHR_TABLES.items()
    }
    tables["patients.csv"] = tables["patients.csv"].replace(
        "Ann,Lee,1970-05-04,F,555-0100,ann@example.org,1 Main St",
        f'Bobby,Nguyen,{BIRTH_DATE},M,"{PHONE}",{EMAIL},{ADDRESS}',
    )
    tables["interventions.csv"] = (
        tables["interventions.csv"]
        .replace("eccentric loading", f'"{NOTE}"')
        .replace(",dexamethasone,", f",{OTHER_NAME} {OTHER_PHONE},")
    )
    tables["visits.csv"] = tables["visits.csv"].replace("Novak, PT", f"{OTHER_NAME}, PT")
    tables["prescriptions.csv"] = tables["prescriptions.csv"].replace(
        "Dr. Helen Marsh", f"Dr. {OTHER_NAME}"
    )
    return tables


def _bad_ehr_tables(tables: dict[str, str]) -> dict[str, str]:
    """EHR tables that are refused, each for an identifier where a checked value belongs."""
    return {
        "patients.csv": tables["patients.csv"].replace("1930-01-02", US_BIRTH_DATE),
        "outcomes.csv": tables["outcomes.csv"].replace("nprs,,6", f"nprs,{NAME},6"),
        "visits.csv": tables["visits.csv"].replace("evaluation", NAME, 1),
        "interventions.csv": tables["interventions.csv"].replace("97162", "Bobby"),
    }


def _tagged(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource with a narrative and an extension that name the patient."""
    tagged = copy.deepcopy(resource)
    tagged["text"] = {"status": "generated", "div": f"<div>{NOTE}</div>"}
    extension = {"url": "https://ehr.example/note", "valueString": f"{OTHER_NAME} {OTHER_PHONE}"}
    tagged["extension"] = [*tagged.get("extension", []), extension]
    return tagged


def _fhir_resources() -> list[dict[str, Any]]:
    own_clinic = json.dumps(fx.clinic_resources()).replace('"clinic_01"', f'"{CLINIC}"')
    resources = [_tagged(resource) for resource in json.loads(own_clinic)]
    patient = resources[1]
    patient["name"] = [{"use": "official", "family": "Nguyen", "given": ["Bobby"]}]
    patient["birthDate"] = BIRTH_DATE
    patient["telecom"] = [{"system": "phone", "value": PHONE}, {"system": "email", "value": EMAIL}]
    patient["address"] = [{"line": [ADDRESS], "city": "Peoria"}]
    patient["identifier"][0]["value"] = MRN
    resources[3]["note"] = [{"text": NOTE}]
    resources[5]["note"] = [{"text": NOTE}]
    resources[6]["code"]["text"] = f"NPRS told by {NAME} {PHONE}"
    return resources


def _device_copies(network: EmulationSummary, folder: Path) -> None:
    """Copies of one log per format, each with an identifier in one free field."""
    kathodyne = device_files(network, ".csv")[0].read_text(encoding="utf-8")
    dermapatch = device_files(network, ".log")[0].read_text(encoding="utf-8")
    phoresys = json.loads(device_files(network, ".json")[0].read_text(encoding="utf-8"))

    def line(text: str, key: str, value: str) -> str:
        lines = text.splitlines(keepends=True)
        index = next(i for i, row in enumerate(lines) if row.startswith(key))
        lines[index] = f"{key}{value}\n"
        return "".join(lines)

    header_end = kathodyne.index("elapsed_s,")
    first_sample = kathodyne.index("\n", header_end) + 1
    sample = kathodyne[first_sample:].split(",", 3)
    copies = {
        "k_sample.csv": kathodyne[:first_sample] + ",".join([*sample[:2], NAME, sample[3]]),
        "k_drug.csv": line(kathodyne, "# drug: ", NOTE),
        "k_model.csv": line(kathodyne, "# model: ", OTHER_NAME),
        "k_firmware.csv": line(kathodyne, "# firmware: ", PHONE),
        "k_session.csv": line(kathodyne, "# session_id: ", MRN),
        "d_drug.log": line(dermapatch, "Wirkstoff;", NAME),
        "d_run.log": line(dermapatch, "Lauf;", EMAIL),
        "d_firmware.log": line(dermapatch, "Firmware;", ADDRESS),
    }
    for field, value in (("id", NAME), ("encounter_ref", MRN)):
        document = copy.deepcopy(phoresys)
        document["session"][field] = value
        copies[f"p_{field}.json"] = json.dumps(document)
    document = copy.deepcopy(phoresys)
    document["session"]["medication"]["name"] = NOTE
    document["device"]["firmware"] = OTHER_PHONE
    copies["p_free.json"] = json.dumps(document)
    for name, text in copies.items():
        stem, extension = name.split(".")
        (folder / stem).mkdir(parents=True)
        (folder / stem / f"{PATIENT_FILE}.{extension}").write_text(text, encoding="utf-8")


def write_corpus(network: EmulationSummary, root: Path) -> list[Path]:
    """Write the corpus under ``root``; returns the paths to import, in order."""
    tables = _ehr_tables()
    write_ehr_export(root / "ehr", tables)
    for name, text in _bad_ehr_tables(tables).items():
        write_ehr_export(root / "bad_ehr" / name.split(".")[0], {f"{PATIENT_FILE}.csv": text})
    fhir = root / "fhir"
    fhir.mkdir()
    fx.write_json(fhir / f"{PATIENT_FILE}.json", fx.bundle("collection", _fhir_resources()))
    unborn = _fhir_resources()
    unborn[1]["birthDate"] = US_BIRTH_DATE
    fx.write_json(fhir / f"Abernathy_Quentin_{MRN}.json", fx.bundle("collection", unborn))
    _device_copies(network, root / "devices")
    other = root / "other"
    other.mkdir()
    (other / f"{PATIENT_FILE}.txt").write_text(NOTE + "\n", encoding="utf-8")
    (other / f"{OTHER_NAME}.letter").write_bytes(NOTE.encode("utf-16"))
    (other / f"{PATIENT_FILE}_link.csv").symlink_to("/etc/passwd")
    with zipfile.ZipFile(other / "exports.zip", "w") as archive:
        archive.writestr(f"{PATIENT_FILE}.ndjson", NOTE)
        archive.writestr(f"{PATIENT_FILE}.zip", b"PK\x03\x04" + NOTE.encode())
    network_ehr = Path(network.out_dir) / "ehr"  # registers the devices of the logs
    return [network_ehr, root / "ehr", root / "bad_ehr", fhir, root / "devices", other]
