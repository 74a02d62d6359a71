"""Emulator outputs: valid against their published schemas, consistent, deterministic."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd

from data_schemas.vocabulary import ARMS, CONDITIONS, END_REASONS, INSTRUMENT_RANGES
from emulator import EmulationSummary, draw_episodes, emulate, load_scenario
from emulator.outcomes import TruthAccumulator
from emulator.scenario import resolve_clinics
from emulator.truth import effect_table

from .emulator_fixtures import SMALL, small_run, small_truth

__all__ = ["small_run", "small_truth"]
ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "data_schemas"


def _ehr(run: EmulationSummary, table: str) -> pd.DataFrame:
    parts = [
        pd.read_csv(p, dtype=str, keep_default_na=False)
        for p in sorted((run.out_dir / "ehr").glob(f"*/{table}.csv"))
    ]
    return pd.concat(parts, ignore_index=True)


def test_ground_truth_matches_schema_and_vocabulary(small_truth: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / "ground_truth.schema.json").read_text())
    jsonschema.validate(small_truth, schema)
    for e in small_truth["effects"][:500]:
        assert e["condition"] in CONDITIONS and e["arm"] in ARMS and e["versus"] in ARMS
        assert e["instrument"] in INSTRUMENT_RANGES
    ends = {s["end_reason"] for s in small_truth["answer_key"]["sessions"]}
    assert ends <= set(END_REASONS)


def test_planted_ionto_effect_is_transient(small_truth: dict[str, Any]) -> None:
    eff = {
        (e["condition"], e["instrument"], e["arm"], e["versus"], e["week"]): e
        for e in small_truth["effects"]
    }
    k = ("lateral_epicondylitis", "nprs", "ionto+exercise", "exercise")
    at2, at12 = eff[(*k, 2.0)], eff[(*k, 12.0)]
    assert at2["structural"] < -0.5  # lower NPRS is better: a benefit is negative
    assert at12["structural"] == 0.0
    assert abs(at2["difference"] - at2["structural"]) < 0.4
    assert abs(at12["difference"]) < 0.15


def test_counts_in_answer_key_match_the_ehr(
    small_run: EmulationSummary, small_truth: dict[str, Any]
) -> None:
    counts = small_truth["counts"]
    for table in ("patients", "episodes", "visits", "outcomes", "interventions", "prescriptions"):
        assert len(_ehr(small_run, table)) == counts[table], table
    assert len(small_truth["answer_key"]["sessions"]) == counts["sessions"]
    assert len(list((small_run.out_dir / "devices").rglob("*.*"))) == counts["sessions"]


def test_episodes_patients_and_device_files_on_disk_match_the_answer_key(
    small_run: EmulationSummary, small_truth: dict[str, Any]
) -> None:
    key = ["clinic_id", "episode_id", "mrn"]
    written = _ehr(small_run, "episodes")[key]
    truth = pd.DataFrame(small_truth["answer_key"]["episodes"])[key]
    assert not written.duplicated().any() and not truth.duplicated().any()
    assert set(written.itertuples(index=False)) == set(truth.itertuples(index=False))
    # Every patient has at least one episode, and every episode's patient is in patients.csv.
    patients = _ehr(small_run, "patients")[["clinic_id", "mrn"]]
    assert not patients.duplicated().any()
    assert set(patients.itertuples(index=False)) == set(
        written[["clinic_id", "mrn"]].itertuples(index=False)
    )
    # The device files on disk are exactly the sessions of the answer key.
    on_disk = {
        str(p.relative_to(small_run.out_dir))
        for p in (small_run.out_dir / "devices").rglob("*")
        if p.is_file()
    }
    assert on_disk == {s["file"] for s in small_truth["answer_key"]["sessions"]}


def test_phoresys_files_validate_against_json_schema(small_run: EmulationSummary) -> None:
    schema = json.loads((SCHEMAS / "formats" / "phoresys_json.json").read_text())
    files = sorted((small_run.out_dir / "devices").rglob("*.json"))
    assert files
    for f in files[:80]:
        doc = json.loads(f.read_text())
        jsonschema.validate(doc, schema)
        assert len(doc["samples"]["current_uA"]) == doc["samples"]["count"]


def test_kathodyne_csv_follows_its_column_spec(small_run: EmulationSummary) -> None:
    spec = json.loads((SCHEMAS / "formats" / "kathodyne_csv.json").read_text())
    cols = [c["name"] for c in spec["columns"]]
    files = sorted((small_run.out_dir / "devices").rglob("*.csv"))
    assert files
    for f in files[:60]:
        lines = f.read_text().splitlines()
        assert lines[0] == "# Kathodyne Medical KD-400 session export"
        head = {ln[2:].split(": ", 1)[0] for ln in lines if ln.startswith("# ") and ": " in ln}
        assert set(spec["header_block"]["keys"]) <= head
        i = lines.index(",".join(cols))
        truncated = lines[-1] != "# END"
        body = [ln for ln in lines[i + 1 :] if not ln.startswith("#")]
        if truncated:
            body = body[:-1]
        else:
            assert set(spec["footer_block"]["keys"]) <= head
        df = pd.DataFrame([b.split(",") for b in body], columns=cols)
        assert df["local_time"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$").all()
        assert np.all(np.diff(df["elapsed_s"].astype(int)) == 1)
        assert df["current_mA"].astype(float).between(0, 5.5).all()


def test_dermapatch_log_follows_its_column_spec(small_run: EmulationSummary) -> None:
    files = sorted((small_run.out_dir / "devices").rglob("*.log"))
    assert files
    for f in files[:40]:
        lines = f.read_text().splitlines()
        assert lines[0] == "DermaPatch 80;Log v2"
        i = lines.index("Zeit;Strom mA;Impedanz kOhm;Dosis mAmin;Status")
        row = lines[i + 2].split(";")
        assert pd.to_datetime(row[0], format="%d.%m.%Y %H:%M") is not None
        assert "," in row[1] or row[1] == "0"
        assert "." not in row[1]


def test_fhir_validates_with_r4b_models(small_run: EmulationSummary) -> None:
    from fhir.resources.R4B import get_fhir_model_class
    from fhir.resources.R4B.bundle import Bundle

    for f in sorted((small_run.out_dir / "fhir" / "ndjson").glob("*.ndjson")):
        with f.open() as fh:
            for k, line in enumerate(fh):
                if k >= 40:
                    break
                res = json.loads(line)
                get_fhir_model_class(res["resourceType"]).model_validate(res)
    bundle = sorted((small_run.out_dir / "fhir" / "bundles").rglob("*.json"))[0]
    b = Bundle.model_validate_json(bundle.read_text())
    assert b.type == "transaction" and len(b.entry) > 10
    obs = (small_run.out_dir / "fhir/ndjson/Observation.ndjson").read_text().splitlines()
    codes = {json.loads(line)["code"]["coding"][0]["code"] for line in obs[:300]}
    assert "72514-3" in codes


def test_realism_properties(small_run: EmulationSummary, small_truth: dict[str, Any]) -> None:
    s = load_scenario()
    eps = pd.DataFrame(small_truth["answer_key"]["episodes"])
    n = len(eps)
    # Contraindicated patients never receive iontophoresis.
    assert not eps.loc[eps["contraindicated"], "true_arm"].str.contains("ionto").any()
    # Dropout rate as the scenario says (binomial tolerance).
    p = s["dropout"]["rate"]
    assert abs(eps["dropped_out"].mean() - p) <= 4 * np.sqrt(p * (1 - p) / n)
    # Baseline NPRS distribution near the scenario means.
    out = _ehr(small_run, "outcomes")
    visits = _ehr(small_run, "visits")
    first = visits[visits["visit_type"] == "evaluation"]["encounter_id"]
    base = out[out["encounter_id"].isin(first) & (out["instrument"] == "nprs")]
    assert 4.5 < base["score"].astype(float).mean() < 7.0
    for instr, (lo, hi) in INSTRUMENT_RANGES.items():
        sc = out.loc[out["instrument"] == instr, "score"].astype(float)
        assert sc.between(lo, hi).all(), instr
    # Prescriptions are written before the first iontophoresis session.
    rx = _ehr(small_run, "prescriptions").set_index("episode_id")["date_written"]
    iv = _ehr(small_run, "interventions")
    first_io = iv[iv["cpt_code"] == "97033"].groupby("episode_id")["service_date"].min()
    assert (rx.reindex(first_io.index) < first_io).all()
    # Completed clinic sessions deliver the target within 5 %.
    ses = pd.DataFrame(small_truth["answer_key"]["sessions"])
    done = ses[(ses["end_reason"] == "DOSE_COMPLETE")]
    assert (abs(done["delivered_mA_min"] / done["prescribed_dose_mA_min"] - 1) <= 0.05).all()


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    """Same seed, same bytes, also from another process with another string-hash seed."""
    a = emulate(tmp_path / "a", patients=60, clinics=3, seed=3)
    code = (
        "import sys; from pathlib import Path; from emulator import emulate; "
        "emulate(Path(sys.argv[1]), patients=60, clinics=3, seed=3)"
    )
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], check=True, env=env)
    assert _digest(a.out_dir) == _digest(tmp_path / "b")
    c = emulate(tmp_path / "c", patients=60, clinics=3, seed=4)
    assert _digest(a.out_dir) != _digest(c.out_dir)


def test_summary_is_a_dataframe(small_run: EmulationSummary) -> None:
    df = small_run.summary()
    assert list(df.columns) == ["table", "n"]
    assert "ground_truth.json" in small_run.files


def test_in_memory_draws_are_what_emulate_exports(
    small_run: EmulationSummary, small_truth: dict[str, Any]
) -> None:
    """``draw_episodes`` gives the exported run's episodes, arms, dropout, visit and score
    counts, and, fed to the truth accumulator, its planted effects to the last digit."""
    s = load_scenario("default")
    acc = TruthAccumulator(s)
    clinics = resolve_clinics(s, SMALL["clinics"])
    seen, visits, scores = [], 0, 0
    for chunk in draw_episodes(**SMALL):
        e = chunk.episodes
        seen += [
            (f"EP{i:07d}", arm, bool(d))
            for i, arm, d in zip(e["episode_index"], e["true_arm"], e["dropped"], strict=True)
        ]
        visits += int(chunk.kept.sum())
        scores += int(chunk.kept[chunk.scores["visit_row"].to_numpy()].sum())
        acc.add(chunk.truth_rng, clinics, e, chunk.dose, chunk.calendar)
    key = [
        (r["episode_id"], r["true_arm"], r["dropped_out"])
        for r in small_truth["answer_key"]["episodes"]
    ]
    assert seen == key
    assert (visits, scores) == (small_run.counts["visits"], small_run.counts["outcomes"])
    assert effect_table(s, acc) == small_truth["effects"]


def test_truth_accumulated_in_parts_and_merged_is_the_whole() -> None:
    """Chunks split between two accumulators (as parallel workers do) and merged give the
    planted effects of one accumulator over every chunk."""
    s = load_scenario("default")
    clinics = resolve_clinics(s, 6)
    whole, parts = TruthAccumulator(s), (TruthAccumulator(s), TruthAccumulator(s))
    chunks = list(draw_episodes(seed=3, patients=1300, clinics=6))
    assert len(chunks) == 3
    for k, chunk in enumerate(chunks):
        state = chunk.truth_rng.bit_generator.state
        args = (clinics, chunk.episodes, chunk.dose, chunk.calendar)
        whole.add(chunk.truth_rng, *args)
        chunk.truth_rng.bit_generator.state = state
        parts[k % 2].add(chunk.truth_rng, *args)
    parts[0].merge(parts[1])
    merged, expected = (pd.DataFrame(effect_table(s, a)) for a in (parts[0], whole))
    assert parts[0].counts == whole.counts and len(merged) == len(expected) > 1000
    pd.testing.assert_frame_equal(merged, expected, atol=2e-6, rtol=0)
