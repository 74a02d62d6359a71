"""The explorer's callbacks, called directly: filters, trajectories, responder rates with
small-cell suppression, the plain-language reading and the ipywidgets front end
(ionto_analytics.explorer, plain_language and widgets)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy.optimize import linprog
from statsmodels.stats.proportion import proportion_confint

from ionto_analytics import explorer as X
from ionto_analytics.errors import InputError
from ionto_analytics.plain_language import reading
from ionto_analytics.widgets import Explorer


def _data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clinic c1: 60 lateral epicondylitis episodes (30 per arm); clinic c2: 8 episodes;
    6 plantar fasciitis episodes scored on FFI. PRTEE at day 0 and day 42."""
    rng = np.random.default_rng(3)
    rows, out = [], []
    for i in range(74):
        clinic = "c1" if i < 60 else "c2"
        cond = "plantar_fasciitis" if i >= 68 else "lateral_epicondylitis"
        arm = "ionto+exercise" if i % 2 else "exercise"
        eid = f"e{i:02d}"
        rows.append(
            {
                "episode_id": eid,
                "patient_id": f"p{i}",
                "clinic_id": clinic,
                "condition": cond,
                "arm": arm,
                "start_date": pd.Timestamp("2025-01-01") + pd.Timedelta(days=i),
            }
        )
        inst = "ffi" if cond == "plantar_fasciitis" else "prtee"
        base = float(rng.uniform(40, 70))
        drop = 20.0 if i % 3 else 2.0  # two thirds improve by 20 (> 11 and > 37 % of ≤ 54)
        out += [
            {"episode_id": eid, "instrument": inst, "score": base, "days_from_intake": 0},
            {"episode_id": eid, "instrument": inst, "score": base - drop, "days_from_intake": 42},
            {"episode_id": eid, "instrument": "nprs", "score": 6.0, "days_from_intake": 0},
        ]
    return pd.DataFrame(rows), pd.DataFrame(out)


def test_filter_episodes_by_clinic_condition_and_dates() -> None:
    ep, _ = _data()
    assert len(X.filter_episodes(ep, clinic="c2")) == 14
    assert len(X.filter_episodes(ep, condition="epicondylitis")) == 68
    got = X.filter_episodes(ep, start="2025-01-11", end="2025-01-20")
    assert got["episode_id"].tolist() == [f"e{i}" for i in range(10, 20)]
    with pytest.raises(InputError, match="unknown condition"):
        X.filter_episodes(ep, condition="knee")


def test_trajectories_means_and_suppression() -> None:
    ep, out = _data()
    t = X.trajectories(ep[ep["clinic_id"] == "c1"], out, "prtee", weeks=(6,))
    ex0 = t[(t["arm"] == "exercise") & (t["week"] == 0)].iloc[0]
    ids = ep.loc[(ep["clinic_id"] == "c1") & (ep["arm"] == "exercise"), "episode_id"]
    base = out[
        out["episode_id"].isin(ids)
        & (out["days_from_intake"] == 0)
        & (out["instrument"] == "prtee")
    ]["score"]
    assert ex0["n"] == 30 and ex0["mean"] == pytest.approx(base.mean())
    half = 2.045229642132703 * base.std(ddof=1) / np.sqrt(30)  # t(0.975, 29)
    assert ex0["ci_high"] - ex0["mean"] == pytest.approx(half)
    small = X.trajectories(ep[ep["clinic_id"] == "c2"], out, "prtee", weeks=(6,))
    assert (small["n_label"] == "<11").all() and small["mean"].isna().all()
    change = X.trajectories(ep, out, "prtee", weeks=(6,), measure="change", suppress=False)
    assert (change.loc[change["week"] == 0, "mean"] == 0).all()


def test_responder_rates_counts_wilson_and_small_cells() -> None:
    ep, out = _data()
    before = (ep.copy(deep=True), out.copy(deep=True))
    c1 = ep[ep["clinic_id"] == "c1"]
    r = X.responder_rates(c1, out, "prtee", 6).set_index("arm")
    pd.testing.assert_frame_equal(ep, before[0])
    pd.testing.assert_frame_equal(out, before[1])
    assert r.loc["all", "n"] == 60 and r.loc["all", "responders"] == 40
    lo, hi = proportion_confint(40, 60, alpha=0.05, method="wilson")  # statsmodels reference
    assert (r.loc["all", "ci_low"], r.loc["all", "ci_high"]) == pytest.approx((lo, hi))
    # non-responders 10 and 10 both read "<11" (1 to 10) and add up to the published 20:
    # each would be pinned at 10, so the "all" line is hidden too (responders 40 as "‡")
    assert r.loc["all", "suppressed"] and r.loc["all", "percent_label"] == "hidden"
    assert set(r["responders_label"]) == {"‡"}
    # Clinic c2: 8 + 6 episodes in all, arms of 4: every count is 1-10.
    r2 = X.responder_rates(ep[ep["clinic_id"] == "c2"], out, "prtee", 6)
    assert (r2["n_label"] == "<11").all() and r2["suppressed"].all()
    assert set(r2["percent_label"]) == {"hidden"}


