"""The one vocabulary shared by the emulator, the importers and the analysis.

Condition, arm, instrument, modality, fault and end-reason keys are defined here once.
``ionto compare`` takes these keys; the emulator writes them into ``ground_truth.json``;
the store's check constraints are generated from them.

Examples
--------
>>> conditions_in("epicondylitis")
('lateral_epicondylitis', 'medial_epicondylitis')
>>> INSTRUMENT_RANGES["visa_a"]
(0.0, 100.0)
>>> arm_from_modalities({"exercise", "iontophoresis"})
'ionto+exercise'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from data_schemas.errors import InputError

CONDITIONS: Final[tuple[str, ...]] = (
    "achilles_tendinopathy",
    "other_tendinopathy",
    "lateral_epicondylitis",
    "medial_epicondylitis",
    "plantar_fasciitis",
    "bursitis",
    "rheumatoid",
)
"""Condition keys. ``bursitis`` and ``rheumatoid`` are the few other cases clinics see."""

CONDITION_FAMILIES: Final[dict[str, tuple[str, ...]]] = {
    "tendinopathy": ("achilles_tendinopathy", "other_tendinopathy"),
    "epicondylitis": ("lateral_epicondylitis", "medial_epicondylitis"),
}
"""Families that group conditions, usable wherever a condition key is taken."""

FAMILY_OF_CONDITION: Final[dict[str, str]] = {
    "achilles_tendinopathy": "tendinopathy",
    "other_tendinopathy": "tendinopathy",
    "lateral_epicondylitis": "epicondylitis",
    "medial_epicondylitis": "epicondylitis",
    "plantar_fasciitis": "plantar_fasciitis",
    "bursitis": "other",
    "rheumatoid": "other",
}

ICD10_CONDITION_PREFIXES: Final[dict[str, str]] = {
    # DOMAIN.md section 4 [K]; longest prefix wins.
    "M76.6": "achilles_tendinopathy",
    "M67.87": "other_tendinopathy",
    "M76.8": "other_tendinopathy",
    "M77.1": "lateral_epicondylitis",
    "M77.0": "medial_epicondylitis",
    "M72.2": "plantar_fasciitis",
    "M77.3": "plantar_fasciitis",
    "M70": "bursitis",
    "M71": "bursitis",
    "M05": "rheumatoid",
    "M06": "rheumatoid",
}
"""ICD-10-CM code prefixes mapped to a condition key."""

ARMS: Final[tuple[str, ...]] = (
    "exercise",
    "exercise+manual",
    "ionto+exercise",
    "ionto+exercise+manual",
    "ionto",
)
"""Arm keys: the combination of modalities actually delivered in an episode."""

MODALITIES: Final[tuple[str, ...]] = ("iontophoresis", "exercise", "manual_therapy", "other")

INSTRUMENT_RANGES: Final[dict[str, tuple[float, float]]] = {
    # DOMAIN.md section 2.
    "nprs": (0.0, 10.0),
    "vas": (0.0, 100.0),
    "visa_a": (0.0, 100.0),
    "prtee": (0.0, 100.0),
    "quickdash": (0.0, 100.0),
    "dash": (0.0, 100.0),
    "grip_pain_free_kg": (0.0, 100.0),
    "ffi": (0.0, 100.0),
    "faam_adl": (0.0, 100.0),
    "faam_sports": (0.0, 100.0),
    "fhsq_pain": (0.0, 100.0),
    "fhsq_function": (0.0, 100.0),
    "lefs": (0.0, 80.0),
    "psfs": (0.0, 10.0),
    "groc": (-7.0, 7.0),
}
"""Score range (inclusive) of every instrument the store accepts."""

INSTRUMENTS: Final[tuple[str, ...]] = tuple(INSTRUMENT_RANGES)

SEXES: Final[tuple[str, ...]] = ("female", "male", "other", "unknown")
SIDES: Final[tuple[str, ...]] = ("left", "right", "bilateral", "unspecified")
DEVICE_KINDS: Final[tuple[str, ...]] = ("clinic_unit", "wearable_patch")
POLARITIES: Final[tuple[str, ...]] = ("cathode", "anode")
VISIT_KINDS: Final[tuple[str, ...]] = (
    "evaluation",
    "treatment",
    "re_evaluation",
    "discharge",
    "follow_up",
)

DRUG_POLARITY: Final[dict[str, str]] = {
    # DOMAIN.md 1.1 [S7,S8]: anions go on the cathode.
    "dexamethasone_sodium_phosphate": "cathode",
    "acetic_acid": "cathode",
    "sodium_chloride": "cathode",
    "lidocaine": "anode",
}
"""The electrode an ionised drug belongs on; the opposite is a protocol deviation."""

CORTICOSTEROIDS: Final[frozenset[str]] = frozenset({"dexamethasone_sodium_phosphate"})
"""Drugs that need a prescription from a referring doctor."""

PRESCRIBER_ROLES: Final[tuple[str, ...]] = (
    "physician",
    "podiatrist",
    "nurse_practitioner",
    "physician_assistant",
    "physical_therapist",
)
PRESCRIBING_DOCTOR_ROLES: Final[tuple[str, ...]] = (
    "physician",
    "podiatrist",
    "nurse_practitioner",
    "physician_assistant",
)
"""Roles allowed to prescribe a corticosteroid (the referring doctor)."""

END_REASONS: Final[tuple[str, ...]] = (
    # DOMAIN.md 1.4 [A, mapped from S5,S16].
    "DOSE_COMPLETE",
    "EARLY_STOP_PATIENT",
    "EARLY_STOP_CLINICIAN",
    "ELECTRODE_REJECT",
    "HIGH_IMPEDANCE",
    "LOW_BATTERY",
    "BATTERY_DEPLETED",
    "POWER_LOSS",
    "OVERCURRENT",
)
"""Why a session ended; one list that every vendor's codes map onto."""

