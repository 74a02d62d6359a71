"""How patients come to receive an arm: a multinomial logit on MEASURED covariates only.

The covariates are the standardized baseline of the primary instrument (``severity_z``),
age, sex, log symptom duration and the clinic. Nothing unmeasured enters, so an analysis that
adjusts for these covariates (ANCOVA) can recover the planted effects. Contraindicated
patients are screened off every iontophoresis arm.

Each modality's log-odds is linear in the covariates, plus an optional non-linear severity
term: ``severity_squared`` (log-odds per unit of ``severity_z**2``, default 0). With it,
treatment choice is a convex (positive) or concave (negative) function of the severity the
clinician sees, so a propensity model linear in the baseline score is misspecified; the
``stress`` scenario uses it. At 0 the term is not evaluated at all, so a scenario without
it gives the same bytes as before it existed.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from emulator.scenario import load_scenario, resolve_clinics
>>> s = load_scenario()
>>> eps = pd.DataFrame({"severity_z": [0.0, 2.0], "age": [47, 60], "female": [True, False],
...                     "symptom_duration_months": [4.0, 12.0], "clinic": [0, 1],
...                     "contraindicated": [False, True]})
>>> p = arm_probabilities(s, resolve_clinics(s, 2), eps)
>>> p.shape, bool(p[1, 2:].sum() == 0)
((2, 5), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_schemas.vocabulary import ARMS

from .scenario import Clinic

NONLINEAR_TERM = "severity_squared"
"""Optional assignment term: log-odds per unit of ``severity_z**2`` (default 0)."""


def covariates(eps: pd.DataFrame) -> dict[str, np.ndarray]:
    """The measured covariates the assignment model uses, by assignment-term name.

    Examples
    --------
    >>> eps = pd.DataFrame({"severity_z": [1.0], "age": [57], "female": [True],
    ...                     "symptom_duration_months": [4.0]})
    >>> {k: float(v[0]) for k, v in covariates(eps).items()}
    {'severity': 1.0, 'age_per_10y': 1.0, 'female': 1.0, 'log_duration': 0.0}
    """
    return {
        "severity": eps["severity_z"].to_numpy(float),
        "age_per_10y": (eps["age"].to_numpy(float) - 47.0) / 10.0,
        "female": eps["female"].to_numpy(float),
        "log_duration": np.log(eps["symptom_duration_months"].to_numpy(float) / 4.0),
    }


def arm_probabilities(
    scenario: dict[str, Any], clinics: list[Clinic], eps: pd.DataFrame
) -> np.ndarray:
    """Probability of each arm (columns in ``ARMS`` order) for each episode."""
    x = covariates(eps)
    a = scenario["assignment"]
    clinic = eps["clinic"].to_numpy()
    ion_clinic = np.array([c.template["ionto_log_odds"] for c in clinics])[clinic]
    man_clinic = np.array([c.template["manual_log_odds"] for c in clinics])[clinic]
    lp_ion = ion_clinic + sum(a["ionto"][k] * v for k, v in x.items())
    lp_man = man_clinic + sum(a["manual"][k] * v for k, v in x.items())
    for mod, lp in (("ionto", lp_ion), ("manual", lp_man)):
        curve = a[mod].get(NONLINEAR_TERM, 0.0)
        if curve:
            lp += curve * x["severity"] ** 2
    logits = np.empty((len(eps), len(ARMS)))
    for j, arm in enumerate(ARMS):
        mods = scenario["arms"][arm]["modalities"]
        logits[:, j] = scenario["arms"][arm]["intercept"]
        if "iontophoresis" in mods:
            logits[:, j] += lp_ion
        if "manual_therapy" in mods:
            logits[:, j] += lp_man
    ionto_cols = [
        j for j, arm in enumerate(ARMS) if "iontophoresis" in scenario["arms"][arm]["modalities"]
    ]
    contra = eps["contraindicated"].to_numpy(bool)
    logits[np.ix_(contra, ionto_cols)] = -np.inf
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


NO_IONTO = {
    "ionto+exercise": "exercise",
    "ionto+exercise+manual": "exercise+manual",
    "ionto": "exercise",
}
"""The arm a patient actually receives when a planned iontophoresis course never happens."""


def assign_arms(
    rng: np.random.Generator, scenario: dict[str, Any], clinics: list[Clinic], eps: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Planned and true (delivered) arm of each episode.

    A small share of planned iontophoresis courses never start (no prescription obtained),
    independently of everything else; those patients receive the arm without iontophoresis.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from emulator.scenario import load_scenario, resolve_clinics
    >>> s = load_scenario()
    >>> eps = pd.DataFrame({"severity_z": [0.0] * 3, "age": [47] * 3, "female": [True] * 3,
    ...                     "symptom_duration_months": [4.0] * 3, "clinic": [0] * 3,
    ...                     "contraindicated": [True] * 3})
    >>> planned, true = assign_arms(np.random.default_rng(0), s, resolve_clinics(s, 1), eps)
    >>> sorted(set(planned) | set(true)) <= ["exercise", "exercise+manual"]
    True
    """
    p = arm_probabilities(scenario, clinics, eps)
    cum = p.cumsum(axis=1)
    draw = rng.random(len(eps))[:, None]
    j = np.minimum((draw > cum).sum(axis=1), len(ARMS) - 1)
    planned = np.array(ARMS, dtype=object)[j]
    deviate = rng.random(len(eps)) < scenario["assignment"]["deviation_no_ionto"]
    true = np.array(
        [NO_IONTO.get(a, a) if d else a for a, d in zip(planned, deviate, strict=True)],
        dtype=object,
    )
    return planned, true


def true_arm_probabilities(
    scenario: dict[str, Any], clinics: list[Clinic], eps: pd.DataFrame
) -> np.ndarray:
    """Probability of each *delivered* arm (columns in ``ARMS`` order) for each episode.

    :func:`arm_probabilities` of the planned arm, with the share ``deviation_no_ionto`` of
    every planned iontophoresis arm moved to the arm :data:`NO_IONTO` names: the propensity
    score of the arm an analysis sees, known exactly here (an oracle for checks of the
    data-generating process).

    Examples
    --------
    >>> import pandas as pd
    >>> from emulator.scenario import load_scenario, resolve_clinics
    >>> s = load_scenario()
    >>> eps = pd.DataFrame({"severity_z": [0.0], "age": [47], "female": [True],
    ...                     "symptom_duration_months": [4.0], "clinic": [0],
    ...                     "contraindicated": [False]})
    >>> p = true_arm_probabilities(s, resolve_clinics(s, 1), eps)
    >>> bool(abs(p.sum() - 1) < 1e-12)
    True
    """
    planned = arm_probabilities(scenario, clinics, eps)
    dev = scenario["assignment"]["deviation_no_ionto"]
    out = planned.copy()
    for arm, instead in NO_IONTO.items():
        j, k = ARMS.index(arm), ARMS.index(instead)
        out[:, j] -= dev * planned[:, j]
        out[:, k] += dev * planned[:, j]
    return out
