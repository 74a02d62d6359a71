"""Table 1: baseline characteristics by arm, with standardized mean differences (SMD).

SMD formulas (Austin 2009; Yang & Dalton 2012), first group minus second:

* continuous: ``(m1 − m2) / sqrt((s1² + s2²) / 2)``;
* binary: ``(p1 − p2) / sqrt((p1(1 − p1) + p2(1 − p2)) / 2)``, p = proportion in the
  second level in sorted order (``male`` for female/male);
* categorical with k levels: ``sqrt((T − C)ᵀ S⁻¹ (T − C))`` over levels 2..k, with
  ``S = (S1 + S2) / 2``, ``S_jj = p_j(1 − p_j)``, ``S_jl = −p_j p_l`` (non-negative; a
  pseudo-inverse is used when S is singular);
* with more than two groups the SMD column holds the largest absolute pairwise SMD.

Weighted statistics use normalized weights: weighted mean ``Σwx / Σw`` and the
"reliability-weights" variance ``Σw(x − m)² / (Σw − Σw² / Σw)`` (equal to the usual
``ddof = 1`` variance when all weights are 1), weighted proportions ``Σw·1[x = level] / Σw``.

Examples
--------
>>> import pandas as pd
>>> ep = pd.DataFrame({"arm": ["a", "a", "b", "b"], "age_years": [40.0, 50.0, 50.0, 60.0],
...                    "sex": ["female", "male", "male", "male"]})
>>> t = table1(ep, by="arm", variables=["age_years", "sex"])
>>> t.smd.set_index("variable")["smd"].round(4).to_dict()
{'age_years': -1.4142, 'sex': -1.4142}
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ionto_analytics.errors import InputError
from ionto_analytics.jsonable import jsonable

__all__ = [
    "Table1",
    "smd_binary",
    "smd_categorical",
    "smd_continuous",
    "table1",
    "weighted_mean_var",
]

DEFAULT_VARIABLES: tuple[str, ...] = (
    "age_years",
    "sex",
    "symptom_duration_weeks",
    "n_visits",
    "condition",
    "clinic_id",
    "baseline",
)


def weighted_mean_var(x: np.ndarray, w: np.ndarray | None = None) -> tuple[float, float]:
    """Weighted mean and reliability-weights variance (``ddof = 1`` when unweighted).

    Examples
    --------
    >>> weighted_mean_var(np.array([1.0, 2.0, 3.0]))
    (2.0, 1.0)
    """
    x = np.asarray(x, dtype=float)
    w = np.ones_like(x) if w is None else np.asarray(w, dtype=float)
    v1 = w.sum()
    if v1 <= 0 or len(x) == 0:
        return float("nan"), float("nan")
    m = float(np.sum(w * x) / v1)
    denom = v1 - np.sum(w**2) / v1
    var = float(np.sum(w * (x - m) ** 2) / denom) if denom > 0 else float("nan")
    return m, var


def smd_continuous(m1: float, v1: float, m2: float, v2: float) -> float:
    """``(m1 − m2) / sqrt((v1 + v2) / 2)`` (NaN when both variances are 0).

    Examples
    --------
    >>> smd_continuous(1.0, 1.0, 0.0, 1.0)
    1.0
    """
    pooled = np.sqrt((v1 + v2) / 2.0)
    if not pooled > 0:
        return 0.0 if m1 == m2 else float("nan")
    return float((m1 - m2) / pooled)


def smd_binary(p1: float, p2: float) -> float:
    """``(p1 − p2) / sqrt((p1(1 − p1) + p2(1 − p2)) / 2)``.

    Examples
    --------
    >>> round(smd_binary(0.5, 0.3), 6)
    0.417029
    """
    pooled = np.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / 2.0)
    if not pooled > 0:
        return 0.0 if p1 == p2 else float("nan")
    return float((p1 - p2) / pooled)


def smd_categorical(p1: np.ndarray, p2: np.ndarray) -> float:
    """Yang & Dalton multi-level SMD from two vectors of level proportions (all levels).

    Examples
    --------
    >>> round(smd_categorical(np.array([0.5, 0.5]), np.array([0.7, 0.3])), 6)
    0.417029
    """
    t = np.asarray(p1, dtype=float)[1:]
    c = np.asarray(p2, dtype=float)[1:]
    if len(t) == 0:
        return 0.0
    s1 = np.diag(t) - np.outer(t, t)
    s2 = np.diag(c) - np.outer(c, c)
    s = (s1 + s2) / 2.0
    d = t - c
    val = float(d @ np.linalg.pinv(s) @ d)
    return float(np.sqrt(max(val, 0.0)))


def _wquantiles(x: np.ndarray, w: np.ndarray, qs: Sequence[float]) -> list[float]:
    if len(x) == 0:
        return [float("nan")] * len(qs)
    if np.allclose(w, w[0]):
        return [float(v) for v in np.quantile(x, qs)]
    order = np.argsort(x)
    xs, ws = x[order], w[order]
    cw = (np.cumsum(ws) - ws / 2.0) / ws.sum()
    return [float(np.interp(q, cw, xs)) for q in qs]


@dataclass(frozen=True, eq=False)
class Table1:
    """Table 1 result.

    Attributes
    ----------
    data : DataFrame
        Tidy numbers: ``variable``, ``level``, ``group``, ``n``, ``missing``, ``mean``, ``sd``,
        ``median``, ``q1``, ``q3``, ``count``, ``proportion`` (weighted when weights given).
    smd : DataFrame
        ``variable``, ``smd``, ``kind`` (continuous / binary / categorical).
    groups : tuple of str
    by : str
    weighted : bool
    excluded : dict
        Rows not tabulated (``by`` missing).
    """

    data: pd.DataFrame
    smd: pd.DataFrame
    groups: tuple[str, ...]
    by: str
    weighted: bool
    excluded: dict[str, int]

    def summary(self) -> pd.DataFrame:
        """Formatted table: ``variable``, ``level``, ``statistic``, one column per group
        (``n`` row first), ``smd`` and ``missing``."""
        rows: list[dict[str, Any]] = []
        n_row: dict[str, Any] = {
            "variable": "n",
            "level": "",
            "statistic": "count",
            "smd": np.nan,
            "missing": "",
        }
        ns = self.data.drop_duplicates("group").set_index("group")["group_n"]
        for g in self.groups:
            n_row[g] = f"{ns.get(g, 0):.0f}"
        rows.append(n_row)
        smd = self.smd.set_index("variable")["smd"]
        for var, d in self.data.groupby("variable", sort=False):
            miss = d.groupby("group")["missing"].first()
            miss_txt = ", ".join(f"{g}: {miss.get(g, 0):.0f}" for g in self.groups)
            if d["level"].eq("").all():
                for stat in ("mean (SD)", "median [Q1, Q3]"):
                    r: dict[str, Any] = {"variable": var, "level": "", "statistic": stat}
                    for g in self.groups:
                        x = d[d["group"] == g].iloc[0]
                        r[g] = (
                            f"{x['mean']:.1f} ({x['sd']:.1f})"
                            if stat == "mean (SD)"
                            else f"{x['median']:.1f} [{x['q1']:.1f}, {x['q3']:.1f}]"
                        )
                    r["smd"] = smd.get(var) if stat == "mean (SD)" else np.nan
                    r["missing"] = miss_txt if stat == "mean (SD)" else ""
                    rows.append(r)
            else:
                for i, (lev, dl) in enumerate(d.groupby("level", sort=False)):
                    r = {"variable": var, "level": lev, "statistic": "n (%)"}
                    for g in self.groups:
                        x = dl[dl["group"] == g]
                        r[g] = (
                            f"{x['count'].iloc[0]:.0f} ({100 * x['proportion'].iloc[0]:.1f})"
                            if len(x)
                            else "0 (0.0)"
                        )
                    r["smd"] = smd.get(var) if i == 0 else np.nan
                    r["missing"] = miss_txt if i == 0 else ""
                    rows.append(r)
        return pd.DataFrame(rows)

    def plot(self) -> go.Figure:
        """Love plot of |SMD| per variable (dashed line at 0.1)."""
        fig = go.Figure(
            go.Scatter(
                x=self.smd["smd"].abs(), y=self.smd["variable"], mode="markers", name="|SMD|"
            )
        )
        fig.add_vline(x=0.1, line_dash="dash")
        fig.update_layout(
            title=f"Balance by {self.by}" + (" (weighted)" if self.weighted else ""),
            xaxis_title="|SMD|",
        )
        return fig

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable dict."""
        return jsonable(
            {
                "data": self.data,
                "smd": self.smd,
                "groups": list(self.groups),
                "by": self.by,
                "weighted": self.weighted,
                "excluded": self.excluded,
            }
        )

    def _repr_html_(self) -> str:
        return f"<p><b>Table 1</b> by {html.escape(self.by)}</p>" + self.summary().to_html(
            index=False, na_rep=""
        )


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def table1(
    episodes: pd.DataFrame,
    by: str = "arm",
    weights: str | Sequence[float] | np.ndarray | pd.Series | None = None,
    variables: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
) -> Table1:
    """Baseline characteristics by group: counts, mean/SD, median/IQR, SMD, missingness.

    Parameters
    ----------
    episodes : DataFrame
        One row per episode (episode frame or an analysis frame); not modified.
    by : str
        Group column (default ``"arm"``).
    weights : str, array-like or None
        A weight column name or one weight per row (e.g. IPTW weights): all statistics are
        then weighted and ``n`` is the sum of weights.
    variables : sequence of str or None
        Columns to describe; default: those of :data:`DEFAULT_VARIABLES` present.
    groups : sequence of str or None
        Group order (the SMD is first − second); default sorted unique values.
    categorical : sequence of str
        Numeric columns to treat as categorical.

    Returns
    -------
    Table1

    Raises
    ------
    InputError
        Missing columns, fewer than two groups, bad weights.
    """
    if not isinstance(episodes, pd.DataFrame):
        raise InputError("table1: episodes must be a DataFrame")
    if by not in episodes.columns:
        raise InputError(f"table1: group column {by!r} missing")
    if variables is None:
        variables = [v for v in DEFAULT_VARIABLES if v in episodes.columns and v != by]
    missing_cols = [v for v in variables if v not in episodes.columns]
    if missing_cols:
        raise InputError(f"table1: column(s) {missing_cols} missing")
    if weights is None:
        w_all = np.ones(len(episodes))
    elif isinstance(weights, str):
        if weights not in episodes.columns:
            raise InputError(f"table1: weight column {weights!r} missing")
        w_all = episodes[weights].to_numpy(dtype=float)
    else:
        w_all = np.asarray(weights, dtype=float)
        if w_all.shape != (len(episodes),):
            raise InputError(f"table1: {len(w_all)} weights for {len(episodes)} rows")
    if np.isnan(w_all).any() or (w_all < 0).any():
        raise InputError("table1: weights must be non-negative and not missing")
    grp = episodes[by]
    excluded = {f"{by}_missing": int(grp.isna().sum())} if grp.isna().any() else {}
    gs = tuple(groups) if groups is not None else tuple(sorted(grp.dropna().unique()))
    if len(gs) < 2:
        raise InputError(f"table1: need at least two groups in {by!r}, got {list(gs)}")
    empty = [g for g in gs if not (grp == g).any()]
    if empty:
        raise InputError(
            f"table1: group(s) {empty} of {by!r} have no episode (groups present: "
            f"{sorted(grp.dropna().astype(str).unique())}); check the group keys or the filter "
            "that emptied them"
        )
    rows: list[dict[str, Any]] = []
    smds: list[dict[str, Any]] = []
    for var in variables:
        col = episodes[var]
        cat = var in categorical or _is_categorical(col)
        levels = sorted(col.dropna().astype(str).unique()) if cat else []
        stats_by_g: dict[str, Any] = {}
        for g in gs:
            m = (grp == g).to_numpy()
            x, w = col[m], w_all[m]
            nonmiss = x.notna().to_numpy()
            base = {
                "variable": var,
                "group": g,
                "group_n": float(w.sum()),
                "n": float(w[nonmiss].sum()),
                "missing": float(w[~nonmiss].sum()),
            }
            if cat:
                xs = x[nonmiss].astype(str).to_numpy()
                wn = w[nonmiss]
                tot = wn.sum()
                props = np.array(
                    [wn[xs == lev].sum() / tot if tot > 0 else np.nan for lev in levels]
                )
                stats_by_g[g] = props
                for lev, p in zip(levels, props, strict=True):
                    rows.append(
                        {
                            **base,
                            "level": lev,
                            "count": float(wn[xs == lev].sum()),
                            "proportion": float(p),
                        }
                    )
            else:
                xv = x[nonmiss].to_numpy(dtype=float)
                mean, var_ = weighted_mean_var(xv, w[nonmiss])
                med, q1, q3 = _wquantiles(xv, w[nonmiss], (0.5, 0.25, 0.75))
                stats_by_g[g] = (mean, var_)
                rows.append(
                    {
                        **base,
                        "level": "",
                        "mean": mean,
                        "sd": float(np.sqrt(var_)),
                        "median": med,
                        "q1": q1,
                        "q3": q3,
                    }
                )
        pair_smds = []
        for i in range(len(gs)):
            for j in range(i + 1, len(gs)):
                a, b = stats_by_g[gs[i]], stats_by_g[gs[j]]
                if not cat:
                    pair_smds.append(smd_continuous(a[0], a[1], b[0], b[1]))
                elif len(levels) == 2:
                    pair_smds.append(smd_binary(a[1], b[1]))
                else:
                    pair_smds.append(smd_categorical(a, b))
        kind = "continuous" if not cat else ("binary" if len(levels) == 2 else "categorical")
        val = pair_smds[0] if len(gs) == 2 else float(np.nanmax(np.abs(pair_smds)))
        smds.append({"variable": var, "smd": val, "kind": kind})
    data = pd.DataFrame(rows)
    for c in ("level", "count", "proportion", "mean", "sd", "median", "q1", "q3"):
        if c not in data.columns:
            data[c] = "" if c == "level" else np.nan
    data["level"] = data["level"].fillna("")
    data = data[
        [
            "variable",
            "level",
            "group",
            "group_n",
            "n",
            "missing",
            "mean",
            "sd",
            "median",
            "q1",
            "q3",
            "count",
            "proportion",
        ]
    ]
    return Table1(
        data=data,
        smd=pd.DataFrame(smds),
        groups=gs,
        by=by,
        weighted=weights is not None,
        excluded=excluded,
    )
