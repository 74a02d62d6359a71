"""The coordinator's side: verify the sites' packages and pool every contrast.

:func:`pool_packages` reads every package (each verified against its manifest by
:func:`~ionto_analytics.study.package.read_package`), refuses a set that was not made from
one and the same spec file (SHA-256, name and version listed per site) or that names a site
twice, then meta-analyses each contrast over the sites whose status is ``ok``
(:func:`~ionto_analytics.study.meta.meta_analysis`). A site whose contrast is not ``ok``
(an empty arm, an arm under the threshold, a model that could not be fitted) is listed in
``not_pooled`` with its status and left out of that contrast only.

Each pooled estimate carries its E-values (``fixed_e_value``, ``fixed_e_value_ci``,
``random_e_value``, ``random_e_value_ci``: the estimate and the CI limit nearest the null,
:func:`~ionto_analytics.compare.evalue.e_value_difference`), standardized by ``change_sd``,
the pooled sites' SDs of the change combined as ``√(Σ dfᵢ sdᵢ² / Σ dfᵢ)`` with
``dfᵢ = n_firstᵢ + n_secondᵢ − 2`` (the within-arm SD of the pooled rows when the sites share
one SD; equal weights when a site's arm count was suppressed).

Examples
--------
>>> pool_packages([])
Traceback (most recent call last):
...
data_schemas.errors.InputError: no results package given; ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_schemas.errors import InputError, SchemaError
from ionto_analytics.compare.evalue import e_value_difference
from ionto_analytics.jsonable import jsonable
from ionto_analytics.study.meta import Tau2Method, meta_analysis
from ionto_analytics.study.package import Package, read_package
from ionto_analytics.study.sufficient import from_table, pooled_ancova

__all__ = ["PooledStudy", "check_same_study", "pool_packages"]

SITE_COLUMNS = (
    "contrast",
    "site",
    "status",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "e_value",
    "e_value_ci",
    "change_sd",
    "n_first",
    "n_second",
)


@dataclass(frozen=True, eq=False)
class PooledStudy:
    """The pooled results of one study.

    Attributes
    ----------
    study : dict
        Name, version, spec SHA-256, arms and threshold (from the manifests).
    sites : DataFrame
        One row per site: ``site``, ``toolkit``, ``store_data_hash``, ``created_utc``.
    per_site : DataFrame
        Every site's row of every contrast (:data:`SITE_COLUMNS`).
    pooled : DataFrame
        One row per contrast: the columns of :func:`meta_analysis` (weights aside), the
        pooled ``change_sd`` and the E-values of both pooled estimates and,
        for ANCOVA contrasts whose pooled sites all sent their sufficient statistics, the
        exact pooled ANCOVA (``exact_estimate``, ``exact_se``, ``exact_ci_low``,
        ``exact_ci_high``; site intercepts, classical variance).
    not_pooled : DataFrame
        ``contrast``, ``site``, ``status`` of the site rows left out.
    attrition : DataFrame
        Every site's attrition rows (``contrast``, ``site``, ``step``, ``n``).
    """

    study: dict[str, Any]
    sites: pd.DataFrame
    per_site: pd.DataFrame
    pooled: pd.DataFrame
    not_pooled: pd.DataFrame
    attrition: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict of every part."""
        return jsonable(
            {
                "study": self.study,
                "sites": self.sites,
                "pooled": self.pooled,
                "per_site": self.per_site,
                "not_pooled": self.not_pooled,
            }
        )


def _exact(packages: Sequence[Package], contrast: str, sites: list[str]) -> dict[str, Any]:
    """The exact pooled ANCOVA when every pooled site sent its sufficient statistics (NaN
    otherwise: another estimator, or a site withheld them)."""
    tables = [
        p.tables["sufficient"][p.tables["sufficient"]["contrast"].eq(contrast)]
        for p in packages
        if p.site in sites
    ]
    keys = ("estimate", "se", "ci_low", "ci_high")
    if not tables or any(t.empty for t in tables):
        return {f"exact_{k}": float("nan") for k in keys}
    e = pooled_ancova([from_table(t) for t in tables])
    return {f"exact_{k}": e[k] for k in keys}


