"""Device logs: every kind of bad file is set aside with a reason; good ones import.

Each case edits one real emulated file (tests/import_fixtures.py) the way clinics' files
really go wrong, imports it next to the device inventory, and checks the outcome.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlmodel import SQLModel

from device_import.formats import detect
from device_import.parsed import ParseContext
from device_import.parsers import dermapatch_log, ehr_csv, kathodyne_csv, phoresys_json
from device_import.pipeline import EXIT_QUARANTINED, Importer, ImportReport
from device_import.privacy import Keyer
from device_import.problems import FileRejected
from emulator import EmulationSummary
from tests.import_fixtures import SITE_KEY, device_files

SESSIONS = SQLModel.metadata.tables["ionto_session"]
KEYER = Keyer(SITE_KEY)


def inventory(network: EmulationSummary) -> list[Path]:
    """The clinics and devices tables of every clinic: what places a device's clock."""
    ehr = Path(network.out_dir) / "ehr"
    return sorted([*ehr.glob("*/clinics.csv"), *ehr.glob("*/devices.csv")])


def run(engine: Engine, network: EmulationSummary, files: list[Path], tmp: Path) -> ImportReport:
    return Importer(engine, KEYER, quarantine_dir=tmp / "quarantine").run(
        [*inventory(network), *files]
    )


def edited(source: Path, tmp: Path, edit: Callable[[str], str]) -> Path:
    target = tmp / "in" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(edit(source.read_text(encoding="utf-8")), encoding="utf-8")
    return target


def sessions(engine: Engine) -> list:
    with engine.connect() as connection:
        return connection.execute(select(SESSIONS).order_by(SESSIONS.c.id)).all()


def _kathodyne(network: EmulationSummary) -> Path:
    """A completed Kathodyne session with a footer."""
    return next(p for p in device_files(network, ".csv") if "DOSE_COMPLETE" in p.read_text())


def _sample_line(text: str, index: int = 40) -> str:
    return text.splitlines()[
        text.splitlines().index(
            next(line for line in text.splitlines() if line.startswith("elapsed_s,"))
        )
        + index
    ]


def test_every_device_format_imports(
    engine: Engine, network: EmulationSummary, tmp_path: Path
) -> None:
    files = [device_files(network, suffix)[0] for suffix in (".csv", ".json", ".log")]
    report = run(engine, network, files, tmp_path)
    assert report.quarantine == []
    assert report.formats["kathodyne_csv"] == report.formats["phoresys_json"] == 1
    assert report.formats["dermapatch_log"] == 1
    stored = sessions(engine)
    assert {row.clock_source for row in stored} == {"device_offset", "clinic_timezone"}
    assert any("clinic's time zone" in note for note in report.notes)


def test_bom_and_crlf_device_file_imports(
    engine: Engine, network: EmulationSummary, tmp_path: Path
) -> None:
    source = _kathodyne(network)
    target = tmp_path / "crlf.csv"
    target.write_bytes(b"\xef\xbb\xbf" + source.read_bytes().replace(b"\n", b"\r\n"))
    report = run(engine, network, [target], tmp_path)
    assert report.quarantine == []
    assert len(sessions(engine)) == 1


