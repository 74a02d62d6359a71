"""The quarterly report: quarters, every section against the store, privacy, provenance, CLI.

Expected numbers are recomputed independently with SQL on the store tables (or plain
pandas on the raw rows), not with the report's own helpers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from statsmodels.stats.multitest import multipletests
from typer.testing import CliRunner

import ionto_analytics as ia
from data_schemas import store
from ionto.cli import app
from ionto_analytics.errors import InputError
from ionto_analytics.instruments import get_instrument
from ionto_analytics.report import (
    QuarterlyReport,
    build_report,
    data_snapshot_hash,
    report_quarter,
    write_report,
)
from ionto_analytics.report.data import ReportData, load_report_data
from ionto_analytics.report.quarter import Quarter, latest_complete_quarter
from ionto_analytics.report.render import render_html
from ionto_analytics.report.sections import volume_section
from ionto_analytics.suppression import SUPPRESSED_TEXT
from tests.report_fixtures import QUARTER, ReportStore, build_report_store

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOK_01 = NOTEBOOKS / "01_clinic_outcomes_explorer.ipynb"

runner = CliRunner()
Q = Quarter.parse(QUARTER)


@pytest.fixture(scope="module")
def report_store(tmp_path_factory: pytest.TempPathFactory) -> ReportStore:
    return build_report_store(tmp_path_factory)


@pytest.fixture(scope="module")
def report_engine(report_store: ReportStore):
    e = store.connect(report_store.url)
    yield e
    e.dispose()


@pytest.fixture(scope="module")
def data(report_engine) -> ReportData:
    return load_report_data(report_engine)


@pytest.fixture(scope="module")
def report(data: ReportData) -> QuarterlyReport:
    return build_report(data, Q)


@pytest.fixture(scope="module")
def html(report: QuarterlyReport) -> str:
    return render_html(report)


def _sql(engine, query: str, **params) -> list:
    with engine.connect() as c:
        return c.execute(text(query), params).fetchall()


# --------------------------------------------------------------------------- quarters


@pytest.mark.parametrize(
    ("text_", "start", "end", "previous"),
    [
        ("2025Q3", dt.date(2025, 7, 1), dt.date(2025, 9, 30), "2025Q2"),
        ("2025q1", dt.date(2025, 1, 1), dt.date(2025, 3, 31), "2024Q4"),
        ("2024-Q4", dt.date(2024, 10, 1), dt.date(2024, 12, 31), "2024Q3"),
        ("2024Q1", dt.date(2024, 1, 1), dt.date(2024, 3, 31), "2023Q4"),
    ],
)
def test_quarter_parsing_dates_and_previous(text_, start, end, previous) -> None:
    q = Quarter.parse(text_)
    assert (q.start, q.end, str(q.previous())) == (start, end, previous)
    assert q.previous().next() == q


@pytest.mark.parametrize("bad", ["2025Q0", "2025Q5", "Q3 2025", "2025", "", "25Q3"])
def test_bad_quarters_are_refused_with_the_expected_form(bad: str) -> None:
    with pytest.raises(InputError, match="2025Q3"):
        Quarter.parse(bad)


# --------------------------------------------------------------------------- sections


def test_volume_matches_sql_on_the_store(report_engine, report: QuarterlyReport) -> None:
    v = report.section("volume").values
    s, e = str(Q.start), str(Q.end)
    visits = _sql(
        report_engine, "SELECT count(*) FROM visit WHERE visit_date BETWEEN :s AND :e", s=s, e=e
    )
    active = _sql(
        report_engine,
        "SELECT count(DISTINCT id), count(DISTINCT patient_id) FROM episode WHERE "
        "start_date BETWEEN :s AND :e OR id IN "
        "(SELECT episode_id FROM visit WHERE visit_date BETWEEN :s AND :e)",
        s=s,
        e=e,
    )
    new = _sql(
        report_engine, "SELECT count(*) FROM episode WHERE start_date BETWEEN :s AND :e", s=s, e=e
    )
    sessions = _sql(
        report_engine,
        "SELECT count(*), sum(coalesce(delivered_dose_mA_min, recomputed_dose_mA_min)) "
        "FROM ionto_session WHERE is_current AND date(started_at_utc) BETWEEN :s AND :e",
        s=s,
        e=e,
    )
    assert v["visits"] == visits[0][0] > 0
    assert (v["episodes"], v["patients"]) == tuple(active[0])
    assert v["new_episodes"] == new[0][0]
    assert v["sessions"] == sessions[0][0] > 0
    assert v["dose_mA_min"] == pytest.approx(sessions[0][1], rel=1e-9)


def test_previous_quarter_column_is_that_quarters_own_figures(
    data: ReportData, report: QuarterlyReport
) -> None:
    now = report.section("volume")
    before = volume_section(data, Q.previous())
    assert now.values["previous"]["Episodes active"] == before.values["episodes"]
    assert now.values["previous"]["Visits"] == before.values["visits"]
    assert now.values["previous"]["Iontophoresis sessions"] == before.values["sessions"]
    summary = now.tables[0].frame
    assert list(summary.columns) == [str(Q), str(Q.previous()), "Change"]
    a, b = now.values["visits"], before.values["visits"]
    assert summary.loc["Visits", "Change"] == f"{(a - b) / b:+.0%}"


def test_by_condition_and_by_clinic_totals_agree(report: QuarterlyReport) -> None:
    tables = {t.key: t for t in report.section("volume").tables}
    cond = tables["volume_by_condition"].audit[0].values
    clin = tables["volume_by_clinic"].audit[0].values
    for col in ("Episodes active", "Visits", "Iontophoresis sessions"):
        assert cond.loc["Total", col] == clin.loc["Total", col]
    assert cond.loc["Total", "Episodes active"] == report.section("volume").values["episodes"]


def test_outcomes_mean_change_recomputed_by_hand(data: ReportData, report: QuarterlyReport) -> None:
    """NPRS, lateral epicondylitis, discharged in Q: baseline = earliest day ≤ 7 (same-day
    scores averaged), latest = last day > 7; mean of latest − baseline. Exact (same data)."""
    ep = data.episodes
    ends = pd.to_datetime(ep["end_date"])
    ids = set(
        ep.loc[
            (ep["condition"] == "lateral_epicondylitis")
            & (ends >= pd.Timestamp(Q.start))
            & (ends <= pd.Timestamp(Q.end)),
            "episode_id",
        ]
    )
    o = data.outcomes[
        data.outcomes["episode_id"].isin(ids) & (data.outcomes["instrument"] == "nprs")
    ]
    o = o.groupby(["episode_id", "days_from_intake"], as_index=False)["score"].mean()
    changes = []
    for _, g in o.groupby("episode_id"):
        base, late = g[g["days_from_intake"] <= 7], g[g["days_from_intake"] > 7]
        if len(base) and len(late):
            changes.append(late.sort_values("days_from_intake")["score"].iloc[-1]
                           - base.sort_values("days_from_intake")["score"].iloc[0])  # fmt: skip
    cur = report.section("outcomes").values["current"]
    row = cur[(cur["condition"] == "lateral_epicondylitis") & (cur["instrument"] == "nprs")].iloc[0]
    assert row["n"] == len(changes) >= 11
    assert row["change"] == pytest.approx(np.mean(changes), abs=1e-9)
    assert row["ci_low"] < row["change"] < row["ci_high"]
    assert 0 <= row["responders"] <= row["n"]


def test_outcomes_previous_quarter_and_trials_are_shown(report: QuarterlyReport) -> None:
    sec = report.section("outcomes")
    table = sec.tables[0].frame
    assert f"mean change {Q.previous()}" in table.columns
    trials = sec.tables[1].frame
    assert any("Nirschl 2003" in t for t in trials.index)
    assert any("Gudeman 1997" in t for t in trials.index)
    assert any("not a trial" in n or "observational" in n for n in sec.notes)


def test_combinations_give_ancova_and_iptw_with_a_reading(report: QuarterlyReport) -> None:
    sec = report.section("combinations")
    table = sec.tables[0].frame
    assert {"ANCOVA", "IPTW"} <= set(table["method"])
    shown = table[table["reading"] != ""]
    assert len(shown) > 0
    assert all("iontophoresis" in r for r in shown["reading"])
    funnel = sec.values["funnel"]
    assert funnel is not None and funnel.clinics["n"].sum() > 0
    assert {f.key for f in sec.figures} >= {"clinic_funnel"}


def test_combinations_table_and_forest_plot_agree_in_sign_and_direction(
    report: QuarterlyReport,
) -> None:
    """Each shown difference is the forest point of its row (one raw-scale sign, first arm −
    second), in the panel of its instrument's direction, whose "favours iontophoresis" side
    is the side a lower- or higher-is-better difference falls on."""
    sec = report.section("combinations")
    table = sec.tables[0].frame
    fig = next(f.figure for f in sec.figures if f.key == "comparisons_forest")
    points = {}
    for i, trace in enumerate(fig.data):
        axis = fig.layout["xaxis" if i == 0 else f"xaxis{i + 1}"]
        lower = "lower is better" in axis.title.text.replace("<br>", " ")
        assert lower != ("higher is better" in axis.title.text.replace("<br>", " "))
        points.update({y: (x, lower) for x, y in zip(trace.x, trace.y, strict=True)})
    favours = [(a.xanchor, a.text, a.xref) for a in fig.layout.annotations if "favours" in a.text]
    assert len(favours) == 2 * len(fig.data)
    for est in sec.values["comparisons"]:
        x, lower = points[est["label"]]
        assert x == pytest.approx(est["estimate"])
        assert lower == (not get_instrument(est["instrument"]).higher_is_better)
    for anchor, label, xref in favours:
        i = 0 if xref == "x" else int(xref[1:]) - 1
        lower = "lower" in fig.layout["xaxis" if i == 0 else f"xaxis{i + 1}"].title.text
        left_is_ionto = label == "← favours iontophoresis"
        if anchor == "right":  # the left-hand label
            assert left_is_ionto == lower, (label, xref)
    shown = table[table["reading"] != ""]
    for _, row in shown.iterrows():
        direction = "lower" if "lower is better" in row["instrument"] else "higher"
        estimate = float(row["difference"].split(" ")[0].replace(",", ""))
        better = estimate < 0 if direction == "lower" else estimate > 0
        assert ("more on" in row["reading"]) == better, row["reading"]


def test_combinations_table_reads_in_names_text_left_numbers_right(
    report: QuarterlyReport,
) -> None:
    html = report.section("combinations").tables[0].to_html()
    cells = re.findall(r'<t[hd] class="(\w+)">([^<]*)</t[hd]>', html)
    assert cells
    for raw in ("ionto+", "achilles_tendinopathy", "lateral_epicondylitis", "prtee", "visa_a"):
        assert raw not in html, raw
    heads = {h: k for k, h in re.findall(r'<th class="(\w+)">([^<]*)</th>', html)}
    assert heads["Reading"] == "text" and heads["Comparison"] == "text"
    assert heads["Difference"] == heads["n"] == heads["p (Holm)"] == "num"
    assert "Iontophoresis added to exercise" in html and "(lower is better)" in html


def test_combinations_p_values_are_holm_adjusted_and_mcid_is_only_for_scale(
    report: QuarterlyReport,
) -> None:
    sec = report.section("combinations")
    table = sec.tables[0].frame
    shown = table[table["p"] != "–"]
    assert len(shown) > 0
    for method, g in shown.groupby("method"):
        raw = [float(p.lstrip("<")) for p in g["p"]]
        holm = [float(p.lstrip("<")) for p in g["p (Holm)"]]
        # Holm never lowers a p-value; the smallest is multiplied by the family size
        assert all(h >= r for h, r in zip(holm, raw, strict=True)), method
        i = int(np.argmin(raw))
        if raw[i] >= 0.001:
            expected = multipletests(raw, method="holm")[1][i]
            assert holm[i] == pytest.approx(expected, abs=2e-3), method
    assert "Holm" in sec.tables[0].note and "exploratory" in sec.tables[0].note
    for reading in shown["reading"]:
        assert "than the MCID" not in reading
        assert "not a threshold for a difference between group averages" in reading


def test_notebook_01_funnel_flags_the_clinics_the_report_flags(
    report_engine, data: ReportData, report: QuarterlyReport
) -> None:
    """Notebook 01's funnel cell, run on the report's store for the report's quarter, flags
    the same clinics as the report's funnel table (one definition: NPRS at discharge,
    episodes discharged in the quarter), and its default quarter is the report's."""
    import nbformat

    cells = nbformat.read(NOTEBOOK_01, as_version=4).cells
    source = next(c.source for c in cells if "quarter_funnel" in c.source)
    default = "quarter = ia.report_quarter(engine)"
    assert default in source
    assert report_quarter(report_engine) == report_quarter(data)  # the report's default
    space = {"ia": ia, "engine": report_engine, "episodes": ia.load_episodes(report_engine),
             "outcomes": ia.load_outcomes(report_engine)}  # fmt: skip
    exec(source.replace(default, f"quarter = {QUARTER!r}"), space)
    clinics = space["funnel"].clinics.set_index("clinic_id")
    table = report.section("combinations").tables[-1].frame
    shown = table[table["position"] != SUPPRESSED_TEXT]
    assert len(shown) >= 3
    for clinic, row in shown.iterrows():  # the same position and the same O − E
        assert (clinics.loc[clinic, "flag"] or "within 95% limits") == row["position"], clinic
        assert f"{clinics.loc[clinic, 'difference']:.2f}" == row["observed − expected"], clinic
    title = space["funnel"].plot().layout.title.text
    assert "discharge = the last score after day 7" in title and f"in {QUARTER}" in title


