"""PhoreSys PS-2 Auto clinic unit: one JSON document per session.

Current in µA, load impedance in Ω, a zoneless device clock (placed in the device's
clinic's time zone), and the EHR encounter id typed at the device (``encounter_ref``),
which links the session to its visit. Spec: ``data_schemas/formats/phoresys_json.json``.

Examples
--------
>>> sniff(b'{"format": "phoresys.session", "format_version": "1.9"}')
0
>>> sniff(b'{"resourceType": "Bundle"}') is None
True
"""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np

from data_schemas import vocabulary as v
from data_schemas.samples import SessionSamples
from device_import.parsed import ParseContext, ParsedFile
from device_import.parsers.common import (
    DuplicateKey,
    FieldReader,
    decode_text,
    drug_key,
    duplicate_key,
    unique_keys,
)
from device_import.parsers.device_log import (
    add_session,
    check_range,
    device_record,
    map_code,
    place_clock,
    session_key,
)
from device_import.plausibility import check_interval
from device_import.problems import reject

FORMAT = "phoresys_json"
_MAGIC = re.compile(rb'^\s*\{[^{}]{0,200}"format"\s*:\s*"phoresys\.session"')
UA_PER_MA = 1000.0
END_CODES = {
    "COMPLETED": "DOSE_COMPLETE",
    "STOP_KEY_PATIENT": "EARLY_STOP_PATIENT",
    "STOP_KEY_OPERATOR": "EARLY_STOP_CLINICIAN",
    "LEAD_OPEN": "ELECTRODE_REJECT",
    "LOAD_TOO_HIGH": "HIGH_IMPEDANCE",
    "BATTERY_LOW": "LOW_BATTERY",
    "OVERCURRENT_TRIP": "OVERCURRENT",
    "POWER_FAIL_RECOVERED": "POWER_LOSS",
}
ALARM_CODES = {
    "I_LIMIT": "CURRENT_LIMITED",
    "LEAD_OPEN": "ELECTRODE_REJECT",
    "Z_HIGH": "RESISTANCE_LIMIT",
    "BATT_LOW": "LOW_BATTERY",
    "OVERCURRENT": "OVERCURRENT",
    "STOP_KEY": "PAUSED",
}
POLARITY = {"negative": "cathode", "positive": "anode"}
SKIN = {check: check for check in v.SKIN_CHECKS}


def sniff(head: bytes) -> int | None:
    """0 when the document declares ``"format": "phoresys.session"``, else None."""
    return 0 if _MAGIC.match(head.lstrip(b"\xef\xbb\xbf")) else None


def _section(document: object, key: str, file: str) -> dict:
    value = document.get(key) if isinstance(document, dict) else None
    if not isinstance(value, dict):
        raise reject(
            file,
            f"missing section {key!r}",
            record="document",
            field=key,
            expected="an object",
            found=type(value).__name__,
        )
    return value


def _array(samples: dict, key: str, count: int, file: str) -> np.ndarray:
    values = samples.get(key)
    if not isinstance(values, list) or len(values) != count:
        raise reject(
            file,
            "sample array missing or of the wrong length",
            record="samples",
            field=key,
            expected=f"{count} numbers",
            got=len(values) if isinstance(values, list) else values,
        )
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise reject(
            file,
            "sample array holds a value that is not a number",
            record="samples",
            field=key,
            expected="numbers",
        ) from None


def _alarm_codes(alarms: object, file: str) -> list[str]:
    """The codes of ``session.alarms``: a list of ``{"code": ...}`` objects (or of codes)."""
    if alarms is None:
        return []
    if not isinstance(alarms, list):
        bad: object = alarms
    else:
        codes = [item.get("code") if isinstance(item, dict) else item for item in alarms]
        bad = next((code for code in codes if not isinstance(code, str)), None)
        if bad is None:
            return codes
    raise reject(
        file,
        "the alarms are not a list of alarm codes",
        record="session",
        field="alarms",
        expected='a list of {"code": "..."} objects',
        got=bad,
    )


