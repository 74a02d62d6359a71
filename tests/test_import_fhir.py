"""Importing FHIR R4: Bundles of every type, NDJSON, real-world shapes, and agreement with
the EHR CSV route on the same emulated network."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from data_schemas import fhir_systems, store
from device_import.formats import detect
from device_import.parsed import ParseContext
from device_import.parsers import fhir, fhir_graph, fhir_resources
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from device_import.problems import FileRejected
from emulator import EmulationSummary, emulate
from emulator import fhir as emulator_fhir
from tests import fhir_fixtures as fx

KEY = b"test-site-key"
TODAY = dt.date(2026, 1, 1)
CLINICAL = ("patient", "episode", "visit", "outcome_measurement")


def importer(engine: Engine, tmp_path: Path) -> Importer:
    return Importer(engine, Keyer(KEY), quarantine_dir=tmp_path / "quarantine", today=TODAY)


def counts(engine: Engine) -> dict[str, int]:
    return {k: v for k, v in store.info(engine).row_counts.items() if k != "import_file"}


def context(name: str = "x.json") -> ParseContext:
    return ParseContext(name, Keyer(KEY), today=TODAY)


# -- detection ------------------------------------------------------------------------


def test_sniff_ranks_files_in_load_order() -> None:
    def rank(resource_type: str) -> int | None:
        return fhir.sniff(json.dumps({"id": "1", "resourceType": resource_type}).encode())

    order = ["Organization", "Patient", "Condition", "Encounter", "Observation", "Bundle"]
    assert [rank(t) for t in order] == sorted(rank(t) for t in order)
    assert rank("Practitioner") == rank("Procedure") < rank("Bundle")
    nested = b'{"id": "b", "entry": [{"resource": {"resourceType": "Patient"}}], "type"'
    assert fhir.sniff(nested) is None  # a nested resourceType is not the file's
    assert fhir.sniff(b"clinic_id,name,time_zone\n") is None
    found = detect(json.dumps(fx.bundle("collection"), indent=2).encode()[:4096], "b.json")
    assert found is not None and found.format.name == "fhir_r4"


def test_identifier_systems_agree_with_the_emulator_and_the_spec() -> None:
    for name in (
        "CLINIC_SYSTEM",
        "EPISODE_SYSTEM",
        "ENCOUNTER_SYSTEM",
        "DEVICE_SERIAL_SYSTEM",
        "TIMEZONE_EXTENSION",
        "INSTRUMENT_SYSTEM",
    ):
        shared = getattr(fhir_systems, name)
        assert getattr(emulator_fhir, name) is shared, name
        for reader in (fhir_graph, fhir_resources):
            assert getattr(reader, name, shared) is shared, name
    spec = json.loads((Path(__file__).parents[1] / "data_schemas/formats/fhir_r4.json").read_text())
    declared = json.dumps(spec)
    for name in ("CLINIC_SYSTEM", "EPISODE_SYSTEM", "ENCOUNTER_SYSTEM", "TIMEZONE_EXTENSION"):
        assert getattr(fhir_systems, name) in declared, name


# -- Bundles and NDJSON ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["transaction", "batch", "collection", "searchset"])
def test_a_bundle_of_each_type_imports(engine: Engine, tmp_path: Path, kind: str) -> None:
    path = fx.write_json(tmp_path / "in" / f"{kind}.json", fx.bundle(kind))
    report = importer(engine, tmp_path).run([path])
    assert report.quarantine == []
    rows = counts(engine)
    assert {t: rows[t] for t in (*CLINICAL, "clinic", "intervention")} == {
        "patient": 1,
        "episode": 1,
        "visit": 1,
        "outcome_measurement": 1,
        "clinic": 1,
        "intervention": 1,
    }
    skipped = report.to_dict()["skipped_resources"]
    assert skipped["Practitioner"] == 1 and skipped["AllergyIntolerance"] == 2
    assert skipped["Observation (not a score)"] == 1
    if kind == "searchset":
        assert skipped["OperationOutcome"] == 1
        assert any("issue" in note for note in report.notes)


def test_a_corrected_birth_date_names_the_patient_entry_and_the_field(
    engine: Engine, tmp_path: Path
) -> None:
    first = fx.write_json(tmp_path / "in" / "first.json", fx.bundle("collection"))
    importer(engine, tmp_path).run([first])
    resources = fx.clinic_resources(fx.UUIDS)
    [patient] = [r for r in resources if r["resourceType"] == "Patient"]
    patient["birthDate"] = "1971-05-04"
    again = fx.write_json(tmp_path / "in" / "again.json", fx.bundle("collection", resources))
    report = importer(engine, tmp_path).run([again])
    [problem] = report.quarantine
    entry = next(at for at, r in enumerate(resources) if r["resourceType"] == "Patient")
    assert (problem.record, problem.field) == (f"Bundle entry {entry} (Patient)", "birthDate")
    assert problem.reason.startswith("the birth date of a known patient changed")
    assert not any(text in problem.message() for text in ("1971", "1970", "MRN-001", "pat-1"))


def test_ndjson_with_profiles_extensions_and_conditional_references(
    engine: Engine, tmp_path: Path
) -> None:
    conditional = f"Patient?identifier={fx.MRN_SYSTEM}.clinic_01|MRN-001"
    episode = f"Condition?identifier={fx.EPISODE_SYSTEM}|EP001"
    resources = fx.clinic_resources({"pat-1": conditional, "cond-1": episode})
    clinic = f"Organization?identifier={fx.CLINIC_SYSTEM}|clinic_01"
    for resource in resources:
        if resource["resourceType"] == "Encounter":  # keyed by its FHIR id, Encounter/enc-1
            resource.pop("identifier")
            resource["serviceProvider"] = {"reference": clinic}
        if resource["resourceType"] == "Observation":  # the episode of a score: a logical ref
            ident = {
                "system": fx.EPISODE_SYSTEM,
                "value": "EP001",
                "assigner": fx.clinic_assigner(),
            }
            resource["focus"] = [{"identifier": ident}]
    folder = fx.write_ndjson(tmp_path / "bulk", resources)
    report = importer(engine, tmp_path).run([folder])
    assert report.quarantine == []
    assert report.files["imported"] == 6  # Practitioner, AllergyIntolerance: nothing to load
    rows = counts(engine)
    assert [rows[t] for t in CLINICAL] == [1, 1, 1, 1]
    assert rows["intervention"] == 1


def test_a_general_ehr_patient_without_our_conditions_imports_cleanly(
    engine: Engine, tmp_path: Path
) -> None:
    pat = "urn:uuid:8a1e3b8e-0000-4000-8000-000000000002"
    asthma = "urn:uuid:8a1e3b8e-0000-4000-8000-000000000004"
    resources = [
        fx.patient(),
        fx.condition(pat, code="J45.909", episode=None),
        fx.encounter(pat, asthma, enc=None),
        fx.procedure(pat, "urn:uuid:8a1e3b8e-0000-4000-8000-000000000005", code="94010"),
        fx.heart_rate(pat),
        fx.practitioner(),
    ]
    path = fx.write_json(tmp_path / "everything.json", fx.bundle("searchset", resources))
    report = importer(engine, tmp_path).run([path])
    assert report.quarantine == []
    skipped = report.to_dict()["skipped_resources"]
    assert skipped["Condition (other diagnosis)"] == 1
    assert skipped["Encounter (other diagnosis)"] == 1
    assert skipped["Procedure (other diagnosis)"] == 1  # CPT 94010 at an asthma visit
    assert counts(engine)["episode"] == 0


def test_the_same_person_with_two_mrns_is_one_patient(engine: Engine, tmp_path: Path) -> None:
    two = fx.patient(mrns=(("clinic_01", "MRN-001"), ("clinic_02", "MRN-778")))
    other_clinic = fx.patient("pat-2", mrns=(("clinic_02", "MRN-778"),))
    folder = fx.write_ndjson(tmp_path / "bulk", [fx.organization(), two])
    fx.write_json(tmp_path / "second.json", fx.bundle("collection", [other_clinic]))
    report = importer(engine, tmp_path).run([folder, tmp_path / "second.json"])
    assert report.quarantine == []
    keyer = Keyer(KEY)
    with engine.connect() as connection:
        links = set(
            connection.execute(
                select(SQLModel.metadata.tables["patient_link"].c.source_key)
            ).scalars()
        )
    assert counts(engine)["patient"] == 1
    assert {
        keyer.key("mrn", "clinic_01", "MRN-001"),
        keyer.key("mrn", "clinic_02", "MRN-778"),
    } <= links
    assert keyer.key("fhir", "Patient", "pat-2") in links


def test_the_store_holds_no_direct_identifier(engine: Engine, tmp_path: Path) -> None:
    path = fx.write_json(tmp_path / "b.json", fx.bundle("collection"))
    assert importer(engine, tmp_path).run([path]).quarantine == []
    with engine.connect() as connection:
        dump = " ".join(
            str(value)
            for table in SQLModel.metadata.sorted_tables
            for row in connection.execute(select(table))
            for value in row
        )
    for identifier in fx.IDENTIFIERS:
        assert identifier not in dump


# -- bad files --------------------------------------------------------------------------


def test_a_dangling_urn_reference_is_rejected_by_the_parser() -> None:
    document = fx.bundle("transaction")
    document["entry"][3]["resource"]["subject"]["reference"] = "urn:uuid:0000dead"
    with pytest.raises(FileRejected) as caught:
        fhir.parse(json.dumps(document).encode(), context("t.json"))
    problem = caught.value.problem
    assert problem.file == "t.json" and "entry 3" in (problem.record or "")
    assert problem.field == "subject" and problem.got == "text of 17 characters"
    assert "dangling" in problem.reason


def test_a_dangling_patient_reference_is_rejected_by_the_loader(
    engine: Engine, tmp_path: Path
) -> None:
    folder = fx.write_ndjson(tmp_path / "bulk", [fx.organization(), fx.condition("Patient/xyz")])
    report = importer(engine, tmp_path).run([folder])
    assert len(report.quarantine) == 1
    problem = report.quarantine[0]
    assert problem.file.endswith("Condition.ndjson")
    assert problem.record == "episode record 1" and problem.field == "patient_ref"
    assert counts(engine)["episode"] == 0


def test_an_unknown_instrument_code_is_rejected(engine: Engine, tmp_path: Path) -> None:
    resources = fx.clinic_resources(fx.UUIDS)
    resources[6] = fx.score(
        "urn:uuid:8a1e3b8e-0000-4000-8000-000000000002",
        "urn:uuid:8a1e3b8e-0000-4000-8000-000000000005",
        fhir_systems.INSTRUMENT_SYSTEM,
        "happiness_index",
        3,
    )
    path = fx.write_json(tmp_path / "b.json", fx.bundle("collection", resources))
    report = importer(engine, tmp_path).run([path])
    problem = report.quarantine[0]
    assert problem.field == "code.coding" and problem.got == "text of 15 characters"
    assert "Observation" in (problem.record or "")
    assert counts(engine)["patient"] == 0  # the whole file is set aside


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"{",
        b'{"resourceType": "Bundle", "entry": 3}',
        b"[1, 2]",
        b'{"a": 1}\n{"b"',
        b'{"resourceType":"Patient","id":"p"}',
        b"\xff\xfe{}",
        b"[" * 100_000,
    ],
)
def test_malformed_files_raise_only_file_rejected(data: bytes) -> None:
    with pytest.raises(FileRejected):
        fhir.parse(data, context())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "resourceType",
                            "entry",
                            "resource",
                            "subject",
                            "reference",
                            "code",
                            "coding",
                            "system",
                            "identifier",
                            "value",
                            "fullUrl",
                            "id",
                            "name",
                        ]
                    ),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=20,
        ).map(lambda doc: json.dumps(doc).encode()),
    )
)
def test_parse_raises_nothing_but_file_rejected(data: bytes) -> None:
    with contextlib.suppress(FileRejected):  # anything else propagates and fails
        fhir.parse(data, context())


# -- the emulated network ---------------------------------------------------------------


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> EmulationSummary:
    """One small emulated network (EHR CSV and FHIR of the same patients)."""
    return emulate(tmp_path_factory.mktemp("fhir_emu") / "out", patients=90, clinics=3, seed=11)


def _truth(run: EmulationSummary) -> dict[str, Any]:
    return json.loads(Path(run.ground_truth).read_text())


def test_emulated_fhir_alone_matches_the_ground_truth(
    engine: Engine, tmp_path: Path, network: EmulationSummary
) -> None:
    bulk = network.out_dir / "fhir" / "ndjson"
    report = importer(engine, tmp_path).run([bulk])
    assert report.quarantine == []
    truth = _truth(network)
    persons = {e["person_index"] for e in truth["answer_key"]["episodes"]}
    rows = counts(engine)
    assert rows["patient"] == len(persons) <= truth["counts"]["patients"]
    for table, key in (
        ("episode", "episodes"),
        ("visit", "visits"),
        ("outcome_measurement", "outcomes"),
        ("intervention", "interventions"),
    ):
        assert rows[table] == truth["counts"][key], table
    assert report.to_dict()["skipped_resources"] == {
        "MedicationAdministration": truth["counts"]["sessions"]
    }
    again = importer(engine, tmp_path).run([bulk])
    assert again.files["imported"] == 0 and counts(engine) == rows


def test_ehr_csv_then_fhir_of_the_same_network_adds_nothing(
    engine: Engine, tmp_path: Path, network: EmulationSummary
) -> None:
    first = importer(engine, tmp_path).run([network.out_dir / "ehr"])
    assert first.quarantine == []
    before = counts(engine)
    report = importer(engine, tmp_path).run([network.out_dir / "fhir"])
    assert report.quarantine == []
    after = counts(engine)
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"patient_link"}  # FHIR ids and identifiers are new aliases only
    assert not any("filled in" in name for name in report.rows)


def test_emulated_bundles_validate_with_r4b_models(network: EmulationSummary) -> None:
    from fhir.resources.R4B.bundle import Bundle

    paths = sorted((network.out_dir / "fhir" / "bundles").rglob("*.json"))[:1]
    for path in paths:
        bundle = Bundle.model_validate_json(path.read_text())
        types = {entry.resource.get_resource_type() for entry in bundle.entry}
        assert {"Organization", "Patient", "Condition", "Encounter"} <= types


def test_hand_written_bundles_validate_with_r4b_models() -> None:
    from fhir.resources.R4B.bundle import Bundle

    for kind in ("transaction", "batch", "collection", "searchset"):
        Bundle.model_validate(fx.bundle(kind))


def test_copying_a_bundle_under_another_name_is_unchanged(engine: Engine, tmp_path: Path) -> None:
    path = fx.write_json(tmp_path / "a" / "b.json", fx.bundle("collection"))
    importer(engine, tmp_path).run([path])
    before = counts(engine)
    shutil.copy(path, tmp_path / "copy.json")
    relabeled = fx.bundle("transaction")
    fx.write_json(tmp_path / "c" / "t.json", relabeled)
    report = importer(engine, tmp_path).run([tmp_path / "copy.json", tmp_path / "c"])
    assert report.quarantine == [] and counts(engine) == before