def test_combinations_notes_name_covariates_in_words(report: QuarterlyReport) -> None:
    notes = report.section("combinations").notes
    assert any("age" in n for n in notes)  # the estimators' notes are shown ...
    for note in notes:  # ... with no column key of the analysis frame
        assert not re.search(r"age_years|symptom_duration_weeks|clinic_id|intake_\w", note), note


def test_combinations_show_the_e_value_of_the_estimate_and_the_nearer_limit(
    report: QuarterlyReport,
) -> None:
    sec = report.section("combinations")
    table = sec.tables[0].frame
    shown = table[table["reading"] != ""]
    assert len(shown) > 0
    for cell, reading in zip(shown["E-value"], shown["reading"], strict=True):
        m = re.fullmatch(r"(\d+\.\d\d) \(CI limit (1|\d+\.\d\d)\)", cell)
        assert m, cell
        e, e_ci = float(m.group(1)), float(m.group(2))
        assert e >= e_ci >= 1.0
        # the CI limit's E-value is 1 exactly when the interval includes no difference
        assert (m.group(2) == "1") == ("includes no difference" in reading), (cell, reading)
    assert "E-value" in sec.tables[0].note and "unmeasured" in sec.tables[0].note
    unshown = table[table["reading"] == ""]
    assert (unshown["E-value"] == "–").all()


