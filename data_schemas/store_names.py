"""The names every stage uses for the store, importable without SQLAlchemy.

The command line prints them in ``ionto --help``, which must not pay for importing the
database layer; :mod:`data_schemas.store` uses the same names.

Examples
--------
>>> ENV_VAR, DEFAULT_SQLITE_FILE
('IONTO_DATABASE_URL', 'ionto.db')
"""

from __future__ import annotations

__all__ = ["DEFAULT_SQLITE_FILE", "ENV_VAR", "SUPPORTED_URLS"]

ENV_VAR = "IONTO_DATABASE_URL"
"""The environment variable that names the store when ``--db`` is not given."""
DEFAULT_SQLITE_FILE = "ionto.db"
"""The demo store, a SQLite file in the working directory."""
SUPPORTED_URLS = "sqlite:///path/to/file.db or postgresql://user@host/database"
"""The store URLs that work, as error messages and ``--help`` name them."""
