"""Opening the store for analysis, and the two helpers every store read goes through.

:func:`open_store` is the one way analysis code and notebooks open the store;
:func:`table` and :func:`read` are how the loaders of :mod:`ionto_analytics.loaders` (the
only analysis code that touches store tables) build and run their queries.

Examples
--------
>>> from data_schemas import store
>>> from sqlalchemy import select
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> read(engine, select(table("clinic").c.clinic_key)).columns.tolist()
['clinic_key']
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Select, Table
from sqlmodel import SQLModel

from data_schemas import store
from data_schemas import tables as _tables  # noqa: F401  (registers the tables)

__all__ = ["naive_dates", "open_store", "read", "read_columns", "table", "utc_times"]


def open_store(url: str | None = None) -> Engine:
    """The store analysis reads: ``url``, else the one :func:`data_schemas.store.resolve_url`
    chooses (``IONTO_DATABASE_URL``, else the project's default store).

    Opened as a reader (:func:`data_schemas.store.connect` with ``create=False``): a SQLite
    file that does not exist is refused, with the command that builds a store, rather than
    silently created empty.

    Examples
    --------
    >>> open_store("sqlite:////no/such/ionto.db")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    data_schemas.errors.StoreError: no store at /no/such/ionto.db: run ...
    """
    return store.connect(url, create=False)


def table(name: str) -> Table:
    """The store table ``name`` (from ``SQLModel.metadata``; quoting handled by SQLAlchemy).

    Examples
    --------
    >>> table("ionto_session").c.session_key.name
    'session_key'
    """
    return SQLModel.metadata.tables[name]


def read(engine: Engine, query: Select, *, driver_rows: bool = False) -> pd.DataFrame:
    """The rows of ``query`` as a DataFrame, one column per selected label.

    ``driver_rows=True`` takes the rows as the driver returns them (plain tuples, no
    SQLAlchemy type processing: dates may be strings, booleans 0/1), which is several times
    faster for large tables whose columns the caller converts anyway.

    Examples
    --------
    >>> from sqlalchemy import select
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> read(engine, select(table("clinic").c.clinic_key)).columns.tolist()
    ['clinic_key']
    """
    with engine.connect() as connection:
        result = connection.execute(query)
        columns = list(result.keys())
        if driver_rows:
            rows = result.cursor.fetchall() if result.cursor is not None else []
            return pd.DataFrame.from_records(rows, columns=columns)
        return pd.DataFrame(result.fetchall(), columns=columns)


def read_columns(engine: Engine, query: Select) -> dict[str, np.ndarray]:
    """The rows of ``query`` as the driver returns them, one object array per selected label.

    No SQLAlchemy type processing and no pandas type inference (dates may be strings or
    date objects, booleans 0/1 or bool): the caller converts each column once. For a
    million rows this is several times faster than a DataFrame built from the row tuples,
    which probes every value and turns text into Arrow strings the frames do not use.

    Examples
    --------
    >>> from sqlalchemy import select
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> read_columns(engine, select(table("clinic").c.clinic_key))["clinic_key"].shape
    (0,)
    """
    with engine.connect() as connection:
        result = connection.execute(query)
        names = list(result.keys())
        rows = result.cursor.fetchall() if result.cursor is not None else []
    matrix = np.array(rows, dtype=object).reshape(len(rows), len(names))
    return {name: matrix[:, j] for j, name in enumerate(names)}


def naive_dates(s: pd.Series) -> pd.Series:
    """Calendar dates (strings or date objects) as naive ``datetime64[ns]``."""
    return pd.to_datetime(s).astype("datetime64[ns]") if len(s) else s.astype("datetime64[ns]")


def utc_times(s: pd.Series) -> pd.Series:
    """Timestamps (strings or datetimes) as ``datetime64[ns, UTC]``."""
    out = pd.to_datetime(s, utc=True)
    return out.astype("datetime64[ns, UTC]")