def test_device_quality_matches_sql(report_engine, report: QuarterlyReport) -> None:
    sec = report.section("devices")
    counts = sec.values["counts"]
    rows = _sql(
        report_engine,
        "SELECT d.model, count(*), sum(s.wrong_polarity), sum(s.current_limited) "
        "FROM ionto_session s JOIN device d ON d.id = s.device_id WHERE s.is_current AND "
        "date(s.started_at_utc) BETWEEN :s AND :e GROUP BY d.model",
        s=str(Q.start),
        e=str(Q.end),
    )
    for model, n, wrong, limited in rows:
        assert counts.loc[model, "Sessions"] == n
        assert counts.loc[model, "Wrong polarity"] == wrong
        assert counts.loc[model, "Current limited"] == limited


def test_safety_skin_counts_and_screening_match_sql(report_engine, report: QuarterlyReport) -> None:
    sec = report.section("safety")
    rows = dict(
        _sql(
            report_engine,
            "SELECT skin_check_after, count(*) FROM ionto_session WHERE is_current AND "
            "date(started_at_utc) BETWEEN :s AND :e GROUP BY 1",
            s=str(Q.start),
            e=str(Q.end),
        )
    )
    skin = sec.values["skin"]
    for kind in ("erythema", "vesicles", "burn"):
        assert int(skin[kind].sum()) == rows.get(kind, 0)
    assert sec.values["checked"] == sum(rows.get(k, 0) for k in ("normal", "erythema",
                                                                   "vesicles", "burn"))  # fmt: skip
    screen = sec.values["screening"]
    assert screen["episodes"] > 0 and screen["any_missing"] <= screen["episodes"]


