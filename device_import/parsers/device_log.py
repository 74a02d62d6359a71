"""What every device-log parser shares: clocks, the device, range checks, the session.

A zoneless device clock is placed in the time zone of the clinic the device is registered
to (the EHR's device inventory); a device that is not registered cannot be placed and its
file is refused with that reason. Samples are checked against physical ranges with the
line they came from, so "12.5 mA" in a file written in µA is caught and explained.

Examples
--------
>>> import numpy as np
>>> from device_import.problems import FileRejected
>>> try:
...     check_range(np.array([0.5, 3000.0]), "measured_current_mA", "a.csv", first_line=20)
... except FileRejected as error:
...     print(error.problem.record, "|", error.problem.reason, "|", error.problem.got)
line 21 | value out of range; was the file written in µA? | 3000
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

from data_schemas import vocabulary as v
from data_schemas.records import DeviceRecord
from data_schemas.samples import SessionSamples, pack_samples
from device_import.parsed import ParseContext, ParsedFile
from device_import.plausibility import check_impedance, check_sample_times, check_session_times
from device_import.problems import reject
from device_import.session_metrics import finish_session

_UNIT_HINTS = {
    "measured_current_mA": "; was the file written in µA?",
    "impedance_ohm": "; kΩ or Ω?",
}


def check_range(values: np.ndarray, limit: str, file: str, *, first_line: int = 1) -> None:
    """Refuse NaN, infinite or out-of-range samples, naming the first bad line."""
    low, high = v.LIMITS[limit]
    bad = ~np.isfinite(values) | (values < low) | (values > high)
    if bad.any():
        index = int(np.argmax(bad))
        value = values[index]
        reason = "value is not a number" if not np.isfinite(value) else "value out of range"
        raise reject(
            file,
            reason + _UNIT_HINTS.get(limit, ""),
            record=f"line {first_line + index}",
            field=limit,
            expected=f"between {low:g} and {high:g}",
            got=value,
        )


def place_clock(
    local: dt.datetime, serial_hash: str, context: ParseContext, parsed: ParsedFile
) -> tuple[dt.datetime, str]:
    """UTC time and clock source: the device's own offset, else its clinic's time zone."""
    if local.utcoffset() is not None:
        return local.astimezone(dt.UTC), "device_offset"
    home = context.device_homes.get(serial_hash)
    if home is None:
        raise reject(
            context.file,
            "the device clock has no time zone and the device is not in any clinic's device "
            "inventory, so its times cannot be placed; import the clinic's devices.csv first",
            record="header",
            field="serial",
            expected="a device registered to a clinic",
            found="an unregistered serial",
        )
    note = f"zoneless device clock read in the clinic's time zone {home.timezone}"
    if note not in parsed.notes:
        parsed.notes.append(note)
    return local.replace(tzinfo=ZoneInfo(home.timezone)).astimezone(dt.UTC), "clinic_timezone"


def device_record(
    context: ParseContext, serial: str, vendor: str, model: str, kind: str, firmware: str | None
) -> DeviceRecord:
    """The device, known only by the keyed hash of its serial."""
    serial_hash = context.keyer.serial(serial)
    home = context.device_homes.get(serial_hash)
    return DeviceRecord(
        serial_hash=serial_hash,
        vendor=vendor,
        model=model,
        kind=kind,
        firmware=firmware,
        clinic_key=home.clinic_key if home else None,
    )


def add_session(
    parsed: ParsedFile, context: ParseContext, fields: dict, samples: SessionSamples
) -> None:
    """Validate the session with its sample-derived figures and add it to ``parsed``.

    ``fields["_line"]`` is the line of the first sample (for the problems' line numbers).
    """
    first_line = fields.pop("_line")
    check_sample_times(samples.t_s, context.file, first_line=first_line)
    check_range(samples.current_mA, "measured_current_mA", context.file, first_line=first_line)
    check_impedance(samples.impedance_ohm, context.file, first_line=first_line, field="impedance")
    check_session_times(
        fields["started_at_utc"],
        fields["ended_at_utc"],
        float(samples.t_s[-1]),
        context.clock,
        context.file,
    )
    for name in ("prescribed_dose_mA_min", "delivered_dose_mA_min"):
        value = fields.get(name)
        low, high = v.LIMITS["dose_mA_min"]
        if value is not None and not (low <= value <= high):
            raise reject(
                context.file,
                "implausible dose",
                record="session",
                field=name,
                expected=f"between {low:g} and {high:g} mA·min",
                got=value,
            )
    if fields["truncated"] and "POWER_LOSS" not in fields["fault_codes"]:
        fields["fault_codes"] = tuple(sorted({*fields["fault_codes"], "POWER_LOSS"}))
    record = finish_session(fields, samples)
    parsed.add("ionto_session", record)
    parsed.traces[record.session_key] = (len(samples), pack_samples(samples))
    if record.truncated:
        parsed.notes.append("log ends without its end record (power loss): kept as truncated")


def session_key(context: ParseContext, serial: str, session_id: str) -> str:
    """The natural key of a session: its device and the device's own session id."""
    return context.keyer.key("session", serial.strip().upper(), session_id.strip())


def map_code(code: str, codes: dict[str, str], file: str, field: str) -> str:
    """A vendor's end-reason or alarm code in the toolkit's vocabulary."""
    if code not in codes:
        raise reject(
            file,
            "unknown device code",
            record="session",
            field=field,
            expected="one of " + ", ".join(sorted(codes)),
            got=code,
        )
    return codes[code]