def _e_values(d: pd.DataFrame, m: dict[str, Any]) -> dict[str, float]:
    """The pooled estimates' E-values and the pooled ``change_sd`` (module docstring)."""
    sd = d["change_sd"].to_numpy(float)
    df = (d["n_first"] + d["n_second"] - 2).to_numpy(float)
    if not np.isfinite(df).all():
        df = np.ones_like(sd)
    out = {"change_sd": float(np.sqrt(np.sum(df * sd**2) / np.sum(df)))}
    for method in ("fixed", "random"):
        e, e_ci = e_value_difference(
            m[f"{method}_estimate"],
            m[f"{method}_ci_low"],
            m[f"{method}_ci_high"],
            out["change_sd"],
        )
        out[f"{method}_e_value"], out[f"{method}_e_value_ci"] = e, e_ci
    return out


def check_same_study(packages: Sequence[Package]) -> None:
    """Refuse packages made from different spec files, or two packages of one site.

    Examples
    --------
    >>> check_same_study([]) is None
    True
    """
    specs = {
        (p.manifest["spec_sha256"], p.manifest["study"], p.manifest["study_version"])
        for p in packages
    }
    if len(specs) > 1:
        listed = "; ".join(
            f"{p.site}: {p.manifest['study']} version {p.manifest['study_version']} "
            f"(spec {p.manifest['spec_sha256'][:12]})"
            for p in packages
        )
        raise SchemaError(
            f"the packages come from {len(specs)} different study specs "
            f"({listed}); pool only packages run from the same study.yaml"
        )
    seen: dict[str, Path] = {}
    for p in packages:
        if p.site in seen:
            raise SchemaError(
                f"site {p.site!r} sent two packages ({seen[p.site]} and {p.path}); keep one"
            )
        seen[p.site] = p.path


def pool_packages(paths: Sequence[str | Path], *, tau2_method: Tau2Method = "pm") -> PooledStudy:
    """Verify the packages and pool every contrast (see the module docstring).

    Parameters
    ----------
    paths : sequence of path
        The sites' zips.
    tau2_method : {"pm", "dl", "reml"}
        Paule–Mandel (default), DerSimonian–Laird or REML τ².

    Returns
    -------
    PooledStudy
    """
    if not paths:
        raise InputError("no results package given; pass the sites' zips")
    packages = [read_package(p) for p in paths]
    check_same_study(packages)
    m0 = packages[0].manifest
    study = {
        k: m0[k] for k in ("study", "study_version", "spec_sha256", "arms", "small_cell_threshold")
    }
    sites = pd.DataFrame(
        [
            {k: p.manifest[k] for k in ("site", "toolkit", "store_data_hash", "created_utc")}
            for p in packages
        ]
    )
    per_site = pd.concat(
        [p.tables["contrasts"].assign(site=p.site) for p in packages], ignore_index=True
    )[list(SITE_COLUMNS)]
    attrition = pd.concat(
        [p.tables["attrition"].assign(site=p.site) for p in packages], ignore_index=True
    )[["contrast", "site", "step", "n"]]
    ok = per_site["status"].eq("ok")
    rows = []
    for contrast in dict.fromkeys(per_site["contrast"]):
        d = per_site[ok & per_site["contrast"].eq(contrast)]
        row: dict[str, Any] = {"contrast": contrast}
        if len(d):
            m = meta_analysis(d["estimate"], d["se"], list(d["site"]), tau2_method=tau2_method)
            row.update({k: v for k, v in m.items() if not k.startswith("weights")})
            row.update(_e_values(d, m))
            row.update(_exact(packages, contrast, list(d["site"])))
        else:
            row["sites"] = 0
        rows.append(row)
    return PooledStudy(
        study=study,
        sites=sites,
        per_site=per_site,
        pooled=pd.DataFrame(rows),
        not_pooled=per_site.loc[~ok, ["contrast", "site", "status"]].reset_index(drop=True),
        attrition=attrition,
    )
