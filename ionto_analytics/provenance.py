"""Where a result came from: the code's version and the imported data it was computed on.

:func:`code_version` is the ``ionto-analytics`` version (plus the git commit in a checkout);
:func:`ledger_sha256` identifies the imported data by the store's import ledger. The
quarterly report and ``ionto compare --json`` both print them.

Examples
--------
>>> import pandas as pd
>>> ledger = pd.DataFrame({"sha256": ["ab", "cd"], "status": "imported", "row_count": [3, 4]})
>>> ledger_sha256(ledger) == ledger_sha256(ledger.iloc[::-1])
True
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
from pathlib import Path

import pandas as pd

__all__ = ["code_version", "hash_ledger", "ledger_sha256"]


def code_version() -> str:
    """``ionto-analytics`` version, plus the git commit when run from a checkout.

    Examples
    --------
    >>> code_version().startswith(importlib.metadata.version("ionto-analytics"))
    True
    """
    version = importlib.metadata.version("ionto-analytics")
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return version
    commit = done.stdout.strip()
    return f"{version} (git {commit})" if done.returncode == 0 and commit else version


def ledger_sha256(ledger: pd.DataFrame) -> str:
    """SHA-256 over the import ledger: each file's hash, status and row count, sorted.

    The same imported files give the same hash on any backend and in any order; importing,
    re-importing a corrected file or quarantining one changes it.

    Parameters
    ----------
    ledger : DataFrame
        ``sha256``, ``status`` and ``row_count`` per imported file
        (:func:`ionto_analytics.loaders.load_ledger`).

    Examples
    --------
    >>> empty = pd.DataFrame({"sha256": [], "status": [], "row_count": []})
    >>> ledger_sha256(empty) == hashlib.sha256().hexdigest()
    True
    """
    return hash_ledger(hashlib.sha256(), ledger).hexdigest()


def hash_ledger(h: hashlib._Hash, ledger: pd.DataFrame) -> hashlib._Hash:
    """Feed the ledger into ``h``: one line per file (hash, status, rows), sorted; returns ``h``.

    Examples
    --------
    >>> one = pd.DataFrame({"sha256": ["ab"], "status": ["imported"], "row_count": [3]})
    >>> hash_ledger(hashlib.sha256(), one).hexdigest() == ledger_sha256(one)
    True
    """
    for sha, status, rows in sorted(
        zip(ledger["sha256"], ledger["status"], ledger["row_count"], strict=True)
    ):
        h.update(f"{sha}\t{status}\t{int(rows)}\n".encode())
    return h