def test_data_quality_matches_the_ledger(report_engine, report: QuarterlyReport) -> None:
    sec = report.section("data_quality")
    led = sec.values["ledger"]
    files = _sql(report_engine, "SELECT status, count(*) FROM import_file GROUP BY status")
    want = dict(files)
    assert led.loc["Total", "imported, all time"] == want.get("imported", 0)
    assert led.loc["Total", "quarantined, all time"] == want.get("quarantined", 0)
    unlinked = _sql(
        report_engine,
        "SELECT count(*) FROM ionto_session WHERE is_current AND link_status='unlinked'",
    )
    assert sec.values["unlinked"]["Unlinked, all time"].sum() == unlinked[0][0]


def test_every_count_table_is_protected_and_prints_no_small_count(report: QuarterlyReport) -> None:
    audited = 0
    for sec in report.sections:
        for t in sec.tables:
            for sup in t.audit:
                assert sup.problems() == [], (t.key, sup.problems())
                audited += 1
            if not t.audit:
                continue
            for cell in t.frame.to_numpy().ravel():
                m = re.fullmatch(r"([\d,]+)(?: \(.*\))?", str(cell))
                if m and t.key != "import_ledger":
                    assert not 1 <= int(m.group(1).replace(",", "")) <= 10, (t.key, cell)
    assert audited >= 8
    assert SUPPRESSED_TEXT in render_html(report)


