"""The report's *Combinations* section: adjusted arm comparisons and the clinic funnel.

* **Comparisons**: iontophoresis + exercise (+ manual therapy) against exercise (+ manual
  therapy), per condition on its own instrument at week 6, by ANCOVA with IPTW beside it
  (:func:`ionto_analytics.compare.command.compare_frames`: clinic fixed effects and HC2
  variance below 20 clinics). A quarter holds too few discharged episodes per arm for a
  stable contrast, so the cohort is the episodes **discharged in the four quarters ending
  with the report's quarter** (said in the section). A contrast with fewer than 11
  episodes in an arm is not shown. The p-values are Holm-adjusted across the contrasts
  shown for each method (:func:`holm`), and the comparisons are called exploratory. Each
  shown contrast carries its E-value (:func:`e_value_text`: for the estimate and for the
  95 % limit nearest no difference, from the result's ``e_value`` and ``e_value_ci``) with
  a one-line reading in the table note (:data:`E_VALUE_NOTE`).
* **Funnel**: risk-adjusted NPRS improvement at discharge per clinic, for the episodes
  discharged in the quarter (:func:`quarter_funnel`, which notebook 01 shows too); clinics
  with fewer than 11 such episodes are not plotted.

Examples
--------
>>> plain_reading(-6.0, -9.0, -3.0, "prtee", ("ionto+exercise", "exercise"), 11.0)[:63]
'Patients who also had iontophoresis improved by 6.0 points more'
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from data_schemas.windows import window_text
from ionto_analytics.compare.command import compare_frames
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.errors import InputError, StatisticalWarning
from ionto_analytics.funnel import ClinicFunnel, clinic_funnel
from ionto_analytics.instruments import get_instrument, select_mcid
from ionto_analytics.plots import arm_label, forest_figure, instrument_short_name
from ionto_analytics.plots.style import display_name
from ionto_analytics.report.brief import plural
from ionto_analytics.report.data import ReportData
from ionto_analytics.report.model import (
    ReportFigure,
    ReportTable,
    Section,
    fmt_ci,
    fmt_num,
    readable_note,
)
from ionto_analytics.report.quarter import Quarter
from ionto_analytics.report.sections import discharged_in, outcome_cohort
from ionto_analytics.suppression import SUPPRESSED_TEXT, THRESHOLD

__all__ = [
    "ARM_PAIRS",
    "COMPARISONS",
    "E_VALUE_NOTE",
    "FUNNEL_INSTRUMENT",
    "combinations_section",
    "e_value_text",
    "funnel_limits_text",
    "holm",
    "plain_reading",
    "quarter_funnel",
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
FUNNEL_INSTRUMENT = "nprs"
"""The funnel's instrument: NPRS is scored at every visit of every condition."""
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
        f"{inst.name} than similar patients with {arm_label(arms[1]).lower()} alone; {sure}. "
        "For scale, the "
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
                inst = get_instrument(instrument)
                added = f"Iontophoresis added to {arm_label(arms[1]).lower()}"
                base = {
                    "condition": condition,
                    "instrument": f"{instrument_short_name(instrument)} "
                    f"({inst.direction} is better)",
                    "comparison": added,
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
                notes += [readable_note(x) for x in rep.notes]
                notes += [
                    f"{display_name(condition)}, {added.lower()}, {label}: "
                    + readable_note(str(w.message))
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
                        "label": f"{display_name(condition)}, {instrument_short_name(instrument)}"
                        f": added to {arm_label(arms[1]).lower()} · {label}",
                        "contrast": f"{arms[0]} − {arms[1]}",
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
    if len(frame):  # the reading, the longest text, last
        order = [c for c in frame.columns if c != "reading"] + ["reading"]
        frame = frame[order].set_index("condition").fillna("–")
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
            "(observational, several contrasts), not confirmatory tests. The forest plot "
            "below keeps this sign, with one panel per instrument direction. " + E_VALUE_NOTE,
        )
    ]
    figures = []
    if published:
        fig = forest_figure(
            pd.DataFrame(published),
            title="Iontophoresis added vs not (estimate and 95% CI)",
            xaxis_title="Difference in mean change (points), with − without iontophoresis",
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


def quarter_funnel(
    episodes: pd.DataFrame, outcomes: pd.DataFrame, quarter: str | Quarter
) -> ClinicFunnel:
    """The report's clinic funnel: risk-adjusted NPRS improvement at discharge, every clinic.

    The episodes discharged in the quarter (the report's outcome cohort, over the whole
    network: clinics are compared with each other), their NPRS at intake and at discharge
    (:func:`data_schemas.windows.window_text`), through
    :func:`ionto_analytics.funnel.clinic_funnel`. Notebook 01 calls this too, so the
    notebook and the report flag the same clinics for the same quarter.

    Parameters
    ----------
    episodes, outcomes : DataFrame
        Frames of :mod:`ionto_analytics.loaders`; not modified.
    quarter : str or Quarter
        ``"2025Q4"``; :func:`ionto_analytics.report.report_quarter` gives the report's
        default (the latest complete quarter).

    Returns
    -------
    ClinicFunnel
        With ``cohort`` "episodes discharged in <quarter>".

    Raises
    ------
    InputError
        Too few discharged episodes with an NPRS at intake and after it.
    """
    q = quarter if isinstance(quarter, Quarter) else Quarter.parse(quarter)
    cohort = discharged_in(episodes, q)
    o = outcomes[
        (outcomes["instrument"] == FUNNEL_INSTRUMENT)
        & outcomes["episode_id"].isin(set(cohort["episode_id"]))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the case-mix fit's caveats do not change O − E
        funnel = clinic_funnel(cohort, o, FUNNEL_INSTRUMENT, "discharge")
    return replace(funnel, cohort=f"episodes discharged in {q}")


def _funnel(data: ReportData, quarter: Quarter, clinic: str | None):
    try:
        funnel = quarter_funnel(data.episodes, data.outcomes, quarter)
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
        f"Clinics: risk-adjusted NPRS improvement, {window_text('discharge')}, {funnel.cohort}",
        pd.DataFrame(rows).set_index("clinic"),
        "Expected = what the network-wide case-mix model (baseline, age, sex, symptom "
        "duration, arm, condition) predicts for the clinic's patients; positive O − E = "
        "more improvement than expected. Points outside the 99.8% limits are unlikely to "
        "be chance. Clinics with fewer than 11 episodes are not plotted.",
    )
    fig = None
    if len(shown):
        fig = funnel.plot()
        if clinic is not None and clinic in set(shown["clinic_id"]):
            row = shown[shown["clinic_id"] == clinic].iloc[0]
            fig.add_annotation(
                x=row["n"], y=row["difference"], text="this clinic", showarrow=True, ay=-40
            )
        not_drawn = (
            f" {plural(len(hidden), 'clinic')} with fewer than 11 episodes not drawn."
            if len(hidden)
            else ""
        )
        fig = ReportFigure(
            "clinic_funnel", "Clinic funnel plot", fig, funnel_limits_text(funnel) + not_drawn
        )
    return table, fig, funnel


def funnel_limits_text(funnel: ClinicFunnel) -> str:
    """How the funnel's control limits are computed, in one paragraph for the reader.

    Examples
    --------
    >>> import pandas as pd
    >>> f = ClinicFunnel(pd.DataFrame(), pd.DataFrame(), "nprs", "discharge", 1.9, "f")
    >>> text = funnel_limits_text(f)
    >>> "1.96·σ/√n" in text, "3.09·σ/√n" in text, "σ = 1.90 points" in text
    (True, True, True)
    """
    z95, z998 = (float(stats.norm.ppf(1 - (1 - level) / 2)) for level in (0.95, 0.998))
    return (
        "How the limits are drawn: one linear model of the improvement on the baseline score, "
        "age, sex, symptom duration, arm and condition is fitted to the episodes of every "
        "clinic together (no clinic term), which gives each episode the improvement expected "
        "for a patient like it. A clinic's point is its mean observed minus its mean expected "
        "improvement (O − E), against its number of episodes n. If all clinics were alike, "
        f"O − E would vary by chance alone with standard error σ/√n (σ = {funnel.sigma:.2f} "
        "points, the model's residual standard deviation), so the limits are "
        f"0 ± {z95:.2f}·σ/√n (dashed: 95% of clinics fall inside by chance) and "
        f"0 ± {z998:.2f}·σ/√n (solid: 99.8%), and narrow as volume grows (Spiegelhalter, "
        "Stat Med 2005). Outside the 95% limits one clinic in 20 would be by chance; outside "
        "the 99.8% limits, one in 500."
    )