def test_complementary_suppression_hides_a_second_arm() -> None:
    ep, out = _data()
    # 30 exercise episodes in c1 + 3 ionto from c2 would reveal 3 = total − 30.
    keep = ep[
        (ep["clinic_id"] == "c1") & (ep["arm"] == "exercise")
        | ep["episode_id"].isin(["e61", "e63", "e65"])
    ]
    r = X.responder_rates(keep, out, "prtee", 6).set_index("arm")
    assert r.loc["ionto+exercise", "n_label"] == "<11"
    assert r.loc["exercise", "n_label"] == "‡"  # 30 hidden to protect the 3: not "<11"
    assert r.loc["all", "n_label"] == "33"


def test_reading_sentence_and_small_n_message() -> None:
    ep, out = _data()
    r = X.responder_rates(ep[ep["clinic_id"] == "c1"], out, "prtee", 6)
    text = reading(r, instrument="prtee", week=6, condition="lateral_epicondylitis", clinic="c1")
    assert text.startswith("Of 60 patients with lateral epicondylitis at c1, 67 % improved")
    assert "MCID (14.8 points on PRTEE) at week 6 (95 % CI" in text
    small = reading(
        X.responder_rates(ep[ep["clinic_id"] == "c2"], out, "prtee", 6), instrument="prtee", week=6
    )
    assert small.startswith("Fewer than 11 patients") and "%" not in small


def test_explore_returns_figure_table_and_reading() -> None:
    ep, out = _data()
    v = X.explore(ep, out, instrument="prtee", condition="lateral_epicondylitis", clinic="c1")
    assert isinstance(v.figure, go.Figure)
    assert list(v.table.columns) == ["Arm", "Patients", "Improved ≥ MCID", "%", "95 % CI"]
    assert v.table["Arm"].tolist() == ["Exercise", "Iontophoresis + exercise", "All arms"]
    assert "<table" in v._repr_html_()
    v2 = X.explore(ep, out, instrument="prtee", clinic="c2")
    assert "<11" in v2.table["Patients"].tolist()


def test_explorer_widget_callbacks_update_in_place() -> None:
    ep, out = _data()
    app = Explorer(ep, out, condition="epicondylitis", instrument="prtee")
    assert app.view is not None and app.view.filters["condition"] == "epicondylitis"
    first = app.view
    app.controls["clinic"].value = "c2"  # observers fire synchronously
    assert app.view is not first and app.view.filters["clinic"] == "c2"
    assert app.view.reading.startswith("Fewer than 11")
    app.controls["condition"].value = "plantar_fasciitis"
    assert dict(app.controls["instrument"].options) == {"FFI": "ffi", "NPRS": "nprs"}
    assert app.view.filters["instrument"] in {"ffi", "nprs"}
    app.controls["week"].value = 12
    assert app.view.filters["week"] == 12
    assert "application/vnd.jupyter.widget-view+json" in app._repr_mimebundle_()


def test_explorer_options_from_data() -> None:
    ep, out = _data()
    o = X.explorer_options(ep, out)
    assert o["clinics"] == ["all", "c1", "c2"]
    assert o["conditions"][:2] == ["all", "epicondylitis"]
    assert o["instruments"][0] in {"prtee", "nprs"}
    assert str(o["start"]) == "2025-01-01"