def test_clinic_report_is_that_clinics_row(data: ReportData, report: QuarterlyReport) -> None:
    clinic = sorted(data.episodes["clinic_id"].unique())[0]
    one = build_report(data, Q, clinic)
    row = report.section("volume").tables[2].audit[0].values.loc[clinic]
    assert one.section("volume").values["episodes"] == row["Episodes active"]
    assert one.section("volume").values["visits"] == row["Visits"]
    assert one.provenance["clinic"] == clinic
    with pytest.raises(InputError, match="known clinics"):
        build_report(data, Q, "no_such_clinic")


def test_sections_do_not_modify_the_loaded_frames(report_engine) -> None:
    data = load_report_data(report_engine)
    before = {f.name: getattr(data, f.name).copy() for f in dataclasses.fields(data)
              if isinstance(getattr(data, f.name), pd.DataFrame)}  # fmt: skip
    build_report(data, Q)
    for name, frame in before.items():
        pd.testing.assert_frame_equal(getattr(data, name), frame)


# --------------------------------------------------------------------------- privacy, provenance


def test_no_pseudonym_key_birth_year_or_free_text_in_the_html(report_engine, html: str) -> None:
    secrets = [r[0] for r in _sql(report_engine, "SELECT pseudonym FROM patient")]
    secrets += [r[0] for r in _sql(report_engine, "SELECT episode_key FROM episode")]
    secrets += [r[0] for r in _sql(report_engine, "SELECT session_key FROM ionto_session")]
    secrets += [r[0] for r in _sql(report_engine, "SELECT visit_key FROM visit")]
    secrets += [r[0] for r in _sql(report_engine, "SELECT serial_hash FROM device")]
    assert len(secrets) > 1000
    # every run of 16+ hex digits in the page, against the first 16 of every key (a key,
    # or even a shortened one, would show up as such a run)
    runs = {m[i : i + 16] for m in re.findall(r"[0-9a-fA-F]{16,}", html)
            for i in range(len(m) - 15)}  # fmt: skip
    assert not {s[:16] for s in secrets} & runs
    assert "birth" not in html.lower()
    names = {r[0] for r in _sql(report_engine, "SELECT file_name_hash FROM import_file")}
    assert not any(n in html for n in names)


