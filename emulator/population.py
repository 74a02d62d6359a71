"""Patients and episodes: demographics, condition, baseline severity and scores, screening.

One row per episode (a patient's course of care for one condition) in a pandas DataFrame.

Examples
--------
>>> import numpy as np
>>> from emulator.scenario import load_scenario, resolve_clinics
>>> s = load_scenario()
>>> eps = make_episodes(np.random.default_rng(0), s, resolve_clinics(s, 2), 0, 50,
...                     np.datetime64("2025-01-06"), np.datetime64("2025-12-31"))
>>> len(eps), eps["age"].between(18, 89).all()
(50, np.True_)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from data_schemas.vocabulary import CONDITIONS, CONTRAINDICATIONS, INSTRUMENT_RANGES

from .names import fake_identities
from .scenario import Clinic

OPTIONAL_INSTRUMENTS = ("lefs", "psfs", "groc")


def instruments_for(scenario: dict[str, Any], condition: str, clinic: Clinic) -> list[str]:
    """Instruments a clinic collects for a condition (NPRS always first).

    Examples
    --------
    >>> from emulator.scenario import load_scenario, resolve_clinics
    >>> s = load_scenario()
    >>> instruments_for(s, "plantar_fasciitis", resolve_clinics(s, 2)[1])
    ['nprs', 'faam_adl', 'psfs', 'groc']
    """
    cond = scenario["conditions"][condition]
    swap = {"ffi": clinic.template["foot_instrument"]}
    out = [swap.get(i, i) for i in cond["instruments"]]
    for opt in clinic.template["optional_instruments"]:
        if opt == "lefs" and cond["region"] != "lower":
            continue
        if opt != "groc" and opt not in cond["baseline"]:
            continue
        out.append(opt)
    return out


def primary_for(scenario: dict[str, Any], condition: str, clinic: Clinic) -> str:
    """The primary instrument (after the clinic's foot-instrument swap).

    Examples
    --------
    >>> from emulator.scenario import load_scenario, resolve_clinics
    >>> s = load_scenario()
    >>> primary_for(s, "plantar_fasciitis", resolve_clinics(s, 2)[1])
    'faam_adl'
    """
    p = scenario["conditions"][condition]["primary"]
    return clinic.template["foot_instrument"] if p == "ffi" else p


def quantize(scenario: dict[str, Any], instrument: str, x: np.ndarray) -> np.ndarray:
    """Clip a latent score to the instrument's range and round to its reporting step.

    Examples
    --------
    >>> from emulator.scenario import load_scenario
    >>> quantize(load_scenario(), "nprs", np.array([-1.2, 4.6, 12.0])).tolist()
    [0.0, 5.0, 10.0]
    """
    lo, hi = INSTRUMENT_RANGES[instrument]
    step = scenario["instruments"][instrument]["step"]
    q = np.round((np.clip(x, lo, hi) - lo) / step) * step + lo
    return np.round(np.clip(q, lo, hi), 6)


def better_sign(scenario: dict[str, Any], instrument: str) -> float:
    """+1 when a higher score is better, -1 when lower is better.

    Examples
    --------
    >>> from emulator.scenario import load_scenario
    >>> better_sign(load_scenario(), "nprs")
    -1.0
    """
    return 1.0 if scenario["instruments"][instrument]["better"] == "higher" else -1.0


def make_episodes(
    rng: np.random.Generator,
    scenario: dict[str, Any],
    clinics: list[Clinic],
    first_index: int,
    n: int,
    start: np.datetime64,
    end: np.datetime64,
) -> pd.DataFrame:
    """Draw ``n`` episodes (one patient each) with global indices from ``first_index``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness for this chunk.
    scenario : dict
        A validated scenario.
    clinics : list of Clinic
        The network.
    first_index : int
        Global index of the first episode of this chunk.
    n : int
        Number of episodes.
    start, end : numpy.datetime64
        Window of intake dates (days).

    Returns
    -------
    pandas.DataFrame
        One row per episode; ``baseline_<instrument>`` columns hold the intake scores (NaN
        where the clinic does not collect the instrument).
    """
    pop = scenario["population"]
    idx = np.arange(first_index, first_index + n)
    weights = np.array([c.template["units"] + c.template["patches"] + 2 for c in clinics], float)
    clinic = rng.choice(len(clinics), n, p=weights / weights.sum())
    mix = np.array([pop["condition_mix"].get(c, 0.0) for c in CONDITIONS])
    cond_i = rng.choice(len(CONDITIONS), n, p=mix / mix.sum())
    condition = np.array(CONDITIONS, dtype=object)[cond_i]
    lo, hi = pop["age_range"]
    age = np.clip(rng.normal(pop["age_mean"], pop["age_sd"], n), lo, hi).round(0)
    female = rng.random(n) < pop["female_share"]
    duration = (
        np.exp(
            np.log(pop["symptom_duration_months_median"])
            + pop["symptom_duration_log_sd"] * rng.normal(size=n)
        )
        .clip(0.5, 120)
        .round(1)
    )
    span = int((end - start).astype(int)) + 1
    intake = np.busday_offset(
        start + rng.integers(0, span, n).astype("timedelta64[D]"), 0, roll="forward"
    )
    birth = intake - (age * 365.25 + rng.integers(0, 365, n)).astype("timedelta64[D]")
    severity = rng.normal(size=n)
    u = rng.normal(0.0, scenario["effects"]["patient_sd_smd"], n)
    side_draw = rng.random(n)
    side = np.where(
        side_draw < 0.55,
        "right",
        np.where(side_draw < 0.9, "left", np.where(side_draw < 0.95, "bilateral", "unspecified")),
    )
    contra = {}
    for key in CONTRAINDICATIONS:
        p = pop["contraindications"].get(key, 0.0)
        draw = rng.random(n) < p
        if key == "pregnancy":
            plo, phi = pop["pregnancy_age_range"]
            draw &= female & (age >= plo) & (age <= phi)
        contra[f"contra_{key}"] = draw
    ids = fake_identities(rng, female)
    df = pd.DataFrame(
        {
            "episode_index": idx,
            "clinic": clinic,
            "condition": condition,
            "side": side,
            "age": age,
            "female": female,
            "sex": np.where(female, "female", "male"),
            "symptom_duration_months": duration,
            "intake_date": intake,
            "birth_date": birth,
            "severity": severity,
            "u": u,
            **contra,
            **ids,
        }
    )
    df["contraindicated"] = np.logical_or.reduce([df[c] for c in contra])
    # Duplicate persons: rarely the same person (name, birth date, sex) at a second clinic.
    dup = np.flatnonzero(rng.random(n) < pop["duplicate_person_share"])
    df["person_index"] = idx
    for i in dup:
        if i == 0:
            continue
        j = int(rng.integers(0, i))
        if df.at[j, "clinic"] == df.at[i, "clinic"]:
            continue
        for col in ("first", "last", "birth_date", "sex", "female", "phone", "email", "street"):
            df.at[i, col] = df.at[j, col]
        df.at[i, "person_index"] = df.at[j, "person_index"]
    _baselines(rng, scenario, clinics, df)
    return df


def _baselines(
    rng: np.random.Generator, scenario: dict[str, Any], clinics: list[Clinic], df: pd.DataFrame
) -> None:
    """Add ``baseline_<instrument>``, ``primary`` and ``severity_z`` columns in place."""
    rho = scenario["population"]["baseline_correlation"]
    n = len(df)
    instr_sets = {}
    for ci, clinic in enumerate(clinics):
        for cond in CONDITIONS:
            instr_sets[(ci, cond)] = instruments_for(scenario, cond, clinic)
    keys = list(zip(df["clinic"].tolist(), df["condition"].tolist(), strict=True))
    df["primary"] = [primary_for(scenario, c, clinics[k]) for k, c in keys]
    df["instruments"] = [" ".join(instr_sets[k]) for k in keys]
    sev = df["severity"].to_numpy()
    cond = df["condition"].to_numpy()
    for instr in INSTRUMENT_RANGES:
        eps = rng.normal(size=n)
        col = np.full(n, np.nan)
        if instr == "groc":
            df[f"baseline_{instr}"] = col
            continue
        has = np.array([instr in instr_sets[k] for k in keys], dtype=bool)
        if not has.any():
            continue
        for c in np.unique(cond[has]):
            m = has & (cond == c)
            mean, sd = scenario["conditions"][c]["baseline"][instr]
            latent = rho * sev[m] + np.sqrt(1 - rho**2) * eps[m]
            col[m] = quantize(scenario, instr, mean - better_sign(scenario, instr) * sd * latent)
        df[f"baseline_{instr}"] = col
    # Standardized observed severity of the primary instrument (higher = worse).
    z = np.zeros(n)
    for (c, p), grp in df.groupby(["condition", "primary"]).groups.items():
        mean, sd = scenario["conditions"][c]["baseline"][p]
        obs = df.loc[grp, f"baseline_{p}"].to_numpy()
        z[df.index.get_indexer(grp)] = -better_sign(scenario, p) * (obs - mean) / sd
    df["severity_z"] = z


def baseline_sd(scenario: dict[str, Any], condition: str, instrument: str) -> float:
    """The baseline SD of an instrument for a condition (GROC: 1 / groc_points_per_smd).

    Examples
    --------
    >>> from emulator.scenario import load_scenario
    >>> baseline_sd(load_scenario(), "achilles_tendinopathy", "visa_a")
    17.0
    """
    if instrument == "groc":
        return float(scenario["instruments"]["groc_points_per_smd"])
    return float(scenario["conditions"][condition]["baseline"][instrument][1])
