"""The report's sections as tidy, suppressed tables, computed from :class:`ReportData`.

Definitions used throughout (for quarter *Q*, optionally one clinic):

* an episode is **active** in *Q* when it has a visit dated in *Q* or its intake is in *Q*;
  **patients** are the distinct patients of the active episodes; **new episodes** have
  their intake in *Q*;
* **visits** are dated in *Q*; **iontophoresis sessions** started in *Q* (UTC date), with
  their delivered dose (mA·min) as the device logged it;
* the **outcome cohort** of *Q* is the episodes discharged (``end_date``) in *Q*: change
  from the baseline (day ≤ 7) to the latest measurement after day 7
  (:func:`ionto_analytics.outcomes.change_from_baseline`, window ``"discharge"``).

Every count goes through :func:`ionto_analytics.suppression.suppress_counts`; shares,
rates, means and doses inherit the suppression of the counts they come from.

Examples
--------
>>> from data_schemas import store
>>> from ionto_analytics.report.data import load_report_data
>>> from ionto_analytics.report.quarter import Quarter
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> s = volume_section(load_report_data(engine), Quarter(2025, 3))
>>> s.values["episodes"], s.tables[0].frame.loc["Episodes active", "2025Q3"]
(0, '0')
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from scipy import stats

from data_schemas.vocabulary import CONDITIONS
from ionto_analytics.compare.responders import wilson_interval
from ionto_analytics.instruments import get_instrument
from ionto_analytics.outcomes import change_from_baseline, mcid_responders
from ionto_analytics.plots.style import TEMPLATE, display_name, fit_axis_titles, wrap_label
from ionto_analytics.report.data import ReportData
from ionto_analytics.report.model import (
    ReportFigure,
    ReportTable,
    Section,
    fmt_ci,
    fmt_num,
    fmt_pct,
)
from ionto_analytics.report.quarter import Quarter
from ionto_analytics.suppression import SUPPRESSED_TEXT, cell_mark, small, suppress_counts

__all__ = [
    "CONDITION_INSTRUMENT",
    "TRIALS",
    "active_episode_ids",
    "discharged_in",
    "outcome_cohort",
    "outcome_stats",
    "outcomes_section",
    "sessions_in",
    "volume_section",
]

CONDITION_INSTRUMENT: dict[str, str] = {
    "lateral_epicondylitis": "prtee",
    "medial_epicondylitis": "prtee",
    "plantar_fasciitis": "ffi",
    "achilles_tendinopathy": "visa_a",
    "other_tendinopathy": "lefs",
    "bursitis": "quickdash",
    "rheumatoid": "quickdash",
}
"""The condition-specific instrument reported beside NPRS (NPRS is scored every visit)."""

UNLINKED = "not linked to an episode"

TRIALS: tuple[dict[str, str], ...] = (
    {
        "conditions": "lateral_epicondylitis medial_epicondylitis",
        "trial": "Nirschl 2003 (AJSM), epicondylitis < 3 months",
        "design": "RCT, double-blind, 199 patients; 6 sessions of 40 mA·min DSP in 15 days",
        "result": "VAS improvement 23 vs 14 mm at 2 days, 24 vs 19 mm at 1 month; "
        "'moderate or better' 52% vs 33% at 2 days, 54% vs 49% at 1 month (NS). "
        "Manufacturer-sponsored.",
    },
    {
        "conditions": "lateral_epicondylitis",
        "trial": "Runeson & Haker 2002 (SJMSS), lateral epicondylitis",
        "design": "RCT, double-blind, 64 patients; 4 sessions in 2 weeks",
        "result": "No between-group benefit; 23 dropped out before 3 months.",
    },
    {
        "conditions": "plantar_fasciitis",
        "trial": "Gudeman 1997 (AJSM), plantar fasciitis",
        "design": "RCT, double-blind, 40 feet; 6 sessions of 0.4% DSP in 2 weeks",
        "result": "Maryland Foot Score gain 6.8±5.6 vs 3.1±4.1 at end of treatment; "
        "7.4±6.3 vs 5.6±8.0 at 1 month (NS).",
    },
    {
        "conditions": "plantar_fasciitis",
        "trial": "Osborne & Allison 2006 (BJSM), plantar fasciitis",
        "design": "RCT, double-blind, 31 patients / 42 feet; DSP vs acetic acid vs saline, "
        "with taping and stretching",
        "result": "All arms improved; at 4 weeks both active arms beat placebo for pain.",
    },
    {
        "conditions": "achilles_tendinopathy",
        "trial": "Neeter 2003 (SJMSS), acute Achilles tendinopathy",
        "design": "RCT, double-blind, 25 patients; 2 weeks of dexamethasone vs saline, then "
        "the same 10-week rehabilitation",
        "result": "Only the dexamethasone group improved in pain, walking, stairs and "
        "morning stiffness; small sample.",
    },
)
"""Published trial figures (DOMAIN.md section 3.1), set beside the clinic's results."""

