"""The instrument registry: range, direction, MCIDs (with source and anchor), conditions.

Every instrument key, and every range, comes from :mod:`data_schemas.vocabulary`; this module
adds what the analysis needs to *interpret* a score:

* ``direction``: ``"higher"`` or ``"lower"`` is better;
* ``mcids``: minimal clinically important differences transcribed from ``DOMAIN.md`` section 2,
  each with its source tag (``[S#]`` read in a stored copy, ``[K]`` recalled, to re-check) and the
  anchor or population it was derived in, the weeks it was validated at, and whether
  DOMAIN.md marks its source unverified (grip strength [S25]). Some are baseline dependent
  (NPRS "2 points or 30 %", never below 1 point), condition dependent (PRTEE 14.8 and NPRS
  2.3 in lateral epicondylitis [S22]; the VAS 15 mm [S11] covers epicondylitis only) or time
  dependent (VISA-A 14 points at 12 weeks, 7 at 24 weeks); :func:`select_mcid` says in
  ``note`` when it applies one outside what it was derived for;
* ``conditions``: the condition keys the instrument is used for.

Examples
--------
>>> REGISTRY["visa_a"].direction
'higher'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from data_schemas.vocabulary import CONDITIONS, INSTRUMENT_RANGES
from ionto_analytics.errors import InputError

__all__ = ["REGISTRY", "Direction", "Instrument", "Mcid", "registry_frame"]

Direction = Literal["higher", "lower"]


@dataclass(frozen=True)
class Mcid:
    """One minimal clinically important difference (MCID / MIC) with its provenance.

    Parameters
    ----------
    points : float
        Improvement, in score units, that counts as important.
    source : str
        Provenance tag from DOMAIN.md: ``"[S#]"`` (read in a stored copy) or ``"[K]"``.
    anchor : str
        How / where it was derived (anchor question, population, time point).
    percent : float or None
        Relative alternative as a fraction of the baseline score (NPRS "or 30 %" → 0.30).
        When set, an improvement of *either* ``points`` *or* ``percent × baseline`` counts,
        so the threshold is ``min(points, percent × |baseline|)``, raised to ``floor``.
    floor : float or None
        Smallest threshold a baseline-dependent MCID may reach (score units), so a low
        baseline cannot make a change within the scale's resolution count as important.
    conditions : tuple of str or None
        Condition keys it was derived in; None = any condition (the default MCID).
    weeks : tuple of (float, float) or None
        Follow-up weeks (inclusive) :func:`select_mcid` chooses it for; None = any time point.
    validated_weeks : tuple of (float, float) or None
        Follow-up weeks (inclusive) the source validated it at; None = not recorded in
        DOMAIN.md. Applying it at another week is flagged in ``note``.
    verified : bool
        False when DOMAIN.md marks the source unverified (not a citable primary study):
        :func:`select_mcid` warns before such an MCID calls anyone a responder.
    transition : bool
        True for a transition rating (GROC): the *score itself* is compared with ``points``,
        no baseline is involved.
    note : str
        Set by :func:`select_mcid` when the MCID is applied outside what it was derived
        for (another week or condition, an unverified source); "" otherwise. Not part of
        equality.

    Examples
    --------
    >>> m = Mcid(points=2.0, percent=0.30, floor=1.0, source="[K]", anchor="general")
    >>> m.threshold(5.0), m.threshold(10.0), m.threshold(3.0)
    (1.5, 2.0, 1.0)
    """

    points: float
    source: str
    anchor: str
    percent: float | None = None
    floor: float | None = None
    conditions: tuple[str, ...] | None = None
    weeks: tuple[float, float] | None = None
    validated_weeks: tuple[float, float] | None = None
    verified: bool = True
    transition: bool = False
    note: str = field(default="", compare=False)

    def threshold(
        self, baseline: float | np.ndarray | pd.Series | None = None
    ) -> float | np.ndarray:
        """The improvement needed (score units) given the baseline score(s).

        Parameters
        ----------
        baseline : float or array-like or None
            Baseline score(s). Needed only when ``percent`` is set.

        Returns
        -------
        float or numpy.ndarray
            ``points``, or ``max(floor, min(points, percent × |baseline|))`` for
            baseline-dependent MCIDs.

        Examples
        --------
        >>> Mcid(points=9.0, source="[S25]", anchor="x").threshold()
        9.0
        """
        if self.percent is None:
            if baseline is None or np.ndim(baseline) == 0:
                return float(self.points)
            return np.full(np.shape(baseline), float(self.points))
        if baseline is None:
            raise InputError(
                f"the MCID ({self.points} points or {self.percent:.0%}, {self.source}) depends on "
                "the baseline score; pass baseline="
            )
        rel = self.percent * np.abs(np.asarray(baseline, dtype=float))
        out = np.minimum(float(self.points), rel)
        if self.floor is not None:
            out = np.maximum(out, float(self.floor))
        return round(float(out), 10) if np.ndim(out) == 0 else np.round(out, 10)

    def applies(self, condition: str | None, week: float | None) -> bool:
        """True when this MCID was derived for ``condition`` and covers ``week``.

        Examples
        --------
        >>> Mcid(points=7, source="[S23]", anchor="x", weeks=(24, 52)).applies(None, 12)
        False
        """
        if self.conditions is not None and condition not in self.conditions:
            return False
        if self.weeks is not None and week is not None:
            return self.weeks[0] <= week <= self.weeks[1]
        return not (self.weeks is not None and week is None)

    def to_dict(self) -> dict[str, object]:
        """JSON-serializable representation.

        Examples
        --------
        >>> Mcid(points=8, source="[S30]", anchor="x").to_dict()["points"]
        8
        """
        return {
            "points": self.points,
            "percent": self.percent,
            "floor": self.floor,
            "source": self.source,
            "anchor": self.anchor,
            "conditions": list(self.conditions) if self.conditions else None,
            "weeks": list(self.weeks) if self.weeks else None,
            "validated_weeks": list(self.validated_weeks) if self.validated_weeks else None,
            "verified": self.verified,
            "transition": self.transition,
            "note": self.note,
        }

    def validated_text(self) -> str:
        """The time point the MCID was validated at, in words.

        Examples
        --------
        >>> Mcid(points=14, source="[S23]", anchor="x", validated_weeks=(12, 12)).validated_text()
        'validated at 12 weeks'
        >>> Mcid(points=8, source="[S30]", anchor="x").validated_text()
        'validation time point not recorded'
        """
        if self.validated_weeks is None:
            return "validation time point not recorded"
        lo, hi = self.validated_weeks
        return f"validated at {lo:g} weeks" if lo == hi else f"validated at {lo:g}–{hi:g} weeks"


@dataclass(frozen=True)
class Instrument:
    """An outcome instrument: vocabulary key, name, range, direction, MCIDs, conditions.

    Examples
    --------
    >>> i = REGISTRY["lefs"]
    >>> i.range, i.direction, i.mcids[0].points
    ((0.0, 80.0), 'higher', 9.0)
    """

    key: str
    name: str
    direction: Direction
    mcids: tuple[Mcid, ...]
    conditions: tuple[str, ...]
    unit: str = "points"
    items: str | None = None
    notes: str = ""
    range: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        if self.key not in INSTRUMENT_RANGES:
            raise InputError(f"instrument {self.key!r} is not in data_schemas.vocabulary")
        object.__setattr__(self, "range", INSTRUMENT_RANGES[self.key])

    @property
    def higher_is_better(self) -> bool:
        """True when a higher score means a better state."""
        return self.direction == "higher"

    @property
    def transition(self) -> bool:
        """True for a transition rating (GROC): rated only after treatment began, the score
        itself is the change, so it has no intake value and is never a baseline covariate.

        Examples
        --------
        >>> REGISTRY["groc"].transition, REGISTRY["nprs"].transition
        (True, False)
        """
        return any(m.transition for m in self.mcids)


_ALL = CONDITIONS
_EPI = ("lateral_epicondylitis", "medial_epicondylitis")
_FOOT = ("plantar_fasciitis", "achilles_tendinopathy")

# Transcribed from DOMAIN.md section 2. Order matters: select_mcid() returns the first MCID
# that applies, so condition- or week-specific values come before the default, which is last
# (and is used, with a note, when none applies).
REGISTRY: dict[str, Instrument] = {
    i.key: i
    for i in (
        Instrument(
            "nprs",
            "Numeric Pain Rating Scale",
            "lower",
            (
                Mcid(
                    2.3,
                    "[S22]",
                    "lateral epicondylitis cohort (PTTP 2025)",
                    conditions=("lateral_epicondylitis",),
                ),
                Mcid(
                    2.0,
                    "[K]",
                    "general: ~2 points or 30 % of baseline (Farrar 2001, PGIC 'much improved' "
                    "[K]); never below 1 point, the scale's whole-point resolution and the "
                    "'minimally improved' change in Salaffi 2004 [K]",
                    percent=0.30,
                    floor=1.0,
                ),
            ),
            _ALL,
            notes="PT cohorts 1.5–3.5 [S21].",
        ),
        Instrument(
            "vas",
            "Visual Analogue Scale, pain",
            "lower",
            (
                Mcid(8.0, "[K]", "heel pain", conditions=("plantar_fasciitis",)),
                Mcid(
                    15.0,
                    "[S11]",
                    "commentary on Nirschl 2003 (epicondylitis only): 15–20 mm, lower end",
                    conditions=_EPI,
                ),
            ),
            _ALL,
            unit="mm",
        ),
        Instrument(
            "visa_a",
            "Victorian Institute of Sport Assessment – Achilles",
            "higher",
            (
                Mcid(
                    7.0,
                    "[S23]",
                    "mid-portion Achilles, at 24 weeks",
                    weeks=(18.0, 1e9),
                    validated_weeks=(24.0, 24.0),
                ),
                Mcid(
                    14.0,
                    "[S23]",
                    "mid-portion Achilles, at 12 weeks",
                    validated_weeks=(12.0, 12.0),
                ),
            ),
            ("achilles_tendinopathy",),
            items="8 items, sum; items 1–6 integer 0–10, item 7 0/4/7/10, item 8 one of the "
            "A/B/C branches (0–30); all required (Robinson 2001 [S24]; item values [K])",
            notes="6.5 for insertional tendinopathy [K].",
        ),
        Instrument(
            "prtee",
            "Patient-Rated Tennis Elbow Evaluation",
            "lower",
            (
                Mcid(
                    14.8,
                    "[S22]",
                    "lateral epicondylitis cohort (PTTP 2025)",
                    conditions=("lateral_epicondylitis",),
                ),
                Mcid(11.0, "[K]", "11 points or 37 % of baseline", percent=0.37),
            ),
            _EPI,
            items="15 items integer 0–10: 5 pain (sum) + 10 function (sum / 2) (MacDermid 2007 "
            "manual [K]); all required [A]",
            notes="Alternatives: 9 (SDC 17) [S25] (unverified: below its own SDC); 31 (Persian) "
            "[S26]. 14.8 [S22] is used for lateral epicondylitis.",
        ),
        Instrument(
            "quickdash",
            "QuickDASH",
            "lower",
            (Mcid(15.91, "[S27]", "Franchignoni 2014"),),
            _EPI,
            items="11 items integer 1–5, ≥10 answered: ((sum / n) − 1) × 25 (IWH manual [K])",
            notes="Alternative: 14 [S28].",
        ),
        Instrument(
            "dash",
            "Disabilities of the Arm, Shoulder and Hand",
            "lower",
            (Mcid(10.83, "[S27]", "Franchignoni 2014"),),
            _EPI,
            items="30 items integer 1–5, ≥27 answered: ((sum / n) − 1) × 25 (IWH manual [K])",
            notes="Alternative: 10 [S28].",
        ),
        Instrument(
            "grip_pain_free_kg",
            "Pain-free grip strength",
            "higher",
            (
                Mcid(
                    6.5,
                    "[S25]",
                    "tennis elbow (AI-generated secondary page, no primary study found); SDC 6.4",
                    verified=False,
                ),
            ),
            _EPI,
            unit="kg",
        ),
        Instrument(
            "ffi",
            "Foot Function Index",
            "lower",
            (Mcid(7.0, "[K]", "total score (~7); pain subscale ~12"),),
            ("plantar_fasciitis", "rheumatoid"),
            items="23 items 0–10 (pain 9, disability 9, activity 5): mean of the subscale "
            "percents of answered items, ≥ half of each subscale answered; or sum / 230 "
            "(complete forms); original 0–9 VAS: sum / 207 (Budiman-Mak 1991 via sralab.org)",
        ),
        Instrument(
            "faam_adl",
            "Foot and Ankle Ability Measure, ADL",
            "higher",
            (Mcid(8.0, "[S30]", "Martin 2005; MDC 5.7"),),
            _FOOT,
            unit="%",
            items="21 items integer 0–4, N/A allowed: percent of answered maximum "
            "(Martin 2005 [S30]), ≥ half answered [A]",
        ),
        Instrument(
            "faam_sports",
            "Foot and Ankle Ability Measure, Sports",
            "higher",
            (Mcid(9.0, "[S30]", "Martin 2005; MDC 12.3"),),
            _FOOT,
            unit="%",
            items="8 items integer 0–4, N/A allowed: percent of answered maximum "
            "(Martin 2005 [S30]), ≥ half answered [A]",
        ),
        Instrument(
            "fhsq_pain",
            "Foot Health Status Questionnaire, pain",
            "higher",
            (Mcid(13.0, "[K]", "FHSQ pain domain"),),
            ("plantar_fasciitis",),
            notes="Item scoring is proprietary (software); scores only.",
        ),
        Instrument(
            "fhsq_function",
            "Foot Health Status Questionnaire, function",
            "higher",
            (Mcid(7.0, "[K]", "FHSQ function domain"),),
            ("plantar_fasciitis",),
            notes="Item scoring is proprietary (software); scores only.",
        ),
        Instrument(
            "lefs",
            "Lower Extremity Functional Scale",
            "higher",
            (Mcid(9.0, "[S31]", "Binkley 1999; MDC 9"),),
            ("achilles_tendinopathy", "plantar_fasciitis", "other_tendinopathy", "bursitis"),
            items="20 items integer 0–4, sum (Binkley 1999 [S31]); all required [A]",
            notes="9–16 in PT cohorts [S21]; 12 in insertional Achilles [K].",
        ),
        Instrument(
            "psfs",
            "Patient-Specific Functional Scale",
            "higher",
            (Mcid(2.0, "[K]", "average of activities (3 for a single activity)"),),
            _ALL,
            items="3–5 activities integer 0–10: mean (Stratford 1995 [K])",
            notes="1.3 / 2.3 / 2.7 for small / medium / large change [S21]; PSFS 2.0 reverses "
            "the scale [S33]: convert before loading.",
        ),
        Instrument(
            "groc",
            "Global Rating of Change (15-point)",
            "higher",
            (
                Mcid(
                    3.0,
                    "[K]",
                    "≥ +3 ('somewhat better') on −7..+7; trials used ≥'somewhat "
                    "better' or 'much improved' as success [S34,S35]",
                    transition=True,
                ),
            ),
            _ALL,
            notes="A transition rating: the score itself is the change.",
        ),
    )
}


def registry_frame() -> pd.DataFrame:
    """The registry as a tidy table: one row per (instrument, MCID).

    Examples
    --------
    >>> registry_frame().query("instrument == 'faam_adl'")["mcid_points"].tolist()
    [8.0]
    """
    rows = []
    for inst in REGISTRY.values():
        for m in inst.mcids:
            rows.append(
                {
                    "instrument": inst.key,
                    "name": inst.name,
                    "range_low": inst.range[0],
                    "range_high": inst.range[1],
                    "direction": inst.direction,
                    "mcid_points": float(m.points),
                    "mcid_percent": m.percent,
                    "mcid_floor": m.floor,
                    "mcid_source": m.source,
                    "mcid_verified": m.verified,
                    "mcid_anchor": m.anchor,
                    "mcid_validated": m.validated_text(),
                    "mcid_conditions": ",".join(m.conditions) if m.conditions else "",
                    "conditions": ",".join(inst.conditions),
                }
            )
    return pd.DataFrame(rows)
