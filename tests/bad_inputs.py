"""A corpus of hostile and messy inputs, each with the outcome the importer owes it.

Every kind is written into a folder of its own (``<root>/<kind>/...``), made from one good
file of the emulated network by a single change, so that a kind's outcome can be read off
the import report by its folder. ``expected`` is either :data:`IMPORTED` or a regular
expression the quarantine reason (the problem's whole message) must match.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emulator import EmulationSummary
from tests import fhir_fixtures as fx
from tests.ehr_export import EHR_TABLES
from tests.import_fixtures import device_files

IMPORTED = "imported"
"""The outcome of a kind the importer must accept."""


@dataclass(frozen=True)
class Kind:
    """One kind of input: its folder name, what it holds, and the outcome it must get."""

    name: str
    expected: str
    write: Callable[[Path, Samples], None]
    postgres: bool = False
    """Part of the PostgreSQL subset (a kind that SQLite stores and PostgreSQL might not)."""


@dataclass(frozen=True)
class Samples:
    """One good file of each device format, as text (the PhoreSys one parsed)."""

    kathodyne: str
    dermapatch: str
    phoresys: dict

    def numbered(self, number: int) -> Samples:
        """The same logs with session ids of their own (so kinds do not supersede each other)."""
        phoresys = copy.deepcopy(self.phoresys)
        phoresys["session"]["id"] = f"PS{number:06d}"
        return Samples(
            _header(self.kathodyne, "# session_id: ", f"K{number:08d}"),
            _header(self.dermapatch, "Lauf;", f"R{number:06d}"),
            phoresys,
        )


def samples_of(network: EmulationSummary) -> Samples:
    """The first log of each device format of ``network``."""
    return Samples(
        device_files(network, ".csv")[0].read_text(encoding="utf-8"),
        device_files(network, ".log")[0].read_text(encoding="utf-8"),
        json.loads(device_files(network, ".json")[0].read_text(encoding="utf-8")),
    )


def _header(text: str, key: str, value: str) -> str:
    """``text`` with the line starting ``key`` replaced by ``key`` + ``value``."""
    lines = text.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith(key))
    lines[index] = f"{key}{value}\n"
    return "".join(lines)


def _with_header(text: str, line: str) -> str:
    """``text`` with ``line`` added to the KD-400 header block."""
    first, rest = text.split("\n", 1)
    return f"{first}\n{line}\n{rest}"


def _sample_rows(text: str, marker: str) -> tuple[list[str], int]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker)) + 1
    return lines, start


def _kathodyne_row(text: str, row: int, column: int, value: str) -> str:
    lines, start = _sample_rows(text, "elapsed_s,")
    fields = lines[start + row].split(",")
    fields[column] = value
    lines[start + row] = ",".join(fields)
    return "\n".join(lines) + "\n"


def _dermapatch_row(text: str, row: int, change: Callable[[list[str]], list[str]]) -> str:
    lines, start = _sample_rows(text, "Zeit;")
    lines[start + row] = ";".join(change(lines[start + row].split(";")))
    return "\n".join(lines) + "\n"


def _phoresys(change: Callable[[dict], None]) -> Callable[[Path, Samples], None]:
    def write(folder: Path, samples: Samples) -> None:
        document = copy.deepcopy(samples.phoresys)
        change(document)
        (folder / "session.json").write_text(json.dumps(document), encoding="utf-8")

    return write


def _text(name: str, make: Callable[[Samples], str]) -> Callable[[Path, Samples], None]:
    def write(folder: Path, samples: Samples) -> None:
        (folder / name).write_text(make(samples), encoding="utf-8")

    return write


def _kathodyne(make: Callable[[str], str]) -> Callable[[Path, Samples], None]:
    return _text("session.csv", lambda samples: make(samples.kathodyne))


def _dermapatch(make: Callable[[str], str]) -> Callable[[Path, Samples], None]:
    return _text("session.log", lambda samples: make(samples.dermapatch))


CLINIC = "clinic_88"
"""The corpus's own clinic (the emulated network, imported in the same batch, has others)."""


