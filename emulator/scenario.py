"""Scenario files: load, validate (every error, with its path) and resolve.

A scenario is a versioned YAML document (see ``scenarios/default.yaml``). Every mapping of
parameters carries a ``source`` naming DOMAIN.md tags (``S10``, ``K``, ``A``).

Examples
--------
>>> scenario = load_scenario("default")
>>> scenario["name"], scenario["defaults"]["patients"]
('default', 1500)
>>> validate_scenario({"scenario_version": 1})[:1]
['name: required key is missing']
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from data_schemas.errors import InputError
from data_schemas.vocabulary import (
    ARMS,
    CONDITIONS,
    CONTRAINDICATIONS,
    END_REASONS,
    INSTRUMENT_RANGES,
    MODALITIES,
    arm_from_modalities,
)

SCENARIO_DIR = Path(__file__).parent / "scenarios"
"""Folder holding the shipped scenarios (``<name>.yaml``)."""

SUPPORTED_VERSIONS = (1,)
_SOURCE_RE = re.compile(r"^(S\d+|K|A)$")
_FORMATS = ("kathodyne_csv", "phoresys_json", "dermapatch_log")
_DEVICE_KINDS = ("clinic_unit", "wearable_patch")


class ScenarioError(InputError):
    """A scenario file failed validation; ``errors`` lists every problem with its path."""

    def __init__(self, where: str, errors: list[str]) -> None:
        self.errors = errors
        listing = "\n  ".join(errors)
        super().__init__(f"scenario {where} has {len(errors)} error(s):\n  {listing}")


# ---------------------------------------------------------------------------------------
# A tiny schema language: each spec is a callable(value, path, errors).
Spec = Callable[[Any, str, list[str]], None]


def _describe(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"


def num(lo: float | None = None, hi: float | None = None) -> Spec:
    """A number (not a bool) within ``[lo, hi]``."""

    def check(v: Any, path: str, errors: list[str]) -> None:
        if isinstance(v, bool) or not isinstance(v, int | float):
            errors.append(f"{path}: expected a number, got {_describe(v)}")
        elif (lo is not None and v < lo) or (hi is not None and v > hi):
            errors.append(f"{path}: expected a number in [{lo}, {hi}], got {v!r}")

    return check


def integer(lo: int | None = None, hi: int | None = None) -> Spec:
    """An integer within ``[lo, hi]``."""

    def check(v: Any, path: str, errors: list[str]) -> None:
        if isinstance(v, bool) or not isinstance(v, int):
            errors.append(f"{path}: expected an integer, got {_describe(v)}")
        elif (lo is not None and v < lo) or (hi is not None and v > hi):
            errors.append(f"{path}: expected an integer in [{lo}, {hi}], got {v!r}")

    return check


def text(pattern: str | None = None) -> Spec:
    """A string, optionally matching a regular expression."""

    def check(v: Any, path: str, errors: list[str]) -> None:
        if not isinstance(v, str):
            errors.append(f"{path}: expected a string, got {_describe(v)}")
        elif pattern is not None and not re.fullmatch(pattern, v):
            errors.append(f"{path}: expected a string matching {pattern!r}, got {v!r}")

    return check


def choice(options: tuple[str, ...]) -> Spec:
    """One of a fixed set of strings."""

    def check(v: Any, path: str, errors: list[str]) -> None:
        if v not in options:
            errors.append(f"{path}: expected one of {', '.join(options)}, got {_describe(v)}")

    return check


def interval(lo: float | None = None, hi: float | None = None) -> Spec:
    """A ``[low, high]`` pair of numbers with low <= high."""
    item = num(lo, hi)

    def check(v: Any, path: str, errors: list[str]) -> None:
        if not isinstance(v, list) or len(v) != 2:
            errors.append(f"{path}: expected a [low, high] pair, got {_describe(v)}")
            return
        before = len(errors)
        item(v[0], f"{path}[0]", errors)
        item(v[1], f"{path}[1]", errors)
        if len(errors) == before and v[0] > v[1]:
            errors.append(f"{path}: low {v[0]!r} is above high {v[1]!r}")

    return check


def mean_sd(hi: float) -> Spec:
    """A ``[mean, sd]`` pair: mean in ``[0, hi]``, sd in ``(0, hi]``."""

    def check(v: Any, path: str, errors: list[str]) -> None:
        if not isinstance(v, list) or len(v) != 2:
            errors.append(f"{path}: expected a [mean, sd] pair, got {_describe(v)}")
            return
        num(0.0, hi)(v[0], f"{path}[0]", errors)
        num(1e-6, hi)(v[1], f"{path}[1]", errors)

    return check


def list_of(item: Spec, min_len: int = 1) -> Spec:
    """A list whose every element matches ``item``."""

    def check(v: Any, path: str, errors: list[str]) -> None:
        if not isinstance(v, list) or len(v) < min_len:
            errors.append(f"{path}: expected a list of at least {min_len}, got {_describe(v)}")
            return
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]", errors)

    return check


def _check_source(v: Mapping[str, Any], path: str, errors: list[str]) -> None:
    src = v.get("source")
    if src is None:
        errors.append(f"{path}.source: required key is missing")
        return
    tags = [t.strip() for t in str(src).split(",")]
    bad = [t for t in tags if not _SOURCE_RE.match(t)]
    if bad or not isinstance(src, str):
        errors.append(f"{path}.source: expected DOMAIN.md tags like 'S10, K, A', got {src!r}")


def record(
    fields: dict[str, Spec], *, sourced: bool = False, optional: tuple[str, ...] = ()
) -> Spec:
    """A mapping with known keys; unknown keys are errors."""

    def check(v: Any, path: str, errors: list[str]) -> None:
        if not isinstance(v, dict):
            errors.append(f"{path or '<root>'}: expected a mapping, got {_describe(v)}")
            return
        prefix = f"{path}." if path else ""
        for key, spec in fields.items():
            if key in v:
                spec(v[key], f"{prefix}{key}", errors)
            elif key not in optional:
                errors.append(f"{prefix}{key}: required key is missing")
        allowed = set(fields) | ({"source"} if sourced else set())
        for key in v:
            if key not in allowed:
                errors.append(f"{prefix}{key}: unknown key")
        if sourced:
            _check_source(v, path, errors)

    return check


def mapping(
    keys: tuple[str, ...], value: Spec, *, sourced: bool = False, require_all: bool = False
) -> Spec:
    """A mapping from vocabulary keys to values of one kind."""

    def check(v: Any, path: str, errors: list[str]) -> None:
        if not isinstance(v, dict):
            errors.append(f"{path}: expected a mapping, got {_describe(v)}")
            return
        for key, x in v.items():
            if key == "source" and sourced:
                continue
            if key not in keys:
                errors.append(f"{path}.{key}: unknown key; expected one of {', '.join(keys)}")
                continue
            value(x, f"{path}.{key}", errors)
        if require_all:
            for key in keys:
                if key not in v:
                    errors.append(f"{path}.{key}: required key is missing")
        if sourced:
            _check_source(v, path, errors)

    return check


_INSTR = tuple(INSTRUMENT_RANGES)
_PROB = num(0.0, 1.0)

_PHYSICS = record(
    {
        "current_mA_choices": list_of(num(0.01, 5.0)),
        "current_mA_weights": list_of(num(0.0)),
        "dose_mA_min": num(1.0, 80.0),
        "ramp_s": num(0.0, 600.0),
        "sample_interval_s": num(0.1, 600.0),
        "impedance_initial_kohm": interval(0.1, 1000.0),
        "impedance_fall_fraction": interval(0.0, 0.95),
        "impedance_tau_min": interval(0.01, 60.0),
        "impedance_noise": num(0.0, 0.5),
        "current_noise_mA": num(0.0, 1.0),
        "compliance_V": interval(0.5, 100.0),
        "electrode_area_cm2": list_of(num(0.5, 100.0)),
    },
    sourced=True,
)

_CLINIC = record(
    {
        "name": text(),
        "tz": text(r"[A-Za-z_]+/[A-Za-z_/]+|UTC"),
        "city": text(),
        "state": text(r"[A-Z]{2}"),
        "zip": text(r"\d{5}"),
        "ionto_log_odds": num(-10, 10),
        "manual_log_odds": num(-10, 10),
        "outcome_shift_smd": num(-3, 3),
        "patch_share": _PROB,
        "clinic_unit_format": choice(("kathodyne_csv", "phoresys_json")),
        "units": integer(0, 50),
        "patches": integer(0, 50),
        "optional_instruments": list_of(choice(("lefs", "psfs", "groc")), min_len=0),
        "foot_instrument": choice(("ffi", "faam_adl")),
    }
)

_CONDITION = record(
    {
        "region": choice(("upper", "lower")),
        "primary": choice(_INSTR),
        "instruments": list_of(choice(_INSTR)),
        "icd10": mapping(("left", "right", "bilateral", "unspecified"), text(), require_all=True),
        "baseline": mapping(_INSTR, mean_sd(100.0)),
        "natural_history_smd": num(-3, 5),
        "natural_history_tau_weeks": num(0.1, 200),
        "exercise_details": list_of(text()),
    },
    sourced=True,
)

_INSTRUMENT = record(
    {
        "better": choice(("lower", "higher")),
        "step": num(0.001, 10),
        "noise_smd": num(0.0, 5.0),
        "version": text(),
    }
)

_ASSIGN_TERMS = record(
    {
        "severity": num(-10, 10),
        "severity_squared": num(-3, 3),
        "age_per_10y": num(-10, 10),
        "female": num(-10, 10),
        "log_duration": num(-10, 10),
    },
    optional=("severity_squared",),
)

SCHEMA: Spec = record(
    {
        "scenario_version": integer(1, 1),
        "name": text(r"[a-z0-9_\-]+"),
        "description": text(),
        "defaults": record(
            {
                "clinics": integer(1, 1000),
                "patients": integer(1, 10_000_000),
                "start": text(r"\d{4}-\d{2}-\d{2}"),
                "end": text(r"\d{4}-\d{2}-\d{2}"),
            },
            sourced=True,
        ),
        "clinics": record({"templates": list_of(_CLINIC)}, sourced=True),
        "devices": record(
            {
                "formats": mapping(
                    _FORMATS,
                    record(
                        {
                            "kind": choice(_DEVICE_KINDS),
                            "vendor": text(),
                            "model": text(),
                            "firmware": list_of(text()),
                            "serial_prefix": text(r"[A-Z0-9]{2,6}"),
                            "max_current_mA": num(0.01, 5.0),
                        }
                    ),
                    require_all=True,
                )
            },
            sourced=True,
        ),
        "physics": record({"clinic_unit": _PHYSICS, "wearable_patch": _PHYSICS}),
        "faults": record(
            {
                "clinic_unit": mapping(END_REASONS, _PROB),
                "wearable_patch": mapping(END_REASONS, _PROB),
                "wrong_polarity": _PROB,
            },
            sourced=True,
        ),
        "skin": record(
            {
                "clinic_unit": mapping(("erythema", "vesicles", "burn"), _PROB),
                "wearable_patch": mapping(("erythema", "vesicles", "burn"), _PROB),
                "not_checked": _PROB,
                "erythema_reported_as_adverse_event": _PROB,
            },
            sourced=True,
        ),
        "drug": record(
            {
                "name": text(),
                "concentration_mg_per_mL": num(0.0, 100.0),
                "volume_mL": interval(0.1, 20.0),
                "prescription_lead_days": interval(0, 365),
            },
            sourced=True,
        ),
        "population": record(
            {
                "condition_mix": mapping(CONDITIONS, _PROB),
                "age_mean": num(0, 120),
                "age_sd": num(0, 60),
                "age_range": interval(0, 120),
                "female_share": _PROB,
                "symptom_duration_months_median": num(0.01, 600),
                "symptom_duration_log_sd": num(0, 5),
                "contraindications": mapping(CONTRAINDICATIONS, _PROB),
                "pregnancy_age_range": interval(0, 120),
                "baseline_correlation": num(-1, 1),
                "duplicate_person_share": _PROB,
            },
            sourced=True,
        ),
        "conditions": mapping(CONDITIONS, _CONDITION, require_all=True),
        "instruments": record(
            {**{k: _INSTRUMENT for k in _INSTR}, "groc_points_per_smd": num(0, 20)},
            sourced=True,
            optional=("vas", "dash", "faam_sports", "fhsq_pain", "fhsq_function"),
        ),
        "arms": mapping(
            ARMS,
            record({"modalities": list_of(choice(MODALITIES)), "intercept": num(-20, 20)}),
            sourced=True,
            require_all=True,
        ),
        "assignment": record(
            {"ionto": _ASSIGN_TERMS, "manual": _ASSIGN_TERMS, "deviation_no_ionto": _PROB},
            sourced=True,
        ),
        "effects": record(
            {
                "exercise_smd": num(-5, 5),
                "exercise_tau_weeks": num(0.01, 100),
                "manual_smd": num(-5, 5),
                "manual_tau_weeks": num(0.01, 100),
                "ionto_smd": num(-5, 5),
                "ionto_peak_week": num(0.01, 100),
                "ionto_fade_end_week": num(0.01, 200),
                "dose_slope_smd_per_mA_min": num(-1, 1),
                "dose_reference_mA_min": num(0, 10_000),
                "severity_smd": num(-5, 5),
                "age_per_10y_smd": num(-5, 5),
                "female_smd": num(-5, 5),
                "log_duration_smd": num(-5, 5),
                "patient_sd_smd": num(0, 5),
            },
            sourced=True,
        ),
        "schedule": record(
            {
                "visits_per_week": list_of(integer(1, 7)),
                "visits_per_week_weights": list_of(num(0.0)),
                "plan_weeks": interval(1, 52),
                "clinic_ionto_sessions": interval(1, 20),
                "patch_ionto_sessions": interval(1, 20),
                "progress_every_visits": integer(1, 50),
                "follow_up_weeks": num(1, 104),
                "follow_up_response": _PROB,
                "clinic_open_hour": integer(0, 23),
                "clinic_close_hour": integer(1, 24),
            },
            sourced=True,
        ),
        "dropout": record(
            {"rate": num(0.0, 0.95), "improvement_log_odds_per_sd": num(-10, 10)}, sourced=True
        ),
    }
)


def _cross_checks(s: dict[str, Any], errors: list[str]) -> None:
    """Checks that span several keys (run only when the shapes are right)."""
    for kind in _DEVICE_KINDS:
        p = s["physics"][kind]
        if len(p["current_mA_choices"]) != len(p["current_mA_weights"]):
            errors.append(f"physics.{kind}.current_mA_weights: expected as many weights as choices")
        total = sum(v for k, v in s["faults"][kind].items() if k != "DOSE_COMPLETE")
        if "DOSE_COMPLETE" in s["faults"][kind] or total > 0.5:
            errors.append(f"faults.{kind}: expected fault probabilities summing to <= 0.5")
    sched = s["schedule"]
    if len(sched["visits_per_week"]) != len(sched["visits_per_week_weights"]):
        errors.append("schedule.visits_per_week_weights: expected as many weights as choices")
    if sched["clinic_open_hour"] + 2 > sched["clinic_close_hour"]:
        errors.append("schedule.clinic_close_hour: expected at least 2 h after clinic_open_hour")
    mix = s["population"]["condition_mix"]
    total = sum(v for k, v in mix.items() if k != "source")
    if abs(total - 1.0) > 1e-6:
        errors.append(f"population.condition_mix: expected shares summing to 1, got {total:g}")
    for cond, c in s["conditions"].items():
        if c["primary"] not in c["instruments"]:
            errors.append(f"conditions.{cond}.primary: {c['primary']!r} is not in instruments")
        for instr in c["instruments"]:
            if instr not in c["baseline"]:
                errors.append(f"conditions.{cond}.baseline.{instr}: required key is missing")
    for arm, a in s["arms"].items():
        if arm == "source":
            continue
        if arm_from_modalities(a["modalities"]) != arm:
            errors.append(f"arms.{arm}.modalities: {a['modalities']} do not make arm {arm!r}")
    e = s["effects"]
    if e["ionto_fade_end_week"] <= e["ionto_peak_week"]:
        errors.append("effects.ionto_fade_end_week: expected a week after ionto_peak_week")
    if s["defaults"]["start"] > s["defaults"]["end"]:
        errors.append("defaults.end: expected a date on or after defaults.start")


def validate_scenario(data: Any) -> list[str]:
    """Every error in a scenario document, each prefixed with its path.

    Parameters
    ----------
    data : Any
        The parsed YAML document.

    Returns
    -------
    list of str
        Messages such as ``"effects.ionto_smd: expected a number, got 'x'"``; empty when
        the scenario is valid.

    Examples
    --------
    >>> s = load_scenario("default")
    >>> s["effects"]["ionto_smd"] = "x"
    >>> validate_scenario(s)
    ["effects.ionto_smd: expected a number, got 'x'"]
    """
    errors: list[str] = []
    SCHEMA(data, "", errors)
    if not errors:
        _cross_checks(data, errors)
    bad_version = isinstance(data, dict) and data.get("scenario_version") not in SUPPORTED_VERSIONS
    if bad_version and not any(e.startswith("scenario_version") for e in errors):
        errors.append("scenario_version: unsupported version")
    return errors


def scenario_path(scenario: str | Path) -> Path:
    """The file of a shipped scenario name, or the path itself.

    Examples
    --------
    >>> scenario_path("default").name
    'default.yaml'
    """
    if isinstance(scenario, Path) or str(scenario).endswith((".yaml", ".yml")):
        return Path(scenario)
    path = SCENARIO_DIR / f"{scenario}.yaml"
    if not path.exists():
        known = ", ".join(shipped_scenarios())
        raise InputError(
            f"scenario: no shipped scenario named {scenario!r} in {SCENARIO_DIR} "
            f"(expected one of: {known}); pass a shipped name or the path of a .yaml file"
        )
    return path


def shipped_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package.

    Examples
    --------
    >>> "default" in shipped_scenarios()
    True
    """
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(scenario: str | Path = "default") -> dict[str, Any]:
    """Load and validate a scenario; raise :class:`ScenarioError` listing every error.

    Examples
    --------
    >>> load_scenario("default")["scenario_version"]
    1
    """
    path = scenario_path(scenario)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = validate_scenario(data)
    if errors:
        raise ScenarioError(str(path), errors)
    return data


@dataclass(frozen=True)
class Clinic:
    """A clinic resolved from a template (several clinics may share one template)."""

    index: int
    key: str
    name: str
    tz: str
    city: str
    state: str
    zip: str
    template: dict[str, Any] = field(repr=False)


def resolve_clinics(scenario: Mapping[str, Any], n: int) -> list[Clinic]:
    """``n`` clinics, cycling through the scenario's templates.

    Examples
    --------
    >>> [c.key for c in resolve_clinics(load_scenario(), 2)]
    ['clinic_01', 'clinic_02']
    """
    templates = scenario["clinics"]["templates"]
    out = []
    for i in range(n):
        t = templates[i % len(templates)]
        name = t["name"] if i < len(templates) else f"{t['name']} {i // len(templates) + 1}"
        out.append(
            Clinic(i, f"clinic_{i + 1:02d}", name, t["tz"], t["city"], t["state"], t["zip"], t)
        )
    return out