TRIAL_CAVEAT = (
    "These trials randomised patients, blinded them with placebo iontophoresis and measured "
    "on a fixed schedule. A clinic's results are observational: who gets iontophoresis is "
    "chosen by clinicians and patients, the instruments and time points differ (NPRS 0-10 "
    "is not the trials' 100 mm VAS, and the Maryland Foot Score is not the FFI), and "
    "everyone also has exercise. Similar numbers do not confirm the trials, and different "
    "numbers do not refute them."
)


# --------------------------------------------------------------------------- scope helpers


def in_clinic(df: pd.DataFrame, clinic: str | None) -> pd.DataFrame:
    return df if clinic is None else df[df["clinic_id"] == clinic]


def active_episode_ids(data: ReportData, quarter: Quarter, clinic: str | None = None) -> set:
    """Episode ids active in the quarter: a visit dated in it, or intake in it."""
    ep = in_clinic(data.episodes, clinic)
    started = ep.loc[quarter.contains(ep["start_date"]).to_numpy(), "episode_id"]
    v = data.visits
    visited = v.loc[quarter.contains(v["visit_date"]).to_numpy(), "episode_id"]
    return set(started) | (set(visited) & set(ep["episode_id"]))


def discharged_in(episodes: pd.DataFrame, quarter: Quarter) -> pd.DataFrame:
    """Episodes discharged in the quarter (``end_date`` in it)."""
    return episodes[quarter.contains(episodes["end_date"]).fillna(False).to_numpy(bool)]


def outcome_cohort(data: ReportData, quarter: Quarter, clinic: str | None = None) -> pd.DataFrame:
    """Episodes discharged in the quarter (``end_date`` in it), in the clinic."""
    return discharged_in(in_clinic(data.episodes, clinic), quarter)


def sessions_in(data: ReportData, quarter: Quarter, clinic: str | None) -> pd.DataFrame:
    s = in_clinic(data.sessions, clinic)
    return s[quarter.contains(s["started_at_utc"]).to_numpy()]


def _mask_series(values: pd.Series, marks: pd.Series, mask: np.ndarray, fmt) -> list[str]:
    """``fmt(value)``, or the mark of the count it derives from where that is hidden."""
    return [k if m else fmt(v) for v, k, m in zip(values, marks, mask, strict=True)]


def _bar_figure(
    frame: pd.DataFrame, title: str, y_title: str, hidden: dict[str, list[str]]
) -> tuple[go.Figure, str]:
    """Grouped bars of published values (NaN = suppressed, drawn as no bar), and the caption
    that names the bars not drawn (under the chart, in the page's text)."""
    fig = go.Figure()
    for col in frame.columns:
        x = [wrap_label(display_name(i)) for i in frame.index]
        fig.add_trace(go.Bar(x=x, y=frame[col], name=str(col)))
    notes = [f"{k}: {', '.join(v)}" for k, v in hidden.items() if v]
    caption = "Not drawn (fewer than 11 or hidden with them): " + "; ".join(notes) if notes else ""
    fig.update_layout(
        template=TEMPLATE, title={"text": title}, barmode="group", yaxis_title=y_title, height=380
    )
    return fit_axis_titles(fig), caption


# --------------------------------------------------------------------------- volume