def _clock(value: str | None, file: str, field: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise reject(
            file,
            "bad device time",
            record="session",
            field=field,
            expected="YYYY-MM-DDTHH:MM:SS",
            got=value,
        ) from None


def parse(data: bytes, context: ParseContext) -> ParsedFile:
    """Parse one PS-2 session document."""
    text = decode_text(data, context.file)
    try:
        document = json.loads(text, object_pairs_hook=unique_keys)
    except DuplicateKey as error:
        raise duplicate_key(context.file, error, "document") from None
    except json.JSONDecodeError as error:
        raise reject(
            context.file,
            f"malformed or truncated JSON: {error.msg}",
            record=f"line {error.lineno}, column {error.colno}",
            expected="a complete JSON document",
        ) from None
    device_part = FieldReader(context.file, "device", _section(document, "device", context.file))
    session = _section(document, "session", context.file)
    fields = FieldReader(context.file, "session", session)
    samples_part = _section(document, "samples", context.file)
    count = FieldReader(context.file, "samples", samples_part).integer("count")
    interval_s = FieldReader(context.file, "samples", samples_part).number("interval_ms") / 1000
    check_interval(interval_s, context.file, field="interval_ms")
    if count < 1:
        raise reject(
            context.file,
            "the session has no samples",
            record="samples",
            field="count",
            expected="at least 1",
            got=count,
        )
    current = _array(samples_part, "current_uA", count, context.file) / UA_PER_MA
    impedance = _array(samples_part, "load_ohm", count, context.file)
    check_range(impedance, "impedance_ohm", context.file)
    samples = SessionSamples(
        np.arange(count) * interval_s, current, current * impedance / 1000.0, impedance
    )
    serial = device_part.text("serial")
    device = device_record(
        context,
        serial,
        "PhoreSys",
        device_part.text("model"),
        "clinic_unit",
        device_part.text("firmware", required=False),
    )
    parsed = ParsedFile(FORMAT)
    started, clock = place_clock(
        _clock(session.get("started"), context.file, "started"), device.serial_hash, context, parsed
    )
    ended, _ = place_clock(
        _clock(session.get("ended"), context.file, "ended"), device.serial_hash, context, parsed
    )
    medication = FieldReader(
        context.file, "session.medication", _section(session, "medication", context.file)
    )
    target = FieldReader(context.file, "session.target", _section(session, "target", context.file))
    codes = _alarm_codes(session.get("alarms"), context.file)
    encounter = fields.text("encounter_ref", required=False)
    home = context.device_homes.get(device.serial_hash)
    target_uA = target.number("current_uA", required=False)
    add_session(
        parsed,
        context,
        {
            "_line": 1,
            "session_key": session_key(context, serial, fields.text("id")),
            "device": device,
            "visit_key": context.keyer.key("visit", home.clinic_key, encounter)
            if encounter and home
            else None,
            "setting": "clinic_unit",
            "drug": drug_key(medication.text("name")),
            "drug_concentration_mg_per_mL": medication.number("mg_per_ml", required=False),
            "drug_volume_mL": medication.number("ml", required=False),
            "active_polarity": fields.choice("active_polarity", POLARITY),
            "electrode_area_cm2": fields.number("active_electrode_area_cm2", required=False),
            "prescribed_current_mA": None if target_uA is None else target_uA / UA_PER_MA,
            "prescribed_dose_mA_min": target.number("dose_mA_min", required=False),
            "delivered_dose_mA_min": fields.number("delivered_dose_mA_min", required=False),
            "started_at_utc": started,
            "ended_at_utc": ended,
            "clock_source": clock,
            "end_reason": map_code(
                fields.text("termination"), END_CODES, context.file, "termination"
            ),
            "fault_codes": tuple(
                sorted({map_code(code, ALARM_CODES, context.file, "alarms") for code in codes})
            ),
            "skin_check_after": (
                fields.text("skin_check_after", required=False) or "not_checked"
            ).lower(),
            "truncated": bool(session.get("recovered_after_power_loss")),
        },
        samples,
    )
    return parsed
