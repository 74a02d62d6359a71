"""The network study spec (``study.yaml``): read, validated with every error, frozen.

A study is one spec run unchanged at every site. Its contrasts are every combination of
cohort (condition) × instrument × week × estimator, each the difference in mean change from
baseline of the *first arm minus the second*. The shape is checked against
``study.schema.json`` (JSON Schema 2020-12) and the keys against
:mod:`data_schemas.vocabulary`; **every** problem is reported at once, each with its path
(``cohorts[1].condition``), before any store is opened.

The spec's SHA-256 is over its bytes as written: the coordinator pools only packages made
from the very same file.

Examples
--------
>>> spec = parse_study('''
... name: epi-ionto
... version: "1"
... cohorts: [{condition: epicondylitis}]
... arms: [ionto+exercise, exercise]
... instruments: [prtee]
... weeks: [6]
... estimators: [ancova]
... ''')
>>> spec.threshold, spec.covariates, [c.key for c in spec.contrasts()]
(11, ('age_years', 'sex', 'symptom_duration_weeks'), ['epicondylitis/prtee/w6/ancova'])
>>> parse_study("name: x\\nversion: '1'\\ncohorts: [{condition: knee}]\\narms: [ionto, ionto]\\n"
...             "instruments: [koos]\\nweeks: [1]\\nestimators: [ancova]\\n"
...             "small_cell_threshold: 5")
Traceback (most recent call last):
...
data_schemas.errors.SchemaError: study.yaml: 5 problem(s):
  arms: ['ionto', 'ionto'] has non-unique elements
  small_cell_threshold: 5 is less than the minimum of 11
  weeks[0]: 1 is less than the minimum of 2
  cohorts[0].condition: unknown condition 'knee'; expected one of ...
  instruments[0]: unknown instrument 'koos'; expected one of ...
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from data_schemas.errors import SchemaError
from data_schemas.vocabulary import ARMS, CONDITION_FAMILIES, CONDITIONS, INSTRUMENTS

__all__ = [
    "DEFAULT_ADJUSTMENT",
    "MIN_THRESHOLD",
    "Contrast",
    "StudySpec",
    "load_study",
    "parse_study",
    "study_schema",
]

MIN_THRESHOLD = 11
"""The smallest small-cell threshold a spec may ask for (CMS: counts 1-10 never leave)."""

DEFAULT_ADJUSTMENT: tuple[str, ...] = ("age_years", "sex", "symptom_duration_weeks")
"""``adjustment: default``: the comparison's default covariates (besides baseline, clinic)."""

SCHEMA_PATH = Path(__file__).with_name("study.schema.json")


@functools.cache
def study_schema() -> dict[str, Any]:
    """The JSON Schema of ``study.yaml``.

    Examples
    --------
    >>> study_schema()["properties"]["small_cell_threshold"]["minimum"]
    11
    """
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Contrast:
    """One analysis of the study: a cohort, an instrument, a week and an estimator.

    Examples
    --------
    >>> Contrast("epicondylitis", "prtee", 6, "ancova").key
    'epicondylitis/prtee/w6/ancova'
    """

    condition: str
    instrument: str
    week: int
    estimator: str

    @property
    def key(self) -> str:
        """``condition/instrument/w<week>/estimator``: the contrast's name in every table."""
        return f"{self.condition}/{self.instrument}/w{self.week}/{self.estimator}"


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec.

    Attributes
    ----------
    name, version : str
    conditions, instruments : tuple of str
    arms : (str, str)
        The estimate is first − second.
    weeks : tuple of int
    estimators : tuple of str
    covariates : tuple of str
        The adjustment set (besides baseline and clinic).
    threshold : int
        Counts of 1 to ``threshold − 1`` never leave a site.
    sha256 : str
        SHA-256 of the spec file's bytes.
    """

    name: str
    version: str
    conditions: tuple[str, ...]
    arms: tuple[str, str]
    instruments: tuple[str, ...]
    weeks: tuple[int, ...]
    estimators: tuple[str, ...]
    covariates: tuple[str, ...]
    threshold: int
    sha256: str

    def contrasts(self) -> list[Contrast]:
        """Every analysis, in the spec's order (condition, instrument, week, estimator)."""
        return [
            Contrast(*c)
            for c in itertools.product(
                self.conditions, self.instruments, self.weeks, self.estimators
            )
        ]


def _path(error: jsonschema.ValidationError) -> str:
    out = ""
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".") or "(top level)"


def _vocabulary_problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    known_conditions = (*CONDITIONS, *CONDITION_FAMILIES)
    for i, cohort in enumerate(doc.get("cohorts") or []):
        key = cohort.get("condition") if isinstance(cohort, dict) else None
        if isinstance(key, str) and key not in known_conditions:
            problems.append(
                f"cohorts[{i}].condition: unknown condition {key!r}; expected one of "
                f"{', '.join(known_conditions)}"
            )
    for field, known, what in (("arms", ARMS, "arm"), ("instruments", INSTRUMENTS, "instrument")):
        for i, key in enumerate(doc.get(field) or []):
            if isinstance(key, str) and key not in known:
                problems.append(
                    f"{field}[{i}]: unknown {what} {key!r}; expected one of {', '.join(known)}"
                )
    return problems


def parse_study(text: str, source: str = "study.yaml") -> StudySpec:
    """Validate the text of a study spec and return it frozen.

    Parameters
    ----------
    text : str
        YAML (or JSON) text.
    source : str
        Where it came from, for messages.

    Returns
    -------
    StudySpec

    Raises
    ------
    SchemaError
        Listing every problem with its path.
    """
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SchemaError(f"{source}: not valid YAML ({error}); fix the syntax") from None
    if not isinstance(doc, dict):
        raise SchemaError(f"{source}: expected a mapping of study keys, got {type(doc).__name__}")
    validator = jsonschema.Draft202012Validator(study_schema())
    problems = [
        f"{_path(e)}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path)))
    ]
    problems += _vocabulary_problems(doc)
    if problems:
        raise SchemaError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    adjustment = doc.get("adjustment", "default")
    return StudySpec(
        name=doc["name"],
        version=str(doc["version"]),
        conditions=tuple(c["condition"] for c in doc["cohorts"]),
        arms=(doc["arms"][0], doc["arms"][1]),
        instruments=tuple(doc["instruments"]),
        weeks=tuple(int(w) for w in doc["weeks"]),
        estimators=tuple(doc["estimators"]),
        covariates=DEFAULT_ADJUSTMENT if adjustment == "default" else tuple(adjustment),
        threshold=int(doc.get("small_cell_threshold", MIN_THRESHOLD)),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def load_study(path: str | Path) -> StudySpec:
    """Read and validate ``study.yaml`` (see :func:`parse_study`).

    Examples
    --------
    >>> load_study("no/such/study.yaml")
    Traceback (most recent call last):
    ...
    data_schemas.errors.SchemaError: no/such/study.yaml: no such file; ...
    """
    p = Path(path)
    if not p.is_file():
        raise SchemaError(f"{path}: no such file; give the path of the study spec")
    return parse_study(p.read_text(encoding="utf-8"), source=str(path))