def _volume_counts(
    data: ReportData, quarter: Quarter, clinic: str | None, by: str
) -> tuple[pd.DataFrame, int, pd.Series]:
    """Counts per ``by`` group (condition or clinic): the table body, distinct patients,
    and the delivered dose per group."""
    ids = active_episode_ids(data, quarter, clinic)
    ep = data.episodes[data.episodes["episode_id"].isin(ids)]
    v = data.visits[quarter.contains(data.visits["visit_date"]).to_numpy()]
    v = v[v["episode_id"].isin(set(in_clinic(data.episodes, clinic)["episode_id"]))]
    v = v.merge(data.episodes[["episode_id", by]], on="episode_id", how="left")
    s = sessions_in(data, quarter, clinic)
    if by == "condition":
        cond = data.episodes.set_index("episode_id")["condition"]
        s = s.assign(condition=s["episode_id"].map(cond).fillna(UNLINKED))
    groups = sorted(set(ep[by]) | set(v[by].dropna()) | set(s[by].dropna()), key=_order(by))
    new = ep[quarter.contains(ep["start_date"]).to_numpy()]
    body = pd.DataFrame(
        {
            "Patients": ep.groupby(by)["patient_id"].nunique(),
            "Episodes active": ep.groupby(by).size(),
            "New episodes": new.groupby(by).size(),
            "Visits": v.groupby(by).size(),
            "Iontophoresis sessions": s.groupby(by).size(),
        }
    ).reindex(groups)
    body = body.fillna(0).astype("int64")
    dose = s.groupby(by)["delivered_dose_mA_min"].sum().reindex(groups).fillna(0.0)
    return body, int(ep["patient_id"].nunique()), dose


def _order(by: str):
    if by == "condition":
        rank = {c: i for i, c in enumerate((*CONDITIONS, UNLINKED))}
        return lambda g: (rank.get(g, 99), str(g))
    return str


def _volume_table(data: ReportData, quarter: Quarter, clinic: str | None, by: str, counts=None):
    cur, prev = counts or (
        _volume_counts(data, quarter, clinic, by),
        _volume_counts(data, quarter.previous(), clinic, by),
    )
    body, patients, dose = cur
    prev_body = prev[0]
    body[f"Episodes active, {quarter.previous()}"] = (
        prev_body["Episodes active"].reindex(body.index).fillna(0).astype("int64")
    )
    extra = prev_body.index.difference(body.index)
    if len(extra):  # groups seen only last quarter
        add = pd.DataFrame(0, index=extra, columns=body.columns)
        add[f"Episodes active, {quarter.previous()}"] = prev_body.loc[extra, "Episodes active"]
        body = pd.concat([body, add])
        dose = dose.reindex(body.index).fillna(0.0)
    sup = suppress_counts(
        body,
        total_row=True,
        additive=[c for c in body.columns if c != "Patients"],
        totals={"Patients": patients},
    )
    shown = sup.display()
    dose_all = pd.concat([dose, pd.Series({"Total": dose.sum()})])
    shown.insert(
        5,
        "Delivered dose (mA·min)",
        _mask_series(
            dose_all.reindex(shown.index),
            shown["Iontophoresis sessions"],
            sup.mask["Iontophoresis sessions"].to_numpy(),
            lambda x: fmt_num(x, 0),
        ),
    )
    shown.index.name = by
    return shown, sup


def _summary_rows(quarter: Quarter, counts) -> pd.DataFrame:
    """Measure × (this quarter, previous quarter) counts, unsuppressed."""
    rows = {}
    for q, (body, patients, dose) in zip((quarter, quarter.previous()), counts, strict=True):
        rows[str(q)] = {
            "Patients": patients,
            "Episodes active": int(body["Episodes active"].sum()),
            "New episodes": int(body["New episodes"].sum()),
            "Visits": int(body["Visits"].sum()),
            "Iontophoresis sessions": int(body["Iontophoresis sessions"].sum()),
            "Delivered dose (mA·min)": float(dose.sum()),
        }
    return pd.DataFrame(rows)


