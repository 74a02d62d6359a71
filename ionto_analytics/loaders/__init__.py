"""Reading the store for analysis: the only analysis code that touches store tables.

* :mod:`~ionto_analytics.loaders.access` – :func:`open_store` (the one way analysis code and
  notebooks open the store), :func:`table` and :func:`read`;
* :mod:`~ionto_analytics.loaders.frames` – the four validated analysis frames
  (:func:`load_episodes`, :func:`load_outcomes`, :func:`load_sessions`,
  :func:`load_interventions`) and :func:`load` for all four;
* :mod:`~ionto_analytics.loaders.devices` – device-quality columns and session samples;
* :mod:`~ionto_analytics.loaders.report` – the other tables the quarterly report reads.

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> sorted(load(engine))
['episode', 'intervention', 'outcome', 'session']
"""

from __future__ import annotations

from ionto_analytics.loaders.access import naive_dates, open_store, read, table, utc_times
from ionto_analytics.loaders.devices import (
    StoredTrace,
    load_session_details,
    load_session_samples,
)
from ionto_analytics.loaders.frames import (
    load,
    load_episodes,
    load_interventions,
    load_outcomes,
    load_sessions,
)
from ionto_analytics.loaders.report import last_visit_date, load_ledger, load_report_tables

__all__ = [
    "StoredTrace",
    "last_visit_date",
    "load",
    "load_episodes",
    "load_interventions",
    "load_ledger",
    "load_outcomes",
    "load_report_tables",
    "load_session_details",
    "load_session_samples",
    "load_sessions",
    "naive_dates",
    "open_store",
    "read",
    "table",
    "utc_times",
]
