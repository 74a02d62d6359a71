"""Study spec, results package and pooling on small hand-made site tables (no store)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_schemas.errors import SchemaError
from data_schemas.study import StudySpec, load_study, parse_study
from ionto_analytics.study.command import pool_study, run_study
from ionto_analytics.study.meta import meta_analysis
from ionto_analytics.study.package import TABLES, check_tables, read_package, write_package
from ionto_analytics.study.pool import pool_packages
from ionto_analytics.study.site import SiteResults, check_site
from ionto_analytics.study.sufficient import SufficientStatistics, to_table

SPEC = """\
name: ionto-network
version: "{version}"
cohorts: [{{condition: epicondylitis}}]
arms: [ionto+exercise, exercise]
instruments: [prtee]
weeks: [6]
estimators: [ancova]
adjustment: default
small_cell_threshold: 11
"""
KEY = "epicondylitis/prtee/w6/ancova"


def _spec(version: str = "1") -> StudySpec:
    return parse_study(SPEC.format(version=version))


def _site(
    name: str,
    estimate: float,
    se: float,
    status: str = "ok",
    spec: StudySpec | None = None,
    *,
    change_sd: float = 10.0,
    n_first: float = 40.0,
) -> SiteResults:
    ok = status == "ok"
    contrasts = pd.DataFrame(
        [
            {
                "contrast": KEY,
                "condition": "epicondylitis",
                "instrument": "prtee",
                "week": 6,
                "estimator": "ancova",
                "arm_first": "ionto+exercise",
                "arm_second": "exercise",
                "status": status,
                "estimate": estimate if ok else np.nan,
                "se": se if ok else np.nan,
                "ci_low": estimate - 1.96 * se if ok else np.nan,
                "ci_high": estimate + 1.96 * se if ok else np.nan,
                "p_value": 0.01 if ok else np.nan,
                "e_value": 2.0 if ok else np.nan,
                "e_value_ci": 1.5 if ok else np.nan,
                "change_sd": change_sd if ok else np.nan,
                "n_first": n_first if ok else 0.0,
                "n_second": 52.0,
            }
        ]
    )
    attrition = pd.DataFrame(
        {
            "contrast": KEY,
            "step": [
                "excluded: other_arm",
                "analysed: ionto+exercise",
                "analysed: exercise",
                "all episodes",
            ],
            "n": [20.0, contrasts["n_first"][0], 52.0, 72.0 + contrasts["n_first"][0]],
        }
    )
    table1 = pd.DataFrame(
        {
            "contrast": KEY,
            "variable": ["age_years", "sex", "sex"],
            "level": ["", "female", "male"],
            "arm": ["exercise"] * 3,
            "n": [52.0, 30.0, 22.0],
            "mean": [48.0, np.nan, np.nan],
            "sd": [11.0, np.nan, np.nan],
        }
    )
    balance = pd.DataFrame(
        {
            "contrast": KEY,
            "variable": ["age_years"],
            "smd_before": [0.1],
            "kind": ["continuous"],
            "smd_after": [np.nan],
        }
    )
    diagnostics = pd.DataFrame(
        {
            "contrast": KEY,
            "estimator_detail": ["ANCOVA (OLS), HC3"],
            "clinics": [6],
            "variance": ["hc3"],
            "notes": [""],
        }
    )
    sufficient = to_table(
        SufficientStatistics(
            ("Intercept", "treated", "baseline"),
            np.array([[92.0, 40.0, 560.0], [40.0, 40.0, 250.0], [560.0, 250.0, 3500.0]]),
            np.array([300.0, 120.0, 1900.0]),
            1100.0,
            92,
        ),
        KEY,
    )
    tables = {
        "sufficient": sufficient,
        "contrasts": contrasts,
        "attrition": attrition,
        "table1": table1,
        "balance": balance,
        "diagnostics": diagnostics,
    }
    return SiteResults(site=name, spec=spec or _spec(), tables=tables)


def _write(results: SiteResults, folder: Path) -> Path:
    return write_package(results, folder, toolkit="test 0", store_hash="ab" * 32)


# --- the spec ---------------------------------------------------------------------------


def test_spec_with_an_unknown_instrument_is_refused_before_any_store_is_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(SPEC.format(version="1").replace("[prtee]", "[prtee, koos]"))
    with pytest.raises(SchemaError, match=r"instruments\[1\]: unknown instrument 'koos'"):
        run_study(None, path, tmp_path / "results", site="north")  # type: ignore[arg-type]
    assert not (tmp_path / "results").exists()


def test_every_spec_problem_is_reported_with_its_path() -> None:
    text = (
        SPEC.format(version="v1").replace("[6]", "[6, 6]").replace("threshold: 11", "threshold: 10")
        + "colour: red\n"
    )
    with pytest.raises(SchemaError) as caught:
        parse_study(text)
    message = str(caught.value)
    for path in ("version:", "weeks:", "small_cell_threshold:", "(top level):"):
        assert f"\n  {path}" in message, (path, message)
    assert "4 problem(s)" in message


def test_spec_hash_is_over_the_file_and_defaults_apply(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(SPEC.format(version="1").replace("adjustment: default\n", ""))
    spec = load_study(path)
    assert spec.covariates == ("age_years", "sex", "symptom_duration_weeks")
    assert spec.sha256 != _spec().sha256  # one line less, another file
    assert [c.key for c in spec.contrasts()] == [KEY]


def test_a_condition_or_instrument_absent_from_the_store_is_refused() -> None:
    episodes = pd.DataFrame({"condition": ["plantar_fasciitis"]})
    outcomes = pd.DataFrame({"instrument": ["nprs"]})
    with pytest.raises(SchemaError) as caught:
        check_site(_spec(), episodes, outcomes, "north")
    assert "cohorts[0].condition: no episode of 'epicondylitis'" in str(caught.value)
    assert "instruments[0]: no 'prtee' score" in str(caught.value)


# --- the package ------------------------------------------------------------------------


def test_a_package_round_trips_with_its_manifest(tmp_path: Path) -> None:
    path = _write(_site("north", -8.0, 2.0), tmp_path)
    package = read_package(path)
    m = package.manifest
    assert (m["site"], m["study"], m["spec_sha256"]) == ("north", "ionto-network", _spec().sha256)
    assert set(m["files"]) == {f"{t}.csv" for t in TABLES} | {"results.json"}
    assert package.tables["contrasts"]["estimate"].tolist() == [-8.0]


def test_a_package_that_would_contain_a_cell_of_5_is_refused(tmp_path: Path) -> None:
    site = _site("north", -8.0, 2.0)
    site.tables["contrasts"].loc[0, "n_first"] = 5.0
    with pytest.raises(SchemaError, match=r"contrasts\.n_first row 0 holds 5"):
        _write(site, tmp_path)
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("table", TABLES)
def test_a_small_cell_cannot_be_smuggled_through_any_table(table: str) -> None:
    site = _site("north", -8.0, 2.0)
    tables = {k: v.copy() for k, v in site.tables.items()}
    tables[table]["n_smuggled"] = 0.0
    tables[table].loc[0, "n_smuggled"] = 5.0
    with pytest.raises(SchemaError, match=rf"{table}\.n_smuggled row 0 holds 5"):
        check_tables(tables, 11)
    for column in ("count", "missing", "excluded"):
        tables = {k: v.copy() for k, v in site.tables.items()}
        tables[table][column] = 3
        with pytest.raises(SchemaError, match=rf"{table}\.{column} row 0 holds 3"):
            check_tables(tables, 11)


def test_a_small_count_inside_the_sufficient_statistics_is_refused() -> None:
    tables = _site("north", -8.0, 2.0).tables
    t = tables["sufficient"].copy()
    cell = t.index[t["kind"].eq("xtx") & t["row"].eq("treated") & t["col"].eq("treated")][0]
    t.loc[cell, "value"] = 7.0  # 7 treated episodes
    with pytest.raises(SchemaError, match=rf"sufficient\.value row {cell} holds the count 7"):
        check_tables({**tables, "sufficient": t}, 11)
    t.loc[cell, "value"] = 7.5  # a sum of squares may be anything
    t.loc[cell, "is_count"] = False
    check_tables({**tables, "sufficient": t}, 11)


def test_an_identifier_column_is_refused() -> None:
    tables = _site("north", -8.0, 2.0).tables
    tables["table1"]["patient_id"] = "p-1"
    with pytest.raises(SchemaError, match=r"table1\.patient_id is an identifier column"):
        check_tables(tables, 11)


def test_a_package_with_a_tampered_file_is_refused(tmp_path: Path) -> None:
    path = _write(_site("north", -8.0, 2.0), tmp_path)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "contrasts.csv":
                data = data.replace(b"-8.0", b"-18.0")
            dst.writestr(name, data)
    with pytest.raises(SchemaError, match=r"contrasts\.csv does not match its SHA-256"):
        read_package(tampered)
    with pytest.raises(SchemaError, match="does not match"):
        pool_packages([tampered])


def test_an_unsupported_package_format_is_refused(tmp_path: Path) -> None:
    path = _write(_site("north", -8.0, 2.0), tmp_path)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(other, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "manifest.json":
                data = json.dumps({**json.loads(data), "format_version": "9"}).encode()
            dst.writestr(name, data)
    with pytest.raises(SchemaError, match="package format '9' is not supported"):
        read_package(other)


# --- pooling ----------------------------------------------------------------------------


def test_packages_from_two_spec_versions_are_not_pooled(tmp_path: Path) -> None:
    a = _write(_site("north", -8.0, 2.0), tmp_path / "a")
    b = _write(_site("south", -6.0, 2.5, spec=_spec("2")), tmp_path / "b")
    with pytest.raises(SchemaError, match="2 different study specs") as caught:
        pool_packages([a, b])
    assert "north: ionto-network version 1" in str(caught.value)
    assert "south: ionto-network version 2" in str(caught.value)


def test_one_site_twice_is_refused(tmp_path: Path) -> None:
    a = _write(_site("north", -8.0, 2.0), tmp_path / "a")
    b = _write(_site("north", -6.0, 2.5), tmp_path / "b")
    with pytest.raises(SchemaError, match="site 'north' sent two packages"):
        pool_packages([a, b])


def test_a_site_with_an_empty_arm_is_reported_and_pooled_without(tmp_path: Path) -> None:
    sites = [
        _site("north", -8.0, 2.0),
        _site("south", -6.0, 2.5),
        _site("east", 0.0, 1.0, status="empty_arm"),
        _site("west", -12.0, 3.0),
    ]
    paths = [_write(s, tmp_path / s.site) for s in sites]
    pooled, files = pool_study(paths, tmp_path / "pooled")
    row = pooled.pooled.iloc[0]
    expected = meta_analysis([-8.0, -6.0, -12.0], [2.0, 2.5, 3.0], ["north", "south", "west"])
    assert row["sites"] == 3
    assert row["fixed_estimate"] == pytest.approx(expected["fixed_estimate"], abs=1e-12)
    assert row["random_estimate"] == pytest.approx(expected["random_estimate"], abs=1e-12)
    assert pooled.not_pooled.to_dict("records") == [
        {"contrast": KEY, "site": "east", "status": "empty_arm"}
    ]
    page = files["html"].read_text(encoding="utf-8")
    assert page.count("plotly.js v") == 1 and "<script src=" not in page
    assert "Sites not pooled" in page and "empty_arm" in page
    assert json.loads(files["json"].read_text())["pooled"][0]["sites"] == 3
    assert pd.read_csv(files["csv"])["fixed_estimate"].iloc[0] == pytest.approx(
        expected["fixed_estimate"]
    )


def _e_value_by_hand(difference: float, sd: float) -> float:
    """VanderWeele & Ding (2017): RR = exp(0.91 d), inverted below 1, E = RR + √(RR(RR − 1))."""
    rr = np.exp(0.91 * difference / sd)
    rr = max(rr, 1 / rr)
    return float(rr + np.sqrt(rr * (rr - 1)))


def test_the_pooled_estimates_carry_their_e_values(tmp_path: Path) -> None:
    sites = [
        _site("north", -8.0, 2.0, change_sd=10.0, n_first=40.0),
        _site("south", -6.0, 2.5, change_sd=12.0, n_first=100.0),
        _site("west", -12.0, 3.0, change_sd=9.0, n_first=20.0),
    ]
    pooled, files = pool_study([_write(s, tmp_path / s.site) for s in sites], tmp_path / "pooled")
    row = pooled.pooled.iloc[0]
    df = np.array([40.0 + 52 - 2, 100.0 + 52 - 2, 20.0 + 52 - 2])
    sd = float(np.sqrt(np.sum(df * np.array([10.0, 12.0, 9.0]) ** 2) / df.sum()))
    assert row["change_sd"] == pytest.approx(sd, abs=1e-12)
    for method in ("fixed", "random"):
        assert row[f"{method}_ci_high"] < 0  # the CI limit nearest the null is the upper one
        assert row[f"{method}_e_value"] == pytest.approx(
            _e_value_by_hand(row[f"{method}_estimate"], sd), abs=1e-12
        )
        assert row[f"{method}_e_value_ci"] == pytest.approx(
            _e_value_by_hand(row[f"{method}_ci_high"], sd), abs=1e-12
        )
    assert row["random_e_value"] > row["random_e_value_ci"] > 1
    assert set(pooled.per_site[["e_value", "e_value_ci"]].stack()) == {2.0, 1.5}
    page = files["html"].read_text(encoding="utf-8")
    assert f"random effects {row['random_e_value']:.2f} (CI limit nearest the null" in page
    assert json.loads(files["json"].read_text())["pooled"][0]["random_e_value"] == pytest.approx(
        row["random_e_value"]
    )


def test_a_suppressed_arm_count_weighs_the_sites_sds_equally(tmp_path: Path) -> None:
    sites = [
        _site("north", -8.0, 2.0, change_sd=10.0, n_first=40.0),
        _site("south", -6.0, 2.5, change_sd=12.0, n_first=np.nan),
    ]
    pooled = pool_packages([_write(s, tmp_path / s.site) for s in sites])
    assert pooled.pooled["change_sd"].iloc[0] == pytest.approx(np.sqrt((100 + 144) / 2), abs=1e-12)
