"""Device quality: delivered vs prescribed dose, faults, wrong polarity, skin reactions, traces.

Tidy session frame in (:data:`data_schemas.frames.SessionFrame`, optionally with the extra
columns of :func:`load_session_details`), tidy DataFrames out; nothing is modified.

* :func:`dose_delivery` – one row per session: delivered / prescribed, dose flags.
* :func:`dose_summary` – per device model, clinic or both: dose delivered, share of
  sessions ending before the prescribed dose, current-limiting rate, flags.
* :func:`fault_pareto` – sessions per fault code, most frequent first, with the cumulative
  share (Pareto table), optionally by device model or clinic.
* :func:`event_rates` – skin reactions, burns, wrong-polarity set-ups, current limiting and
  early endings per 1,000 sessions with exact 95 % intervals (:func:`rate_ci`).
* :func:`session_trace` – the samples of one session with phases and faults marked, for
  :func:`ionto_analytics.plots.trace_figure`.

Definitions
-----------
*Ended before the prescribed dose*: delivered < (1 − ``tolerance``) × prescribed (5 % by
default). *Skin reaction*: ``skin_check_after`` is erythema, vesicles or burn; its
denominator is the sessions whose skin was checked (``not_checked`` and missing are
counted in ``n_not_assessed``, never silently dropped). *Dose flags*: ``ended_early``,
``over_prescribed`` (delivered > (1 + tolerance) × prescribed), ``above_ceiling``
(delivered > (1 + tolerance) × 80 mA·min, the electrode limit of DOMAIN.md 1.1, which
devices enforce as "80 mA·min ± 5 %"), ``device_vs_samples`` (the device's figure disagrees
with the dose recomputed from its samples, when those columns are present),
``no_prescription``.

Examples
--------
>>> import pandas as pd
>>> s = pd.DataFrame({"session_id": ["s1", "s2", "s3"], "device_model": "KD-400",
...                   "prescribed_dose_mA_min": [40.0, 40.0, 40.0],
...                   "delivered_dose_mA_min": [40.0, 23.3, 40.1],
...                   "skin_check_after": ["normal", "burn", "not_checked"],
...                   "wrong_polarity": [False, False, True],
...                   "current_limited": [False, True, False]})
>>> dose_delivery(s)["ended_early"].tolist()
[False, True, False]
>>> r = event_rates(s).set_index("event")
>>> r.loc["burn", ["n_events", "n_sessions", "n_not_assessed"]].tolist()
[1, 2, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from sqlalchemy import Engine, and_, select
from sqlmodel import SQLModel

from data_schemas import tables as _tables  # noqa: F401  (registers the tables)
from data_schemas.frames import require_columns
from data_schemas.samples import unpack_samples
from ionto_analytics.errors import InputError

__all__ = [
    "DOSE_CEILING_MA_MIN",
    "EVENTS",
    "SKIN_REACTIONS",
    "dose_delivery",
    "dose_summary",
    "event_rates",
    "fault_pareto",
    "load_session_details",
    "rate_ci",
    "session_trace",
    "trace_choices",
    "trace_phases",
]

DOSE_CEILING_MA_MIN = 80.0
"""Electrode dose ceiling, mA·min (DOMAIN.md 1.1 [S4,S5])."""

SKIN_REACTIONS: tuple[str, ...] = ("erythema", "vesicles", "burn")
"""``skin_check_after`` values that count as a skin reaction."""

EVENTS: tuple[str, ...] = (
    "skin_reaction",
    "erythema",
    "vesicles",
    "burn",
    "wrong_polarity",
    "current_limited",
    "ended_early",
)
"""Events :func:`event_rates` reports, in this order."""

RateMethod = Literal["clopper-pearson", "poisson"]


def _by_list(by: str | Sequence[str] | None, df: pd.DataFrame) -> list[str]:
    cols = [] if by is None else [by] if isinstance(by, str) else list(by)
    require_columns(df, cols, "sessions")
    return cols


def rate_ci(
    n_events: int,
    n: int,
    *,
    per: float = 1000.0,
    method: RateMethod = "clopper-pearson",
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """Rate per ``per`` sessions with an exact confidence interval.

    * ``"clopper-pearson"``: the binomial exact interval, ``Beta(α/2; x, n−x+1)`` to
      ``Beta(1−α/2; x+1, n−x)`` (0 and 1 at the ends), for "sessions with the event";
    * ``"poisson"``: the exact Poisson (Garwood) interval ``χ²(α/2; 2x)/2`` to
      ``χ²(1−α/2; 2x+2)/2`` events divided by ``n``, for counts of events.

    Parameters
    ----------
    n_events, n : int
        Events and sessions (the denominator).
    per : float
        Scale (1,000 sessions by default).
    method : {"clopper-pearson", "poisson"}
    alpha : float
        1 − confidence level.

    Returns
    -------
    (rate, ci_low, ci_high) : tuple of float
        NaN when ``n`` is 0.

    Examples
    --------
    >>> [round(v, 2) for v in rate_ci(3, 1000)]
    [3.0, 0.62, 8.74]
    >>> [round(v, 2) for v in rate_ci(0, 500, method="poisson")]
    [0.0, 0.0, 7.38]
    """
    x, m = int(n_events), int(n)
    if m < 0 or x < 0 or (method == "clopper-pearson" and x > m):
        raise InputError(f"rate_ci: need 0 ≤ events ≤ sessions, got {x} events in {m}")
    if m == 0:
        return (np.nan, np.nan, np.nan)
    if method == "clopper-pearson":
        lo = 0.0 if x == 0 else float(stats.beta.ppf(alpha / 2, x, m - x + 1))
        hi = 1.0 if x == m else float(stats.beta.ppf(1 - alpha / 2, x + 1, m - x))
    elif method == "poisson":
        lo = 0.0 if x == 0 else float(stats.chi2.ppf(alpha / 2, 2 * x) / 2) / m
        hi = float(stats.chi2.ppf(1 - alpha / 2, 2 * x + 2) / 2) / m
    else:
        raise InputError(f"method must be 'clopper-pearson' or 'poisson', got {method!r}")
    return (per * x / m, per * lo, per * hi)


# --------------------------------------------------------------------------- loading


def _t(name: str):
    return SQLModel.metadata.tables[name]


def load_session_details(engine: Engine) -> pd.DataFrame:
    """The session frame plus the device-quality columns of the store.

    :func:`ionto_analytics.load.load_sessions` (validated, current versions only) joined
    with ``prescribed_current_mA``, ``peak_current_mA``, ``electrode_area_cm2``,
    ``peak_density_mA_per_cm2``, ``recomputed_dose_mA_min``, ``dose_mismatch``,
    ``active_polarity``, ``drug``, ``duration_s``, ``truncated`` and ``link_status``.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> "recomputed_dose_mA_min" in load_session_details(engine).columns
    True
    """
    from ionto_analytics.load import load_sessions

    base = load_sessions(engine)
    se = _t("ionto_session")
    query = select(
        se.c.session_key.label("session_id"),
        se.c.prescribed_current_mA,
        se.c.peak_current_mA,
        se.c.electrode_area_cm2,
        se.c.recomputed_dose_mA_min,
        se.c.dose_mismatch,
        se.c.active_polarity,
        se.c.drug,
        se.c.duration_s,
        se.c.truncated,
        se.c.link_status,
    ).where(and_(se.c.is_current.is_(True)))
    with engine.connect() as connection:
        result = connection.execute(query)
        extra = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for c in (
        "prescribed_current_mA",
        "peak_current_mA",
        "electrode_area_cm2",
        "recomputed_dose_mA_min",
        "duration_s",
    ):
        extra[c] = pd.to_numeric(extra[c]).astype(float)
    for c in ("dose_mismatch", "truncated"):
        extra[c] = extra[c].astype(bool)
    extra["peak_density_mA_per_cm2"] = extra["peak_current_mA"] / extra["electrode_area_cm2"]
    extra = extra.drop_duplicates("session_id")
    return base.merge(extra, on="session_id", how="left", validate="one_to_one")


# --------------------------------------------------------------------------- dose


def dose_delivery(
    sessions: pd.DataFrame,
    *,
    tolerance: float = 0.05,
    ceiling: float = DOSE_CEILING_MA_MIN,
    mismatch_tolerance: float = 0.02,
) -> pd.DataFrame:
    """Delivered against prescribed dose, one row per session, with dose flags.

    Parameters
    ----------
    sessions : DataFrame
        ``session_id``, ``prescribed_dose_mA_min``, ``delivered_dose_mA_min``; other
        columns (device model, clinic, ...) are carried over. With
        ``recomputed_dose_mA_min`` and/or ``dose_mismatch`` the device-vs-samples check is
        made. Not modified.
    tolerance : float
        Relative shortfall (or excess) that counts as ended early (over prescribed).
    ceiling : float
        Dose ceiling in mA·min.
    mismatch_tolerance : float
        Relative disagreement (at least 0.5 mA·min) between the device's and the
        recomputed dose that flags ``device_vs_samples``.

    Returns
    -------
    DataFrame
        ``sessions`` plus ``delivered_fraction``, ``shortfall_mA_min``, ``ended_early``,
        ``over_prescribed``, ``above_ceiling``, ``device_vs_samples`` (boolean, ``<NA>``
        when unknown), ``no_prescription`` and ``dose_flags`` (';'-joined, "" = none).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"session_id": ["a", "b"], "prescribed_dose_mA_min": [40.0, None],
    ...                   "delivered_dose_mA_min": [85.0, 40.0]})
    >>> dose_delivery(s)["dose_flags"].tolist()
    ['over_prescribed;above_ceiling', 'no_prescription']
    """
    require_columns(
        sessions,
        ["session_id", "prescribed_dose_mA_min", "delivered_dose_mA_min"],
        "sessions",
    )
    if not 0 <= tolerance < 1:
        raise InputError(f"tolerance must be in [0, 1), got {tolerance}")
    out = sessions.copy()
    pres = out["prescribed_dose_mA_min"].astype(float)
    deliv = out["delivered_dose_mA_min"].astype(float)
    has_pres = pres.notna() & (pres > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (deliv / pres).where(has_pres)
    out["delivered_fraction"] = frac
    out["shortfall_mA_min"] = (pres - deliv).where(has_pres)

    def flag(mask: pd.Series, known: pd.Series) -> pd.Series:
        arr = pd.array(mask.to_numpy(bool), dtype="boolean")
        arr[~known.to_numpy(bool)] = pd.NA
        return pd.Series(arr, index=out.index)

    out["ended_early"] = flag(deliv < (1 - tolerance) * pres, has_pres)
    out["over_prescribed"] = flag(deliv > (1 + tolerance) * pres, has_pres)
    out["above_ceiling"] = flag(deliv > (1 + tolerance) * ceiling, deliv.notna())
    mism = pd.Series(False, index=out.index)
    known = pd.Series(False, index=out.index)
    if "recomputed_dose_mA_min" in out.columns:
        rec = out["recomputed_dose_mA_min"].astype(float)
        gap = (deliv - rec).abs()
        limit = np.maximum(0.5, mismatch_tolerance * rec.abs())
        mism |= (gap > limit).fillna(False)
        known |= rec.notna() & deliv.notna()
    if "dose_mismatch" in out.columns:
        dm = out["dose_mismatch"]
        mism |= dm.fillna(False).astype(bool)
        known |= dm.notna()
    out["device_vs_samples"] = flag(mism, known)
    out["no_prescription"] = ~has_pres.to_numpy()
    names = ("ended_early", "over_prescribed", "above_ceiling", "device_vs_samples")
    parts = [out[n].fillna(False).to_numpy(bool) for n in names] + [
        out["no_prescription"].to_numpy(bool)
    ]
    labels = (*names, "no_prescription")
    text = [
        ";".join(lab for lab, on in zip(labels, row, strict=True) if on)
        for row in zip(*parts, strict=True)
    ]
    out["dose_flags"] = pd.Series(text, index=out.index, dtype=object)
    return out


def dose_summary(
    sessions: pd.DataFrame,
    by: str | Sequence[str] | None = "device_model",
    *,
    tolerance: float = 0.05,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Dose delivery per group: delivered vs prescribed, early endings, current limiting.

    Parameters
    ----------
    sessions : DataFrame
        Session frame (with ``current_limited``); not modified.
    by : str, sequence of str or None
        Grouping columns (``"device_model"``, ``"clinic_id"``, both, or None for all).
    tolerance : float
        As in :func:`dose_delivery`.
    alpha : float
        1 − confidence level of the Clopper–Pearson intervals (in %).

    Returns
    -------
    DataFrame
        ``by`` columns, ``n_sessions``, ``n_with_prescription``, ``prescribed_mean``,
        ``delivered_mean``, ``delivered_median``, ``fraction_median``, ``n_ended_early``,
        ``ended_early_pct`` (+ ``_ci_low``/``_ci_high``), ``n_current_limited``,
        ``current_limited_pct`` (+ CI), ``n_flagged`` (any dose flag other than
        no_prescription).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"session_id": list("abcd"), "device_model": ["A", "A", "B", "B"],
    ...                   "prescribed_dose_mA_min": 40.0,
    ...                   "delivered_dose_mA_min": [40.0, 20.0, 40.0, 40.0],
    ...                   "current_limited": [False, True, False, False]})
    >>> dose_summary(s)[["device_model", "n_sessions", "n_ended_early"]].values.tolist()
    [['A', 2, 1], ['B', 2, 0]]
    """
    cols = _by_list(by, sessions)
    require_columns(sessions, ["current_limited"], "sessions")
    d = dose_delivery(sessions, tolerance=tolerance)
    d["_all"] = "all sessions"
    keys = cols or ["_all"]
    rows = []
    for key, g in d.groupby(keys, sort=True, dropna=False):
        key_t = key if isinstance(key, tuple) else (key,)
        n = len(g)
        n_p = int(g["ended_early"].notna().sum())
        early = int(g["ended_early"].fillna(False).sum())
        lim = int(g["current_limited"].astype(bool).sum())
        flagged = int(
            g[["ended_early", "over_prescribed", "above_ceiling", "device_vs_samples"]]
            .fillna(False)
            .any(axis=1)
            .sum()
        )
        e_pct, e_lo, e_hi = rate_ci(early, n_p, per=100, alpha=alpha)
        l_pct, l_lo, l_hi = rate_ci(lim, n, per=100, alpha=alpha)
        row = dict(zip(keys, key_t, strict=True))
        row.update(
            {
                "n_sessions": n,
                "n_with_prescription": n_p,
                "prescribed_mean": float(g["prescribed_dose_mA_min"].mean()),
                "delivered_mean": float(g["delivered_dose_mA_min"].mean()),
                "delivered_median": float(g["delivered_dose_mA_min"].median()),
                "fraction_median": float(g["delivered_fraction"].median()),
                "n_ended_early": early,
                "ended_early_pct": e_pct,
                "ended_early_ci_low": e_lo,
                "ended_early_ci_high": e_hi,
                "n_current_limited": lim,
                "current_limited_pct": l_pct,
                "current_limited_ci_low": l_lo,
                "current_limited_ci_high": l_hi,
                "n_flagged": flagged,
            }
        )
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.rename(columns={"_all": "group"}) if not cols else out


