"""The outcome instruments: what a score means, how it is checked and how it is scored.

* :mod:`~ionto_analytics.instruments.registry` – each instrument's range, direction, MCIDs
  (with source, anchor and the weeks they were validated for) and conditions;
* :mod:`~ionto_analytics.instruments.scores` – look-ups (:func:`get_instrument`,
  :func:`select_mcid`), range checks and the direction of improvement;
* :mod:`~ionto_analytics.instruments.items` – scoring from item responses.

Examples
--------
>>> get_instrument("lefs").range
(0.0, 80.0)
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
