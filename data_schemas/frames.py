"""pandera schemas of the DataFrames the analysis consumes, and :func:`validate_frame`.

The loader (store → DataFrames) produces exactly these four frames; every analysis function
in :mod:`ionto_analytics` may assume them. Allowed values come from
:mod:`data_schemas.vocabulary`; nothing is redefined here.

Dtype rules (strict, but independent of the pandas datetime *resolution*, since pandas 3
parses to ``datetime64[us]`` by default):

* ``str`` columns: ``object`` or string dtype whose non-null values are all ``str``;
* ``float`` columns: a float dtype (an int column is refused: cast explicitly in the loader);
* ``int`` columns: an integer dtype (numpy or pandas nullable) without missing values;
* ``bool`` columns: ``bool`` (or pandas ``boolean`` without missing values);
* ``datetime`` columns: naive ``datetime64[*]`` (any unit); ``datetime_utc``: tz-aware UTC.

Identifiers: a frame's (and every JSON output's) ``*_id`` column is the entity's public
key, never a store row number: ``episode_id`` is ``episode.episode_key``, ``session_id``
``ionto_session.session_key``, ``visit_id`` ``visit.visit_key``, ``clinic_id``
``clinic.clinic_key`` and ``patient_id`` the patient's keyed pseudonym. The store's integer
surrogate keys (``id`` and foreign keys such as ``episode.clinic_id``) never leave the store.
Quantities keep one name from store to JSON: ``prescribed_dose_mA_min`` (the target dose),
``delivered_dose_mA_min``, ``device_kind`` (stored as ``device.kind``), ``week`` (one follow-up
week), ``method`` (an estimator's key, e.g. ``ancova``) beside ``estimator`` (its description).

Frames
------
``episode``
    episode_id (str, unique), patient_id (str), clinic_id (str), condition (CONDITIONS),
    arm (ARMS, null = in no arm), planned_arm (ARMS, null allowed), age_years (float, 0–90;
    90 stands for 90+), sex (SEXES), symptom_duration_weeks (float ≥ 0, null allowed),
    start_date (datetime), end_date (datetime, null allowed), n_visits (int ≥ 0).
``outcome`` (long)
    episode_id (str), instrument (INSTRUMENTS), score (float within the instrument's
    INSTRUMENT_RANGES), days_from_intake (int ≥ 0; intake = day 0), visit_id (str, nullable).
``session``
    session_id (str, unique), episode_id (str, null = unlinked), clinic_id (str),
    device_model (str), device_kind (DEVICE_KINDS), started_at_utc (datetime UTC),
    prescribed_dose_mA_min (float, LIMITS dose, nullable), delivered_dose_mA_min (float,
    LIMITS dose), end_reason (END_REASONS), fault_codes (str, ';'-joined FAULT_CODES, "" =
    none), wrong_polarity (bool), current_limited (bool), skin_check_after (SKIN_CHECKS,
    nullable).
``intervention``
    episode_id (str), visit_id (str), modality (MODALITIES), cpt_code (str, nullable),
    minutes (float, LIMITS minutes, nullable).

Examples
--------
>>> import pandas as pd
>>> df = pd.DataFrame({"episode_id": ["e1"], "instrument": ["nprs"], "score": [6.0],
...                    "days_from_intake": [0], "visit_id": [None]})
>>> validate_frame(df, "outcome") is df
True
>>> validate_frame(df.assign(score=[11.0]), "outcome")
Traceback (most recent call last):
...
data_schemas.errors.SchemaError: outcome frame: column 'score': nprs score outside [0.0, 10.0] ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError as PanderaSchemaError
from pandera.errors import SchemaErrors as PanderaSchemaErrors

from data_schemas.errors import InputError, SchemaError
from data_schemas.vocabulary import (
    ARMS,
    CONDITIONS,
    DEVICE_KINDS,
    END_REASONS,
    FAULT_CODES,
    INSTRUMENT_RANGES,
    INSTRUMENTS,
    LIMITS,
    MODALITIES,
    SEXES,
    SKIN_CHECKS,
)

__all__ = [
    "FRAME_COLUMNS",
    "SCHEMAS",
    "EpisodeFrame",
    "InterventionFrame",
    "OutcomeFrame",
    "SessionFrame",
    "validate_frame",
]

Kind = Literal["str", "float", "int", "bool", "datetime", "datetime_utc"]


@dataclass(frozen=True)
class _Col:
    kind: Kind
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    bounds: tuple[float, float] | None = None
    unique: bool = False


def _dtype_check(kind: Kind) -> Callable[[pd.Series], bool]:
    def check(s: pd.Series) -> bool:
        d = s.dtype
        if kind == "str":
            if not (pd.api.types.is_object_dtype(d) or pd.api.types.is_string_dtype(d)):
                return False
            # one pass in C over the values, not a Python call per row
            return pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
        if kind == "float":
            return pd.api.types.is_float_dtype(d)
        if kind == "int":
            return pd.api.types.is_integer_dtype(d) and not s.isna().any()
        if kind == "bool":
            return pd.api.types.is_bool_dtype(d) and not s.isna().any()
        if kind == "datetime":
            return isinstance(d, np.dtype) and d.kind == "M"
        return isinstance(d, pd.DatetimeTZDtype) and str(d.tz) == "UTC"

    return check


_KIND_TEXT = {
    "str": "str (object/string dtype)",
    "float": "a float dtype",
    "int": "an integer dtype without missing values",
    "bool": "bool without missing values",
    "datetime": "naive datetime64",
    "datetime_utc": "datetime64[*, UTC]",
}


def _column(name: str, spec: _Col) -> pa.Column:
    checks = [
        pa.Check(
            _dtype_check(spec.kind),
            error=f"dtype must be {_KIND_TEXT[spec.kind]}",
        )
    ]
    if spec.allowed is not None:
        allowed = spec.allowed
        checks.append(
            pa.Check(
                lambda s, a=allowed: s.isna() | s.isin(a),
                error=f"values must be one of {list(allowed)}",
            )
        )
    if spec.bounds is not None:
        lo, hi = spec.bounds
        checks.append(
            pa.Check(
                lambda s, lo=lo, hi=hi: s.isna() | ((s >= lo) & (s <= hi)),
                error=f"values must be within [{lo}, {hi}]",
            )
        )
    return pa.Column(
        dtype=None, nullable=spec.nullable, unique=spec.unique, checks=checks, required=True
    )


def _fault_codes_ok(s: pd.Series) -> bool:
    def ok(v: object) -> bool:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return True
        if not isinstance(v, str):
            return False
        return all(code in FAULT_CODES for code in v.split(";") if code)

    return bool(s.map(ok).all())


def _scores_in_range(df: pd.DataFrame) -> bool:
    codes, keys = pd.factorize(df["instrument"])  # a range per distinct key, not per row
    ranges = np.array([INSTRUMENT_RANGES.get(k, (np.nan, np.nan)) for k in keys] + [(np.nan,) * 2])
    lo, hi = ranges[codes, 0], ranges[codes, 1]  # code -1 (a missing key): the NaN row
    score = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
    ok = (score >= lo) & (score <= hi)
    return bool((ok | np.isnan(lo)).all())  # unknown instruments are reported by their own check


EPISODE_SPEC: dict[str, _Col] = {
    "episode_id": _Col("str", unique=True),
    "patient_id": _Col("str"),
    "clinic_id": _Col("str"),
    "condition": _Col("str", allowed=CONDITIONS),
    "arm": _Col("str", nullable=True, allowed=ARMS),
    "planned_arm": _Col("str", nullable=True, allowed=ARMS),
    "age_years": _Col("float", bounds=(0.0, 90.0)),
    "sex": _Col("str", allowed=SEXES),
    "symptom_duration_weeks": _Col("float", nullable=True, bounds=(0.0, 5200.0)),
    "start_date": _Col("datetime"),
    "end_date": _Col("datetime", nullable=True),
    "n_visits": _Col("int", bounds=(0, 1000)),
}
OUTCOME_SPEC: dict[str, _Col] = {
    "episode_id": _Col("str"),
    "instrument": _Col("str", allowed=INSTRUMENTS),
    "score": _Col("float"),
    "days_from_intake": _Col("int", bounds=(0, 100_000)),
    "visit_id": _Col("str", nullable=True),
}
SESSION_SPEC: dict[str, _Col] = {
    "session_id": _Col("str", unique=True),
    "episode_id": _Col("str", nullable=True),
    "clinic_id": _Col("str"),
    "device_model": _Col("str"),
    "device_kind": _Col("str", allowed=DEVICE_KINDS),
    "started_at_utc": _Col("datetime_utc"),
    "prescribed_dose_mA_min": _Col("float", nullable=True, bounds=LIMITS["dose_mA_min"]),
    "delivered_dose_mA_min": _Col("float", bounds=LIMITS["dose_mA_min"]),
    "end_reason": _Col("str", allowed=END_REASONS),
    "fault_codes": _Col("str", nullable=True),
    "wrong_polarity": _Col("bool"),
    "current_limited": _Col("bool"),
    "skin_check_after": _Col("str", nullable=True, allowed=SKIN_CHECKS),
}
INTERVENTION_SPEC: dict[str, _Col] = {
    "episode_id": _Col("str"),
    "visit_id": _Col("str"),
    "modality": _Col("str", allowed=MODALITIES),
    "cpt_code": _Col("str", nullable=True),
    "minutes": _Col("float", nullable=True, bounds=LIMITS["minutes"]),
}


def _schema(
    name: str,
    spec: dict[str, _Col],
    checks: list[pa.Check] | None = None,
    columns_extra: dict[str, list[pa.Check]] | None = None,
) -> pa.DataFrameSchema:
    cols = {c: _column(c, s) for c, s in spec.items()}
    for c, extra in (columns_extra or {}).items():
        cols[c] = cols[c].set_checks([*cols[c].checks, *extra])
    return pa.DataFrameSchema(cols, checks=checks or [], strict=True, name=name, ordered=False)


EpisodeFrame: pa.DataFrameSchema = _schema("episode", EPISODE_SPEC)
"""Schema of the episode frame: one row per episode of care."""

OutcomeFrame: pa.DataFrameSchema = _schema(
    "outcome",
    OUTCOME_SPEC,
    checks=[
        pa.Check(
            _scores_in_range,
            error="score outside the instrument's INSTRUMENT_RANGES",
        )
    ],
)
"""Schema of the long outcome frame: one row per (episode, instrument, measurement)."""

SessionFrame: pa.DataFrameSchema = _schema(
    "session",
    SESSION_SPEC,
    columns_extra={
        "fault_codes": [
            pa.Check(_fault_codes_ok, error=f"';'-joined codes from {list(FAULT_CODES)}")
        ]
    },
)
"""Schema of the iontophoresis session frame: one row per device session."""

InterventionFrame: pa.DataFrameSchema = _schema("intervention", INTERVENTION_SPEC)
"""Schema of the intervention frame: one row per (visit, billed/recorded modality)."""

SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "episode": EpisodeFrame,
    "outcome": OutcomeFrame,
    "session": SessionFrame,
    "intervention": InterventionFrame,
}
"""Schemas by name, as accepted by :func:`validate_frame`."""

FRAME_COLUMNS: dict[str, tuple[str, ...]] = {
    "episode": tuple(EPISODE_SPEC),
    "outcome": tuple(OUTCOME_SPEC),
    "session": tuple(SESSION_SPEC),
    "intervention": tuple(INTERVENTION_SPEC),
}
"""Exact column set of each frame (order is not enforced)."""


def _first_bad_score(df: pd.DataFrame) -> str:
    for i, (key, val) in enumerate(zip(df["instrument"], df["score"], strict=True)):
        if key not in INSTRUMENT_RANGES:
            continue
        lo, hi = INSTRUMENT_RANGES[key]
        try:
            v = float(val)
        except (TypeError, ValueError):
            return f"score {val!r} in row {i} is not numeric"
        if not lo <= v <= hi:
            return f"{key} score outside [{lo}, {hi}] (got {v} in row {i})"
    return "score outside its instrument's range"


def validate_frame(df: pd.DataFrame, schema_name: str) -> pd.DataFrame:
    """Validate a frame against its schema; raise :class:`SchemaError` naming column and reason.

    All failures are collected (pandera lazy mode) and reported together, one per line.
    The input is not modified and is returned unchanged (no coercion).

    Parameters
    ----------
    df : DataFrame
        The frame to check.
    schema_name : {"episode", "outcome", "session", "intervention"}
        Which contract to check against.

    Returns
    -------
    DataFrame
        ``df`` itself.

    Raises
    ------
    SchemaError
        Unknown schema name, missing/extra columns, wrong dtype, disallowed value, nulls where
        not allowed, duplicate ids, or a score outside its instrument's range.

    Examples
    --------
    >>> import pandas as pd
    >>> validate_frame(pd.DataFrame({"episode_id": ["e1"]}), "intervention")
    Traceback (most recent call last):
    ...
    data_schemas.errors.SchemaError: intervention frame: column 'visit_id': missing ...
    """
    if schema_name not in SCHEMAS:
        raise SchemaError(f"unknown frame schema {schema_name!r}; expected one of {list(SCHEMAS)}")
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"{schema_name} frame: expected a pandas DataFrame, got {type(df)}")
    schema = SCHEMAS[schema_name]
    missing = [c for c in schema.columns if c not in df.columns]
    extra = [c for c in df.columns if c not in schema.columns]
    problems: list[str] = [f"column {c!r}: missing (required)" for c in missing]
    problems += [f"column {c!r}: not part of the {schema_name} contract" for c in extra]
    if not problems:
        try:
            schema.validate(df, lazy=True)
        except PanderaSchemaErrors as exc:
            cases = exc.failure_cases
            seen: set[tuple[str, str]] = set()
            for _, row in cases.iterrows():
                col = str(row.get("column"))
                check = str(row.get("check"))
                if check.startswith("score outside"):
                    col, check = "score", _first_bad_score(df)
                    got = ""
                else:
                    idx = row.get("index")
                    at = "" if idx is None or pd.isna(idx) else f" at index {idx}"
                    got = f" (got {row.get('failure_case')!r}{at})"
                if (col, check) in seen:
                    continue
                seen.add((col, check))
                problems.append(f"column {col!r}: {check}{got}")
        except PanderaSchemaError as exc:  # pragma: no cover - lazy mode collects instead
            problems.append(str(exc))
    if problems:
        raise SchemaError(f"{schema_name} frame: " + "; ".join(problems))
    return df


def require_columns(
    df: object, columns: Sequence[str], what: str, *, hint: str = ""
) -> pd.DataFrame:
    """``df`` when it is a DataFrame holding ``columns``; else an InputError naming them.

    Examples
    --------
    >>> require_columns(pd.DataFrame({"score": [1.0]}), ["score"], "outcomes").shape
    (1, 1)
    >>> require_columns(pd.DataFrame({"score": [1.0]}), ["arm"], "outcomes")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: outcomes: missing column(s) ['arm']; have ['score']
    """
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{what}: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{what}: missing column(s) {missing}; have {list(df.columns)}{hint}")
    return df