def test_provenance_fields(
    report_engine, data: ReportData, report: QuarterlyReport, html: str
) -> None:
    p = report.provenance
    # the snapshot hash, recomputed from the ledger rows as SQL reads them
    ledger = _sql(report_engine, "SELECT sha256, status, row_count FROM import_file")
    expected = hashlib.sha256()
    for sha, status, rows in sorted(ledger):
        expected.update(f"{sha}\t{status}\t{int(rows)}\n".encode())
    for name in ("episodes", "outcomes", "sessions", "interventions", "visits"):
        expected.update(f"{name}\t{len(getattr(data, name))}\n".encode())
    assert p["data_snapshot_sha256"] == expected.hexdigest()
    assert p["quarter"] == QUARTER and p["previous_quarter"] == str(Q.previous())
    # the code version: the installed version and the checkout's commit, as git reports it
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    version = importlib.metadata.version("ionto-analytics")
    assert p["code_version"] == (f"{version} (git {commit})" if commit else version)
    generated = dt.datetime.strptime(p["generated_at_utc"], "%Y-%m-%d %H:%M:%S UTC")
    assert abs((dt.datetime.now(dt.UTC).replace(tzinfo=None) - generated).total_seconds()) < 600
    assert p["data_snapshot_sha256"] in html
    # one more quarantined file, or one row fewer, changes the hash
    led = data.ledger.copy()
    led.loc[0, "status"] = "quarantined"
    assert data_snapshot_hash(dataclasses.replace(data, ledger=led)) != p["data_snapshot_sha256"]


def test_html_is_self_contained_with_plotly_once(html: str, report: QuarterlyReport) -> None:
    n_figures = sum(len(s.figures) for s in report.sections)
    assert n_figures >= 5
    assert html.count("Plotly.newPlot(") == n_figures
    assert html.count("plotly.js v") == 1  # the bundle's banner: embedded once
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=\"https?:", html)


# --------------------------------------------------------------------------- CLI


