"""Dermatrode DermaPatch 80 wearable patch: semicolons, decimal commas, German labels.

One sample a minute (current mA, impedance kΩ), a zoneless ``DD.MM.YYYY`` device clock
placed in the device's clinic's time zone. No skin check (the patch is worn at home). A
log cut off by a power loss has no ``Ende`` block: the complete rows are kept and the
session is flagged ``truncated``. Spec: ``data_schemas/formats/dermapatch_log.json``.

Examples
--------
>>> sniff(b"DermaPatch 80;Log v2\\nSeriennummer;DP80-24-46079\\n")
0
"""

from __future__ import annotations

import datetime as dt

import numpy as np

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
from device_import.plausibility import check_sample_times
from device_import.problems import reject

FORMAT = "dermapatch_log"
MAGIC = b"DermaPatch 80;Log v2"
SAMPLE_INTERVAL_S = 60.0
END_CODES = {
    "DOSIS_ERREICHT": "DOSE_COMPLETE",
    "ENTFERNT": "EARLY_STOP_PATIENT",
    "KONTAKTVERLUST": "ELECTRODE_REJECT",
    "BATTERIE_LEER": "BATTERY_DEPLETED",
}
ALARM_CODES = {
    "STROMBEGRENZUNG": "CURRENT_LIMITED",
    "KONTAKTVERLUST": "ELECTRODE_REJECT",
    "BATTERIE_LEER": "BATTERY_DEPLETED",
    "ENTFERNT": "PAUSED",
}
POLARITY = {"kathode": "cathode", "anode": "anode"}
SAMPLE_HEADER = "Zeit;Strom mA;Impedanz kOhm;Dosis mAmin;Status"


def sniff(head: bytes) -> int | None:
    """0 when the file starts with the DermaPatch banner, else None."""
    return 0 if head.lstrip(b"\xef\xbb\xbf").startswith(MAGIC) else None


def _pairs(lines: list[str]) -> dict[str, str]:
    return {
        key.strip().lower(): value.strip()
        for key, _, value in (line.partition(";") for line in lines)
    }