def _arms(sizes: list[tuple[int, int]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Arms of (episodes, responders) on NPRS at week 6: 7 → 2 responds, 7 → 6.5 does not."""
    ep, out = [], []
    for a, (n, x) in enumerate(sizes):
        for i in range(n):
            eid = f"a{a}e{i}"
            ep.append({"episode_id": eid, "arm": f"arm{a}", "condition": "plantar_fasciitis"})
            out += [
                {"episode_id": eid, "instrument": "nprs", "score": 7.0, "days_from_intake": 0},
                {
                    "episode_id": eid,
                    "instrument": "nprs",
                    "score": 2.0 if i < x else 6.5,
                    "days_from_intake": 42,
                },
            ]
    return pd.DataFrame(ep), pd.DataFrame(out)


def _pinned(rates: pd.DataFrame) -> list[str]:
    """Hidden counts a reader can work out from the printed labels alone.

    Unknowns: every responder and non-responder count not printed (a row's printed n and
    responders give its non-responders). Equations: each row's n, and the column totals of
    the "all" row, where printed. Each unknown's range is found by linear programming over
    non-negative values, independently of the suppression module's own audit.
    """

    def shown(label: str) -> float | None:
        return float(label.replace(",", "")) if label.replace(",", "").isdigit() else None

    rows = list(rates.itertuples())
    cells = [(r, k) for r in range(len(rows)) for k in ("x", "y")]  # responders, non-resp.
    n = [shown(r.n_label) for r in rows]
    x = [shown(r.responders_label) for r in rows]
    a_eq, b_eq = [], []

    def eq(coef: dict[tuple[int, str], float], rhs: float) -> None:
        a_eq.append([coef.get(c, 0.0) for c in cells])
        b_eq.append(rhs)

    for r in range(len(rows)):
        if x[r] is not None:
            eq({(r, "x"): 1.0}, x[r])
        if n[r] is not None:
            eq({(r, "x"): 1.0, (r, "y"): 1.0}, n[r])
    last = len(rows) - 1
    for k in ("x", "y"):
        eq({(last, k): 1.0, **{(r, k): -1.0 for r in range(last)}}, 0.0)
    out = []
    for j, (r, k) in enumerate(cells):
        if k == "x" and x[r] is not None:
            continue
        c = np.zeros(len(cells))
        c[j] = 1.0
        lo = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        hi = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        if hi.status == 0 and -hi.fun - lo.fun < 0.5 and 0 < lo.fun < 11:
            out.append(f"{rows[r][1]} {k} = {lo.fun:g}")
    return out


@pytest.mark.parametrize(
    "sizes",
    [
        [(30, 25), (30, 15)],  # 5 non-responders in one arm
        [(40, 20), (3, 1), (25, 12)],  # a small arm beside two large ones
        [(12, 6), (12, 6), (50, 45)],
        [(100, 50), (7, 7)],  # a small arm whose patients all respond
        [(20, 10), (20, 10), (20, 10), (4, 2)],
    ],
)
def test_responder_table_gives_no_small_count_away(sizes: list[tuple[int, int]]) -> None:
    ep, out = _arms(sizes)
    rates = X.responder_rates(ep, out, "nprs", 6)
    assert rates["n"].tolist()[:-1] == [n for n, _ in sizes]  # the fixture is what it says
    printed = [
        float(v.replace(",", ""))
        for v in [*rates["n_label"], *rates["responders_label"]]
        if v.replace(",", "").isdigit()
    ]
    assert not [v for v in printed if 1 <= v <= 10]
    assert _pinned(rates) == []


def test_inverted_intake_dates_are_refused_with_a_message() -> None:
    ep, _ = _data()
    with pytest.raises(InputError, match=r"'from' .* is after 'to'"):
        X.filter_episodes(ep, start="2025-06-01", end="2025-01-01")


def _shown(items: list) -> tuple[str, go.Figure, str]:
    """The reading, the figure and the table HTML that one redraw displayed, in order."""
    (md, fig, table) = items
    assert isinstance(fig, go.Figure)
    return md.data, fig, table.data


def _small_counts_shown(reading: str, fig: go.Figure, table: str) -> list[str]:
    """Counts of 1 to 10 patients anywhere the reader sees them."""
    cells = re.findall(r"<td>([^<]*)</td>", table)
    labels = [str(row[0]) for t in fig.data if t.customdata is not None for row in t.customdata]
    said = re.findall(r"\b(?:[Oo]f|[Ff]or) ((?:[1-9]|10)) patients", reading)
    return [v for v in cells + labels if re.fullmatch(r"(?:[1-9]|10)", v.strip())] + said


def test_explorer_redraws_figure_sentence_and_table_on_clinic_and_condition_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dropdowns' callbacks, fired through ipywidgets: each change redraws the figure,
    the sentence and the table, and no redraw shows a count of 1 to 10."""
    shown: list = []
    monkeypatch.setattr("ionto_analytics.widgets.display", shown.append)
    ep, out = _data()
    app = Explorer(ep, out, condition="epicondylitis", instrument="prtee")
    views = [_shown(shown[-3:])]
    for control, value in [("clinic", "c2"), ("clinic", "c1"), ("condition", "plantar_fasciitis"),
                           ("clinic", "all"), ("condition", "lateral_epicondylitis")]:  # fmt: skip
        before = len(shown)
        app.controls[control].value = value  # observers fire synchronously
        assert len(shown) == before + 3, (control, value)  # one redraw per change
        views.append(_shown(shown[-3:]))
    for (r0, f0, t0), (r1, f1, t1) in itertools.pairwise(views):
        assert r1 != r0 and t1 != t0  # the sentence and the table changed
        assert f1.to_json() != f0.to_json()  # and the figure
    for sentence, fig, table in views:
        assert _small_counts_shown(sentence, fig, table) == []
    small_clinic = views[1]
    assert small_clinic[0].startswith("**Fewer than 11")
    assert "<td>&lt;11</td>" in small_clinic[2]
    assert all(np.isnan(np.asarray(t.y, float)).all() for t in small_clinic[1].data)
    big = views[-1]  # c1 and c2 together: 34 patients per arm, shown
    assert "Of 68 patients with lateral epicondylitis" in big[0] and "<td>34</td>" in big[2]
    assert dict(app.controls["instrument"].options) == {"PRTEE": "prtee", "NPRS": "nprs"}
