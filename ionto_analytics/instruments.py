"""Registry of the outcome instruments: range, direction, MCID (with source and anchor), scoring.

Every instrument key, and every range, comes from :mod:`data_schemas.vocabulary`; this module
adds what the analysis needs to *interpret* a score:

* ``direction``: ``"higher"`` or ``"lower"`` is better;
* ``mcids``: minimal clinically important differences transcribed from ``DOMAIN.md`` section 2,
  each with its source tag (``[S#]`` read in a stored copy, ``[K]`` recalled, to re-check) and the
  anchor or population it was derived in. Some are baseline dependent (NPRS "2 points or 30 %")
  or time dependent (VISA-A 14 points at 12 weeks, 7 at 24 weeks);
* ``conditions``: the condition keys the instrument is used for;
* item scoring where the instrument is scored from item responses.

A score outside its range, or an unknown instrument key, raises :class:`InputError` naming
the instrument, the value and the expected range: never a silent NaN.

Examples
--------
>>> get_instrument("visa_a").direction
'higher'
>>> select_mcid("nprs").threshold(6.0)
1.8
>>> select_mcid("nprs", condition="lateral_epicondylitis").source
'[S22]'
>>> score_items("quickdash", [3] * 11)
50.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from data_schemas.vocabulary import CONDITIONS, INSTRUMENT_RANGES
from ionto_analytics.errors import InputError

__all__ = [
    "REGISTRY",
    "Instrument",
    "Mcid",
    "check_scores",
    "get_instrument",
    "improvement",
    "registry_frame",
    "score_items",
    "select_mcid",
    "to_improvement",
]

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
        so the threshold is ``min(points, percent × |baseline|)``.
    conditions : tuple of str or None
        Condition keys it was derived in; None = any condition (the default MCID).
    weeks : tuple of (float, float) or None
        Follow-up weeks (inclusive) it applies to; None = any time point.
    transition : bool
        True for a transition rating (GROC): the *score itself* is compared with ``points``,
        no baseline is involved.

    Examples
    --------
    >>> m = Mcid(points=2.0, percent=0.30, source="[K]", anchor="general")
    >>> m.threshold(5.0), m.threshold(10.0)
    (1.5, 2.0)
    """

    points: float
    source: str
    anchor: str
    percent: float | None = None
    conditions: tuple[str, ...] | None = None
    weeks: tuple[float, float] | None = None
    transition: bool = False

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
            ``points``, or ``min(points, percent × |baseline|)`` for baseline-dependent MCIDs.

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
            "source": self.source,
            "anchor": self.anchor,
            "conditions": list(self.conditions) if self.conditions else None,
            "weeks": list(self.weeks) if self.weeks else None,
            "transition": self.transition,
        }