def volume_section(data: ReportData, quarter: Quarter, clinic: str | None = None) -> Section:
    """Patients, episodes, visits, sessions and dose, by condition and clinic, vs last quarter.

    Parameters
    ----------
    data : ReportData
    quarter : Quarter
    clinic : str, optional
        A clinic key: only its episodes and sessions.

    Returns
    -------
    Section
        ``values``: the unsuppressed network figures (``patients``, ``episodes``, ...).
    """
    by_condition = (
        _volume_counts(data, quarter, clinic, "condition"),
        _volume_counts(data, quarter.previous(), clinic, "condition"),
    )
    raw = _summary_rows(quarter, by_condition)
    cur, prev = str(quarter), str(quarter.previous())
    counts = raw.drop(index="Delivered dose (mA·min)")
    hidden = pd.DataFrame(small(counts[c]) for c in counts.columns).T.to_numpy()
    hidden = pd.DataFrame(hidden, index=counts.index, columns=counts.columns)
    dose_hidden = hidden.loc["Iontophoresis sessions"]
    summary = pd.DataFrame(index=raw.index, columns=[cur, prev, "Change"], dtype=object)
    for m in raw.index:
        h = dose_hidden if m.startswith("Delivered") else hidden.loc[m]
        for c in (cur, prev):
            v = raw.loc[m, c]
            summary.loc[m, c] = SUPPRESSED_TEXT if h[c] else fmt_num(v, 0)
        a, b = raw.loc[m, cur], raw.loc[m, prev]
        summary.loc[m, "Change"] = (
            SUPPRESSED_TEXT if h[cur] or h[prev] else "–" if b == 0 else f"{(a - b) / b:+.0%}"
        )
    summary.index.name = "measure"
    tables = [
        ReportTable(
            "volume_summary",
            f"Activity in {quarter.label} against {prev}",
            summary,
            "Active episode: a visit dated in the quarter, or intake in it. Sessions: device "
            "logs started in the quarter.",
        )
    ]
    by_cond, sup_cond = _volume_table(data, quarter, clinic, "condition", by_condition)
    tables.append(
        ReportTable(
            "volume_by_condition",
            f"By condition, {quarter}",
            by_cond,
            "A patient with episodes for two conditions counts once in the total. Sessions "
            f"that could not be linked to an episode are shown as '{UNLINKED}'.",
            audit=(sup_cond,),
        )
    )
    figures = []
    if clinic is None:
        by_clinic, sup_clinic = _volume_table(data, quarter, clinic, "clinic_id")
        tables.append(
            ReportTable(
                "volume_by_clinic",
                f"By clinic, {quarter}",
                by_clinic,
                "",
                audit=(sup_clinic,),
            )
        )
        tables.append(_condition_by_clinic(data, quarter))
        pub = sup_clinic.published().drop(index="Total")
        cols = ["Episodes active", f"Episodes active, {prev}"]
        fig, caption = _bar_figure(
            pub[cols].rename(columns={"Episodes active": cur, cols[1]: prev}),
            "Episodes active by clinic",
            "Episodes",
            {c: [str(i) for i in pub.index[pub[c].isna()]] for c in cols},
        )
        figures.append(ReportFigure("volume_by_clinic", "Episodes by clinic", fig, caption))
    return Section(
        "volume",
        "Volume",
        f"How many patients the {'clinic' if clinic else 'network'} treated in {quarter.label}, "
        f"and how much iontophoresis it gave, against {prev}.",
        tables=tuple(tables),
        figures=tuple(figures),
        values={
            "patients": int(raw.loc["Patients", cur]),
            "episodes": int(raw.loc["Episodes active", cur]),
            "new_episodes": int(raw.loc["New episodes", cur]),
            "visits": int(raw.loc["Visits", cur]),
            "sessions": int(raw.loc["Iontophoresis sessions", cur]),
            "dose_mA_min": float(raw.loc["Delivered dose (mA·min)", cur]),
            "previous": raw[prev].to_dict(),
        },
    )


def _condition_by_clinic(data: ReportData, quarter: Quarter) -> ReportTable:
    ids = active_episode_ids(data, quarter)
    ep = data.episodes[data.episodes["episode_id"].isin(ids)]
    body = pd.crosstab(ep["condition"], ep["clinic_id"])
    body = body.reindex(sorted(body.index, key=_order("condition")))
    sup = suppress_counts(body, total_row=True, total_col=True)
    shown = sup.display()
    shown.index.name = "condition"
    return ReportTable(
        "condition_by_clinic",
        f"Episodes active by condition and clinic, {quarter}",
        shown,
        "",
        audit=(sup,),
    )


