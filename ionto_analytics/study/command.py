"""The logic behind ``ionto study run`` and ``ionto study pool``.

:func:`run_study` validates the spec (before the store is opened by the caller or read
here), runs it on one store and writes the checked package; :func:`pool_study` verifies the
packages, pools them and writes the pooled files and page.

Examples
--------
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> run_study(engine, "no/such/study.yaml", "results", site="a")
Traceback (most recent call last):
...
data_schemas.errors.SchemaError: no/such/study.yaml: no such file; ...
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from data_schemas.errors import InputError
from data_schemas.study import StudySpec, load_study
from ionto_analytics.report import code_version, data_snapshot_hash
from ionto_analytics.report.data import load_report_data
from ionto_analytics.study.meta import Tau2Method
from ionto_analytics.study.package import write_package
from ionto_analytics.study.page import write_pooled
from ionto_analytics.study.pool import PooledStudy, pool_packages
from ionto_analytics.study.site import run_site

__all__ = ["pool_study", "run_study"]

SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


def run_study(
    engine: Engine, spec: str | Path | StudySpec, out_dir: str | Path, *, site: str
) -> Path:
    """Run a study spec on one site's store and write its results package.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The site's migrated store.
    spec : path or StudySpec
        ``study.yaml`` (validated first) or a spec already validated.
    out_dir : path
        Folder for the zip (created if missing).
    site : str
        The site's name (letters, digits, ``-`` and ``_``).

    Returns
    -------
    Path
        The package written.
    """
    study = spec if isinstance(spec, StudySpec) else load_study(spec)
    if not SITE_NAME.match(site):
        raise InputError(
            f"site name {site!r} is not usable in a file name; use letters, digits, '-' or "
            "'_' (at most 40), e.g. --site north"
        )
    results = run_site(engine, study, site)
    return write_package(
        results,
        out_dir,
        toolkit=code_version(),
        store_hash=data_snapshot_hash(load_report_data(engine)),
    )


def pool_study(
    packages: Sequence[str | Path],
    out_dir: str | Path,
    *,
    tau2_method: Tau2Method = "pm",
) -> tuple[PooledStudy, dict[str, Path]]:
    """Verify and pool the sites' packages; write ``pooled.json``, ``pooled.csv``,
    ``per_site.csv`` and ``index.html`` into ``out_dir``.

    Returns
    -------
    (PooledStudy, dict)
        The pooled study and the files written.
    """
    pooled = pool_packages(packages, tau2_method=tau2_method)
    return pooled, write_pooled(pooled, out_dir)
