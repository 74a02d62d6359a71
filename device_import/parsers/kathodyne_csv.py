"""Kathodyne Medical KD-400 clinic unit: CSV with ``#`` header and footer blocks, 1 Hz.

Samples in mA and kΩ, local time with its UTC offset. A log cut off by a power loss has
no footer and may end mid-line: the complete rows are kept and the session is flagged
``truncated`` with end reason ``POWER_LOSS``. A corrected re-export carries
``# export_revision: 2`` (or higher) in its header. Spec:
``data_schemas/formats/kathodyne_csv.json``.

Examples
--------
>>> sniff(b"# Kathodyne Medical KD-400 session export\\n# format_version: 2\\n")
0
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from data_schemas import vocabulary as v
from data_schemas.samples import SessionSamples
from device_import.parsed import ParseContext, ParsedFile
from device_import.parsers.common import FieldReader, decode_text, drug_key
from device_import.parsers.device_log import (
    add_session,
    check_range,
    device_record,
    map_code,
    place_clock,
    session_key,
)
from device_import.problems import reject

FORMAT = "kathodyne_csv"
MAGIC = b"# Kathodyne Medical KD-400 session export"
COLUMNS = (
    "elapsed_s",
    "local_time",
    "current_mA",
    "impedance_kohm",
    "voltage_V",
    "dose_mA_min",
    "state",
)
SAMPLE_COLUMNS = ("elapsed_s", "current_mA", "impedance_kohm", "voltage_V")
"""The columns a session keeps; the others are checked for shape only."""
_READ_OPTIONS = pacsv.ReadOptions(column_names=list(COLUMNS))
_CONVERT_OPTIONS = pacsv.ConvertOptions(
    column_types={name: pa.float64() for name in SAMPLE_COLUMNS},
    include_columns=list(SAMPLE_COLUMNS),
)
OPEN_CIRCUIT_KOHM = 999.999
END_CODES = {reason: reason for reason in v.END_REASONS}
ALARM_CODES = {code: code for code in v.FAULT_CODES}
POLARITY = {"cathode": "cathode", "anode": "anode"}
SKIN = {check: check for check in v.SKIN_CHECKS}


def sniff(head: bytes) -> int | None:
    """0 when the file starts with the KD-400 banner, else None."""
    return 0 if head.lstrip(b"\xef\xbb\xbf").startswith(MAGIC) else None


def _block(lines: list[str]) -> dict[str, str]:
    values = {}
    for line in lines:
        key, _, value = line[1:].partition(":")
        values[key.strip().lower()] = value.strip()
    return values


def _footer_start(data: bytes, body_start: int) -> int:
    """Where the trailing block of ``#`` lines begins (the end of the data if none)."""
    start = end = len(data.rstrip(b"\r\n"))
    while end >= body_start:
        line_start = data.rfind(b"\n", body_start - 1, end) + 1
        if line_start < body_start or not data.startswith(b"#", line_start):
            break
        start, end = line_start, line_start - 1
    return start


def _first_bad_row(body: bytes, first_line: int) -> tuple[int, str]:
    """The line of the first sample row pyarrow refused, and what is wrong with it."""
    numbers = [COLUMNS.index(name) for name in SAMPLE_COLUMNS]
    for offset, row in enumerate(body.decode("utf-8").splitlines()):
        fields = row.split(",")
        if len(fields) != len(COLUMNS):
            return first_line + offset, f"{len(fields)} fields instead of {len(COLUMNS)}"
        for position in numbers:
            try:
                float(fields[position])
            except ValueError:
                return first_line + offset, f"a value that is not a number in {COLUMNS[position]}"
    return first_line, "a row the CSV reader cannot take"


def _samples(body: bytes, file: str, first_line: int) -> SessionSamples:
    try:
        table = pacsv.read_csv(
            pa.BufferReader(body), read_options=_READ_OPTIONS, convert_options=_CONVERT_OPTIONS
        )
    except pa.ArrowInvalid:
        line, found = _first_bad_row(body, first_line)
        raise reject(
            file,
            "malformed sample row",
            record=f"line {line}",
            expected=",".join(COLUMNS) + " (numbers in the sample columns)",
            found=found,
        ) from None
    t_s, current, impedance_kohm, voltage = (
        table.column(name).to_numpy(zero_copy_only=False) for name in SAMPLE_COLUMNS
    )
    impedance = impedance_kohm * 1000.0
    impedance[impedance_kohm >= OPEN_CIRCUIT_KOHM] = np.inf
    check_range(voltage, "voltage_V", file, first_line=first_line)
    return SessionSamples(t_s, current, voltage, impedance)


