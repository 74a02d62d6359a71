"""A study run end to end on real stores: one emulated network imported into SQLite and into
PostgreSQL (one database per site on the local server), run, packaged, pooled, and the CLI."""

from __future__ import annotations

import datetime as dt
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from data_schemas import store
from data_schemas.errors import SchemaError
from data_schemas.study import load_study
from data_schemas.vocabulary import CONDITIONS
from device_import.pipeline import Importer
from device_import.privacy import Keyer
from emulator import emulate
from ionto.cli import main
from ionto_analytics.compare.command import run_compare
from ionto_analytics.compare.spec import ComparisonSpec
from ionto_analytics.loaders import load_episodes
from ionto_analytics.study.command import pool_study, run_study
from ionto_analytics.study.package import TABLES, check_tables, read_package
from tests.conftest import temporary_postgres_database

pytestmark = pytest.mark.postgres

STUDY = """\
name: ionto-network
version: "1"
cohorts: [{condition: epicondylitis}, {condition: plantar_fasciitis}]
arms: [ionto+exercise, exercise]
instruments: [nprs]
weeks: [6]
estimators: [ancova, iptw]
"""
EMPTY_ARM_STUDY = """\
name: empty-arm
version: "1"
cohorts: [{{condition: {condition}}}]
arms: [ionto, exercise]
instruments: [nprs]
weeks: [6]
estimators: [ancova]
"""


@dataclass(frozen=True)
class Sites:
    sqlite_url: str
    postgres_url: str
    folder: Path


@pytest.fixture(scope="module")
def sites(
    tmp_path_factory: pytest.TempPathFactory, postgres_admin: psycopg.Connection
) -> Iterator[Sites]:
    """One emulated network (500 patients) imported into a SQLite and a PostgreSQL store."""
    folder = tmp_path_factory.mktemp("study_network")
    summary = emulate(folder / "network", patients=500, seed=7)
    out = Path(summary.out_dir)
    with temporary_postgres_database(postgres_admin) as pg_url:
        urls = (f"sqlite:///{folder / 'north.db'}", pg_url)
        for url in urls:
            engine = store.connect(url, create=True)
            store.upgrade(engine)
            Importer(
                engine,
                Keyer(b"study-site-key-0123456789abcdef"),
                workers=2,
                today=dt.date(2026, 6, 1),
            ).run([out / "ehr", out / "devices"])
            engine.dispose()
        (folder / "study.yaml").write_text(STUDY)
        yield Sites(*urls, folder)


def _run(url: str, spec: Path, out: Path, site: str) -> Path:
    engine = store.connect(url)
    try:
        return run_study(engine, spec, out, site=site)
    finally:
        engine.dispose()


def test_the_same_study_on_sqlite_and_postgresql(sites: Sites, tmp_path: Path) -> None:
    spec = sites.folder / "study.yaml"
    north = read_package(_run(sites.sqlite_url, spec, tmp_path, "north"))
    south = read_package(_run(sites.postgres_url, spec, tmp_path, "south"))
    assert north.manifest["store_data_hash"] == south.manifest["store_data_hash"]
    assert north.manifest["spec_sha256"] == load_study(spec).sha256
    a, b = north.tables["contrasts"], south.tables["contrasts"]
    assert a["status"].eq("ok").all(), a[["contrast", "status"]]
    assert a["estimate"].to_numpy() == pytest.approx(b["estimate"].to_numpy(), abs=1e-9)
    assert a["se"].to_numpy() == pytest.approx(b["se"].to_numpy(), abs=1e-9)
    for table in TABLES:
        assert north.tables[table].shape == south.tables[table].shape, table
    pooled, files = pool_study([north.path, south.path], tmp_path / "pooled")
    assert pooled.pooled["sites"].eq(2).all()
    assert pooled.pooled["tau2"].to_numpy() == pytest.approx(0.0, abs=1e-12)
    assert pooled.pooled["fixed_estimate"].to_numpy() == pytest.approx(a["estimate"], abs=1e-9)
    assert files["html"].stat().st_size > 1_000_000  # plotly.js inlined
    sent = set(north.tables["sufficient"]["contrast"]) & set(south.tables["sufficient"]["contrast"])
    has_exact = set(pooled.pooled.loc[pooled.pooled["exact_estimate"].notna(), "contrast"])
    assert has_exact == sent and all(c.endswith("/ancova") for c in sent)
    exact = pooled.pooled[pooled.pooled["contrast"].isin(sent)]
    gap = (exact["exact_estimate"] - exact["fixed_estimate"]).abs()
    assert (gap < 2 * exact["fixed_se"]).all()  # site intercepts vs clinic effects: close