CASES: dict[str, tuple[str, Callable[[str], str], str, str]] = {
    # case: (file ending, edit, field named in the problem, words of the reason)
    "microamperes written as milliamperes": (
        ".csv",
        lambda text: text.replace(
            _sample_line(text),
            _sample_line(text).replace(_sample_line(text).split(",")[2], "3000", 1),
        ),
        "measured_current_mA",
        "µA",
    ),
    "negative current": (
        ".csv",
        lambda text: text.replace(
            _sample_line(text),
            _sample_line(text).replace("," + _sample_line(text).split(",")[2] + ",", ",-0.8,", 1),
        ),
        "measured_current_mA",
        "out of range",
    ),
    "NaN current": (
        ".csv",
        lambda text: text.replace(
            _sample_line(text),
            _sample_line(text).replace("," + _sample_line(text).split(",")[2] + ",", ",NaN,", 1),
        ),
        "measured_current_mA",
        "not a number",
    ),
    "decimal comma in a point-decimal file": (
        ".csv",
        lambda text: text.replace("# target_current_mA: ", "# target_current_mA: 1,").replace(
            "# target_current_mA: 1,", "# target_current_mA: 3,", 1
        ),
        "target_current_ma",
        "decimal comma",
    ),
    "dose over 200 mA·min": (
        ".csv",
        lambda text: text.replace("# target_dose_mA_min: 40.0", "# target_dose_mA_min: 400.0"),
        "prescribed_dose_mA_min",
        "implausible dose",
    ),
    "header only": (
        ".csv",
        lambda text: text[: text.index("elapsed_s,")] + _sample_line(text, 0) + "\n",
        None,
        "header only",
    ),
    "truncated JSON document": (
        ".json",
        lambda text: text[: len(text) // 2],
        None,
        "truncated JSON",
    ),
    "unknown device end code": (
        ".log",
        lambda text: text.replace("Grund;DOSIS_ERREICHT", "Grund;FERTIG"),
        "Grund",
        "unknown device code",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_device_file_is_quarantined_with_its_reason(
    engine: Engine,
    network: EmulationSummary,
    tmp_path: Path,
    case: str,
) -> None:
    suffix, edit, field, words = CASES[case]
    candidates = device_files(network, suffix)
    source = (
        _kathodyne(network)
        if suffix == ".csv"
        else next(p for p in candidates if suffix != ".log" or "DOSIS_ERREICHT" in p.read_text())
    )
    bad = edited(source, tmp_path, edit)
    good = next(p for p in device_files(network, ".json") if p.name != source.name)
    report = run(engine, network, [bad, good], tmp_path)
    assert report.exit_status == EXIT_QUARANTINED
    [problem] = report.quarantine
    assert problem.file == str(bad)
    assert words in problem.message()
    assert problem.field == field
    assert problem.record is not None
    assert len(sessions(engine)) == 1  # the good file still imported; nothing of the bad one
    assert (tmp_path / "quarantine").exists()


def test_a_power_loss_log_keeps_its_rows_and_is_flagged(
    engine: Engine,
    network: EmulationSummary,
    tmp_path: Path,
) -> None:
    source = _kathodyne(network)
    text = source.read_text()
    cut = edited(source, tmp_path, lambda t: t[: (t.index("elapsed_s,") + t.index("# end_r")) // 2])
    report = run(engine, network, [cut], tmp_path)
    assert report.quarantine == []
    [row] = sessions(engine)
    assert row.truncated and row.end_reason == "POWER_LOSS" and "POWER_LOSS" in row.fault_codes
    assert row.delivered_dose_mA_min is None  # the device never wrote its figure
    target = float(text.split("# target_dose_mA_min: ")[1].split()[0])
    assert 0.2 * target < row.recomputed_dose_mA_min < 0.8 * target


def test_a_zoneless_clock_of_an_unregistered_device_is_refused(
    engine: Engine,
    network: EmulationSummary,
    tmp_path: Path,
) -> None:
    source = device_files(network, ".json")[0]
    report = Importer(engine, KEYER).run([source])  # no device inventory
    [problem] = report.quarantine
    assert "no time zone" in problem.reason and problem.field == "serial"


def test_device_logs_wait_for_the_inventory_loaded_in_the_same_batch(
    engine: Engine,
    network: EmulationSummary,
    tmp_path: Path,
) -> None:
    """Workers parse device logs while records load, but only once the inventory is in."""
    logs = device_files(network, ".json")[:12]  # zoneless clocks: need their clinic's zone
    patients = sorted((Path(network.out_dir) / "ehr").glob("*/patients.csv"))
    report = Importer(engine, KEYER, workers=2).run([*logs, *patients, *inventory(network)])
    assert report.quarantine == []
    assert report.formats["phoresys_json"] == len(logs)
    assert all(row.clock_source == "clinic_timezone" for row in sessions(engine))


def test_which_files_may_register_devices() -> None:
    clinics, devices, visits = (
        detect(f"{header}\n".encode(), "t.csv")
        for header in (
            "clinic_id,name,time_zone",
            "clinic_id,serial,vendor,model,kind",
            "clinic_id,encounter_id,episode_id,visit_date,visit_type",
        )
    )
    assert clinics.places_devices and devices.places_devices and not visits.places_devices
    log = detect(b"# Kathodyne Medical KD-400 session export\n", "k.csv")
    fhir_bundle = detect(b'{"resourceType": "Bundle", "type": "collection"}', "b.json")
    assert not log.places_devices and fhir_bundle.places_devices


def test_wrong_polarity_is_flagged_as_a_protocol_deviation(
    engine: Engine,
    network: EmulationSummary,
    tmp_path: Path,
) -> None:
    flipped = edited(
        _kathodyne(network),
        tmp_path,
        lambda t: t.replace("# active_electrode: CATHODE", "# active_electrode: ANODE"),
    )
    run(engine, network, [flipped], tmp_path)
    [row] = sessions(engine)
    assert row.active_polarity == "anode" and row.wrong_polarity


def test_a_device_that_misreports_its_dose_is_flagged(
    engine: Engine,
    network: EmulationSummary,
    tmp_path: Path,
) -> None:
    def inflate(text: str) -> str:
        line = next(x for x in text.splitlines() if x.startswith("# delivered_dose_mA_min:"))
        return text.replace(line, "# delivered_dose_mA_min: 55.0")

    run(engine, network, [edited(_kathodyne(network), tmp_path, inflate)], tmp_path)
    [row] = sessions(engine)
    assert row.dose_mismatch and row.delivered_dose_mA_min == 55.0


def test_duplicates_conflicts_and_corrected_re_exports(
    engine: Engine,
    network: EmulationSummary,
    tmp_path: Path,
) -> None:
    source = _kathodyne(network)
    copy = tmp_path / "copy" / source.name
    copy.parent.mkdir()
    shutil.copyfile(source, copy)
    first = run(engine, network, [source, copy], tmp_path)
    assert first.files["imported"] >= 1 and first.files["unchanged"] >= 1
    assert len(sessions(engine)) == 1

    def change_a_sample(text: str) -> str:
        line = _sample_line(text)
        return text.replace(line, line.replace(line.split(",")[3], "9.999", 1))

    conflicting = edited(source, tmp_path, change_a_sample)
    report = run(engine, network, [conflicting], tmp_path)
    [problem] = report.quarantine
    assert problem.field == "export_revision" and "corrected re-export" in problem.reason

    corrected = tmp_path / "corrected.csv"
    corrected.write_text(
        conflicting.read_text().replace(
            "# format_version: 2\n", "# format_version: 2\n# export_revision: 2\n"
        )
    )
    report = run(engine, network, [corrected], tmp_path)
    assert report.quarantine == [] and report.files["superseded"] == 1
    old, new = sessions(engine)
    assert (old.version, old.is_current, new.version, new.is_current) == (1, False, 2, True)
    assert new.supersedes_id == old.id and new.session_key == old.session_key


PARSERS = {
    "kathodyne_csv": kathodyne_csv.parse,
    "phoresys_json": phoresys_json.parse,
    "dermapatch_log": dermapatch_log.parse,
    "ehr_csv": ehr_csv.parse,
}
PREFIXES = [
    b"",
    kathodyne_csv.MAGIC + b"\n",
    b'{"format": "phoresys.session", ',
    dermapatch_log.MAGIC + b"\n",
    b"clinic_id,name,time_zone\n",
]


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=600))
def test_parsers_raise_only_the_toolkits_own_error_on_arbitrary_bytes(
    name: str, prefix: bytes, body: bytes
) -> None:
    context = ParseContext("fuzz.bin", KEYER, today=dt.date(2026, 1, 1))
    with contextlib.suppress(FileRejected):
        PARSERS[name](prefix + body, context)


def test_parsers_on_structured_garbage_raise_only_file_rejected() -> None:
    """Valid JSON of the wrong shapes, which random bytes rarely produce."""
    context = ParseContext("shape.json", KEYER)
    for document in (
        {"format": "phoresys.session"},
        {"format": "phoresys.session", "device": []},
        {"format": "phoresys.session", "device": {}, "session": {}, "samples": {}},
        {
            "format": "phoresys.session",
            "device": {"serial": "x", "model": "m"},
            "session": {"id": "1"},
            "samples": {
                "count": 2,
                "interval_ms": 1000,
                "current_uA": [1, "a"],
                "load_ohm": [1, 2],
            },
        },
    ):
        with pytest.raises(FileRejected):
            phoresys_json.parse(json.dumps(document).encode(), context)


def test_a_file_refused_by_the_store_rolls_back_alone_within_its_batch(
    engine: Engine, network: EmulationSummary, tmp_path: Path
) -> None:
    """Device logs commit in groups, each file in a savepoint: a conflict in the middle
    of a group takes only its own rows with it."""
    first, second, third = device_files(network, ".csv")[:3]
    run(engine, network, [first], tmp_path)

    def change_a_sample(text: str) -> str:
        line = _sample_line(text, 5)
        return text.replace(line, line.replace(line.split(",")[3], "9.999", 1))

    conflicting = edited(first, tmp_path, change_a_sample)
    report = run(engine, network, [second, conflicting, third], tmp_path)
    assert [p.file for p in report.quarantine] == [str(conflicting)]
    assert len(sessions(engine)) == 3
    ledger = SQLModel.metadata.tables["import_file"]
    with engine.connect() as connection:
        statuses = {row.file_name_hash: row.status for row in connection.execute(select(ledger))}
    named = KEYER.file_name
    assert statuses[named(second.name)] == statuses[named(third.name)] == "imported"
