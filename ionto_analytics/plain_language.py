"""Plain-language text of the explorer: a condition, an MCID and the responder reading in words.

The reading never gives away a small count: a count of 1 to 10 is said as "fewer than 11"
(:mod:`ionto_analytics.suppression`).

Examples
--------
>>> condition_text("plantar_fasciitis")
'plantar fasciitis'
"""

from __future__ import annotations

import pandas as pd

from data_schemas.vocabulary import conditions_in
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument, select_mcid
from ionto_analytics.plots import instrument_short_name
from ionto_analytics.suppression import THRESHOLD, is_small

__all__ = ["ALL", "condition_text", "mcid_text", "reading"]

ALL = "all"
"""Value of a filter that keeps everything (and label of the all-arms row)."""


def mcid_text(instrument: str, condition: str | None = None, week: int | None = None) -> str:
    """The MCID in words, as used for the condition(s) and week.

    Examples
    --------
    >>> mcid_text("prtee", "lateral_epicondylitis", 6)
    '14.8 points on PRTEE'
    >>> mcid_text("visa_a", week=12)
    '14 points on VISA-A'
    """
    name = instrument_short_name(instrument)
    unit = get_instrument(instrument).unit
    conds = [None] if condition in (None, ALL) else list(conditions_in(str(condition)))
    ms = {select_mcid(instrument, condition=c, week=week) for c in conds}
    texts = []
    for m in sorted(ms, key=lambda m: m.points):
        if m.transition:
            texts.append(f"a rating of at least {m.points:g} on {name}")
        elif m.percent is not None:
            texts.append(
                f"{m.points:g} {unit} or {100 * m.percent:g} % of the baseline score on {name}"
            )
        else:
            texts.append(f"{m.points:g} {unit} on {name}")
    return texts[0] if len(texts) == 1 else "the condition's MCID (" + "; ".join(texts) + ")"


def condition_text(condition: str | None) -> str:
    """A condition or family key in words.

    Examples
    --------
    >>> condition_text("lateral_epicondylitis"), condition_text(None)
    ('lateral epicondylitis', 'any condition')
    """
    if condition in (None, ALL):
        return "any condition"
    return str(condition).replace("_", " ")


def reading(
    rates: pd.DataFrame,
    *,
    instrument: str,
    week: int,
    condition: str | None = None,
    clinic: str | None = None,
    by: str = "arm",
) -> str:
    """The plain-language reading of the overall responder rate (the ``"all"`` row).

    Examples
    --------
    >>> import pandas as pd
    >>> r = pd.DataFrame({"arm": ["all"], "n": [84], "responders": [44],
    ...                   "proportion": [44 / 84], "ci_low": [0.42], "ci_high": [0.63],
    ...                   "suppressed": [False]})
    >>> text = reading(r, instrument="prtee", week=6, condition="lateral_epicondylitis")
    >>> print(text)  # doctest: +ELLIPSIS
    Of 84 patients with lateral epicondylitis, 52 % improved ... at week 6 (95 % CI 42–63 %).
    >>> "(14.8 points on PRTEE)" in text
    True
    """
    row = rates[rates[by] == ALL]
    if row.empty:
        raise InputError("reading: the rates have no 'all' row (use responder_rates)")
    r = row.iloc[0]
    n, x = int(r["n"]), int(r["responders"])
    who = "patients" if condition in (None, ALL) else f"patients with {condition_text(condition)}"
    where = "" if clinic in (None, ALL) else f" at {clinic}"
    mcid = mcid_text(instrument, condition, week)
    if n == 0:
        return (
            f"No {who}{where} have a {instrument_short_name(instrument)} score at baseline and "
            f"at week {week}; widen the filters or choose another instrument."
        )
    if is_small(n):
        return (
            f"Fewer than {THRESHOLD} {who}{where} have a baseline and a week-{week} "
            f"{instrument_short_name(instrument)} score: results for so few patients are not "
            "shown (privacy). Widen the filters."
        )
    if is_small(x):
        share = f"fewer than {THRESHOLD}"
        return (
            f"Of {n:,} {who}{where}, {share} improved by at least the MCID ({mcid}) at week {week}."
        )
    if is_small(n - x):
        return (
            f"Of {n:,} {who}{where}, all but fewer than {THRESHOLD} improved by at least the "
            f"MCID ({mcid}) at week {week}."
        )
    return (
        f"Of {n:,} {who}{where}, {100 * x / n:.0f} % improved by at least the MCID ({mcid}) "
        f"at week {week} (95 % CI {100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f} %)."
    )