FAULT_CODES: Final[tuple[str, ...]] = (
    "ELECTRODE_REJECT",
    "RESISTANCE_LIMIT",
    "CURRENT_LIMITED",
    "PAUSED",
    "LOW_BATTERY",
    "BATTERY_DEPLETED",
    "OVERCURRENT",
    "POWER_LOSS",
)
"""Fault and alarm codes raised during a session."""

SKIN_CHECKS: Final[tuple[str, ...]] = ("normal", "erythema", "vesicles", "burn", "not_checked")
ADVERSE_EVENT_TYPES: Final[tuple[str, ...]] = (
    "erythema",
    "tingling",
    "vesicles",
    "rash",
    "burn",
    "staining",
    "other",
)
"""Adverse-event types; grade 0-3 as in DOMAIN.md 1.6 [A]."""

CONTRAINDICATIONS: Final[tuple[str, ...]] = (
    "pacemaker_or_implant",
    "pregnancy",
    "drug_hypersensitivity",
    "broken_skin",
    "impaired_sensation",
)
"""Screening items that keep a patient off iontophoresis (DOMAIN.md section 5)."""

OLDEST_POOLED_AGE: Final[int] = 90
"""Safe Harbor: every age over 89 is reported as 90 ("90+")."""

CPT_MODALITY: Final[dict[str, str]] = {
    # DOMAIN.md section 4.
    "97033": "iontophoresis",
    "97110": "exercise",
    "97530": "exercise",
    "97112": "exercise",
    "97140": "manual_therapy",
}
"""CPT codes whose modality the arm definition uses; any other code is ``other``."""

LIMITS: Final[dict[str, tuple[float, float]]] = {
    # Physically possible ranges; the store refuses rows outside them. A setpoint is at most
    # 5 mA; a measured current may spike above it until the overcurrent trip (DOMAIN.md 1.4).
    "current_mA": (0.0, 5.0),
    "measured_current_mA": (0.0, 10.0),
    "dose_mA_min": (0.0, 200.0),
    "voltage_V": (0.0, 100.0),
    "impedance_ohm": (0.0, 1.0e7),
    "electrode_area_cm2": (0.5, 100.0),
    "concentration_mg_per_mL": (0.0, 100.0),
    "volume_mL": (0.0, 20.0),
    "minutes": (0.0, 600.0),
}


def conditions_in(key: str) -> tuple[str, ...]:
    """Conditions a condition or family key stands for.

    Parameters
    ----------
    key : str
        A condition key (``"plantar_fasciitis"``) or a family key (``"tendinopathy"``).

    Returns
    -------
    tuple of str
        The condition keys.

    Raises
    ------
    InputError
        When the key is neither a condition nor a family (also a ValueError).

    Examples
    --------
    >>> conditions_in("plantar_fasciitis")
    ('plantar_fasciitis',)
    """
    if key in CONDITION_FAMILIES:
        return CONDITION_FAMILIES[key]
    if key in CONDITIONS:
        return (key,)
    known = ", ".join((*CONDITIONS, *CONDITION_FAMILIES))
    raise InputError(f"unknown condition {key!r}; expected one of: {known}")


ICD10_CM_CODE: Final = re.compile(r"[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?")
"""The shape of an ICD-10-CM code: category of three, then up to four characters after a
dot (which EHRs often leave out)."""


def normalize_icd10(code: str) -> str | None:
    """The dotted form of an ICD-10-CM code, or None when the text is not shaped like one.

    Examples
    --------
    >>> normalize_icd10("M7711"), normalize_icd10(" m77.11 "), normalize_icd10("M77")
    ('M77.11', 'M77.11', 'M77')
    >>> normalize_icd10("M77.1'; --") is None
    True
    """
    text = code.strip().upper()
    if not ICD10_CM_CODE.fullmatch(text):
        return None
    bare = text.replace(".", "")
    return bare[:3] + (f".{bare[3:]}" if len(bare) > 3 else "")


def condition_from_icd10(code: str) -> str | None:
    """The condition key for an ICD-10-CM code, or None when it is none of ours.

    The code is validated as a code first (a text that merely starts like one is none),
    and may be written without its dot.

    Examples
    --------
    >>> condition_from_icd10("M77.11"), condition_from_icd10("M7711")
    ('lateral_epicondylitis', 'lateral_epicondylitis')
    >>> condition_from_icd10("J45.909") is None, condition_from_icd10("M77.1'; --") is None
    (True, True)
    """
    normalized = normalize_icd10(code)
    if normalized is None:
        return None
    for prefix in sorted(ICD10_CONDITION_PREFIXES, key=len, reverse=True):
        if normalized.startswith(prefix):
            return ICD10_CONDITION_PREFIXES[prefix]
    return None


def arm_from_modalities(modalities: Iterable[str]) -> str | None:
    """The arm key for the set of modalities delivered, or None if it is no arm.

    ``other`` modalities are ignored; an episode with neither exercise nor
    iontophoresis is in no arm.

    Examples
    --------
    >>> arm_from_modalities(["exercise", "manual_therapy", "other"])
    'exercise+manual'
    >>> arm_from_modalities(["manual_therapy"]) is None
    True
    """
    delivered = set(modalities)
    ionto = "iontophoresis" in delivered
    exercise = "exercise" in delivered
    manual = "manual_therapy" in delivered
    if ionto and exercise:
        return "ionto+exercise+manual" if manual else "ionto+exercise"
    if ionto:
        return "ionto" if not manual else None
    if exercise:
        return "exercise+manual" if manual else "exercise"
    return None