# --------------------------------------------------------------------------- outcomes


def outcome_stats(data: ReportData, cohort: pd.DataFrame) -> pd.DataFrame:
    """Per (condition, instrument): n, baseline mean, mean change and CI, responders."""
    cols = ["condition", "instrument", "n", "baseline", "change", "ci_low", "ci_high"]
    cols += ["improvement", "responders", "mcid"]
    if cohort.empty:
        return pd.DataFrame(columns=cols)
    out = data.outcomes[data.outcomes["episode_id"].isin(set(cohort["episode_id"]))]
    rows = []
    for condition, eps in cohort.groupby("condition"):
        for inst in ("nprs", CONDITION_INSTRUMENT.get(str(condition), "lefs")):
            o = out[(out["instrument"] == inst) & out["episode_id"].isin(set(eps["episode_id"]))]
            if o.empty:
                continue
            ch = change_from_baseline(o, windows=("discharge",), instrument=inst)
            r = mcid_responders(ch, eps).dropna(subset=["change"])
            n = len(r)
            if not n:
                continue
            mean = float(r["change"].mean())
            half = (
                float(stats.t.ppf(0.975, n - 1) * r["change"].std(ddof=1) / math.sqrt(n))
                if n > 1
                else math.nan
            )
            rows.append(
                {
                    "condition": condition,
                    "instrument": inst,
                    "n": n,
                    "baseline": float(r["baseline"].mean()),
                    "change": mean,
                    "ci_low": mean - half,
                    "ci_high": mean + half,
                    "improvement": float(r["improvement"].mean()),
                    "responders": int(r["responder"].fillna(False).sum()),
                    "mcid": float(r["mcid_threshold"].median()),
                }
            )
    return pd.DataFrame(rows, columns=cols)


def _responder_text(x: int, n: int) -> str:
    if small([n])[0] or small([x])[0] or small([n - x])[0]:
        return cell_mark(x if small([x])[0] or not small([n])[0] else n)
    lo, hi = wilson_interval(x, n)
    return f"{fmt_pct(x / n, 0)} ({fmt_pct(lo, 0)} to {fmt_pct(hi, 0)})"


