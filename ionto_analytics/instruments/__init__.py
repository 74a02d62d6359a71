"""Registry of the outcome instruments: range, direction, MCID (with source and anchor), scoring.

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

from ionto_analytics.instruments.items import score_items
from ionto_analytics.instruments.registry import REGISTRY, Instrument, Mcid, registry_frame
from ionto_analytics.instruments.scores import (
    check_scores,
    get_instrument,
    improvement,
    select_mcid,
    to_improvement,
)

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
