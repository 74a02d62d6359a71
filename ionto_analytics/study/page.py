"""The pooled study as files: JSON, CSV and one self-contained HTML page.

The page has, per contrast, a forest plot (one row per pooled site with its 95% CI, the
fixed-effect and random-effects diamonds, the prediction interval as a line), the
heterogeneity (τ², I², Q), the E-values of the pooled estimates, the exact pooled ANCOVA
where the sites sent their sufficient statistics, the sites left out and why, and every
site's attrition. plotly.js is inlined once
(:func:`ionto_analytics.report.render.plotly_js`), so the page opens offline like the
quarterly report.

Examples
--------
>>> import pandas as pd
>>> row = {"contrast": "c", "sites": 1, "fixed_estimate": 1.0, "fixed_ci_low": 0.0,
...        "fixed_ci_high": 2.0, "random_estimate": 1.0, "random_ci_low": 0.0,
...        "random_ci_high": 2.0, "pi_low": float("nan"), "pi_high": float("nan")}
>>> sites = pd.DataFrame({"contrast": ["c"], "site": ["a"], "status": ["ok"], "estimate": [1.0],
...                       "ci_low": [0.0], "ci_high": [2.0]})
>>> len(forest_figure(row, sites).data)
3
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ionto_analytics.report.render import figure_html, plotly_js
from ionto_analytics.study.pool import PooledStudy

__all__ = ["forest_figure", "render_page", "write_pooled"]


def _diamond(est: float, lo: float, hi: float, y: float, name: str, color: str) -> go.Scatter:
    return go.Scatter(
        x=[lo, est, hi, est, lo],
        y=[y, y + 0.3, y, y - 0.3, y],
        fill="toself",
        mode="lines",
        line={"color": color},
        name=name,
        hovertemplate=f"{name}: {est:.2f} [{lo:.2f}, {hi:.2f}]<extra></extra>",
    )


def forest_figure(pooled_row: Mapping[str, Any], per_site: pd.DataFrame) -> go.Figure:
    """Forest plot of one contrast: the pooled sites, then the two pooled diamonds.

    Parameters
    ----------
    pooled_row : mapping
        One row of :attr:`PooledStudy.pooled`.
    per_site : DataFrame
        The contrast's site rows with ``status == "ok"``.
    """
    d = per_site[per_site["status"].eq("ok")]
    k = len(d)
    ys = list(range(k + 1, 1, -1))
    est = d["estimate"].to_numpy(float)
    fig = go.Figure(
        go.Scatter(
            x=est,
            y=ys,
            mode="markers",
            marker={"symbol": "square", "size": 10},
            name="sites",
            text=list(d["site"]),
            error_x={
                "type": "data",
                "symmetric": False,
                "array": d["ci_high"].to_numpy(float) - est,
                "arrayminus": est - d["ci_low"].to_numpy(float),
            },
            hovertemplate="%{text}: %{x:.2f}<extra></extra>",
        )
    )
    r = pooled_row
    fig.add_trace(
        _diamond(
            r["fixed_estimate"],
            r["fixed_ci_low"],
            r["fixed_ci_high"],
            1.0,
            "fixed effect",
            "#555555",
        )
    )
    fig.add_trace(
        _diamond(
            r["random_estimate"],
            r["random_ci_low"],
            r["random_ci_high"],
            0.0,
            "random effects",
            "#c0392b",
        )
    )
    if np.isfinite(r.get("pi_low", np.nan)):
        fig.add_trace(
            go.Scatter(
                x=[r["pi_low"], r["pi_high"]],
                y=[-0.6, -0.6],
                mode="lines",
                line={"color": "#c0392b", "dash": "dot"},
                name="95% prediction interval",
            )
        )
    fig.add_vline(x=0.0, line_dash="dash")
    fig.update_layout(
        title=str(r["contrast"]),
        height=220 + 40 * k,
        xaxis_title="difference in mean change from baseline (first arm − second)",
        yaxis={
            "tickvals": [*ys, 1.0, 0.0],
            "ticktext": [*map(str, d["site"]), "fixed effect", "random effects"],
        },
    )
    return fig


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="suppressed / n.a.", float_format=lambda v: f"{v:.3f}")


def render_page(pooled: PooledStudy) -> str:
    """The pooled study as one HTML document (plotly.js inlined once)."""
    s = pooled.study
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(s['study'])} {html.escape(s['study_version'])}</title>",
        f"<script>{plotly_js()}</script></head><body>",
        f"<h1>Network study {html.escape(s['study'])}, version {html.escape(s['study_version'])}"
        "</h1>",
        f"<p>Estimate: difference in mean change from baseline, {html.escape(s['arms'][0])} − "
        f"{html.escape(s['arms'][1])}. Spec SHA-256 {html.escape(s['spec_sha256'])}. Counts "
        f"of 1 to {int(s['small_cell_threshold']) - 1} never left a site.</p>",
        "<h2>Sites</h2>",
        _table(pooled.sites),
    ]
    for i, row in pooled.pooled.iterrows():
        c = row["contrast"]
        sites = pooled.per_site[pooled.per_site["contrast"].eq(c)]
        parts.append(f"<h2>{html.escape(str(c))}</h2>")
        if row["sites"]:
            parts.append(figure_html(forest_figure(row, sites), f"forest-{i}"))
            het = (
                row[["sites", "tau2", "tau2_method", "i2", "q", "q_p_value", "pi_low", "pi_high"]]
                .to_frame()
                .T
            )
            parts += ["<h3>Heterogeneity</h3>", _table(het)]
            parts.append(
                "<p>E-value (sensitivity to unmeasured confounding, on the risk-ratio scale): "
                f"random effects {row['random_e_value']:.2f} (CI limit nearest the null "
                f"{row['random_e_value_ci']:.2f}), fixed effect {row['fixed_e_value']:.2f} "
                f"({row['fixed_e_value_ci']:.2f}); SD of the change {row['change_sd']:.2f}.</p>"
            )
            if np.isfinite(row.get("exact_estimate", np.nan)):
                parts.append(
                    "<p>Exact pooled ANCOVA from the sites' sufficient statistics (site "
                    f"intercepts, classical variance): {row['exact_estimate']:.2f} "
                    f"[{row['exact_ci_low']:.2f}, {row['exact_ci_high']:.2f}].</p>"
                )
        else:
            parts.append("<p>No site could estimate this contrast.</p>")
        left = pooled.not_pooled[pooled.not_pooled["contrast"].eq(c)]
        if len(left):
            parts += ["<h3>Sites not pooled</h3>", _table(left)]
        att = pooled.attrition[pooled.attrition["contrast"].eq(c)].pivot(
            index="step", columns="site", values="n"
        )
        parts += [
            "<h3>Attrition per site</h3>",
            att.reset_index().to_html(index=False, na_rep="<11", float_format="{:,.0f}".format),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_pooled(pooled: PooledStudy, out_dir: str | Path) -> dict[str, Path]:
    """Write ``pooled.json``, ``pooled.csv``, ``per_site.csv`` and ``index.html``.

    Returns
    -------
    dict
        Kind → path written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "pooled.json",
        "csv": out / "pooled.csv",
        "per_site": out / "per_site.csv",
        "html": out / "index.html",
    }
    paths["json"].write_text(json.dumps(pooled.to_dict(), indent=1), encoding="utf-8")
    pooled.pooled.to_csv(paths["csv"], index=False)
    pooled.per_site.to_csv(paths["per_site"], index=False)
    paths["html"].write_text(render_page(pooled), encoding="utf-8")
    return paths