def _base_tables() -> dict[str, str]:
    return {name: text.replace("clinic_01", CLINIC) for name, text in EHR_TABLES.items()}


def _ehr_base(folder: Path, _samples: Samples) -> None:
    for name, text in _base_tables().items():
        (folder / name).write_text(text, encoding="utf-8")


def _ehr_row(name: str, row: str) -> Callable[[Path, Samples], None]:
    """A table of the base export holding one new row (after the clinic column)."""
    header = EHR_TABLES[name].split("\n", 1)[0]
    return _bytes(name, f"{header}\n{CLINIC},{row}\n".encode())


def _episode(episode: str, icd10_code: str) -> str:
    return f"{episode},MRN002,2025-02-21,2025-03-04,{icd10_code},left,6,N,N,N,exercise,2,6,"


def _bytes(name: str, data: bytes) -> Callable[[Path, Samples], None]:
    def write(folder: Path, _samples: Samples) -> None:
        (folder / name).write_bytes(data)

    return write


def _zip(members: list[tuple[str, bytes]], **options: int) -> Callable[[Path, Samples], None]:
    def write(folder: Path, _samples: Samples) -> None:
        with zipfile.ZipFile(folder / "export.zip", "w", **options) as archive:
            for name, data in members:
                archive.writestr(name, data)

    return write


def _zip_of_kathodyne(names: list[str]) -> Callable[[Path, Samples], None]:
    def write(folder: Path, samples: Samples) -> None:
        with warnings.catch_warnings(), zipfile.ZipFile(folder / "export.zip", "w") as archive:
            warnings.simplefilter("ignore")  # a name twice is what one kind is about
            for name in names:
                archive.writestr(name, samples.kathodyne)

    return write


def _bad_crc(folder: Path, samples: Samples) -> None:
    _zip_of_kathodyne(["session.csv"])(folder, samples)
    data = bytearray((folder / "export.zip").read_bytes())
    at = data.index(b"# Kathodyne")
    data[at + 2] ^= 0xFF  # a stored member's byte changed after its CRC was written
    (folder / "export.zip").write_bytes(bytes(data))


def _flagged_zip(flag: int, method: int | None = None) -> Callable[[Path, Samples], None]:
    """A zip whose one member says it is encrypted (``flag`` 1) or uses ``method``."""

    def write(folder: Path, samples: Samples) -> None:
        _zip_of_kathodyne(["session.csv"])(folder, samples)
        data = bytearray((folder / "export.zip").read_bytes())
        for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
            at = data.index(signature)
            data[at + flag_at] |= flag
            if method is not None:
                data[at + method_at : at + method_at + 2] = method.to_bytes(2, "little")
        (folder / "export.zip").write_bytes(bytes(data))

    return write


def _long_name(folder: Path, samples: Samples) -> None:
    (folder / f"{'n' * 250}.csv").write_text(samples.kathodyne, encoding="utf-8")


def _undecodable_name(junk: bool) -> Callable[[Path, Samples], None]:
    def write(folder: Path, samples: Samples) -> None:
        path = os.path.join(os.fsencode(folder), b"caf\xe9.csv")
        with open(path, "wb") as file:
            file.write(b"not an export either\n" if junk else samples.kathodyne.encode())

    return write


def _nested(depth: int) -> bytes:
    return ('{"device": ' + "[" * depth + "]" * depth + "}").encode()


def _duplicate_fhir_name() -> str:
    """A Patient whose ``name`` is given twice: which one makes the pseudonym?"""
    document = fx.bundle("collection", fx.clinic_resources())
    text = json.dumps(document)
    return text.replace('"name": [', '"name": [{"family": "Other"}], "name": [', 1)


