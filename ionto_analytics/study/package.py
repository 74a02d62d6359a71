"""The results package a site sends: a zip of CSV + JSON with a manifest, checked before it is
written and verified when it is read.

``manifest.json`` holds the package format, the study's name, version and spec SHA-256, the
site, the toolkit version and commit, the store's data hash, the time (UTC), the small-cell
threshold and the SHA-256 of every other file. :func:`check_tables` scans every table
before anything is written and refuses the package when a count-like column holds a value
from 1 to threshold − 1, or a column names a person or an episode; :func:`read_package`
refuses a package whose files do not match the manifest.

Examples
--------
>>> check_tables({"contrasts": pd.DataFrame({"n_first": [40.0, 5.0]})}, 11)
Traceback (most recent call last):
...
data_schemas.errors.SchemaError: results package refused: contrasts.n_first row 1 holds 5 ...
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_schemas.errors import SchemaError
from ionto_analytics.jsonable import jsonable
from ionto_analytics.study.site import TABLES, SiteResults

__all__ = [
    "FORMAT_VERSION",
    "SUPPORTED_FORMATS",
    "TABLES",
    "Package",
    "check_tables",
    "read_package",
    "write_package",
]

FORMAT_VERSION = "2"
SUPPORTED_FORMATS = ("2",)
"""Format 2 added the E-values and ``change_sd`` to ``contrasts.csv``; a format-1 package
cannot give the pooled estimate its E-value and is refused."""
COUNT_NAMES = ("n", "count", "missing", "excluded", "events", "group_n")
IDENTIFYING = ("patient_id", "episode_id", "pseudonym", "visit_id", "session_id", "mrn")


def _count_like(column: str) -> bool:
    return column in COUNT_NAMES or column.startswith("n_")


def check_tables(tables: dict[str, pd.DataFrame], threshold: int) -> None:
    """Refuse tables that could reveal a person: every problem in every table, at once.

    A count-like column (``n``, ``n_*``, ``count``, ``missing``, ``excluded``, ``events``,
    ``group_n``), and ``value`` where a table flags the row ``is_count`` (the sufficient
    statistics), may hold 0, ≥ ``threshold`` or nothing (suppressed); no column may be an
    identifier (``patient_id``, ``episode_id``, ``pseudonym``, ...).

    Examples
    --------
    >>> check_tables({"t": pd.DataFrame({"n": [0, 11, np.nan]})}, 11) is None
    True
    """
    problems = []
    for name, t in tables.items():
        for col in map(str, t.columns):
            if col in IDENTIFYING or col.endswith("_pseudonym"):
                problems.append(f"{name}.{col} is an identifier column")
            if not _count_like(col):
                continue
            v = pd.to_numeric(t[col], errors="coerce").to_numpy(dtype=float)
            for i in np.flatnonzero((v >= 1) & (v < threshold)):
                problems.append(f"{name}.{col} row {i} holds {v[i]:g}")
        if {"is_count", "value"} <= set(t.columns):
            v = pd.to_numeric(t["value"], errors="coerce").to_numpy(dtype=float)
            flagged = t["is_count"].astype(str).str.lower().eq("true").to_numpy()
            for i in np.flatnonzero(flagged & (v >= 1) & (v < threshold)):
                problems.append(f"{name}.value row {i} holds the count {v[i]:g}")
    if problems:
        raise SchemaError(
            "results package refused: "
            + "; ".join(problems)
            + f" (counts of 1 to {threshold - 1} and identifiers never leave a site); "
            "this is a bug in the study run: report it, do not edit the package"
        )


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_package(
    results: SiteResults,
    out_dir: str | Path,
    *,
    toolkit: str,
    store_hash: str,
    now: dt.datetime | None = None,
) -> Path:
    """Check the tables and write ``<study>_<version>_<site>.zip`` into ``out_dir``.

    Parameters
    ----------
    results : SiteResults
    out_dir : path
        Created if missing.
    toolkit : str
        Toolkit version and commit (:func:`ionto_analytics.report.code_version`).
    store_hash : str
        The store's data hash (:func:`ionto_analytics.report.data_snapshot_hash`).
    now : datetime, optional
        The time recorded (default: now, UTC).

    Returns
    -------
    Path
        The zip written.
    """
    spec = results.spec
    check_tables(results.tables, spec.threshold)
    files: dict[str, bytes] = {
        f"{k}.csv": results.tables[k].to_csv(index=False).encode("utf-8") for k in TABLES
    }
    files["results.json"] = json.dumps(
        jsonable({k: results.tables[k] for k in TABLES}), indent=1
    ).encode("utf-8")
    manifest = {
        "format_version": FORMAT_VERSION,
        "study": spec.name,
        "study_version": spec.version,
        "spec_sha256": spec.sha256,
        "site": results.site,
        "arms": list(spec.arms),
        "small_cell_threshold": spec.threshold,
        "toolkit": toolkit,
        "store_data_hash": store_hash,
        "created_utc": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "files": {name: _sha(data) for name, data in files.items()},
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{spec.name}_{spec.version}_{results.site}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("manifest.json", json.dumps(manifest, indent=1))
        for name, data in files.items():
            z.writestr(name, data)
    return path


@dataclass(frozen=True, eq=False)
class Package:
    """A verified results package: its manifest and its tables."""

    path: Path
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]

    @property
    def site(self) -> str:
        """The site that wrote it."""
        return str(self.manifest["site"])


def read_package(path: str | Path) -> Package:
    """Read a results package and verify it against its manifest.

    Raises
    ------
    SchemaError
        Not a zip, no manifest, an unsupported format, a file missing, unlisted or whose
        SHA-256 differs from the manifest (tampered or damaged in transit).
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as z:
            contents = {n: z.read(n) for n in z.namelist()}
    except (OSError, zipfile.BadZipFile) as error:
        raise SchemaError(f"{p}: not a readable results package ({error})") from None
    if "manifest.json" not in contents:
        raise SchemaError(f"{p}: no manifest.json; expected a package from `ionto study run`")
    manifest = json.loads(contents.pop("manifest.json"))
    fmt = str(manifest.get("format_version"))
    if fmt not in SUPPORTED_FORMATS:
        raise SchemaError(
            f"{p}: package format {fmt!r} is not supported (supported: "
            f"{', '.join(SUPPORTED_FORMATS)}); run the site with a matching toolkit"
        )
    listed = manifest.get("files", {})
    problems = [f"{n} is missing" for n in listed if n not in contents]
    problems += [f"{n} is not in the manifest" for n in contents if n not in listed]
    problems += [
        f"{n} does not match its SHA-256 in the manifest"
        for n, data in contents.items()
        if n in listed and _sha(data) != listed[n]
    ]
    if problems:
        raise SchemaError(
            f"{p}: {'; '.join(problems)}; the package was altered or damaged after it was "
            "written: ask the site to send it again"
        )
    tables = {k: pd.read_csv(io.BytesIO(contents[f"{k}.csv"])) for k in TABLES}
    return Package(path=p, manifest=manifest, tables=tables)