@dataclass(frozen=True)
class Instrument:
    """An outcome instrument: vocabulary key, name, range, direction, MCIDs, conditions.

    Examples
    --------
    >>> i = get_instrument("lefs")
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


_ALL = CONDITIONS
_EPI = ("lateral_epicondylitis", "medial_epicondylitis")
_FOOT = ("plantar_fasciitis", "achilles_tendinopathy")

# Transcribed from DOMAIN.md section 2. Order matters: select_mcid() returns the first MCID
# that applies, so condition- or week-specific values come before the general default.
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
                Mcid(2.0, "[K]", "general: ~2 points or 30 % of baseline", percent=0.30),
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
                    15.0, "[S11]", "commentary on Nirschl 2003 (epicondylitis): 15–20 mm, lower end"
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
                Mcid(7.0, "[S23]", "mid-portion Achilles, at 24 weeks", weeks=(18.0, 1e9)),
                Mcid(14.0, "[S23]", "mid-portion Achilles, at 12 weeks"),
            ),
            ("achilles_tendinopathy",),
            items="8 items, sum (items 1–7: 0–10, item 8: 0–30)",
            notes="6.5 for insertional tendinopathy [K].",
        ),
        Instrument(
            "prtee",
            "Patient-Rated Tennis Elbow Evaluation",
            "lower",
            (Mcid(11.0, "[K]", "11 points or 37 % of baseline", percent=0.37),),
            _EPI,
            items="15 items 0–10: 5 pain (sum) + 10 function (sum / 2)",
            notes="Alternatives: 9 (SDC 17) [S25]; 14.8 [S22]; 31 (Persian) [S26].",
        ),
        Instrument(
            "quickdash",
            "QuickDASH",
            "lower",
            (Mcid(15.91, "[S27]", "Franchignoni 2014"),),
            _EPI,
            items="11 items 1–5, ≥10 answered: ((sum / n) − 1) × 25",
            notes="Alternative: 14 [S28].",
        ),
        Instrument(
            "dash",
            "Disabilities of the Arm, Shoulder and Hand",
            "lower",
            (Mcid(10.83, "[S27]", "Franchignoni 2014"),),
            _EPI,
            items="30 items 1–5, ≥27 answered: ((sum / n) − 1) × 25",
            notes="Alternative: 10 [S28].",
        ),
        Instrument(
            "grip_pain_free_kg",
            "Pain-free grip strength",
            "higher",
            (Mcid(6.5, "[S25]", "tennis elbow (secondary source); SDC 6.4"),),
            _EPI,
            unit="kg",
        ),
        Instrument(
            "ffi",
            "Foot Function Index",
            "lower",
            (Mcid(7.0, "[K]", "total score (~7); pain subscale ~12"),),
            ("plantar_fasciitis", "rheumatoid"),
            items="23 items 0–10 (pain 9, disability 9, activity 5): mean percent of answered",
        ),
        Instrument(
            "faam_adl",
            "Foot and Ankle Ability Measure, ADL",
            "higher",
            (Mcid(8.0, "[S30]", "Martin 2005; MDC 5.7"),),
            _FOOT,
            unit="%",
            items="21 items 0–4, N/A allowed: percent of answered maximum",
        ),
        Instrument(
            "faam_sports",
            "Foot and Ankle Ability Measure, Sports",
            "higher",
            (Mcid(9.0, "[S30]", "Martin 2005; MDC 12.3"),),
            _FOOT,
            unit="%",
            items="8 items 0–4, N/A allowed: percent of answered maximum",
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
            items="20 items 0–4, sum",
            notes="9–16 in PT cohorts [S21]; 12 in insertional Achilles [K].",
        ),
        Instrument(
            "psfs",
            "Patient-Specific Functional Scale",
            "higher",
            (Mcid(2.0, "[K]", "average of activities (3 for a single activity)"),),
            _ALL,
            items="3–5 activities 0–10: mean",
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


def _unknown(key: object) -> InputError:
    return InputError(
        f"unknown instrument {key!r}; expected one of: {', '.join(REGISTRY)} "
        "(keys from data_schemas.vocabulary.INSTRUMENT_RANGES)"
    )


def get_instrument(key: str) -> Instrument:
    """The registry entry for an instrument key.

    Parameters
    ----------
    key : str
        A vocabulary instrument key such as ``"nprs"``.

    Returns
    -------
    Instrument

    Raises
    ------
    InputError
        When the key is not a known instrument.

    Examples
    --------
    >>> get_instrument("prtee").range
    (0.0, 100.0)
    >>> get_instrument("womac")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: unknown instrument 'womac'; expected one of: ...
    """
    try:
        return REGISTRY[key]
    except (KeyError, TypeError):
        raise _unknown(key) from None


def select_mcid(
    instrument: str,
    condition: str | None = None,
    week: float | None = None,
    source: str | None = None,
) -> Mcid:
    """Choose the MCID for an instrument, condition and follow-up week.

    The first MCID in the registry whose condition and week apply is returned, so a
    condition- or time-specific value wins over the general one. ``source`` picks a
    specific tag (``"[S23]"``) instead.

    Parameters
    ----------
    instrument : str
        Instrument key.
    condition : str or None
        Condition key of the cohort.
    week : float or None
        Follow-up week of the comparison.
    source : str or None
        Restrict to MCIDs with this source tag.

    Returns
    -------
    Mcid

    Examples
    --------
    >>> select_mcid("visa_a", week=12).points, select_mcid("visa_a", week=24).points
    (14.0, 7.0)
    """
    inst = get_instrument(instrument)
    candidates = [m for m in inst.mcids if source is None or m.source == source]
    if not candidates:
        tags = sorted({m.source for m in inst.mcids})
        raise InputError(f"no MCID for {instrument!r} with source {source!r}; available: {tags}")
    for m in candidates:
        if m.applies(condition, week):
            return m
    for m in candidates:  # fall back to a general MCID that ignores time restrictions
        if m.conditions is None and m.weeks is None:
            return m
    return candidates[-1]


def check_scores(
    scores: float | Sequence[float] | np.ndarray | pd.Series,
    instrument: str,
    *,
    allow_missing: bool = True,
    where: str = "",
) -> None:
    """Raise :class:`InputError` when any score is outside the instrument's range.

    Parameters
    ----------
    scores : float or array-like
        Scores to check.
    instrument : str
        Instrument key.
    allow_missing : bool
        When False a NaN is an error too.
    where : str
        Context added to the message (a file, a frame name).

    Examples
    --------
    >>> check_scores([0, 5, 10], "nprs")
    >>> check_scores([3, 12], "nprs")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: nprs score 12.0 at position 1 is outside the expected ...
    """
    inst = get_instrument(instrument)
    arr = np.atleast_1d(np.asarray(scores, dtype=float))
    lo, hi = inst.range
    bad = ~np.isnan(arr) & ((arr < lo) | (arr > hi))
    ctx = f" in {where}" if where else ""
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{instrument} score {float(arr[pos])!r} at position {pos}{ctx} is outside "
            f"the expected range [{lo}, {hi}]; {int(bad.sum())} value(s) out of range. "
            f"Check the unit/scale (e.g. VAS in cm instead of mm, PSFS 2.0 reversed)"
        )
    if not allow_missing and np.isnan(arr).any():
        pos = int(np.flatnonzero(np.isnan(arr))[0])
        raise InputError(f"{instrument} score is missing at position {pos}{ctx}")


def improvement(change: float | np.ndarray | pd.Series, instrument: str) -> np.ndarray | float:
    """Change from baseline signed so that a positive number means the patient got better.

    Examples
    --------
    >>> improvement(-3.0, "nprs"), improvement(10.0, "visa_a")
    (3.0, 10.0)
    """
    sign = 1.0 if get_instrument(instrument).higher_is_better else -1.0
    if np.ndim(change) == 0:
        return sign * float(change)  # type: ignore[arg-type]
    return sign * np.asarray(change, dtype=float)


def to_improvement(
    scores: pd.DataFrame | pd.Series,
    instrument: str | None = None,
    *,
    score: str = "score",
    instrument_col: str = "instrument",
) -> pd.DataFrame:
    """Put scores on a common "higher = better" direction for plots, keeping the raw score.

    Lower-is-better scores are reflected within their range (``lo + hi − score``), so an
    NPRS of 2 becomes 8 and stays on the 0–10 scale. Higher-is-better scores are unchanged.

    Parameters
    ----------
    scores : DataFrame or Series
        Long outcomes (a ``score`` column and an ``instrument`` column, or pass
        ``instrument=`` for all rows), or a Series of scores of one instrument.
    instrument : str or None
        Instrument key for all rows; required for a Series.
    score, instrument_col : str
        Column names.

    Returns
    -------
    DataFrame
        A copy with the raw ``score`` kept and ``score_higher_better`` and ``direction`` added.

    Raises
    ------
    InputError
        Unknown instrument or a score out of range.

    Examples
    --------
    >>> df = pd.DataFrame({"instrument": ["nprs", "visa_a"], "score": [2.0, 60.0]})
    >>> to_improvement(df)[["score", "score_higher_better"]].to_numpy().tolist()
    [[2.0, 8.0], [60.0, 60.0]]
    """
    if isinstance(scores, pd.Series):
        if instrument is None:
            raise InputError("to_improvement(Series) needs instrument=")
        out = scores.rename(score).to_frame()
    else:
        if score not in scores.columns:
            raise InputError(f"to_improvement: column {score!r} missing; have {list(scores)}")
        out = scores.copy()
    keys = pd.Series(instrument, index=out.index) if instrument is not None else out[instrument_col]
    oriented = np.full(len(out), np.nan)
    direction = np.empty(len(out), dtype=object)
    for key in pd.unique(keys):
        mask = (keys == key).to_numpy()
        inst = get_instrument(str(key))
        vals = out.loc[mask, score].to_numpy(dtype=float)
        check_scores(vals, inst.key, where="to_improvement")
        lo, hi = inst.range
        oriented[mask] = vals if inst.higher_is_better else lo + hi - vals
        direction[mask] = inst.direction
    out["score_higher_better"] = oriented
    out["direction"] = direction
    return out


def _items(responses: Sequence[float] | np.ndarray | pd.DataFrame) -> np.ndarray:
    arr = np.asarray(responses, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputError("item responses must be 1-D (one respondent) or 2-D (rows)")
    return arr


def _check_items(arr: np.ndarray, instrument: str, lo: float, hi: float) -> None:
    bad = ~np.isnan(arr) & ((arr < lo) | (arr > hi))
    if bad.any():
        r, c = (int(x[0]) for x in np.nonzero(bad))
        raise InputError(
            f"{instrument} item {c + 1} response {float(arr[r, c])!r} (row {r}) is outside "
            f"the expected item range [{lo}, {hi}]"
        )


def _need(arr: np.ndarray, instrument: str, n_items: int | tuple[int, int]) -> None:
    lo_n, hi_n = (n_items, n_items) if isinstance(n_items, int) else n_items
    if not lo_n <= arr.shape[1] <= hi_n:
        raise InputError(
            f"{instrument} needs {lo_n}"
            + (f"–{hi_n}" if hi_n != lo_n else "")
            + f" item responses, got {arr.shape[1]}"
        )


def _percent_of_answered(
    arr: np.ndarray, instrument: str, item_max: float, min_answered: int
) -> np.ndarray:
    answered = (~np.isnan(arr)).sum(axis=1)
    if (answered < min_answered).any():
        r = int(np.flatnonzero(answered < min_answered)[0])
        raise InputError(
            f"{instrument}: row {r} has {answered[r]} answered items; at least {min_answered} "
            "needed to score"
        )
    return np.nansum(arr, axis=1) / (item_max * answered) * 100.0


def score_items(
    instrument: str, responses: Sequence[float] | np.ndarray | pd.DataFrame
) -> float | np.ndarray:
    """Score an instrument from its item responses (NaN = item not answered / not applicable).

    Rules (standard scoring manuals; [K] unless stated):

    * ``prtee``: 15 items 0–10, first 5 pain, next 10 function; pain sum + function sum / 2.
      All items required.
    * ``quickdash``: 11 items 1–5, ≥10 answered; ``((sum / n) − 1) × 25``.
    * ``dash``: 30 items 1–5, ≥27 answered; same formula.
    * ``lefs``: 20 items 0–4; sum (all required).
    * ``ffi``: 23 items 0–10; mean percent of answered items (sum / (10 × answered) × 100),
      ≥12 answered [A].
    * ``faam_adl`` (21 items) / ``faam_sports`` (8): items 0–4, N/A allowed; percent of the
      answered maximum, ≥ half answered [A].
    * ``visa_a``: 8 items (1–7: 0–10, 8: 0–30); sum (all required).
    * ``psfs``: 3–5 activities 0–10; mean of the rated activities.

    Parameters
    ----------
    instrument : str
        Instrument key.
    responses : array-like
        One respondent (1-D) or several (2-D, one row each), items in questionnaire order.

    Returns
    -------
    float or numpy.ndarray
        The score (a float for 1-D input), always within the instrument's range.

    Raises
    ------
    InputError
        Unknown instrument, an instrument without item scoring, wrong item count, an item
        out of range, or too few answered items.

    Examples
    --------
    >>> score_items("prtee", [5] * 5 + [4] * 10)
    45.0
    >>> score_items("lefs", [[4] * 20, [0] * 20])
    array([80.,  0.])
    >>> score_items("psfs", [3, 4, 5])
    4.0
    """
    inst = get_instrument(instrument)
    arr = _items(responses)
    key = inst.key
    if key == "prtee":
        _need(arr, key, 15)
        _check_items(arr, key, 0, 10)
        if np.isnan(arr).any():
            raise InputError("prtee: all 15 items are required (a missing item was found)")
        out = arr[:, :5].sum(axis=1) + arr[:, 5:].sum(axis=1) / 2.0
    elif key in ("quickdash", "dash"):
        n_items, min_n = (11, 10) if key == "quickdash" else (30, 27)
        _need(arr, key, n_items)
        _check_items(arr, key, 1, 5)
        answered = (~np.isnan(arr)).sum(axis=1)
        if (answered < min_n).any():
            r = int(np.flatnonzero(answered < min_n)[0])
            raise InputError(
                f"{key}: row {r} has {answered[r]} of {n_items} items answered; "
                f"at least {min_n} needed"
            )
        out = (np.nansum(arr, axis=1) / answered - 1.0) * 25.0
    elif key == "lefs":
        _need(arr, key, 20)
        _check_items(arr, key, 0, 4)
        if np.isnan(arr).any():
            raise InputError("lefs: all 20 items are required")
        out = arr.sum(axis=1)
    elif key == "ffi":
        _need(arr, key, 23)
        _check_items(arr, key, 0, 10)
        out = _percent_of_answered(arr, key, 10.0, 12)
    elif key in ("faam_adl", "faam_sports"):
        n_items = 21 if key == "faam_adl" else 8
        _need(arr, key, n_items)
        _check_items(arr, key, 0, 4)
        out = _percent_of_answered(arr, key, 4.0, math.ceil(n_items / 2))
    elif key == "visa_a":
        _need(arr, key, 8)
        _check_items(arr[:, :7], key, 0, 10)
        _check_items(arr[:, 7:], key, 0, 30)
        if np.isnan(arr).any():
            raise InputError("visa_a: all 8 items are required")
        out = arr.sum(axis=1)
    elif key == "psfs":
        _need(arr, key, (3, 5))
        _check_items(arr, key, 0, 10)
        if (np.isnan(arr).all(axis=1)).any():
            raise InputError("psfs: a row has no rated activity")
        out = np.nanmean(arr, axis=1)
    else:
        raise InputError(
            f"{key} has no item scoring here ({inst.name} is a single score"
            + (", proprietary scoring" if key.startswith("fhsq") else "")
            + "); store the score directly"
        )
    check_scores(out, key, where="score_items")
    return float(out[0]) if np.ndim(responses) == 1 else out


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
                    "mcid_source": m.source,
                    "mcid_anchor": m.anchor,
                    "mcid_conditions": ",".join(m.conditions) if m.conditions else "",
                    "conditions": ",".join(inst.conditions),
                }
            )
    return pd.DataFrame(rows)
