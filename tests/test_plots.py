"""Every figure builder returns a Figure with the expected traces and colours, and leaves
its input unchanged (tableone-style check: a deep copy is compared after the call)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from data_schemas.vocabulary import ARMS
from ionto_analytics import plots
from ionto_analytics.compare.result import ComparisonResult
from ionto_analytics.errors import InputError
from ionto_analytics.funnel import ClinicFunnel, control_limits


def _unchanged(builder, frame: pd.DataFrame, *args, **kwargs) -> go.Figure:
    before = frame.copy(deep=True)
    fig = builder(frame, *args, **kwargs)
    pd.testing.assert_frame_equal(frame, before)
    assert isinstance(fig, go.Figure)
    fig.to_json()  # serializable (no inf, no objects plotly cannot encode)
    return fig


def test_arm_colours_cover_the_vocabulary_and_are_distinct() -> None:
    assert set(plots.ARM_COLOURS) == set(ARMS) == set(plots.ARM_LABELS)
    assert len(set(plots.ARM_COLOURS.values())) == len(ARMS)
    assert plots.OTHER_COLOUR not in plots.ARM_COLOURS.values()
    assert plots.arm_colour("not an arm") == plots.OTHER_COLOUR


def test_builders_never_set_a_global_template() -> None:
    import plotly.io as pio

    default = pio.templates.default
    plots.forest_figure(pd.DataFrame({"estimate": [0.0], "ci_low": [-1.0], "ci_high": [1.0]}))
    assert pio.templates.default == default


def _trajectories() -> pd.DataFrame:
    rows = []
    for arm in ("ionto+exercise", "exercise", None):
        for week, mean in ((0, 6.0), (4, 4.0), (6, 3.5)):
            rows.append(
                {
                    "arm": arm,
                    "week": week,
                    "n": 40,
                    "mean": mean,
                    "ci_low": mean - 0.5,
                    "ci_high": mean + 0.5,
                    "instrument": "nprs",
                    "measure": "score",
                }
            )
    return pd.DataFrame(rows)


def test_trajectory_figure_one_band_and_one_line_per_arm_in_vocabulary_order() -> None:
    fig = _unchanged(plots.trajectory_figure, _trajectories())
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert [t.name for t in lines] == ["Exercise", "Iontophoresis + exercise", "no arm"]
    assert [t.line.color for t in lines] == [
        plots.ARM_COLOURS["exercise"],
        plots.ARM_COLOURS["ionto+exercise"],
        plots.OTHER_COLOUR,
    ]
    assert len(bands) == 3 and not any(t.showlegend for t in bands)
    assert "n = %{customdata[0]}" in lines[0].hovertemplate
    assert "lower is better" in fig.layout.yaxis.title.text


def test_trajectory_figure_shows_suppressed_n_labels() -> None:
    t = _trajectories().assign(n_label="<11")
    fig = plots.trajectory_figure(t)
    assert fig.data[1].customdata[0][0] == "<11"


def _result(arms=("ionto+exercise", "exercise"), est=-1.0) -> ComparisonResult:
    return ComparisonResult(
        estimate=est,
        ci_low=est - 1,
        ci_high=est + 1,
        p_value=0.2,
        n={arms[0]: 30, arms[1]: 35},
        excluded={},
        estimator="ANCOVA (OLS), HC3 robust",
        instrument="nprs",
        week=6,
        arms=arms,
    )


def test_forest_figure_from_results_and_frames() -> None:
    results = [_result(), _result(("ionto+exercise+manual", "exercise+manual"), -0.5)]
    fig = plots.forest_figure(results)
    (trace,) = fig.data
    assert list(trace.x) == [-1.0, -0.5]
    assert list(trace.marker.color) == [
        plots.ARM_COLOURS["ionto+exercise"],
        plots.ARM_COLOURS["ionto+exercise+manual"],
    ]
    assert list(trace.error_x.array) == [1.0, 1.0]
    assert "n = 65" in trace.customdata[0][2] and "exercise: 35" in trace.customdata[0][2]
    frame = pd.concat([r.summary() for r in results], ignore_index=True)
    fig2 = _unchanged(plots.forest_figure, frame, labels=["a", "b"])
    assert list(fig2.data[0].y) == ["a", "b"]
    with pytest.raises(InputError, match="labels"):
        plots.forest_figure(frame, labels=["only one"])
    with pytest.raises(InputError, match="expected ComparisonResult"):
        plots.forest_figure([object()])


def test_forest_figure_gives_each_instrument_direction_its_own_panel() -> None:
    """NPRS (lower is better) and VISA-A (higher is better) never share an axis; each panel
    says which side favours iontophoresis, and the points keep the raw sign."""
    visa = dataclasses.replace(_result(est=3.0), instrument="visa_a")
    fig = plots.forest_figure([_result(), visa, _result(est=-2.0)])
    assert [list(t.x) for t in fig.data] == [[-1.0, -2.0], [3.0]]
    assert "lower is better" in fig.layout.xaxis.title.text
    assert "higher is better" in fig.layout.xaxis2.title.text
    sides = {(a.xref, a.xanchor): a.text for a in fig.layout.annotations}
    assert sides[("x", "right")] == "← favours iontophoresis"
    assert sides[("x", "left")] == "favours exercise →"
    assert sides[("x2", "right")] == "← favours exercise"
    assert sides[("x2", "left")] == "favours iontophoresis →"
    for axis in (fig.layout.xaxis, fig.layout.xaxis2):  # the null line well inside the range
        lo, hi = axis.range
        assert lo < 0 < hi and min(-lo, hi) >= 0.2 * (hi - lo)
    unknown = plots.forest_figure(pd.DataFrame({"estimate": [1.0], "ci_low": [0.0],
                                                "ci_high": [2.0]}))  # fmt: skip
    assert len(unknown.data) == 1 and not unknown.layout.annotations


def test_responder_figure_bars_per_arm_and_mcid_line() -> None:
    rng = np.random.default_rng(0)
    d = pd.DataFrame(
        {
            "arm": np.repeat(["exercise", "ionto+exercise"], 20),
            "improvement": rng.normal(2, 2, 40),
            "mcid_threshold": 2.0,
            "instrument": "nprs",
        }
    )
    d.loc[3, "improvement"] = np.nan
    fig = _unchanged(plots.responder_figure, d)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [b.marker.color for b in bars] == [
        plots.ARM_COLOURS["exercise"],
        plots.ARM_COLOURS["ionto+exercise"],
    ]
    assert sum(len(b.y) for b in bars) == 39
    assert list(bars[0].y) == sorted(bars[0].y, reverse=True)
    mcid = fig.data[-1]
    assert mcid.name == "MCID" and {v for v in mcid.y if v is not None} == {2.0}
    assert "1 without a follow-up" in fig.layout.title.text


def test_responder_rate_figure_hides_suppressed_bars() -> None:
    r = pd.DataFrame(
        {
            "arm": ["ionto+exercise", "exercise"],
            "n": [40, 8],
            "proportion": [0.5, 0.25],
            "ci_low": [0.35, 0.07],
            "ci_high": [0.65, 0.6],
            "suppressed": [False, True],
            "n_label": ["40", "<11"],
        }
    )
    fig = _unchanged(plots.responder_rate_figure, r)
    bar = fig.data[0]
    assert list(bar.x) == ["Exercise", "Iontophoresis + exercise"]
    assert np.isnan(bar.y[0]) and bar.y[1] == pytest.approx(50.0)
    assert bar.text[0] == "hidden (n = <11)"


def test_a_large_arm_hidden_to_protect_another_is_not_labelled_as_small() -> None:
    """Notebook 01 labelled a 71-patient arm "suppressed (<11)"."""
    r = pd.DataFrame(
        {
            "arm": ["ionto+exercise", "exercise"],
            "n": [71, 40],
            "proportion": [0.9, 0.5],
            "ci_low": [0.8, 0.35],
            "ci_high": [0.95, 0.65],
            "suppressed": [True, False],
            "n_label": ["71", "40"],
        }
    )
    text = list(plots.responder_rate_figure(r).data[0].text)
    assert text[1] == "hidden (n = 71)" and all("<11" not in t for t in text)


def test_love_figure_from_balance_frame_and_result() -> None:
    b = pd.DataFrame(
        {
            "variable": ["age_years", "baseline", "C(sex)"],
            "smd_before": [0.3, -0.25, 0.05],
            "smd_after": [0.01, -0.02, 0.0],
        }
    )
    fig = _unchanged(plots.love_figure, b)
    assert [t.name for t in fig.data] == ["before weighting", "after weighting"]
    assert list(fig.data[0].y) == ["C(sex)", "baseline", "age_years"]  # by |SMD| before
    assert min(fig.data[0].x) >= 0 and fig.layout.shapes[0].x0 == 0.1
    res = ComparisonResult(
        estimate=0,
        ci_low=-1,
        ci_high=1,
        p_value=1,
        n={},
        excluded={},
        estimator="IPTW",
        balance=b,
    )
    assert res.plot().data[1].name == "after weighting"  # compare_result delegates here
    with pytest.raises(InputError, match="balance"):
        plots.love_figure(_result())


def test_attrition_figure_boxes_and_exclusions() -> None:
    a = pd.DataFrame(
        {
            "step": ["all episodes", "condition", "intake window", "arm compared"],
            "key": ["", "other_condition", "outside_intake_window", "other_arm"],
            "excluded": [0, 300, 0, 50],
            "remaining": [500, 200, 200, 150],
            "reason": ["", "condition not epicondylitis", "", "delivered arm not compared"],
        }
    )
    fig = _unchanged(plots.attrition_figure, a)
    texts = [x.text for x in fig.layout.annotations]
    assert texts[0] == "<b>all episodes</b><br>n = 500"
    assert "Excluded: 300<br>condition not epicondylitis" in texts
    assert texts[-1] == "Excluded: 50<br>delivered arm not compared"
    assert not any("intake window" in t for t in texts)  # steps that excluded none fold away
    assert "<b>analysed</b><br>n = 150" in texts
    assert fig.data[0].name == "attrition"


def test_dose_response_figure_band_and_rug() -> None:
    curve = pd.DataFrame(
        {
            "x": np.linspace(40, 240, 5),
            "estimate": [0.0, -0.5, -1.0, -1.2, -1.3],
            "ci_low": [-0.4, -1.0, -1.8, -2.2, -2.6],
            "ci_high": [0.4, 0.0, -0.2, -0.2, 0.0],
        }
    )
    fig = _unchanged(plots.dose_response_figure, curve, doses=[40, 80, 120], instrument="nprs")
    assert [t.name for t in fig.data] == ["95% band", "estimate", "episodes (n = 3)"]
    band = fig.data[0]
    assert len(band.x) == 10 and band.fillcolor.startswith("rgba(213, 94, 0")
    res = ComparisonResult(
        estimate=-0.005,
        ci_low=-0.01,
        ci_high=0.0,
        p_value=0.05,
        n={},
        excluded={},
        estimator="dose",
        instrument="nprs",
        curve=curve,
        conf_level=0.9,
    )
    assert res.plot().data[0].name == "90% band"  # compare_result delegates here


def test_funnel_figure_clinics_and_both_limits() -> None:
    clinics = pd.DataFrame(
        {
            "clinic_id": ["a", "b", "c"],
            "n": [20, 60, 120],
            "difference": [1.5, -0.2, -0.9],
            "flag": ["", "", "below 99.8%"],
        }
    )
    limits = control_limits(3.0, np.array([10, 50, 150]))
    funnel = ClinicFunnel(
        clinics=clinics,
        limits=limits,
        instrument="nprs",
        week=6,
        sigma=3.0,
        formula="improvement ~ baseline",
    )
    fig = funnel.plot()
    assert fig.data[0].name == "clinics" and list(fig.data[0].text) == ["a", "b", "c"]
    assert fig.data[0].marker.color[2] == "#B03A2E"
    names = [t.name for t in fig.data[1:]]
    assert names[:4] == ["95% limits"] * 2 + ["99.8% limits"] * 2
    # every dot colour has a legend entry; the dots themselves are not one more entry
    legend = {t.marker.color for t in fig.data[5:] if t.showlegend is not False}
    assert set(fig.data[0].marker.color) <= legend and fig.data[0].showlegend is False
    assert fig.data[3].line.dash == "solid" and fig.data[1].line.dash == "dash"
    _unchanged(plots.funnel_figure, clinics, limits)
    with pytest.raises(InputError, match="control limits"):
        plots.funnel_figure(clinics)


def test_funnel_result_hides_clinics_under_eleven_episodes() -> None:
    clinics = pd.DataFrame(
        {
            "clinic_id": ["a", "b", "c"],
            "n": [7, 60, 120],
            "observed": [3.1, 2.0, 1.2],
            "expected": [2.0, 2.2, 2.1],
            "difference": [1.1, -0.2, -0.9],
            "se": [1.1, 0.4, 0.3],
            "z": [1.0, -0.5, -3.0],
            "flag": ["", "", "below 99.8%"],
        }
    )
    funnel = ClinicFunnel(
        clinics=clinics,
        limits=control_limits(3.0, np.array([5, 50, 150])),
        instrument="nprs",
        week=6,
        sigma=3.0,
        formula="improvement ~ baseline",
    )
    shown = funnel.summary()
    assert shown["n"].tolist() == ["<11", 60, 120]
    assert shown.loc[0, ["observed", "expected", "difference", "se", "z"]].isna().all()
    assert shown.loc[2, "difference"] == -0.9 and funnel.clinics.loc[0, "n"] == 7
    assert list(funnel.plot().data[0].text) == ["b", "c"]
    assert ">7<" not in funnel._repr_html_() and "3.10" not in funnel._repr_html_()


def test_pareto_figure_sorted_with_cumulative_line() -> None:
    p = pd.DataFrame(
        {
            "device_model": ["A", "A", "B"],
            "fault_code": ["PAUSED", "CURRENT_LIMITED", "PAUSED"],
            "n_faults": [2, 5, 4],
        }
    )
    fig = _unchanged(plots.pareto_figure, p, by="device_model")
    bars = [t for t in fig.data if t.type == "bar"]
    assert [b.name for b in bars] == ["A", "B"]
    assert list(bars[0].x) == ["Paused", "Current limited"]  # 6 PAUSED before 5 CURRENT_LIMITED
    assert list(bars[0].y) == [2, 5] and list(bars[1].y) == [4, 0]
    cum = fig.data[-1]
    assert cum.name == "cumulative %" and list(cum.y) == pytest.approx([600 / 11, 100.0])


def test_dose_delivery_and_rate_figures() -> None:
    d = pd.DataFrame(
        {
            "device_model": ["KD-400"] * 3 + ["PS-2 Auto"] * 2,
            "delivered_fraction": [1.0, 0.5, np.nan, 1.0, 0.99],
        }
    )
    fig = _unchanged(plots.dose_delivery_figure, d)
    assert [t.name for t in fig.data] == ["KD-400 (n = 2)", "PS-2 Auto (n = 2)"]
    r = pd.DataFrame(
        {
            "clinic_id": ["c1", "c2", "c1", "c2"],
            "event": ["burn", "burn", "erythema", "erythema"],
            "n_events": [1, 0, 30, 20],
            "n_sessions": [100, 80, 100, 80],
            "rate_per_1000": [10.0, 0.0, 300.0, 250.0],
            "ci_low": [0.3, 0.0, 212, 160],
            "ci_high": [54.5, 45.0, 400, 360],
        }
    )
    fig = _unchanged(plots.rate_figure, r, by="clinic_id")
    assert [t.name for t in fig.data] == ["burn", "erythema"]
    assert list(fig.data[0].error_x.arrayminus) == [pytest.approx(9.7), 0.0]


def test_trace_figure_three_rows_phases_and_events() -> None:
    t_s = np.arange(0.0, 120.0)
    cur = np.clip(t_s / 30.0, 0, 1) * 2.0
    trace = pd.DataFrame(
        {
            "session_id": "abcdef0123456789",
            "t_s": t_s,
            "current_mA": cur,
            "voltage_V": cur * 8.0,
            "impedance_ohm": np.r_[np.full(119, 8000.0), np.inf],
            "setpoint_mA": 2.0,
            "phase": np.where(t_s < 30, "ramp_up", "treat"),
            "event": [None] * 119 + ["ELECTRODE_REJECT"],
        }
    )
    fig = _unchanged(plots.trace_figure, trace)
    assert [t.name for t in fig.data] == [
        "current (mA)",
        "setpoint (mA)",
        "voltage (V)",
        "impedance (kΩ)",
    ]
    assert [t.yaxis for t in fig.data] == ["y", "y", "y2", "y3"]
    assert fig.layout.xaxis.matches == fig.layout.xaxis2.matches == "x3"  # one time axis
    assert np.isnan(fig.data[3].y[-1])  # open circuit not drawn as infinity
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert rects and rects[0].fillcolor == plots.PHASE_COLOURS["ramp_up"]
    texts = [a.text for a in fig.layout.annotations]
    assert "ELECTRODE_REJECT" in texts and "ramp up" in texts
    assert fig.layout.title.text.startswith("Session abcdef012345")


def test_missing_columns_are_reported_by_name() -> None:
    with pytest.raises(InputError, match=r"missing column\(s\) \['ci_high'\]"):
        plots.trajectory_figure(_trajectories().drop(columns="ci_high"))


def test_clinic_funnel_matches_least_squares_and_normal_limits() -> None:
    """The funnel's inputs (kept here, beside the funnel plot): expected improvement from an
    independent numpy least-squares fit of improvement on baseline and age; limits
    0 ± z·σ/√n with z from scipy's normal quantiles. Tolerance 1e-8 (floating point)."""
    from scipy import stats

    from ionto_analytics.funnel import clinic_funnel

    rng = np.random.default_rng(11)
    n = 150
    ep = pd.DataFrame(
        {
            "episode_id": [f"e{i}" for i in range(n)],
            "clinic_id": rng.choice(list("abc"), n),
            "condition": "plantar_fasciitis",
            "arm": "exercise",
            "sex": "female",
            "age_years": rng.uniform(20, 80, n),
            "symptom_duration_weeks": 10.0,
        }
    )
    base = rng.uniform(30, 70, n)
    follow = base - 10 - 0.1 * ep["age_years"].to_numpy() + rng.normal(0, 5, n)
    out = pd.DataFrame(
        {
            "episode_id": np.tile(ep["episode_id"], 2),
            "instrument": "ffi",
            "score": np.clip(np.r_[base, follow], 0, 100),
            "days_from_intake": np.repeat([0, 42], n),
        }
    )
    before = ep.copy(deep=True)
    f = clinic_funnel(ep, out, "ffi", 6)
    pd.testing.assert_frame_equal(ep, before)
    assert f.formula == "improvement ~ baseline + age_years"
    y = base - out["score"].to_numpy()[n:]  # FFI: lower is better, improvement = −change
    x = np.column_stack([np.ones(n), base, ep["age_years"]])
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    fitted = x @ beta
    sigma = np.sqrt(np.sum((y - fitted) ** 2) / (n - 3))
    assert f.sigma == pytest.approx(sigma, rel=1e-8)
    for _, row in f.clinics.iterrows():
        m = (ep["clinic_id"] == row["clinic_id"]).to_numpy()
        assert row["n"] == m.sum()
        assert row["difference"] == pytest.approx(y[m].mean() - fitted[m].mean(), abs=1e-8)
        assert row["se"] == pytest.approx(sigma / np.sqrt(m.sum()), rel=1e-8)
    lim = f.limits[f.limits["level"] == 0.998].iloc[0]
    assert lim["upper"] == pytest.approx(stats.norm.ppf(0.999) * sigma / np.sqrt(lim["n"]))
    assert isinstance(f.plot(), go.Figure) and "<table" in f._repr_html_()
    assert f.to_dict()["clinics"][0]["clinic_id"] == "a"


def test_pareto_cumulative_line_ends_at_100_percent_of_all_faults() -> None:
    """The issue's case: 69 drawn of 88 faults; the line must not reach 100 % at bar 3."""
    p = pd.DataFrame({"fault_code": ["PAUSED", "CURRENT_LIMITED", "RESISTANCE_LIMIT"],
                      "n_faults": [30, 25, 14]})  # fmt: skip
    fig = plots.pareto_figure(p, other=19)
    cum = fig.data[-1]
    assert list(cum.x)[-1] == "Other codes" and cum.y[-1] == pytest.approx(100.0)
    assert cum.y[2] == pytest.approx(100 * 69 / 88)
    assert [b.y[0] for b in fig.data if b.type == "bar"][-1] == 19