def test_each_contrast_carries_the_e_values_of_ionto_compare(sites: Sites, tmp_path: Path) -> None:
    """The site's E-values (estimate, CI limit nearest the null) and their SD are those of
    the same comparison run by ``ionto compare`` on the same store."""
    spec = load_study(sites.folder / "study.yaml")
    contrasts = read_package(
        _run(sites.sqlite_url, sites.folder / "study.yaml", tmp_path, "north")
    ).tables["contrasts"]
    engine = store.connect(sites.sqlite_url)
    try:
        for _, row in contrasts[contrasts["status"].eq("ok")].iterrows():
            r = run_compare(
                engine,
                ComparisonSpec(
                    row["condition"],
                    row["instrument"],
                    spec.arms,
                    week=int(row["week"]),
                    method=row["estimator"],
                    adjust_for=spec.covariates,
                ),
            ).result
            assert row["estimate"] == pytest.approx(r.estimate, abs=1e-9), row["contrast"]
            assert row["e_value"] == pytest.approx(r.e_value, abs=1e-9), row["contrast"]
            assert row["e_value_ci"] == pytest.approx(r.e_value_ci, abs=1e-9), row["contrast"]
            assert row["change_sd"] == pytest.approx(r.change_sd, abs=1e-9) and r.change_sd > 0
            assert row["e_value"] >= row["e_value_ci"] >= 1.0
    finally:
        engine.dispose()


def test_no_identifier_and_no_small_count_leaves_the_site(sites: Sites, tmp_path: Path) -> None:
    path = _run(sites.sqlite_url, sites.folder / "study.yaml", tmp_path, "north")
    engine = store.connect(sites.sqlite_url)
    episodes = load_episodes(engine)
    engine.dispose()
    with zipfile.ZipFile(path) as z:
        text = "\n".join(z.read(n).decode("utf-8") for n in z.namelist())
    ids = {*episodes["patient_id"].astype(str), *episodes["episode_id"].astype(str)}
    leaked = [i for i in ids if i in text]
    assert not leaked, leaked[:3]
    package = read_package(path)
    check_tables(package.tables, 11)  # what was written passes the checker it was written by
    for table in TABLES:
        t = package.tables[table].copy()
        counts = [c for c in t.columns if c == "n" or c.startswith("n_")]
        if not counts or not len(t):
            continue
        t.loc[t.index[0], counts[0]] = 5
        with pytest.raises(SchemaError, match=rf"{table}\.{counts[0]} row 0 holds 5"):
            check_tables({**package.tables, table: t}, 11)


def test_an_empty_arm_at_a_real_site_is_reported(sites: Sites, tmp_path: Path) -> None:
    engine = store.connect(sites.sqlite_url)
    episodes = load_episodes(engine)
    engine.dispose()
    with_ionto = set(episodes.loc[episodes["arm"].eq("ionto"), "condition"])
    empty = [c for c in CONDITIONS if c not in with_ionto and c in set(episodes["condition"])]
    assert empty, "every condition has an ionto-only episode: choose another arm"
    spec = tmp_path / "empty_arm.yaml"
    spec.write_text(EMPTY_ARM_STUDY.format(condition=empty[0]))
    path = _run(sites.sqlite_url, spec, tmp_path, "north")
    contrasts = read_package(path).tables["contrasts"].set_index("contrast")
    row = contrasts.loc[f"{empty[0]}/nprs/w6/ancova"]
    assert row["status"] == "empty_arm" and row["n_first"] == 0
    assert row[["estimate", "se"]].isna().all()


def test_the_command_line_runs_and_pools(sites: Sites, tmp_path: Path) -> None:
    spec = str(sites.folder / "study.yaml")
    for url, site in ((sites.sqlite_url, "north"), (sites.postgres_url, "south")):
        status = main(
            ["--db", url, "study", "run", spec, "--site", site, "--out", str(tmp_path / "results")]
        )
        assert status == 0
    packages = sorted(str(p) for p in (tmp_path / "results").glob("*.zip"))
    assert len(packages) == 2
    assert main(["study", "pool", *packages, "--out", str(tmp_path / "pooled")]) == 0
    assert (tmp_path / "pooled" / "index.html").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text(STUDY.replace("[nprs]", "[koos]"))
    assert (
        main(
            [
                "--db",
                sites.sqlite_url,
                "study",
                "run",
                str(bad),
                "--site",
                "north",
                "--out",
                str(tmp_path / "refused"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "refused").exists()