def test_cli_writes_the_report(report_store: ReportStore, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["--db", report_store.url, "report", "--quarter", QUARTER, "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / f"quarterly_report_{QUARTER}.html"
    assert out.exists() and f"html: {out.resolve()}" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quarter", "2025Q7"], "expected a year and Q1-Q4"),
        (["--quarter", QUARTER, "--clinic", "nowhere"], "known clinics"),
    ],
)
def test_cli_refuses_bad_options(report_store: ReportStore, tmp_path: Path, args, message) -> None:
    result = runner.invoke(app, ["--db", report_store.url, "report", *args, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.stderr


def test_cli_pdf_without_chromium_fails_clearly(
    report_store: ReportStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IONTO_CHROMIUM", str(tmp_path / "no-chromium"))
    result = runner.invoke(
        app, ["--db", report_store.url, "report", "--quarter", QUARTER, "--pdf",
              "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "needs headless Chromium" in result.stderr
    assert not list(tmp_path.glob("*.html"))


def test_write_report_names_files_by_quarter_and_clinic(report_engine, tmp_path: Path) -> None:
    files = write_report(report_engine, QUARTER, "clinic_01", out_dir=tmp_path)
    assert files.html.name == f"quarterly_report_{QUARTER}_clinic_01.html"
    assert files.pdf is None


# --------------------------------------------------------------------------- notebook


def test_notebook_runs_with_papermill_parameters(report_store: ReportStore, tmp_path: Path) -> None:
    papermill = pytest.importorskip("papermill")
    nb = Path(__file__).resolve().parents[1] / "notebooks" / "04_quarterly_report.ipynb"
    source = json.loads(nb.read_text(encoding="utf-8"))
    assert all(not c.get("outputs") for c in source["cells"] if c["cell_type"] == "code")
    assert any("parameters" in c["metadata"].get("tags", []) for c in source["cells"])
    out = tmp_path / "out.ipynb"
    papermill.execute_notebook(
        str(nb),
        str(out),
        parameters={"quarter": QUARTER, "clinic": None, "store_url": report_store.url},
        kernel_name="python3",
        progress_bar=False,
    )
    done = json.loads(out.read_text(encoding="utf-8"))
    text_out = json.dumps(done["cells"])
    for title in ("Volume", "Outcomes by condition", "Device quality", "Safety"):
        assert title in text_out


@pytest.mark.parametrize(("strict", "status"), [([], 0), (["--strict"], 2)])
def test_an_empty_quarter_is_a_warning_and_fails_with_strict(
    report_store: ReportStore, tmp_path: Path, strict: list[str], status: int
) -> None:
    result = runner.invoke(
        app, ["--db", report_store.url, "report", "--quarter", "2030Q1", *strict,
              "--out", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == status, result.output
    assert "No episode and no session in 2030Q1" in result.stderr
    page = (tmp_path / "quarterly_report_2030Q1.html").read_text(encoding="utf-8")
    assert 'class="warning"' in page and "choose a quarter in that range" in page


def test_quarter_defaults_to_the_latest_complete_quarter_of_the_store(
    report_store: ReportStore, data: ReportData, tmp_path: Path
) -> None:
    last = pd.Timestamp(max(data.visits["visit_date"].dropna())).date()
    expected = latest_complete_quarter(last)
    result = runner.invoke(app, ["--db", report_store.url, "report", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"quarterly_report_{expected}.html").exists()
    assert expected.end <= last < expected.next().next().start


def test_brief_comes_first_and_links_to_its_sections(report: QuarterlyReport, html: str) -> None:
    assert report.brief is not None and not report.empty
    labels = [b.label for b in report.brief.items]
    assert labels[:3] == ["Patients treated", "Follow-up completion",
                          "Improved by at least the MCID"]  # fmt: skip
    assert {b.section for b in report.brief.items} <= {s.key for s in report.sections}
    assert html.index('id="brief"') < html.index("<table")
    patients = report.section("volume").values["patients"]
    assert report.brief.items[0].value == f"{patients:,}"
    assert "last four quarters" in report.brief.items[2].detail
    assert report.brief.items[2].detail.count("Q") >= 4


def test_brief_gives_visits_per_discharged_episode(report_engine, report: QuarterlyReport) -> None:
    counts = [
        r[0]
        for r in _sql(
            report_engine,
            "SELECT COUNT(v.id) FROM episode e LEFT JOIN visit v ON v.episode_id = e.id "
            "AND v.kind != 'follow_up' WHERE e.end_date BETWEEN :a AND :b GROUP BY e.id",
            a=Q.start.isoformat(),
            b=Q.end.isoformat(),
        )
    ]
    assert len(counts) >= 11
    item = next(b for b in report.brief.items if b.label == "Visits per episode")
    assert item.value == f"{np.mean(counts):.1f} (median {np.median(counts):g})"
    assert item.section == "volume" and str(Q.previous()) in item.detail


def test_funnel_caption_says_how_its_limits_are_computed(report: QuarterlyReport) -> None:
    sec = report.section("combinations")
    caption = next(f.caption for f in sec.figures if f.key == "clinic_funnel")
    sigma = sec.values["funnel"].sigma
    for words in ("1.96·σ/√n", "3.09·σ/√n", "95%", "99.8%", f"σ = {sigma:.2f}", "O − E"):
        assert words in caption, words


def test_no_hidden_cell_that_is_not_a_small_count_prints_the_small_mark(
    report: QuarterlyReport,
) -> None:
    seen_complementary = 0
    for s in report.sections:
        for t in s.tables:
            for sup in t.audit:
                shown = sup.display()
                for (r, c), hidden in sup.mask.stack().items():
                    value = sup.values.loc[r, c]
                    if hidden and not 1 <= value <= 10 and (r, c) not in sup.shown:
                        assert shown.loc[r, c] != SUPPRESSED_TEXT, (t.key, r, c, value)
                        seen_complementary += 1
    assert seen_complementary > 0
