"""Look-ups and checks on scores: the instrument, its MCID, range checks and direction.

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
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.instruments.registry import REGISTRY, Instrument, Mcid

__all__ = ["check_scores", "get_instrument", "improvement", "select_mcid", "to_improvement"]


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


def _week_note(m: Mcid, week: float | None) -> str:
    if m.validated_weeks is None:
        return ""
    lo, hi = m.validated_weeks
    if week is None:
        return f"{m.validated_text()}, applied without a follow-up week"
    return "" if lo <= week <= hi else f"{m.validated_text()}, applied at week {week:g}"


def _condition_note(m: Mcid, condition: str | None) -> str:
    if m.conditions is None or condition in m.conditions:
        return ""
    applied = f"applied to {condition}" if condition else "applied without a condition"
    return f"derived in {', '.join(m.conditions)}, {applied}"


def select_mcid(
    instrument: str,
    condition: str | None = None,
    week: float | None = None,
    source: str | None = None,
    *,
    allow_unverified: bool = False,
) -> Mcid:
    """Choose the MCID for an instrument, condition and follow-up week, saying how it fits.

    The first MCID in the registry whose condition and week apply is returned, so a
    condition- or time-specific value wins over the general one; when none applies, the
    instrument's default (its last MCID) is. ``source`` picks a specific tag (``"[S23]"``)
    instead. The returned MCID's ``note`` says when it is applied outside what it was
    derived for: another follow-up week than it was validated at, another condition, or
    an unverified source; it is "" when the MCID fits.

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
    allow_unverified : bool
        Use an MCID whose source DOMAIN.md marks unverified without a warning (the
        ``note`` still says so).

    Returns
    -------
    Mcid
        The registry's MCID, with ``note`` set.

    Raises
    ------
    InputError
        Unknown instrument, or no MCID with ``source``.

    Warns
    -----
    StatisticalWarning
        The MCID's source is unverified and ``allow_unverified`` is False: responders
        called with it are not evidence.

    Examples
    --------
    >>> select_mcid("visa_a", week=12).points, select_mcid("visa_a", week=24).points
    (14.0, 7.0)
    >>> select_mcid("visa_a", week=6).note
    'validated at 12 weeks, applied at week 6'
    >>> select_mcid("vas", condition="achilles_tendinopathy").note
    'derived in lateral_epicondylitis, medial_epicondylitis, applied to achilles_tendinopathy'
    >>> select_mcid("grip_pain_free_kg", allow_unverified=True).note
    'unverified source [S25]: find the primary study before calling responders with it'
    """
    inst = get_instrument(instrument)
    candidates = [m for m in inst.mcids if source is None or m.source == source]
    if not candidates:
        tags = sorted({m.source for m in inst.mcids})
        raise InputError(f"no MCID for {instrument!r} with source {source!r}; available: {tags}")
    chosen = next((m for m in candidates if m.applies(condition, week)), candidates[-1])
    notes = [_week_note(chosen, week), _condition_note(chosen, condition)]
    if not chosen.verified:
        unverified = (
            f"unverified source {chosen.source}: find the primary study before calling "
            "responders with it"
        )
        notes.append(unverified)
        if not allow_unverified:
            warnings.warn(
                f"{instrument} MCID {chosen.points:g} {inst.unit} ({chosen.anchor}) has an "
                f"{unverified}; pass allow_unverified=True to use it knowingly",
                StatisticalWarning,
                stacklevel=2,
            )
    return replace(chosen, note="; ".join(n for n in notes if n))


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