def _nested_fhir(depth: int) -> bytes:
    return ('{"resourceType": "Bundle", "entry": ' + "[" * depth + "]" * depth + "}").encode()


def _zip_bomb(folder: Path, _samples: Samples) -> None:
    with (
        zipfile.ZipFile(folder / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("zeros.csv", "w", force_zip64=True) as member,
    ):
        block = b"\0" * (1 << 20)
        for _ in range(1024):
            member.write(block)


def _hidden(folder: Path, samples: Samples) -> None:
    (folder / ".session.csv").write_text(samples.kathodyne, encoding="utf-8")
    (folder / "session.csv").write_text(samples.kathodyne, encoding="utf-8")


def _alarm(value: object) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        document["session"]["alarms"] = value

    return change


def _set(path: str, value: object) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        *parents, last = path.split(".")
        target = document
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _swap_kathodyne_columns(text: str) -> str:
    lines, start = _sample_rows(text, "elapsed_s,")
    header = lines[start - 1].split(",")
    header[3], header[4] = header[4], header[3]
    lines[start - 1] = ",".join(header)
    return "\n".join(lines) + "\n"


def _kathodyne_backwards(text: str) -> str:
    lines, start = _sample_rows(text, "elapsed_s,")
    lines[start + 3], lines[start + 4] = lines[start + 4], lines[start + 3]
    return "\n".join(lines) + "\n"


def _dermapatch_times(text: str) -> str:
    lines, start = _sample_rows(text, "Zeit;")
    lines[start + 2], lines[start + 3] = lines[start + 3], lines[start + 2]
    return "\n".join(lines) + "\n"


def _duplicate_key(document_text: str) -> str:
    return document_text.replace('"session": {', '"session": {"id": "A", ', 1)


def _emulator_files(folder: Path, _samples: Samples) -> None:
    (folder / "ground_truth.json").write_text('{"episodes": []}', encoding="utf-8")
    (folder / "manifest.json").write_text('{"files": []}', encoding="utf-8")
    (folder / "scenario.yaml").write_text("name: x\n", encoding="utf-8")


KATHODYNE_IN_ZIP = "session.csv"
REASON_OF_ZIP_MEMBER = r"zip|archive|member"

KINDS: tuple[Kind, ...] = (
    # the good files themselves, one of each device format
    Kind("good_kathodyne", IMPORTED, _kathodyne(lambda text: text)),
    Kind("good_dermapatch", IMPORTED, _dermapatch(lambda text: text)),
    Kind("good_phoresys", IMPORTED, _phoresys(lambda _document: None)),
    Kind("good_zip", IMPORTED, _zip_of_kathodyne(["a/session.csv"])),
    # file names and zip reading
    Kind("long_file_name", IMPORTED, _long_name),
    Kind("long_name_refused", r"unknown format", _bytes(f"{'q' * 250}.txt", b"not an export\n")),
    Kind("undecodable_file_name", IMPORTED, _undecodable_name(junk=False)),
    Kind("undecodable_name_refused", r"unknown format", _undecodable_name(junk=True)),
    Kind("long_member_name", IMPORTED, _zip_of_kathodyne([f"{'m' * 250}.csv"])),
    Kind("zip_bad_crc", r"damaged|CRC", _bad_crc),
    Kind("zip_encrypted", r"encrypted", _flagged_zip(1)),
    Kind("zip_deflate64", r"compression", _flagged_zip(0, 9)),
    Kind("zip_same_name_twice", r"same name", _zip_of_kathodyne(["s.csv", "s.csv"])),
    Kind("zip_in_zip", r"unpack it first", _zip([("inner.zip", b"PK\x03\x04rest")])),
    Kind("zip_bomb", r"unpacks to|expands", _zip_bomb),
    Kind("zip_escape", r"escapes the archive", _zip([("../evil.csv", b"x")])),
    Kind("zip_damaged", r"damaged", _bytes("broken.zip", b"PK\x03\x04" + b"\0" * 40)),
    # unknown files an IT person must be told how to fix
    Kind("utf16", r"UTF-16.*re-export as UTF-8", _bytes("x.csv", "a,b\n1,2\n".encode("utf-16"))),
    Kind("semicolon_csv", r"semicolon", _bytes("x.csv", b"clinic_id;name\nc1;North\n")),
    Kind("empty_file", r"empty", _bytes("x.csv", b"")),
    Kind("binary_file", r"unknown format", _bytes("x.bin", bytes(range(256)) * 4)),
    # Kathodyne KD-400
    Kind(
        "k_elapsed_nan",
        r"elapsed_s|not finite",
        _kathodyne(lambda t: _kathodyne_row(t, 3, 0, "nan")),
    ),
    Kind(
        "k_elapsed_huge",
        r"elapsed_s|sample time",
        _kathodyne(lambda t: _kathodyne_row(t, 3, 0, "1e15")),
    ),
    Kind(
        "k_revision_1e20",
        r"export_revision",
        _kathodyne(lambda t: _with_header(t, "# export_revision: 1e20")),
    ),
    Kind(
        "k_revision_3e9",
        r"export_revision",
        _kathodyne(lambda t: _with_header(t, "# export_revision: 3000000000")),
        postgres=True,
    ),
    Kind(
        "k_model_long",
        r"model",
        _kathodyne(lambda t: _header(t, "# model: ", "K" * 150)),
        postgres=True,
    ),
    Kind(
        "k_drug_long",
        r"drug",
        _kathodyne(lambda t: _header(t, "# drug: ", "d" * 90)),
        postgres=True,
    ),
    Kind(
        "k_firmware_nul",
        r"firmware|NUL",
        _kathodyne(lambda t: _header(t, "# firmware: ", "2.3\x001")),
        postgres=True,
    ),
    Kind("k_swapped_columns", r"column|header", _kathodyne(_swap_kathodyne_columns)),
    Kind("k_backwards", r"increas", _kathodyne(_kathodyne_backwards)),
    Kind("k_impedance_negative", r"impedance", _kathodyne(lambda t: _kathodyne_row(t, 3, 3, "-5"))),
    Kind(
        "k_no_samples_header", r"sample header", _kathodyne(lambda t: t.replace("elapsed_s,", "x,"))
    ),
    Kind("k_drug_unknown", r"drug", _kathodyne(lambda t: _header(t, "# drug: ", "Snake oil"))),
    Kind(
        "k_future",
        r"future|operating window|after",
        _kathodyne(lambda t: t.replace("2025-", "2099-")),
    ),
    Kind(
        "k_before_1990", r"1990|operating window", _kathodyne(lambda t: t.replace("2025-", "1985-"))
    ),
    Kind(
        "k_current_text",
        r"line \d+: malformed sample row.*not a number in current_mA",
        _kathodyne(lambda t: _kathodyne_row(t, 3, 2, "abc")),
    ),
    Kind(
        "k_utf8_broken",
        r"not UTF-8",
        _bytes("s.csv", b"# Kathodyne Medical KD-400 session export\n\xff\n"),
    ),
    # DermaPatch 80
    Kind(
        "d_seven_fields",
        r"field",
        _dermapatch(lambda t: _dermapatch_row(t, 2, lambda f: [*f, "x", "y"])),
    ),
    Kind("d_times_backwards", r"increas|Zeit", _dermapatch(_dermapatch_times)),
    Kind(
        "d_impedance_zero",
        r"impedance|Impedanz",
        _dermapatch(lambda t: _dermapatch_row(t, 2, lambda f: [f[0], f[1], "0", *f[3:]])),
    ),
    Kind("d_drug_unknown", r"drug", _dermapatch(lambda t: _header(t, "Wirkstoff;", "Snake oil"))),
    Kind(
        "d_future", r"future|operating window", _dermapatch(lambda t: t.replace(".2025", ".2099"))
    ),
    # PhoreSys PS-2
    Kind("p_nested_deep", r"nested|deep", _bytes("s.json", _nested(100_000))),
    Kind("p_alarms_number", r"alarms", _phoresys(_alarm(5))),
    Kind("p_alarm_code_list", r"alarms", _phoresys(_alarm([{"code": ["a", "b"]}]))),
    Kind("p_interval_zero", r"interval_ms", _phoresys(_set("samples.interval_ms", 0))),
    Kind("p_interval_negative", r"interval_ms", _phoresys(_set("samples.interval_ms", -1000))),
    Kind(
        "p_duration_inconsistent",
        r"duration|ended",
        _phoresys(lambda d: d["session"].update(ended="2025-03-30T10:00:00Z")),
    ),
    Kind("p_model_long", r"model", _phoresys(_set("device.model", "M" * 150)), postgres=True),
    Kind(
        "p_firmware_nul",
        r"firmware|NUL",
        _phoresys(_set("device.firmware", "1\x00")),
        postgres=True,
    ),
    Kind("p_count_text", r"count", _phoresys(_set("samples.count", "many"))),
    Kind("p_samples_missing", r"samples", _phoresys(lambda d: d.pop("samples"))),
    Kind("p_truncated", r"JSON", _bytes("s.json", b'{"device": {"serial": ')),
    Kind(
        "p_duplicate_key",
        r"duplicate|twice",
        _text("s.json", lambda s: _duplicate_key(json.dumps(s.phoresys))),
    ),
    # FHIR R4
    Kind(
        "f_duplicate_name",
        r"same key twice",
        _text("b.json", lambda _s: _duplicate_fhir_name()),
    ),
    Kind("f_nested_deep", r"nested|deep|not valid JSON", _bytes("b.json", _nested_fhir(100_000))),
    # EHR CSV (rows added to the base export's tables)
    Kind("ehr_base", IMPORTED, _ehr_base),
    Kind(
        "e_long_field",
        r"longer than",
        _ehr_row("interventions.csv", f"ENC1,EP001,2025-03-03,97110,20,{'x' * 140_000},"),
    ),
    Kind(
        "e_devices_nul",
        r"NUL|firmware",
        _ehr_row(
            "devices.csv", "KD4-000999,Kathodyne Medical,KD-400,2.3\x001,clinic_unit,2024-01-01"
        ),
        postgres=True,
    ),
    Kind(
        "e_icd_injection",
        r"icd10_code|ICD",
        _ehr_row("episodes.csv", _episode("EP004", "M77.1'; --")),
    ),
    Kind("e_icd_dotless", IMPORTED, _ehr_row("episodes.csv", _episode("EP003", "M7711"))),
    Kind(
        "e_drug_unknown",
        r"drug",
        _ehr_row(
            "prescriptions.csv", "RX009,EP001,MRN001,2025-02-25,Dr. X,physician,Snake oil,4,2.5"
        ),
    ),
    Kind(
        "e_date_future",
        r"future|operating window",
        _ehr_row("visits.csv", "ENC9,EP001,MRN001,2099-03-05,09:00,treatment,PT"),
    ),
    Kind("e_short_row", r"field", _ehr_row("clinics.csv", "North")),
    Kind(
        "e_semicolons",
        r"semicolon",
        _bytes("clinics.csv", EHR_TABLES["clinics.csv"].replace(",", ";").encode()),
    ),
    # paths and the emulator's own files
    Kind("hidden_file_inside", IMPORTED, _hidden),
    Kind("emulator_files", IMPORTED, _emulator_files),
)


def write_kinds(root: Path, samples: Samples, kinds: tuple[Kind, ...] = KINDS) -> None:
    """Write every kind into ``root/<kind>/``."""
    for number, kind in enumerate(kinds):
        folder = root / kind.name
        folder.mkdir(parents=True)
        kind.write(folder, samples.numbered(number))
