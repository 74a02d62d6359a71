"""Device session files in three vendor formats (see data_schemas/formats/README.md).

* ``kathodyne_csv`` - clinic unit; CSV with ``#`` header and footer blocks; 1 Hz samples
  in mA and kΩ; local time WITH UTC offset. First line: ``# Kathodyne Medical KD-400``.
* ``phoresys_json`` - clinic unit; one JSON document; current in µA, impedance in Ω;
  zoneless device clock; carries the EHR encounter id entered at the device.
* ``dermapatch_log`` - wearable patch; ``;``-separated, decimal commas, 1/min samples;
  zoneless ``dd.mm.yyyy`` clock. First line: ``DermaPatch 80;Log v2``.

Samples of a whole batch are formatted at once with pyarrow and split per session.

Examples
--------
>>> KATHODYNE_END_CODES["DOSE_COMPLETE"], PHORESYS_END_CODES["POWER_LOSS"]
('DOSE_COMPLETE', 'POWER_FAIL_RECOVERED')
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from data_schemas.vocabulary import END_REASONS

from ..sessions import STATE_CODES, Samples

KATHODYNE_END_CODES = {r: r for r in END_REASONS}
PHORESYS_END_CODES = {
    "DOSE_COMPLETE": "COMPLETED",
    "EARLY_STOP_PATIENT": "STOP_KEY_PATIENT",
    "EARLY_STOP_CLINICIAN": "STOP_KEY_OPERATOR",
    "ELECTRODE_REJECT": "LEAD_OPEN",
    "HIGH_IMPEDANCE": "LOAD_TOO_HIGH",
    "LOW_BATTERY": "BATTERY_LOW",
    "OVERCURRENT": "OVERCURRENT_TRIP",
    "POWER_LOSS": "POWER_FAIL_RECOVERED",
    "BATTERY_DEPLETED": "BATTERY_LOW",
}
PHORESYS_ALARMS = {
    "CURRENT_LIMITED": "I_LIMIT",
    "ELECTRODE_REJECT": "LEAD_OPEN",
    "RESISTANCE_LIMIT": "Z_HIGH",
    "LOW_BATTERY": "BATT_LOW",
    "OVERCURRENT": "OVERCURRENT",
    "PAUSED": "STOP_KEY",
}
DERMAPATCH_END_CODES = {
    "DOSE_COMPLETE": "DOSIS_ERREICHT",
    "EARLY_STOP_PATIENT": "ENTFERNT",
    "ELECTRODE_REJECT": "KONTAKTVERLUST",
    "BATTERY_DEPLETED": "BATTERIE_LEER",
    "LOW_BATTERY": "BATTERIE_LEER",
    "EARLY_STOP_CLINICIAN": "ENTFERNT",
    "HIGH_IMPEDANCE": "KONTAKTVERLUST",
    "OVERCURRENT": "KONTAKTVERLUST",
}
DERMAPATCH_ALARMS = {
    "CURRENT_LIMITED": "STROMBEGRENZUNG",
    "ELECTRODE_REJECT": "KONTAKTVERLUST",
    "BATTERY_DEPLETED": "BATTERIE_LEER",
    "PAUSED": "ENTFERNT",
}
DRUG_LABEL = {"dexamethasone_sodium_phosphate": "Dexamethasone sodium phosphate"}

_OPTS = pacsv.WriteOptions(include_header=False, quoting_style="none")


def _csv_block(columns: dict[str, pa.Array | np.ndarray], delimiter: str = ",") -> bytes:
    opts = pacsv.WriteOptions(include_header=False, quoting_style="none", delimiter=delimiter)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(pa.table(columns), sink, opts)
    return sink.getvalue().to_pybytes()


def _line_slices(block: bytes, start: np.ndarray) -> list[tuple[int, int]]:
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    bounds = np.concatenate(([0], ends + 1))
    return [(int(bounds[a]), int(bounds[b])) for a, b in itertools.pairwise(start)]


def _digits(mat: np.ndarray, col: int, value: np.ndarray, width: int) -> None:
    for k in range(width - 1, -1, -1):
        mat[:, col + k] = 48 + value % 10
        value = value // 10


def format_times(ts: np.ndarray, pattern: str) -> pa.Array:
    """Fixed-width local time strings, built as a byte matrix (far faster than strftime).

    ``pattern`` is ``"iso"`` (``2025-03-04T09:32:01``) or ``"dmy_hm"`` (``04.03.2025 09:32``).

    Examples
    --------
    >>> format_times(np.array(["2025-03-04T09:32:01"], "datetime64[s]"), "dmy_hm").to_pylist()
    ['04.03.2025 09:32']
    """
    ts = ts.astype("datetime64[s]")
    days = ts.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    year = months.astype("datetime64[Y]").astype(np.int64) + 1970
    month = months.astype(np.int64) % 12 + 1
    day = (days - months).astype(np.int64) + 1
    secs = (ts - days).astype(np.int64)
    hour, minute, sec = secs // 3600, secs // 60 % 60, secs % 60
    n = len(ts)
    if pattern == "iso":
        mat = np.empty((n, 19), np.uint8)
        _digits(mat, 0, year, 4)
        _digits(mat, 5, month, 2)
        _digits(mat, 8, day, 2)
        _digits(mat, 11, hour, 2)
        _digits(mat, 14, minute, 2)
        _digits(mat, 17, sec, 2)
        mat[:, [4, 7]] = ord("-")
        mat[:, 10] = ord("T")
        mat[:, [13, 16]] = ord(":")
    else:
        mat = np.empty((n, 16), np.uint8)
        _digits(mat, 0, day, 2)
        _digits(mat, 3, month, 2)
        _digits(mat, 6, year, 4)
        _digits(mat, 11, hour, 2)
        _digits(mat, 14, minute, 2)
        mat[:, [2, 5]] = ord("#")  # placeholder, becomes "." after the decimal-comma pass
        mat[:, 10] = ord(" ")
        mat[:, 13] = ord(":")
    width = mat.shape[1]
    fsb = pa.Array.from_buffers(
        pa.binary(width), n, [None, pa.py_buffer(np.ascontiguousarray(mat))]
    )
    out = pc.cast(pc.cast(fsb, pa.binary()), pa.string())
    if pattern != "iso":
        out = pc.replace_substring(out, "#", ".")
    return out


def _timestamps(start: np.ndarray, samples: Samples, pattern: str) -> pa.Array:
    n = len(start)
    sess = np.repeat(np.arange(n), np.diff(samples.start))
    ts = start.astype("datetime64[s]")[sess] + samples.t_s.astype(np.int64).astype("timedelta64[s]")
    return format_times(ts, pattern)


def _rows(df: pd.DataFrame) -> list[dict[str, object]]:
    cols = {c: df[c].tolist() for c in df.columns}
    return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def _fmt_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    m = abs(int(minutes))
    return f"{sign}{m // 60:02d}:{m % 60:02d}"


def write_kathodyne(
    out: Path, meta: pd.DataFrame, samples: Samples, events: list[list[tuple[float, str]]]
) -> list[str]:
    """Write one CSV file per session; return the relative file paths."""
    n = len(meta)
    sess = np.repeat(np.arange(n), np.diff(samples.start))
    offsets = [_fmt_offset(m) for m in meta["utc_offset_min"].tolist()]
    uniq = sorted(set(offsets))
    code = np.array([uniq.index(o) for o in offsets], np.int32)
    off_arr = pc.cast(
        pa.DictionaryArray.from_arrays(pa.array(code[sess]), pa.array(uniq)), pa.string()
    )
    ts = _timestamps(meta["device_start"].to_numpy(), samples, "iso")
    state = pc.cast(
        pa.DictionaryArray.from_arrays(pa.array(samples.state), pa.array(STATE_CODES)), pa.string()
    )
    block = _csv_block(
        {
            "elapsed_s": samples.t_s.astype(np.int64),
            "local_time": pc.binary_join_element_wise(ts, off_arr, ""),
            "current_mA": samples.current_mA,
            "impedance_kohm": np.round(samples.impedance_ohm / 1000.0, 3),
            "voltage_V": samples.voltage_V,
            "dose_mA_min": samples.dose_mA_min,
            "state": state,
        }
    )
    paths = []
    metas = _rows(meta)
    for i, (a, b) in enumerate(_line_slices(block, samples.start)):
        m = metas[i]
        start_txt = pd.Timestamp(m["device_start"]).strftime("%Y-%m-%dT%H:%M:%S") + offsets[i]
        head = (
            "# Kathodyne Medical KD-400 session export\n"
            "# format_version: 2\n"
            f"# serial: {m['serial']}\n# model: {m['model']}\n# firmware: {m['firmware']}\n"
            f"# session_id: {m['session_id']}\n# channel: {m['channel']}\n"
            f"# start_local: {start_txt}\n"
            f"# active_electrode: {'CATHODE' if m['polarity'] == 'cathode' else 'ANODE'}\n"
            f"# drug: {DRUG_LABEL.get(m['drug'], m['drug'])}\n"
            f"# concentration_mg_mL: {m['concentration_mg_per_mL']:.1f}\n"
            f"# volume_mL: {m['volume_mL']:.1f}\n# electrode_area_cm2: {m['area_cm2']:.1f}\n"
            f"# target_current_mA: {m['current_set_mA']:.1f}\n"
            f"# target_dose_mA_min: {m['prescribed_dose_mA_min']:.1f}\n"
            "elapsed_s,local_time,current_mA,impedance_kohm,voltage_V,dose_mA_min,state\n"
        )
        body = block[a:b]
        if m["end_reason"] == "POWER_LOSS":
            cut = body.rfind(b"\n", 0, len(body) - 1)
            keep = cut + 1 + max(1, (len(body) - cut - 1) // 2)
            text = head.encode() + body[:keep]
        else:
            alarms = ";".join(f"{int(t)}:{c}" for t, c in events[i])
            foot = (
                f"# end_reason: {KATHODYNE_END_CODES[m['end_reason']]}\n"
                f"# delivered_dose_mA_min: {samples.delivered[i]:.2f}\n"
                f"# duration_s: {int(samples.duration_s[i])}\n"
                f"# alarms: {alarms}\n"
                f"# skin_check_after: {m['skin_after']}\n"
                "# END\n"
            )
            text = head.encode() + body + foot.encode()
        rel = Path(m["rel_path"])
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(text)
        paths.append(str(rel))
    return paths


def write_phoresys(
    out: Path, meta: pd.DataFrame, samples: Samples, events: list[list[tuple[float, str]]]
) -> list[str]:
    """Write one JSON document per session; return the relative file paths."""
    cur_ua = np.round(samples.current_mA * 1000.0).astype(np.int64)
    z = samples.impedance_ohm.astype(np.int64)
    paths = []
    metas = _rows(meta)
    for i in range(len(meta)):
        m = metas[i]
        a, b = int(samples.start[i]), int(samples.start[i + 1])
        lost = m["end_reason"] == "POWER_LOSS"
        if lost:  # the device recovers the last flushed 60-sample block at next power-up
            b = a + max(1, ((b - a) // 60) * 60)
        start = pd.Timestamp(m["device_start"])
        dt_ms = int(m["dt_s"] * 1000)
        delivered = float(samples.dose_mA_min[b - 1])
        doc = {
            "format": "phoresys.session",
            "format_version": "1.9",
            "device": {"serial": m["serial"], "model": m["model"], "firmware": m["firmware"]},
            "session": {
                "id": m["session_id"],
                "encounter_ref": m["encounter_true"] if m["encounter_entered"] else None,
                "started": start.strftime("%Y-%m-%dT%H:%M:%S"),
                "ended": (start + pd.Timedelta(seconds=(b - a - 1) * m["dt_s"])).strftime(
                    "%Y-%m-%dT%H:%M:%S"
                ),
                "channel": int(m["channel_no"]),
                "active_polarity": "negative" if m["polarity"] == "cathode" else "positive",
                "medication": {
                    "name": DRUG_LABEL.get(m["drug"], m["drug"]),
                    "mg_per_ml": float(m["concentration_mg_per_mL"]),
                    "ml": float(m["volume_mL"]),
                },
                "active_electrode_area_cm2": float(m["area_cm2"]),
                "target": {
                    "current_uA": round(m["current_set_mA"] * 1000),
                    "dose_mA_min": float(m["prescribed_dose_mA_min"]),
                },
                "delivered_dose_mA_min": round(delivered, 2),
                "termination": PHORESYS_END_CODES[m["end_reason"]],
                "recovered_after_power_loss": bool(lost),
                "alarms": [
                    {"t_ms": int(t * 1000), "code": PHORESYS_ALARMS[c]}
                    for t, c in events[i]
                    if c in PHORESYS_ALARMS and t * 1000 < (b - a) * dt_ms
                ],
                "skin_check_after": str(m["skin_after"]).upper(),
            },
            "samples": {
                "interval_ms": dt_ms,
                "count": b - a,
                "current_uA": cur_ua[a:b].tolist(),
                "load_ohm": z[a:b].tolist(),
            },
        }
        rel = Path(m["rel_path"])
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
        paths.append(str(rel))
    return paths


def _dec(x: float, nd: int) -> str:
    return f"{x:.{nd}f}".replace(".", ",")


def write_dermapatch(
    out: Path, meta: pd.DataFrame, samples: Samples, events: list[list[tuple[float, str]]]
) -> list[str]:
    """Write one semicolon log per patch run; return the relative file paths."""
    n = len(meta)
    sess = np.repeat(np.arange(n), np.diff(samples.start))
    ts0 = meta["device_start"].to_numpy().astype("datetime64[s]")[sess]
    ts = format_times(ts0 + samples.t_s.astype(np.int64).astype("timedelta64[s]"), "dmy_hm")
    ts = pc.replace_substring(ts, ".", "#")
    state = np.array(["ANLAUF", "BEHANDLUNG", "BEGRENZT", "AUSLAUF", "STOPP"])[samples.state]
    block = (
        _csv_block(
            {
                "zeit": ts,
                "strom": np.round(samples.current_mA, 3),
                "imp": np.round(samples.impedance_ohm / 1000.0, 2),
                "dosis": np.round(samples.dose_mA_min, 2),
                "status": pa.array(state),
            },
            delimiter=";",
        )
        .replace(b".", b",")
        .replace(b"#", b".")
    )
    paths = []
    metas = _rows(meta)
    for i, (a, b) in enumerate(_line_slices(block, samples.start)):
        m = metas[i]
        start = pd.Timestamp(m["device_start"])
        head = (
            "DermaPatch 80;Log v2\n"
            f"Seriennummer;{m['serial']}\nFirmware;{m['firmware']}\nLauf;{m['session_id']}\n"
            f"Start;{start.strftime('%d.%m.%Y %H:%M:%S')}\n"
            f"Polaritaet;{'KATHODE' if m['polarity'] == 'cathode' else 'ANODE'}\n"
            f"Wirkstoff;{DRUG_LABEL.get(m['drug'], m['drug'])}\n"
            f"Konzentration mg/ml;{_dec(m['concentration_mg_per_mL'], 1)}\n"
            f"Volumen ml;{_dec(m['volume_mL'], 1)}\n"
            f"Elektrode cm2;{_dec(m['area_cm2'], 1)}\n"
            f"Sollstrom mA;{_dec(m['current_set_mA'], 2)}\n"
            f"Solldosis mAmin;{_dec(m['prescribed_dose_mA_min'], 1)}\n"
            "\nZeit;Strom mA;Impedanz kOhm;Dosis mAmin;Status\n"
        )
        body = block[a:b]
        if m["end_reason"] == "POWER_LOSS":
            text = head.encode() + body
        else:
            end = start + pd.Timedelta(seconds=float(samples.duration_s[i]))
            alarms = "|".join(
                f"{int(t // 60)}:{DERMAPATCH_ALARMS[c]}"
                for t, c in events[i]
                if c in DERMAPATCH_ALARMS
            )
            foot = (
                f"\nEnde;{end.strftime('%d.%m.%Y %H:%M:%S')}\n"
                f"Grund;{DERMAPATCH_END_CODES[m['end_reason']]}\n"
                f"Abgegebene Dosis mAmin;{_dec(samples.delivered[i], 2)}\n"
                f"Alarme;{alarms}\n"
            )
            text = head.encode() + body + foot.encode()
        rel = Path(m["rel_path"])
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(text)
        paths.append(str(rel))
    return paths


WRITERS = {
    "kathodyne_csv": write_kathodyne,
    "phoresys_json": write_phoresys,
    "dermapatch_log": write_dermapatch,
}
EXTENSIONS = {"kathodyne_csv": "csv", "phoresys_json": "json", "dermapatch_log": "log"}