def outcomes_section(data: ReportData, quarter: Quarter, clinic: str | None = None) -> Section:
    """Baseline to latest change by condition, MCID responders, vs last quarter and trials.

    Returns
    -------
    Section
        ``values["current"]`` / ``values["previous"]``: the unsuppressed statistics.
    """
    cur = outcome_stats(data, outcome_cohort(data, quarter, clinic))
    prev = outcome_stats(data, outcome_cohort(data, quarter.previous(), clinic))
    merged = cur.merge(
        prev, on=["condition", "instrument"], how="outer", suffixes=("", "_prev")
    ).sort_values(["condition", "instrument"], key=lambda s: s.map(_order("condition")) if
                  s.name == "condition" else s.map(lambda k: (k != "nprs", k)))  # fmt: skip
    rows = []
    for _, r in merged.iterrows():
        inst = get_instrument(str(r["instrument"]))
        hid = bool(pd.isna(r["n"]) or small([r["n"]])[0])
        hid_p = bool(pd.isna(r["n_prev"]) or small([r["n_prev"]])[0])

        def show(v: str, hidden: bool) -> str:
            return SUPPRESSED_TEXT if hidden else v

        rows.append(
            {
                "condition": r["condition"],
                "instrument": f"{inst.name} ({'higher' if inst.higher_is_better else 'lower'} "
                "is better)",
                "episodes": "0" if pd.isna(r["n"]) else show(f"{int(r['n']):,}", hid),
                "baseline mean": show(fmt_num(r["baseline"]), hid),
                "mean change (95% CI)": show(
                    f"{fmt_num(r['change'])} ({fmt_ci(r['ci_low'], r['ci_high'])})", hid
                ),
                "MCID responders (95% CI)": "–"
                if pd.isna(r["n"])
                else _responder_text(int(r["responders"]), int(r["n"])),
                "MCID": show(fmt_num(r["mcid"]), hid),
                f"episodes {quarter.previous()}": "0"
                if pd.isna(r["n_prev"])
                else show(f"{int(r['n_prev']):,}", hid_p),
                f"mean change {quarter.previous()}": show(fmt_num(r["change_prev"]), hid_p),
                f"responders {quarter.previous()}": "–"
                if pd.isna(r["n_prev"])
                else _responder_text(int(r["responders_prev"]), int(r["n_prev"])),
            }
        )
    table = pd.DataFrame(rows).set_index("condition") if rows else pd.DataFrame()
    tables = [
        ReportTable(
            "outcomes_by_condition",
            f"Change from baseline to the latest score, episodes discharged in {quarter}",
            table,
            "Change = latest score after day 7 − baseline (day ≤ 7), in the instrument's own "
            "units and direction. Responder: improved by at least the MCID (instrument "
            "registry, with its source). Statistics from fewer than 11 episodes, and "
            "responder shares whose responders or non-responders number fewer than 11, are "
            "hidden.",
        ),
        _trials_table(cur),
    ]
    figures = []
    nprs = cur[(cur["instrument"] == "nprs") & ~small(cur["n"])] if len(cur) else cur
    if len(nprs):
        nprs_prev = prev[(prev["instrument"] == "nprs") & ~small(prev["n"])] if len(prev) else prev
        fig = go.Figure()
        for label, frame in ((str(quarter), nprs), (str(quarter.previous()), nprs_prev)):
            if len(frame):
                imp = -frame["change"]
                fig.add_trace(
                    go.Bar(
                        x=[wrap_label(display_name(c)) for c in frame["condition"]],
                        y=imp,
                        name=label,
                        error_y={
                            "type": "data",
                            "array": frame["ci_high"] - frame["change"],
                            "arrayminus": frame["change"] - frame["ci_low"],
                        },
                    )
                )
        fig.update_layout(
            template=TEMPLATE,
            title={"text": "NPRS pain: mean improvement from baseline to the latest score"},
            yaxis_title="Points on NPRS 0-10 (higher = more relief)",
            barmode="group",
            height=420,
            legend_title_text="Discharged in",
        )
        fit_axis_titles(fig)
        figures.append(
            ReportFigure(
                "outcomes_nprs",
                "Pain relief by condition",
                fig,
                "Improvement = baseline − latest NPRS score (the table's mean change with its "
                "sign reversed: a change of −2.1 is an improvement of 2.1). Error bars: 95% CI.",
            )
        )
    return Section(
        "outcomes",
        "Outcomes by condition",
        f"How much patients discharged in {quarter.label} improved, by condition: the mean "
        "change from their first to their latest score with its 95% confidence interval, and "
        "the share who improved by at least the minimal clinically important difference "
        "(MCID), against the previous quarter and beside the published trials.",
        tables=tuple(tables),
        figures=tuple(figures),
        notes=(TRIAL_CAVEAT,),
        values={"current": cur, "previous": prev},
    )


def _trials_table(cur: pd.DataFrame) -> ReportTable:
    rows = []
    for t in TRIALS:
        conds = t["conditions"].split()
        ours = []
        for c in conds:
            part = cur[(cur["condition"] == c) & (cur["instrument"] == "nprs")] if len(cur) else cur
            if len(part) and not small(part["n"])[0]:
                imp = -float(part["change"].iloc[0])
                ours.append(f"{c}: NPRS −{imp:.1f} points (≈ {10 * imp:.0f} mm on a 100 mm scale)")
            else:
                ours.append(f"{c}: fewer than 11 episodes (or none) discharged")
        rows.append(
            {
                "trial": t["trial"],
                "design": t["design"],
                "published result (iontophoresis vs placebo)": t["result"],
                "this quarter, all arms": "; ".join(ours),
            }
        )
    frame = pd.DataFrame(rows).set_index("trial")
    return ReportTable(
        "published_trials",
        "Published trials beside this quarter",
        frame,
        "The clinic column pools every arm (with and without iontophoresis) over the whole "
        "episode; the trials report the difference iontophoresis made within days to weeks. "
        "NPRS points × 10 only roughly matches mm on a VAS.",
    )