def _check_columns(line: str, file: str, first_line: int) -> None:
    """The sample header must name the spec's columns in the spec's order (a swapped pair
    would store kΩ as volts)."""
    names = [name.strip() for name in line.strip().split(",")]
    if names == list(COLUMNS):
        return
    position = next(
        (i for i, name in enumerate(names) if i >= len(COLUMNS) or name != COLUMNS[i]),
        len(names),
    )
    raise reject(
        file,
        "the sample header does not name the KD-400 columns in their order (columns are "
        "read by name: a renamed or swapped column is refused)",
        record=f"line {first_line - 1}",
        field=f"column {position + 1}",
        expected=",".join(COLUMNS),
        found=f"{len(names)} columns, column {position + 1} named otherwise",
    )


def parse(data: bytes, context: ParseContext) -> ParsedFile:
    """Parse one KD-400 session export.

    The ``#`` header and footer are read as text; the sample rows go to pyarrow as the
    bytes they are (no copy through Python strings).
    """
    decode_text(data, context.file)  # the whole file must be UTF-8
    column_line = data.find(b"\nelapsed_s,")
    if column_line == -1:
        raise reject(
            context.file,
            "no sample header line",
            record="header",
            expected="a line starting 'elapsed_s,'",
            found="none",
        )
    lines = data[:column_line].decode("utf-8-sig").splitlines()
    first_line = len(lines) + 2
    body_start = data.find(b"\n", column_line + 1) + 1 or len(data)
    _check_columns(data[column_line + 1 : body_start].decode("utf-8"), context.file, first_line)
    footer_start = _footer_start(data, body_start)
    body = data[body_start:footer_start]
    footer_values = _block(data[footer_start:].decode("utf-8").splitlines())
    truncated = "end" not in footer_values
    last_row = body.rstrip(b"\r\n").rpartition(b"\n")[2]
    if truncated and last_row.count(b",") < len(COLUMNS) - 1:
        body = body[: body.rstrip(b"\r\n").rfind(b"\n") + 1]  # power loss cut the last row
    if not body.strip():
        raise reject(
            context.file,
            "header only: the log has no samples",
            record=f"line {first_line}",
            expected="at least one sample row",
            found="end of file",
        )
    header = FieldReader(context.file, "header", _block(lines[1:]))
    footer_fields = FieldReader(context.file, "footer", footer_values)
    serial = header.text("serial")
    device = device_record(
        context,
        serial,
        "Kathodyne Medical",
        header.text("model"),
        "clinic_unit",
        header.text("firmware", required=False),
    )
    samples = _samples(body, context.file, first_line)
    try:
        local_start = dt.datetime.fromisoformat(header.text("start_local"))
    except ValueError:
        raise reject(
            context.file,
            "bad start time",
            record="header",
            field="start_local",
            expected="YYYY-MM-DDTHH:MM:SS±HH:MM",
            got=header.text("start_local"),
        ) from None
    parsed = ParsedFile(FORMAT)
    started, clock = place_clock(local_start, device.serial_hash, context, parsed)
    duration = float(samples.t_s[-1]) if len(samples) else 0.0
    alarms = footer_fields.text("alarms", required=False) or ""
    faults = tuple(
        sorted(
            {
                map_code(item.split(":", 1)[-1], ALARM_CODES, context.file, "alarms")
                for item in alarms.split(";")
                if item
            }
        )
    )
    fields = {
        "_line": first_line,
        "session_key": session_key(context, serial, header.text("session_id")),
        "export_revision": header.integer("export_revision", required=False) or 1,
        "device": device,
        "setting": "clinic_unit",
        "drug": drug_key(header.text("drug")),
        "drug_concentration_mg_per_mL": header.number("concentration_mg_ml", required=False),
        "drug_volume_mL": header.number("volume_ml", required=False),
        "active_polarity": header.choice("active_electrode", POLARITY),
        "electrode_area_cm2": header.number("electrode_area_cm2", required=False),
        "prescribed_current_mA": header.number("target_current_ma", required=False),
        "prescribed_dose_mA_min": header.number("target_dose_ma_min", required=False),
        "delivered_dose_mA_min": footer_fields.number("delivered_dose_ma_min", required=False),
        "started_at_utc": started,
        "ended_at_utc": started + dt.timedelta(seconds=duration),
        "clock_source": clock,
        "end_reason": "POWER_LOSS"
        if truncated
        else map_code(footer_fields.text("end_reason"), END_CODES, context.file, "end_reason"),
        "fault_codes": faults,
        "skin_check_after": footer_fields.choice("skin_check_after", SKIN, required=False)
        or "not_checked",
        "truncated": truncated,
    }
    add_session(parsed, context, fields, samples)
    return parsed