# --------------------------------------------------------------------------- faults, events


def fault_pareto(sessions: pd.DataFrame, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Pareto table of fault codes: sessions with each code, most frequent first.

    A session with several codes (``"CURRENT_LIMITED;RESISTANCE_LIMIT"``) counts once under
    each. Rates are per 1,000 sessions of the group (all sessions, with or without faults).

    Parameters
    ----------
    sessions : DataFrame
        ``fault_codes`` (';'-joined, null or "" = none) and the ``by`` columns.
    by : str, sequence of str or None
        Groups (e.g. ``"device_model"``); the order and cumulative share are within group.

    Returns
    -------
    DataFrame
        ``by`` columns, ``fault_code``, ``n_faults``, ``n_sessions``, ``per_1000_sessions``,
        ``share`` (of the group's faults), ``cumulative_share``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"fault_codes": ["PAUSED", None, "CURRENT_LIMITED;PAUSED", ""]})
    >>> fault_pareto(s)[["fault_code", "n_faults", "cumulative_share"]].values.tolist()
    [['PAUSED', 2, 0.6666666666666666], ['CURRENT_LIMITED', 1, 1.0]]
    """
    require_columns(sessions, ["fault_codes"], "sessions")
    cols = _by_list(by, sessions)
    d = sessions[cols].copy()
    d["_n"] = 1
    d["fault_code"] = sessions["fault_codes"].fillna("").astype(str).str.split(";")
    totals = d.groupby(cols, dropna=False)["_n"].sum() if cols else None
    long = d.explode("fault_code")
    long = long[long["fault_code"].notna() & (long["fault_code"] != "")]
    out_cols = [
        *cols,
        "fault_code",
        "n_faults",
        "n_sessions",
        "per_1000_sessions",
        "share",
        "cumulative_share",
    ]
    if long.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in out_cols})
    counts = long.groupby([*cols, "fault_code"], dropna=False).size().rename("n_faults")
    counts = counts.reset_index()
    if cols:
        n_sess = counts.set_index(cols).index.map(totals)
        counts["n_sessions"] = np.asarray(n_sess, dtype=int)
        counts = counts.sort_values(
            [*cols, "n_faults", "fault_code"], ascending=[True] * len(cols) + [False, True]
        )
        grp = counts.groupby(cols, dropna=False)["n_faults"]
        counts["share"] = counts["n_faults"] / grp.transform("sum")
        counts["cumulative_share"] = grp.cumsum() / grp.transform("sum")
    else:
        counts["n_sessions"] = len(sessions)
        counts = counts.sort_values(["n_faults", "fault_code"], ascending=[False, True])
        counts["share"] = counts["n_faults"] / counts["n_faults"].sum()
        counts["cumulative_share"] = counts["n_faults"].cumsum() / counts["n_faults"].sum()
    counts["per_1000_sessions"] = 1000.0 * counts["n_faults"] / counts["n_sessions"]
    return counts[out_cols].reset_index(drop=True)


def event_rates(
    sessions: pd.DataFrame,
    by: str | Sequence[str] | None = None,
    *,
    events: Sequence[str] = EVENTS,
    per: float = 1000.0,
    method: RateMethod = "clopper-pearson",
    alpha: float = 0.05,
    tolerance: float = 0.05,
) -> pd.DataFrame:
    """Events per 1,000 sessions with exact confidence intervals (:func:`rate_ci`).

    Denominators: skin events (``skin_reaction``, ``erythema``, ``vesicles``, ``burn``)
    use the sessions whose skin was checked afterwards; ``ended_early`` the sessions with a
    prescribed dose; ``wrong_polarity`` and ``current_limited`` all sessions. Sessions left
    out of a denominator are counted in ``n_not_assessed``.

    Parameters
    ----------
    sessions : DataFrame
        Session frame; only the columns the requested events need must be present.
    by : str, sequence of str or None
        Groups (``"clinic_id"``, ``"device_model"``).
    events : sequence of str
        Subset of :data:`EVENTS`.
    per : float
        Rate scale.
    method : {"clopper-pearson", "poisson"}
    alpha : float
    tolerance : float
        As in :func:`dose_delivery`, for ``ended_early``.

    Returns
    -------
    DataFrame
        ``by`` columns, ``event``, ``n_events``, ``n_sessions`` (denominator),
        ``n_not_assessed``, ``rate_per_1000``, ``ci_low``, ``ci_high``, ``method``.
    """
    cols = _by_list(by, sessions)
    bad = [e for e in events if e not in EVENTS]
    if bad:
        raise InputError(f"unknown event(s) {bad}; expected some of {list(EVENTS)}")
    flags: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    skin_needed = any(e in ("skin_reaction", *SKIN_REACTIONS) for e in events)
    if skin_needed:
        require_columns(sessions, ["skin_check_after"], "sessions")
        skin = sessions["skin_check_after"].astype(object)
        checked = (skin.notna() & (skin != "not_checked")).to_numpy(bool)
        flags["skin_reaction"] = (skin.isin(SKIN_REACTIONS).to_numpy(bool), checked)
        for name in SKIN_REACTIONS:
            flags[name] = ((skin == name).to_numpy(bool), checked)
    for name in ("wrong_polarity", "current_limited"):
        if name in events:
            require_columns(sessions, [name], "sessions")
            flags[name] = (
                sessions[name].astype(bool).to_numpy(),
                np.ones(len(sessions), bool),
            )
    if "ended_early" in events:
        d = dose_delivery(sessions, tolerance=tolerance)
        flags["ended_early"] = (
            d["ended_early"].fillna(False).to_numpy(bool),
            d["ended_early"].notna().to_numpy(bool),
        )
    groups: list[tuple[tuple, np.ndarray]] = []
    if not cols:
        groups.append(((), np.ones(len(sessions), bool)))
    else:
        for key, g in sessions.reset_index(drop=True).groupby(cols, sort=True, dropna=False):
            mask = np.zeros(len(sessions), bool)
            mask[g.index.to_numpy()] = True
            groups.append((key if isinstance(key, tuple) else (key,), mask))
    rows = []
    for key, mask in groups:
        for ev in events:
            hit, denom = flags[ev]
            x = int((hit & denom & mask).sum())
            n = int((denom & mask).sum())
            rate, lo, hi = rate_ci(x, n, per=per, method=method, alpha=alpha)
            row = dict(zip(cols, key, strict=True))
            row.update(
                {
                    "event": ev,
                    "n_events": x,
                    "n_sessions": n,
                    "n_not_assessed": int((mask & ~denom).sum()),
                    "rate_per_1000": rate,
                    "ci_low": lo,
                    "ci_high": hi,
                    "method": method,
                }
            )
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- traces


def trace_phases(
    samples: pd.DataFrame,
    *,
    setpoint_mA: float | None = None,
    fault_codes: str | None = None,
    end_reason: str | None = None,
) -> pd.DataFrame:
    """Mark the phase of every sample and place the session's faults on the time axis.

    The store keeps which faults a session raised, not when, so the times are inferred
    from the samples: ramp-up until the current first reaches 90 % of the setpoint (or,
    when it never does, until the voltage reaches the compliance plateau); ``limited``
    where the current is below 90 % of the setpoint in between (``paused`` below 10 %);
    after the last sample at the setpoint, ``ramp_down`` for a completed dose, else
    ``stopped``. Current limiting is placed at the first limited sample, an electrode
    reject at the first open-circuit sample (impedance ≥ 1 MΩ), an overcurrent at the
    current peak, a pause at the first paused sample, battery and power faults where the
    current stops; the end reason at the last sample.

    Parameters
    ----------
    samples : DataFrame
        ``t_s``, ``current_mA``, ``voltage_V``, ``impedance_ohm``; not modified.
    setpoint_mA : float, optional
        Prescribed current (default: the 95th percentile of the current).
    fault_codes : str, optional
        ';'-joined fault codes of the session.
    end_reason : str, optional

    Returns
    -------
    DataFrame
        ``samples`` plus ``phase`` and ``event`` (code(s) at that sample, else None).

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"t_s": [0.0, 1, 2, 3, 4, 5], "current_mA": [0, 1, 2, 2, 1, 0.0],
    ...                   "voltage_V": 1.0, "impedance_ohm": 8000.0})
    >>> trace_phases(s, setpoint_mA=2.0, end_reason="DOSE_COMPLETE")["phase"].tolist()
    ['ramp_up', 'ramp_up', 'treat', 'treat', 'ramp_down', 'ramp_down']
    """
    require_columns(samples, ["t_s", "current_mA", "voltage_V", "impedance_ohm"], "samples")
    out = samples.copy()
    n = len(out)
    out["phase"] = pd.Series(["treat"] * n, index=out.index, dtype=object)
    out["event"] = pd.Series([None] * n, index=out.index, dtype=object)
    if n == 0:
        return out
    cur = out["current_mA"].to_numpy(float)
    volt = out["voltage_V"].to_numpy(float)
    z = out["impedance_ohm"].to_numpy(float)
    ref = (
        float(setpoint_mA) if setpoint_mA and setpoint_mA > 0 else float(np.nanpercentile(cur, 95))
    )
    idx = np.arange(n)
    above = cur >= 0.9 * ref
    if above.any():
        first = int(np.argmax(above))
        last = int(n - 1 - np.argmax(above[::-1]))
    else:
        vmax = float(np.nanmax(volt)) if np.isfinite(volt).any() else 0.0
        plateau = volt >= 0.95 * vmax if vmax > 0 else np.zeros(n, bool)
        first = int(np.argmax(plateau)) if plateau.any() else n
        on = cur > 0.1 * max(float(np.nanmax(cur)), 1e-9)
        last = int(n - 1 - np.argmax(on[::-1])) if on.any() else n - 1
    phase = np.full(n, "treat", dtype=object)
    phase[idx < first] = "ramp_up"
    mid = (idx >= first) & (idx <= last)
    phase[mid & (cur < 0.9 * ref)] = "limited"
    phase[mid & (cur < 0.1 * ref)] = "paused"
    phase[idx > last] = "ramp_down" if end_reason == "DOSE_COMPLETE" else "stopped"
    out["phase"] = phase
    events: dict[int, list[str]] = {}
    stop_at = min(last + 1, n - 1)

    def first_of(mask: np.ndarray, default: int) -> int:
        return int(np.argmax(mask)) if mask.any() else default

    for code in [c for c in (fault_codes or "").split(";") if c]:
        if code in ("CURRENT_LIMITED", "RESISTANCE_LIMIT"):
            at = first_of(phase == "limited", first_of(mid, stop_at))
        elif code == "ELECTRODE_REJECT":
            at = first_of(~np.isfinite(z) | (z >= 1e6), stop_at)
        elif code == "OVERCURRENT":
            at = int(np.nanargmax(cur)) if np.nanmax(cur) > 1.1 * ref else stop_at
        elif code == "PAUSED":
            at = first_of(phase == "paused", stop_at)
        else:
            at = stop_at
        events.setdefault(at, []).append(code)
    placed = {c for codes in events.values() for c in codes}
    if end_reason and end_reason not in placed:
        events.setdefault(n - 1, []).append(end_reason)
    ev = np.full(n, None, dtype=object)
    for at, codes in events.items():
        ev[at] = " / ".join(dict.fromkeys(codes))
    out["event"] = ev
    return out


def session_trace(engine: Engine, session_id: str) -> pd.DataFrame:
    """The samples of one session, with phases, faults and the cumulative dose.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        A migrated store.
    session_id : str
        ``session_id`` of the session frame (the store's ``session_key``); the current
        version is read.

    Returns
    -------
    DataFrame
        ``session_id``, ``t_s``, ``t_min``, ``current_mA``, ``voltage_V``,
        ``impedance_ohm`` (inf = open circuit), ``dose_mA_min`` (cumulative, from the
        samples), ``setpoint_mA``, ``phase`` and ``event`` (:func:`trace_phases`),
        ``device_model``, ``end_reason``.

    Raises
    ------
    InputError
        When the session, or its samples, are not in the store.

    Examples
    --------
    >>> from data_schemas import store
    >>> engine = store.connect("sqlite://"); store.upgrade(engine)
    >>> session_trace(engine, "nope")
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: session 'nope' is not in the store ...
    """
    se, tr, dv = _t("ionto_session"), _t("session_trace"), _t("device")
    query = (
        select(
            se.c.prescribed_current_mA,
            se.c.fault_codes,
            se.c.end_reason,
            dv.c.model,
            tr.c.packed_samples,
        )
        .select_from(
            se.join(dv, dv.c.id == se.c.device_id).outerjoin(tr, tr.c.session_id == se.c.id)
        )
        .where(and_(se.c.session_key == str(session_id), se.c.is_current.is_(True)))
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        raise InputError(
            f"session {session_id!r} is not in the store (or has no current version); "
            "take a session_id from load_sessions()"
        )
    if row.packed_samples is None:
        raise InputError(f"session {session_id!r} has no samples stored (session_trace table)")
    s = unpack_samples(bytes(row.packed_samples)).to_frame()
    setpoint = None if row.prescribed_current_mA is None else float(row.prescribed_current_mA)
    out = trace_phases(
        s, setpoint_mA=setpoint, fault_codes=row.fault_codes, end_reason=row.end_reason
    )
    t = out["t_s"].to_numpy(float)
    dt = np.diff(t, prepend=t[0] if len(t) else 0.0)
    out["dose_mA_min"] = np.cumsum(out["current_mA"].to_numpy(float) * dt / 60.0)
    out["t_min"] = t / 60.0
    out["setpoint_mA"] = np.nan if setpoint is None else setpoint
    out["device_model"] = row.model
    out["end_reason"] = row.end_reason
    out.insert(0, "session_id", str(session_id))
    cols = [
        "session_id",
        "t_s",
        "t_min",
        "current_mA",
        "voltage_V",
        "impedance_ohm",
        "dose_mA_min",
        "setpoint_mA",
        "phase",
        "event",
        "device_model",
        "end_reason",
    ]
    return out[cols]


def trace_choices(sessions: pd.DataFrame, limit: int = 60) -> dict[str, str]:
    """Sessions worth opening in the trace viewer: label → ``session_id``.

    Sessions with a fault or an early end come first (most recent first), then completed
    ones, up to ``limit``.

    Examples
    --------
    >>> import pandas as pd
    >>> s = pd.DataFrame({"session_id": ["s1", "s2"], "device_model": "KD-400",
    ...                   "end_reason": ["DOSE_COMPLETE", "ELECTRODE_REJECT"],
    ...                   "fault_codes": [None, "ELECTRODE_REJECT"],
    ...                   "started_at_utc": pd.to_datetime(["2025-01-02", "2025-01-03"], utc=True)})
    >>> list(trace_choices(s).values())
    ['s2', 's1']
    """
    require_columns(
        sessions,
        ["session_id", "device_model", "end_reason", "fault_codes", "started_at_utc"],
        "sessions",
    )
    d = sessions.assign(
        _fault=(sessions["fault_codes"].fillna("") != "")
        | (sessions["end_reason"] != "DOSE_COMPLETE")
    ).sort_values(["_fault", "started_at_utc"], ascending=[False, False], kind="stable")
    d = d.head(limit)
    return {
        f"{r.device_model} · {r.end_reason} · {r.started_at_utc:%Y-%m-%d %H:%M} · "
        f"{str(r.session_id)[:8]}": str(r.session_id)
        for r in d.itertuples()
    }
