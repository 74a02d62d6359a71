"""Device quality, safety and data quality sections of the quarterly report.

Definitions as in :mod:`ionto_analytics.report.sections` (sessions started in the quarter,
UTC date; episodes of the chosen clinic). Every count is suppressed with
:func:`ionto_analytics.suppression.suppress_counts`; shares and rates inherit it.

Examples
--------
>>> from data_schemas import store
>>> from ionto_analytics.report.data import load_report_data
>>> from ionto_analytics.report.quarter import Quarter
>>> engine = store.connect("sqlite://"); store.upgrade(engine)
>>> data_quality_section(load_report_data(engine), Quarter(2025, 3)).title
'Data quality'
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from data_schemas.vocabulary import CONTRAINDICATIONS
from ionto_analytics.devices import dose_delivery, rate_ci
from ionto_analytics.plots import pareto_figure
from ionto_analytics.plots.style import fault_label
from ionto_analytics.report.data import ReportData
from ionto_analytics.report.model import (
    ReportFigure,
    ReportTable,
    Section,
    fmt_ci,
    fmt_num,
    fmt_pct,
    mask_small_numbers,
)
from ionto_analytics.report.quarter import Quarter
from ionto_analytics.report.sections import in_clinic, sessions_in
from ionto_analytics.suppression import (
    COMPLEMENTARY_TEXT,
    SUPPRESSED_TEXT,
    THRESHOLD,
    cell_mark,
    count_label,
    small,
    suppress_counts,
)

__all__ = ["data_quality_section", "device_section", "safety_section"]


# --------------------------------------------------------------------------- devices


def device_section(data: ReportData, quarter: Quarter, clinic: str | None = None) -> Section:
    """Faults by device model, early ends, current limiting and wrong polarity in the quarter."""
    s = sessions_in(data, quarter, clinic)
    d = dose_delivery(s) if len(s) else s.assign(ended_early=pd.Series(dtype="boolean"))
    g = d.groupby("device_model")
    body = pd.DataFrame(
        {
            "Sessions": g.size(),
            "With a prescribed dose": g["ended_early"].count(),
            "Ended before the prescribed dose": g["ended_early"].sum(),
            "Current limited": g["current_limited"].sum(),
            "Wrong polarity": g["wrong_polarity"].sum(),
            "With any fault code": g["fault_codes"].count(),
        }
    ).astype("int64")
    sup = suppress_counts(body, total_row=True)
    shown = sup.display()
    pub = sup.published()
    for col, den in (
        ("Ended before the prescribed dose", "With a prescribed dose"),
        ("Current limited", "Sessions"),
        ("Wrong polarity", "Sessions"),
        ("With any fault code", "Sessions"),
    ):
        hidden = sup.mask[col].to_numpy() | sup.mask[den].to_numpy()
        share = sup.values[col] / sup.values[den].replace(0, np.nan)
        shown[col] = [
            c if m else f"{c} ({COMPLEMENTARY_TEXT})" if h else f"{c} ({fmt_pct(p)})"
            for c, p, h, m in zip(shown[col], share, hidden, sup.mask[col], strict=True)
        ]
    shown.index.name = "device model"
    tables = [
        ReportTable(
            "device_quality",
            f"Device quality by model, sessions started in {quarter}",
            shown,
            "Ended before the prescribed dose: delivered less than 95% of the prescribed "
            "mA·min. Share in brackets.",
            audit=(sup,),
        )
    ]
    faults = s[["device_model", "fault_codes"]].copy()
    faults["fault_code"] = faults["fault_codes"].fillna("").astype(str).str.split(";")
    faults = faults.explode("fault_code")
    faults = faults[faults["fault_code"].notna() & (faults["fault_code"] != "")]
    figures = []
    if len(faults):
        body2 = pd.crosstab(faults["device_model"], faults["fault_code"].map(fault_label))
        order = body2.sum().sort_values(ascending=False).index
        sup2 = suppress_counts(body2[order], total_row=True, total_col=True)
        shown2 = sup2.display()
        shown2.index.name = "device model"
        tables.append(
            ReportTable(
                "faults_by_model",
                f"Fault codes by device model, {quarter} (sessions raising each code)",
                shown2,
                "A session with two codes counts under each; 'Total' column = code occurrences.",
                audit=(sup2,),
            )
        )
        published = sup2.published().loc["Total"]
        totals = published.drop("Total").dropna()
        all_faults = published["Total"]
        if len(totals) and pd.notna(all_faults):
            par = pd.DataFrame({"fault_code": totals.index, "n_faults": totals.to_numpy(int)})
            other = int(all_faults) - int(totals.sum())
            fig = pareto_figure(
                par,
                other=other,
                title="Fault codes, most frequent first, and their cumulative share",
            )
            figures.append(
                ReportFigure(
                    "fault_pareto",
                    "Fault Pareto",
                    fig,
                    f"All {int(all_faults):,} fault occurrences: the cumulative share is of all "
                    "of them. Codes hidden in the table are drawn together as 'other codes'."
                    if other
                    else f"All {int(all_faults):,} fault occurrences.",
                )
            )
    return Section(
        "devices",
        "Device quality",
        "How the devices behaved: sessions that stopped before the prescribed dose, hit the "
        "current limit, were set up with the wrong electrode polarity for the drug, or raised "
        "fault codes.",
        tables=tuple(tables),
        figures=tuple(figures),
        values={"counts": body, "pub": pub},
    )


# --------------------------------------------------------------------------- safety

_SKIN = ("erythema", "vesicles", "burn")


def safety_section(data: ReportData, quarter: Quarter, clinic: str | None = None) -> Section:
    """Skin reactions and burns per 1,000 sessions; contraindication screening gaps."""
    s = sessions_in(data, quarter, clinic)
    skin = s["skin_check_after"].astype(object)
    checked = s[skin.notna().to_numpy() & (skin != "not_checked").to_numpy()]
    body = pd.crosstab(checked["device_model"], checked["skin_check_after"])
    body = body.reindex(columns=list(_SKIN), fill_value=0)
    sup = suppress_counts(body, total_row=True, total_col=True)
    shown = sup.display().rename(columns={"Total": "Any skin reaction"})
    n_checked = checked.groupby("device_model").size().reindex(body.index).fillna(0)
    sup_n = suppress_counts(n_checked.to_frame("Sessions with the skin checked").astype("int64"))
    shown.insert(0, "Sessions with the skin checked", sup_n.display().iloc[:, 0])
    shown.index.name = "device model"
    tables = [
        ReportTable(
            "skin_by_model",
            f"Skin under the pads after the session, {quarter}",
            shown,
            "Counts of sessions. Sessions whose skin was not checked are left out of the "
            f"denominator ({count_label(int((~skin.isin([*_SKIN, 'normal'])).sum()))} this "
            "quarter).",
            audit=(sup, sup_n),
        )
    ]
    # rates per 1,000 checked sessions (network / clinic level), from the published totals
    total_row = sup.values.loc["Total"]
    n = int(sup_n.values.iloc[-1, 0])
    n_hidden = bool(sup_n.mask.iloc[-1, 0])
    rate_rows = []
    for col, label in zip(
        (*_SKIN, "Total"), ("Erythema", "Vesicles", "Burn", "Any skin reaction"), strict=True
    ):
        x = int(total_row[col])
        hidden = bool(sup.mask.loc["Total", col]) or n_hidden
        rate, lo, hi = rate_ci(x, n) if n else (math.nan,) * 3
        if hidden:
            bound = rate_ci(THRESHOLD - 1, n)[2] if n >= THRESHOLD else math.nan
            rate_rows.append(
                {
                    "event": label,
                    "sessions": cell_mark(x),
                    "per 1,000 checked sessions": cell_mark(x),
                    "95% CI": f"upper bound ≤ {fmt_num(bound)}" if n >= THRESHOLD else "–",
                }
            )
        else:
            rate_rows.append(
                {
                    "event": label,
                    "sessions": f"{x:,}",
                    "per 1,000 checked sessions": fmt_num(rate),
                    "95% CI": fmt_ci(lo, hi),
                }
            )
    rates = pd.DataFrame(rate_rows).set_index("event")
    tables.append(
        ReportTable(
            "skin_rates",
            "Skin reactions and burns per 1,000 sessions (exact 95% CI)",
            rates,
            "Denominator: sessions whose skin was checked afterwards. When the count is "
            "hidden, the upper bound is the exact 95% limit for 10 events, which holds for "
            "any hidden count.",
        )
    )
    tables.append(_adverse_table(data, quarter, clinic))
    screen, _screen_sup, gaps = _screening(data, quarter, clinic)
    tables.append(screen)
    return Section(
        "safety",
        "Safety",
        "Skin reactions and burns under the electrodes, recorded adverse events, and whether "
        "patients were screened for contraindications before iontophoresis (pacemaker or "
        "implant, pregnancy, drug hypersensitivity, broken skin, impaired sensation).",
        tables=tuple(tables),
        notes=(
            "Screening gaps are not necessarily harms: a positive answer may have been "
            "weighed by the clinician. They are listed so each can be reviewed.",
        ),
        values={"skin": body, "checked": n, "screening": gaps},
    )


def _adverse_table(data: ReportData, quarter: Quarter, clinic: str | None) -> ReportTable:
    eps = set(in_clinic(data.episodes, clinic)["episode_id"])
    ae = data.adverse_events
    ae = ae[ae["episode_id"].isin(eps) & quarter.contains(ae["onset_date"]).to_numpy()]
    body = pd.crosstab(ae["event_type"], ae["grade"].map(lambda g: f"grade {g}"))
    if body.empty:
        body = pd.DataFrame({"events": pd.Series(dtype="int64")})
    sup = suppress_counts(body.astype("int64"), total_row=True, total_col=len(body.columns) > 1)
    shown = sup.display()
    shown.index.name = "event type"
    return ReportTable(
        "adverse_events",
        f"Adverse events recorded with onset in {quarter}",
        shown,
        "Grades: 1 erythema < 24 h; 2 > 24 h or vesicles; 3 burn.",
        audit=(sup,),
    )


def _screening(data: ReportData, quarter: Quarter, clinic: str | None):
    s = sessions_in(data, quarter, clinic)
    iv = data.interventions[data.interventions["modality"] == "iontophoresis"]
    v = data.visits[quarter.contains(data.visits["visit_date"]).to_numpy()]
    iv = iv[iv["visit_id"].isin(set(v["visit_id"]))]
    scope = set(in_clinic(data.episodes, clinic)["episode_id"])
    ids = (set(s["episode_id"].dropna()) | set(iv["episode_id"])) & scope
    sc = data.screening[data.screening["episode_id"].isin(ids)]
    body = pd.DataFrame(
        {
            "Screened positive": [int(sc[c].fillna(False).sum()) for c in CONTRAINDICATIONS],
            "Screened negative": [int((sc[c] == False).sum()) for c in CONTRAINDICATIONS],  # noqa: E712
            "Not recorded": [int(sc[c].isna().sum()) for c in CONTRAINDICATIONS],
        },
        index=[c.replace("_", " ") for c in CONTRAINDICATIONS],
    )
    sup = suppress_counts(body, total_row=False, total_col=True)
    shown = sup.display().rename(columns={"Total": "Episodes given iontophoresis"})
    shown.index.name = "screening item"
    key = ["pacemaker_or_implant", "pregnancy", "drug_hypersensitivity"]
    any_pos = int(sc[key].fillna(False).any(axis=1).sum())
    any_missing = int(sc[list(CONTRAINDICATIONS)].isna().any(axis=1).sum())
    note = (
        f"Episodes given iontophoresis in {quarter} (a device session or a 97033 line). "
        "Screened positive for a pacemaker/implant, pregnancy or drug hypersensitivity on "
        f"any of the three: {SUPPRESSED_TEXT if small([any_pos])[0] else f'{any_pos:,}'}; "
        "with at least one screening item not recorded: "
        f"{SUPPRESSED_TEXT if small([any_missing])[0] else f'{any_missing:,}'}. "
    )
    gaps = {"episodes": len(sc), "any_positive": any_pos, "any_missing": any_missing}
    return (
        ReportTable("screening", "Contraindication screening of iontophoresis episodes", shown,
                    note, audit=(sup,)),
        sup,
        gaps,
    )  # fmt: skip


# --------------------------------------------------------------------------- data quality


def data_quality_section(data: ReportData, quarter: Quarter, clinic: str | None = None) -> Section:
    """Files imported and quarantined (this quarter and all time); unlinked sessions."""
    led = data.ledger
    in_q = quarter.contains(led["imported_at_utc"]).to_numpy() if len(led) else np.array([], bool)

    def files(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.crosstab(frame["format"], frame["status"]).reindex(
            columns=["imported", "quarantined"], fill_value=0
        )

    allt = files(led)
    q = files(led[in_q]).reindex(allt.index, fill_value=0)
    table = pd.DataFrame(
        {
            f"imported in {quarter}": q["imported"],
            f"quarantined in {quarter}": q["quarantined"],
            "imported, all time": allt["imported"],
            "quarantined, all time": allt["quarantined"],
            "rows stored, all time": led.groupby("format")["row_count"].sum(),
        }
    ).fillna(0)
    if len(table):
        table.loc["Total"] = table.sum()
    shown = table.astype("int64").map(lambda x: f"{x:,}") if len(table) else table
    shown.index.name = "file format"
    links = in_clinic(data.session_links, clinic)
    lq = links[quarter.contains(links["started_at_utc"]).to_numpy()]
    body = pd.DataFrame(
        {
            f"Sessions started in {quarter}": lq.groupby("device_model").size(),
            f"Unlinked, {quarter}": lq[lq["link_status"] == "unlinked"]
            .groupby("device_model")
            .size(),
            "Unlinked, all time": links[links["link_status"] == "unlinked"]
            .groupby("device_model")
            .size(),
        }
    )
    body = body.fillna(0).astype("int64")
    sup = suppress_counts(body, total_row=True)
    shown_links = sup.display()
    shown_links.index.name = "device model"
    warnings = tuple(mask_small_numbers(w) for w in data.load_warnings)
    return Section(
        "data_quality",
        "Data quality",
        "What came into the store and what could not be used. Import dates are when files "
        "were imported (a demo store imports everything 'now'), so all-time figures are shown "
        "too. File counts are not counts of people and are not suppressed; the ledger is "
        "network-wide even in a clinic's report.",
        tables=(
            ReportTable("import_ledger", "Files in the import ledger", shown),
            ReportTable(
                "unlinked_sessions",
                "Device sessions not linked to a visit",
                shown_links,
                "An unlinked session matched no visit by encounter, device, date and time; it "
                "counts in device quality but not in any patient's outcomes.",
                audit=(sup,),
            ),
        ),
        notes=warnings or ("The loader left no row out of the analysis frames.",),
        values={"ledger": table, "unlinked": body},
    )
