"""The report's *Combinations* section: adjusted arm comparisons and the clinic funnel.

* **Comparisons**: iontophoresis + exercise (+ manual therapy) against exercise (+ manual
  therapy), per condition on its own instrument at week 6, by ANCOVA with IPTW beside it
  (:func:`ionto_analytics.compare.command.compare_frames`: clinic fixed effects and HC3
  variance below 20 clinics). A quarter holds too few discharged episodes per arm for a
  stable contrast, so the cohort is the episodes **discharged in the four quarters ending
  with the report's quarter** (said in the section). A contrast with fewer than 11
  episodes in an arm is not shown. The p-values are Holm-adjusted across the contrasts
  shown for each method (:func:`holm`), and the comparisons are called exploratory. Each
  shown contrast carries its E-value (:func:`e_value_text`: for the estimate and for the
  95 % limit nearest no difference, from the result's ``e_value`` and ``e_value_ci``) with
  a one-line reading in the table note (:data:`E_VALUE_NOTE`).
* **Funnel**: risk-adjusted NPRS improvement at discharge per clinic, for the episodes
  discharged in the quarter (:func:`ionto_analytics.funnel.clinic_funnel`); clinics
  with fewer than 11 such episodes are not plotted.

Examples
--------
>>> plain_reading(-6.0, -9.0, -3.0, "prtee", ("ionto+exercise", "exercise"), 11.0)[:63]
'Patients who also had iontophoresis improved by 6.0 points more'
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from ionto_analytics.compare.command import compare_frames
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.funnel import clinic_funnel
from ionto_analytics.instruments import get_instrument, select_mcid
from ionto_analytics.plots import forest_figure, funnel_figure
from ionto_analytics.report.data import ReportData
from ionto_analytics.report.model import (
    ReportFigure,
    ReportTable,
    Section,
    fmt_ci,
    fmt_num,
    mask_small_numbers,
)
from ionto_analytics.report.quarter import Quarter
from ionto_analytics.report.sections import outcome_cohort
from ionto_analytics.suppression import SUPPRESSED_TEXT, THRESHOLD

__all__ = [
    "ARM_PAIRS",
    "COMPARISONS",
    "E_VALUE_NOTE",
    "combinations_section",
    "e_value_text",
    "holm",
    "plain_reading",
]

COMPARISONS: tuple[tuple[str, str], ...] = (
    ("epicondylitis", "prtee"),
    ("plantar_fasciitis", "ffi"),
    ("achilles_tendinopathy", "visa_a"),
)
"""(condition or family, instrument) pairs compared."""

ARM_PAIRS: tuple[tuple[str, str], ...] = (
    ("ionto+exercise", "exercise"),
    ("ionto+exercise+manual", "exercise+manual"),
)
"""Arms compared: with iontophoresis first."""

WEEK = 6
METHODS = (("ancova", "ANCOVA"), ("iptw", "IPTW"))


def holm(p_values: pd.Series, family: pd.Series) -> pd.Series:
    """Holm-adjusted p-values within each ``family`` (the report's estimation method).

    Examples
    --------
    >>> p = pd.Series([0.01, 0.04, 0.03, 0.2])
    >>> holm(p, pd.Series(["ANCOVA", "ANCOVA", "ANCOVA", "IPTW"])).round(3).tolist()
    [0.03, 0.06, 0.06, 0.2]
    """
    out = pd.Series(np.nan, index=p_values.index)
    for _, idx in p_values.groupby(family).groups.items():
        out[idx] = multipletests(p_values[idx].to_numpy(), method="holm")[1]
    return out


E_VALUE_NOTE = (
    "E-value = how strongly an unmeasured factor would have to be tied to both the choice "
    "of iontophoresis and the outcome (as a risk ratio, beyond the factors adjusted for) to "
    "explain the difference away; the second figure is the same for the 95% limit nearest "
    "no difference (1 = no unmeasured factor is needed, the interval already includes no "
    "difference)."
)
"""The plain-language reading of the E-value column, one sentence under the table."""


def e_value_text(e_value: float, e_value_ci: float) -> str:
    """The E-value of the estimate and of the CI limit nearest the null, for a table cell.

    Examples
    --------
    >>> e_value_text(2.531, 1.4249)
    '2.53 (CI limit 1.42)'
    >>> e_value_text(1.31, 1.0), e_value_text(float("nan"), float("nan"))
    ('1.31 (CI limit 1)', '–')
    """
    if not np.isfinite(e_value):
        return "–"
    limit = "1" if e_value_ci == 1.0 else fmt_num(e_value_ci, 2)
    return f"{fmt_num(e_value, 2)} (CI limit {limit})"


def _p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def plain_reading(
    estimate: float,
    ci_low: float,
    ci_high: float,
    instrument: str,
    arms: tuple[str, str],
    mcid: float,
) -> str:
    """One sentence a clinician can read: who improved more, by how much, how sure.

    ``estimate`` is the difference in mean change, first arm − second arm, on the raw
    scale; it is turned into "improved more/less" with the instrument's direction. The MCID
    is given for scale only: it is the change an individual patient notices, not a threshold
    for a difference between group averages, and the sentence says so.

    Examples
    --------
    >>> text = plain_reading(-4.0, -9.0, 1.0, "prtee", ("ionto+exercise", "exercise"), 11.0)
    >>> "could be chance" in text, "not a threshold for a difference between" in text
    (True, True)
    """
    inst = get_instrument(instrument)
    sign = 1.0 if inst.higher_is_better else -1.0
    imp = sign * estimate
    lo, hi = sorted((sign * ci_low, sign * ci_high))
    more = "more" if imp >= 0 else "less"
    size = abs(imp)
    if lo > 0:
        sure = "the 95% interval excludes no difference"
    elif hi < 0:
        sure = "the 95% interval excludes no difference (iontophoresis arm did worse)"
    else:
        sure = "the 95% interval includes no difference, so this could be chance"
    return (
        f"Patients who also had iontophoresis improved by {size:.1f} points {more} on "
        f"{inst.name} than similar patients with {arms[1]} alone; {sure}. For scale, the "
        f"MCID is {mcid:g} points: the change one patient notices, not a threshold for a "
        "difference between group averages."
    )


def _comparisons(
    data: ReportData, cohort: pd.DataFrame
) -> tuple[pd.DataFrame, list[dict], list[str]]:
    rows: list[dict] = []
    published: list[dict] = []
    notes: list[str] = []
    in_window = data.outcomes[data.outcomes["episode_id"].isin(set(cohort["episode_id"]))]
    for condition, instrument in COMPARISONS:
        mcid = select_mcid(instrument, week=WEEK).points
        outcomes = in_window[in_window["instrument"] == instrument]
        for arms in ARM_PAIRS:
            pair = cohort[cohort["arm"].isin(arms)]
            pair_outcomes = outcomes[outcomes["episode_id"].isin(set(pair["episode_id"]))]
            for method, label in METHODS:
                base = {
                    "condition": condition,
                    "instrument": instrument,
                    "contrast": f"{arms[0]} − {arms[1]}",
                    "method": label,
                }
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        spec = ComparisonSpec(condition, instrument, arms, week=WEEK, method=method)
                        rep = compare_frames(pair, pair_outcomes, None, spec)
                except InputError:
                    rows.append({**base, "n": "–", "difference": "not estimable", "reading": ""})
                    continue
                r = rep.result
                n = [int(r.n.get(a, 0)) for a in arms]
                notes += [mask_small_numbers(x) for x in rep.notes]
                notes += [
                    f"{condition}, {base['contrast']}, {label}: "
                    + mask_small_numbers(str(w.message))
                    for w in caught
                    if not issubclass(w.category, StatisticalWarning)
                ]
                if min(n) < THRESHOLD:
                    rows.append(
                        {
                            **base,
                            "n": " / ".join(
                                SUPPRESSED_TEXT if 0 < k < THRESHOLD else f"{k:,}" for k in n
                            ),
                            "difference": "not shown: fewer than 11 episodes in an arm",
                            "reading": "",
                        }
                    )
                    continue
                rows.append(
                    {
                        **base,
                        "n": f"{n[0]:,} / {n[1]:,}",
                        "difference": (
                            f"{fmt_num(r.estimate, 2)} ({fmt_ci(r.ci_low, r.ci_high, 2)})"
                        ),
                        "p": _p_text(r.p_value),
                        "_p": r.p_value,
                        "E-value": e_value_text(r.e_value, r.e_value_ci),
                        "reading": plain_reading(
                            r.estimate, r.ci_low, r.ci_high, instrument, arms, mcid
                        ),
                    }
                )
                published.append(
                    {
                        "label": f"{condition} · {instrument} · {arms[0]} vs {arms[1]} · {label}",
                        "contrast": base["contrast"],
                        "instrument": instrument,
                        "method": label,
                        "estimate": r.estimate,
                        "ci_low": r.ci_low,
                        "ci_high": r.ci_high,
                    }
                )
    frame = pd.DataFrame(rows)
    if "_p" in frame.columns:
        shown = frame["_p"].notna()
        adjusted = holm(frame.loc[shown, "_p"], frame.loc[shown, "method"])
        frame.loc[shown, "p (Holm)"] = [_p_text(p) for p in adjusted]
        frame = frame.drop(columns="_p")
    if len(frame):
        frame = frame.set_index("condition").fillna("–")
    return frame, published, list(dict.fromkeys(notes))


def combinations_section(data: ReportData, quarter: Quarter, clinic: str | None = None) -> Section:
    """Adjusted comparisons of the combinations and the clinic funnel plot.

    Returns
    -------
    Section
        ``values["comparisons"]``: published estimates; ``values["funnel"]``: the
        :class:`~ionto_analytics.funnel.ClinicFunnel` (or None).
    """
    first = Quarter(quarter.year - 1, quarter.number).next()
    window = pd.concat(
        [
            outcome_cohort(data, q, clinic)
            for q in (first, first.next(), first.next().next(), quarter)
        ]
    ).drop_duplicates("episode_id")
    table, published, notes = _comparisons(data, window)
    tables = [
        ReportTable(
            "comparisons",
            f"Adjusted comparisons at week {WEEK}, episodes discharged {first} to {quarter}",
            table,
            "Difference = mean change with iontophoresis minus without, in the instrument's "
            "units (raw scale: for a lower-is-better instrument a negative difference favours "
            "iontophoresis), adjusted for baseline score, age, sex, symptom duration and "
            "clinic. ANCOVA: regression adjustment; IPTW: propensity weighting. n = episodes "
            "with iontophoresis / without. p (Holm) = p-value adjusted by Holm's method across "
            "the contrasts shown for the same method; these comparisons are exploratory "
            "(observational, several contrasts), not confirmatory tests. " + E_VALUE_NOTE,
        )
    ]
    figures = []
    if published:
        fig = forest_figure(
            pd.DataFrame(published),
            title="Iontophoresis added vs not (estimate and 95% CI)",
            xaxis_title="Difference in mean change, with − without iontophoresis "
            "(instrument units)",
        )
        figures.append(ReportFigure("comparisons_forest", "Comparisons", fig))
    funnel_table, funnel_fig, funnel = _funnel(data, quarter, clinic)
    if funnel_table is not None:
        tables.append(funnel_table)
    if funnel_fig is not None:
        figures.append(funnel_fig)
    caveat = (
        "These are observational comparisons: clinicians chose who had iontophoresis. The "
        "adjustment removes differences in the measured factors only; unmeasured reasons "
        "for choosing iontophoresis (e.g. more irritable tissue) can bias the estimate "
        "either way. Where ANCOVA and IPTW disagree, trust neither alone."
    )
    return Section(
        "combinations",
        "Treatment combinations",
        "Does adding iontophoresis to exercise (and manual therapy) go with better "
        "outcomes, once differences between the patients are adjusted for? And which "
        "clinics do better or worse than their case mix predicts?",
        tables=tuple(tables),
        figures=tuple(figures),
        notes=(caveat, *notes),
        values={"comparisons": published, "funnel": funnel, "n_window": len(window)},
    )


def _funnel(data: ReportData, quarter: Quarter, clinic: str | None):
    cohort = outcome_cohort(data, quarter)  # the whole network: clinics are compared
    o = data.outcomes
    o = o[(o["instrument"] == "nprs") & o["episode_id"].isin(set(cohort["episode_id"]))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the case-mix fit's caveats do not change O − E
            funnel = clinic_funnel(cohort, o, "nprs", "discharge")
    except InputError:
        return None, None, None
    c = funnel.clinics
    shown = c[c["n"] >= THRESHOLD]
    hidden = c[c["n"] < THRESHOLD]
    rows = []
    for _, r in c.iterrows():
        small = r["n"] < THRESHOLD
        rows.append(
            {
                "clinic": r["clinic_id"] + (" (this report)" if r["clinic_id"] == clinic else ""),
                "episodes": SUPPRESSED_TEXT if small else f"{int(r['n']):,}",
                "observed improvement": SUPPRESSED_TEXT if small else fmt_num(r["observed"], 2),
                "expected": SUPPRESSED_TEXT if small else fmt_num(r["expected"], 2),
                "observed − expected": SUPPRESSED_TEXT if small else fmt_num(r["difference"], 2),
                "position": SUPPRESSED_TEXT if small else (r["flag"] or "within 95% limits"),
            }
        )
    table = ReportTable(
        "clinic_funnel",
        f"Clinics: risk-adjusted NPRS improvement at discharge, {quarter}",
        pd.DataFrame(rows).set_index("clinic"),
        "Expected = what the network-wide case-mix model (baseline, age, sex, symptom "
        "duration, arm, condition) predicts for the clinic's patients; positive O − E = "
        "more improvement than expected. Points outside the 99.8% limits are unlikely to "
        "be chance. Clinics with fewer than 11 episodes are not plotted.",
    )
    fig = None
    if len(shown):
        from dataclasses import replace

        fig = funnel_figure(replace(funnel, clinics=shown.reset_index(drop=True)))
        if clinic is not None and clinic in set(shown["clinic_id"]):
            row = shown[shown["clinic_id"] == clinic].iloc[0]
            fig.add_annotation(
                x=row["n"], y=row["difference"], text="this clinic", showarrow=True, ay=-40
            )
        fig = ReportFigure(
            "clinic_funnel",
            "Clinic funnel plot",
            fig,
            f"{len(hidden)} clinic(s) with fewer than 11 episodes not drawn."
            if len(hidden)
            else "",
        )
    return table, fig, funnel