def _clock(value: str | None, file: str, record: str, field: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(str(value), "%d.%m.%Y %H:%M:%S")
    except ValueError:
        raise reject(
            file,
            "bad device time",
            record=record,
            field=field,
            expected="DD.MM.YYYY HH:MM:SS",
            got=value,
        ) from None


def _numbers(
    rows: list[list[str]],
    column: int,
    file: str,
    first_line: int,
    name: str,
) -> np.ndarray:
    try:
        return np.array([float(row[column].replace(",", ".")) for row in rows])
    except (ValueError, IndexError):
        bad = next(
            i for i, row in enumerate(rows) if len(row) <= column or not _is_number(row[column])
        )
        raise reject(
            file,
            "malformed sample row",
            record=f"line {first_line + bad}",
            field=name,
            expected="a number with a decimal comma",
            got=rows[bad][column] if len(rows[bad]) > column else None,
            found=None if len(rows[bad]) > column else "missing",
        ) from None


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


def _check_widths(rows: list[list[str]], file: str, first_line: int) -> None:
    """Every sample row has exactly the header's five fields."""
    width = SAMPLE_HEADER.count(";") + 1
    for index, row in enumerate(rows):
        if len(row) != width:
            raise reject(
                file,
                "sample row with the wrong number of fields",
                record=f"line {first_line + index}",
                expected=f"{width} fields: {SAMPLE_HEADER}",
                found=f"{len(row)} fields",
            )


def _check_clock(rows: list[list[str]], file: str, first_line: int) -> None:
    """The ``Zeit`` of each row: a device time, one sample interval after the last."""
    times = []
    for index, row in enumerate(rows):
        try:
            moment = dt.datetime.strptime(row[0], "%d.%m.%Y %H:%M")
            times.append(moment.replace(tzinfo=dt.UTC).timestamp())  # a wall clock, no DST
        except ValueError:
            raise reject(
                file,
                "bad sample time",
                record=f"line {first_line + index}",
                field="Zeit",
                expected="DD.MM.YYYY HH:MM",
                got=row[0],
            ) from None
    check_sample_times(
        np.array(times), file, first_line=first_line, interval_s=SAMPLE_INTERVAL_S, field="Zeit"
    )


def parse(data: bytes, context: ParseContext) -> ParsedFile:
    """Parse one DermaPatch log."""
    lines = decode_text(data, context.file).splitlines()
    try:
        start = lines.index(SAMPLE_HEADER)
    except ValueError:
        raise reject(
            context.file,
            "no sample header line",
            record="header",
            expected=SAMPLE_HEADER,
            found="none",
        ) from None
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    rows = [line.split(";") for line in lines[start + 1 : end]]
    footer = _pairs([line for line in lines[end + 1 :] if line.strip()])
    truncated = "ende" not in footer
    if truncated and rows and len(rows[-1]) < 5:
        rows = rows[:-1]  # the power loss cut the last row short
    if not rows:
        raise reject(
            context.file,
            "header only: the log has no samples",
            record=f"line {start + 2}",
            expected="at least one sample row",
            found="end of file",
        )
    _check_widths(rows, context.file, start + 2)
    header = FieldReader(context.file, "header", _pairs(lines[1:start]))
    foot = FieldReader(context.file, "footer", footer)
    current = _numbers(rows, 1, context.file, start + 2, "Strom mA")
    impedance = _numbers(rows, 2, context.file, start + 2, "Impedanz kOhm") * 1000.0
    check_range(impedance, "impedance_ohm", context.file, first_line=start + 2)
    samples = SessionSamples(
        np.arange(len(rows)) * SAMPLE_INTERVAL_S, current, current * impedance / 1000.0, impedance
    )
    serial = header.text("seriennummer")
    device = device_record(
        context,
        serial,
        "Dermatrode",
        "DermaPatch 80",
        "wearable_patch",
        header.text("firmware", required=False),
    )
    parsed = ParsedFile(FORMAT)
    _check_clock(rows, context.file, start + 2)
    started, clock = place_clock(
        _clock(header.text("start"), context.file, "header", "Start"),
        device.serial_hash,
        context,
        parsed,
    )
    if truncated:
        ended = started + dt.timedelta(seconds=float(samples.t_s[-1]))
    else:
        ended, _ = place_clock(
            _clock(foot.text("ende"), context.file, "footer", "Ende"),
            device.serial_hash,
            context,
            parsed,
        )
    alarms = foot.text("alarme", required=False) or ""
    add_session(
        parsed,
        context,
        {
            "_line": start + 2,
            "session_key": session_key(context, serial, header.text("lauf")),
            "device": device,
            "setting": "wearable_patch",
            "drug": drug_key(header.text("wirkstoff")),
            "drug_concentration_mg_per_mL": header.number(
                "konzentration mg/ml", decimal_comma=True, required=False
            ),
            "drug_volume_mL": header.number("volumen ml", decimal_comma=True, required=False),
            "active_polarity": header.choice("polaritaet", POLARITY),
            "electrode_area_cm2": header.number(
                "elektrode cm2", decimal_comma=True, required=False
            ),
            "prescribed_current_mA": header.number(
                "sollstrom ma", decimal_comma=True, required=False
            ),
            "prescribed_dose_mA_min": header.number(
                "solldosis mamin", decimal_comma=True, required=False
            ),
            "delivered_dose_mA_min": foot.number(
                "abgegebene dosis mamin", decimal_comma=True, required=False
            ),
            "started_at_utc": started,
            "ended_at_utc": ended,
            "clock_source": clock,
            "end_reason": "POWER_LOSS"
            if truncated
            else map_code(foot.text("grund"), END_CODES, context.file, "Grund"),
            "fault_codes": tuple(
                sorted(
                    {
                        map_code(item.split(":", 1)[-1], ALARM_CODES, context.file, "Alarme")
                        for item in alarms.split("|")
                        if item
                    }
                )
            ),
            "skin_check_after": "not_checked",
            "truncated": truncated,
        },
        samples,
    )
    return parsed
