"""The emulator's engine: draw a network chunk by chunk and stream every output to disk.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     result = emulate(Path(d), patients=40, clinics=2)
...     result.counts["episodes"]
40
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_schemas.errors import InputError

from .assignment import assign_arms
from .clock import utc_offsets
from .fhir import FhirWriter
from .ids import det_uuid, device_serial, scramble
from .outcomes import TruthAccumulator, apply_dropout, arm_flags, observe
from .population import make_episodes
from .records import episode_tables, visit_tables
from .scenario import Clinic, load_scenario, resolve_clinics, scenario_path
from .schedule import plan_care, visit_calendar
from .sessions import plan_sessions, session_events, simulate
from .streams import id_keys, streams
from .truth import AnswerKey, write_ground_truth
from .writers.device_files import EXTENSIONS, WRITERS
from .writers.ehr_csv import EhrCsvWriter

CHUNK = 500
"""Episodes processed per chunk (memory stays flat as the population grows)."""

_CLINIC_PREFIX = ("RPT", "SSR", "HPT", "MMC", "COP", "PHF")


@dataclass(frozen=True)
class EmulationSummary:
    """What :func:`emulate` wrote.

    Attributes
    ----------
    out_dir : Path
        The output folder.
    counts : dict
        Rows per table the importer should produce (patients, episodes, visits, ...).
    files : tuple of str
        Every file written, relative to ``out_dir``, sorted.
    ground_truth : Path
        Path of ``ground_truth.json``.
    """

    out_dir: Path
    counts: dict[str, int]
    files: tuple[str, ...] = field(repr=False)
    ground_truth: Path

    def summary(self) -> pd.DataFrame:
        """Counts as a tidy DataFrame (``table``, ``n``).

        Examples
        --------
        >>> EmulationSummary(Path("."), {"episodes": 3}, (), Path("g.json")).summary()
              table  n
        0  episodes  3
        """
        return pd.DataFrame({"table": list(self.counts), "n": list(self.counts.values())})


@dataclass(frozen=True)
class _Network:
    """What every chunk shares: the scenario, clinics, devices, seed and output folder."""

    scenario: dict[str, Any]
    clinics: list[Clinic]
    devices: pd.DataFrame = field(repr=False)
    seed: int
    out_dir: Path
    ids: dict[str, int] = field(repr=False)


def _devices(
    rng: np.random.Generator, scenario: dict[str, Any], clinics: list[Clinic], start: np.datetime64
) -> pd.DataFrame:
    rows = []
    fmts = scenario["devices"]["formats"]
    for c in clinics:
        spec = [
            (c.template["clinic_unit_format"], c.template["units"]),
            ("dermapatch_log", c.template["patches"]),
        ]
        k = 0
        for fmt, count in spec:
            f = fmts[fmt]
            for _ in range(count):
                skew = 0 if fmt == "kathodyne_csv" else int(rng.normal(0, 90))
                if fmt != "kathodyne_csv" and rng.random() < 0.1:
                    skew += 3600  # clock never moved off daylight time
                rows.append(
                    {
                        "clinic": c.index,
                        "serial": device_serial(f["serial_prefix"], 0, c.index, k),
                        "format": fmt,
                        "kind": f["kind"],
                        "vendor": f["vendor"],
                        "model": f["model"],
                        "firmware": f["firmware"][int(rng.integers(0, len(f["firmware"])))],
                        "clock_skew_s": skew,
                        "in_service_date": str(
                            start - np.timedelta64(int(rng.integers(60, 2000)), "D")
                        ),
                    }
                )
                k += 1
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ChunkDraws:
    """The clinical draws of one chunk of episodes, before anything is exported.

    Attributes
    ----------
    episodes : pandas.DataFrame
        One row per episode: covariates (``severity_z``, ``age``, ``female``,
        ``symptom_duration_months``, ``clinic``), ``baseline_<instrument>``,
        ``instruments``, ``planned_arm``, ``true_arm``, the care plan and ``dropped``.
    dose : numpy.ndarray
        Potential cumulative correct-polarity dose (mA·min) per episode.
    calendar : pandas.DataFrame
        Every planned visit before dropout (``episode_row``, ``seq``, ``day``, ``kind``).
    scores : pandas.DataFrame
        Every planned score before dropout (``visit_row`` into ``calendar``,
        ``episode_row``, ``instrument``, ``score``).
    kept : numpy.ndarray
        Per ``calendar`` row, whether the visit happens (dropout and follow-up response).
    truth_rng : numpy.random.Generator
        The chunk's truth stream, for :class:`emulator.outcomes.TruthAccumulator`.
    """

    episodes: pd.DataFrame = field(repr=False)
    dose: np.ndarray = field(repr=False)
    calendar: pd.DataFrame = field(repr=False)
    scores: pd.DataFrame = field(repr=False)
    kept: np.ndarray = field(repr=False)
    truth_rng: np.random.Generator = field(repr=False)


def _draw(
    s: dict[str, Any],
    clinics: list[Clinic],
    dev: pd.DataFrame,
    g: dict[str, np.random.Generator],
    first: int,
    n: int,
    start: np.datetime64,
    end: np.datetime64,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Who comes, which arm, the plan of care, visits, scores and dropout of one chunk.

    Returns ``(eps, plans, dose, visits, scores, keep)``: the episodes, every potential
    iontophoresis session, the potential dose, the planned visits and scores before
    dropout, and which visits happen.
    """
    eps = make_episodes(g["population"], s, clinics, first, n, start, end)
    planned, true = assign_arms(g["assignment"], s, clinics, eps)
    eps["planned_arm"], eps["true_arm"] = planned, true
    has_unit = np.array(
        [(dev["clinic"].eq(c.index) & dev["kind"].eq("clinic_unit")).any() for c in clinics]
    )
    has_patch = np.array(
        [(dev["clinic"].eq(c.index) & dev["kind"].eq("wearable_patch")).any() for c in clinics]
    )
    share = np.array([c.template["patch_share"] for c in clinics])
    share = np.where(~has_patch, 0.0, np.where(~has_unit, 1.0, share))
    plan = plan_care(g["care_plan"], s, eps, share)
    for col in plan.columns:
        eps[col] = plan[col].to_numpy()
    # Potential sessions for every episode (counterfactual dose), realized for ionto arms.
    ep_row = np.repeat(np.arange(n), plan["n_ionto"].to_numpy())
    kinds = plan["device_kind"].to_numpy()[ep_row]
    plans = plan_sessions(g["session_plans"], s, ep_row, kinds)
    plans["ionto_seq"] = np.arange(len(plans)) - np.repeat(
        np.concatenate(([0], np.cumsum(plan["n_ionto"].to_numpy())[:-1])),
        plan["n_ionto"].to_numpy(),
    )
    dose = np.bincount(ep_row, weights=plans["effective_dose_mA_min"].to_numpy(), minlength=n)
    visits = visit_calendar(g["visit_calendar"], s, eps, plan)
    scores = observe(g["outcomes"], s, clinics, eps, visits, dose)
    dropped, last_seq, keep = apply_dropout(g["dropout"], s, eps, plan, visits, scores)
    eps["dropped"], eps["last_seq"] = dropped, last_seq
    return eps, plans, dose, visits, scores, keep


def _chunk(
    net: _Network, ci: int, first: int, n: int, start: np.datetime64, end: np.datetime64
) -> dict[str, Any]:
    s, clinics = net.scenario, net.clinics
    g = streams(net.seed, ci)
    eps, plans, dose, visits, scores, keep = _draw(s, clinics, net.devices, g, first, n, start, end)
    # Identifiers.
    idx = eps["episode_index"].to_numpy()
    prefix = np.array(
        [_CLINIC_PREFIX[c % len(_CLINIC_PREFIX)] for c in eps["clinic"]], dtype=object
    )
    eps["mrn"] = (
        prefix
        + pd.Series(scramble(idx, net.ids["mrn"], 10_000_000)).map("{:07d}".format).to_numpy()
    )
    eps["episode_id"] = pd.Series(idx).map("EP{:07d}".format).to_numpy()
    for col in ("city", "state", "zip"):
        eps[col] = [getattr(clinics[c], col) for c in eps["clinic"]]
    eps["intake_date"] = pd.to_datetime(eps["intake_date"])
    eps["birth_date"] = pd.to_datetime(eps["birth_date"])
    lo, hi = s["drug"]["prescription_lead_days"]
    rx = g["prescriptions"]
    eps["referral_date"] = eps["intake_date"] - pd.to_timedelta(rx.integers(3, 30, n), unit="D")
    eps["rx_date"] = eps["intake_date"] - pd.to_timedelta(
        rx.integers(int(lo), int(hi) + 1, n), unit="D"
    )
    eps["rx_volume_mL"] = np.round(rx.uniform(*s["drug"]["volume_mL"], n) * 2) / 2
    calendar = visits[["episode_row", "seq", "day", "kind"]]
    visits = visits[keep].copy()
    vrow_map = np.full(len(keep), -1)
    vrow_map[np.flatnonzero(keep)] = np.arange(keep.sum())
    scores = scores[keep[scores["visit_row"].to_numpy()]].copy()
    scores["visit_pos"] = vrow_map[scores["visit_row"].to_numpy()]
    visits = visits.reset_index(drop=True)
    visits["encounter_id"] = (
        pd.Series(
            scramble(
                idx[visits["episode_row"].to_numpy()] * 32 + visits["seq"].to_numpy(),
                net.ids["encounter_id"],
                10**9,
            )
        )
        .map("ENC{:09d}".format)
        .to_numpy()
    )
    last = visits[visits["kind"] != "follow_up"].groupby("episode_row")["date"].max()
    eps["discharge_date"] = pd.to_datetime(last.reindex(range(n)).to_numpy())
    # Realized sessions.
    _, _, io = arm_flags(s, eps["true_arm"].to_numpy())
    real = plans[io[plans["episode_row"].to_numpy()]].copy()
    vkey = visits[visits["ionto_seq"] >= 0]
    pos = pd.Series(
        vkey.index.to_numpy(),
        index=pd.MultiIndex.from_arrays(
            [vkey["episode_row"].to_numpy(), vkey["ionto_seq"].to_numpy()]
        ),
    )
    real["visit_pos"] = pos.reindex(
        pd.MultiIndex.from_arrays([real["episode_row"].to_numpy(), real["ionto_seq"].to_numpy()])
    ).to_numpy()
    real = real[~np.isnan(real["visit_pos"].to_numpy(float))].copy()
    real["visit_pos"] = real["visit_pos"].astype(np.int64)
    sessions, device_files = _device_sessions(net, g, eps, visits, real)
    tables = episode_tables(g["episode_records"], s, eps, [c.key for c in clinics])
    tables.update(visit_tables(g["visit_records"], s, eps, visits, sessions, scores))
    return {
        "eps": eps,
        "dose": dose,
        "tables": tables,
        "sessions": sessions,
        "visits": visits,
        "calendar": calendar,
        "truth_rng": g["truth"],
        "device_files": device_files,
    }


def _device_sessions(
    net: _Network,
    g: dict[str, np.random.Generator],
    eps: pd.DataFrame,
    visits: pd.DataFrame,
    real: pd.DataFrame,
) -> tuple[pd.DataFrame, list[str]]:
    s, dev = net.scenario, net.devices
    real = real.reset_index(drop=True)
    n = len(real)
    clinic = eps["clinic"].to_numpy()[real["episode_row"].to_numpy()]
    kinds = real["kind"].to_numpy()
    dev_idx = np.zeros(n, np.int64)
    for (c, k), grp in dev.groupby(["clinic", "kind"]).groups.items():
        m = (clinic == c) & (kinds == k)
        if m.any():
            choices = np.asarray(grp)
            dev_idx[m] = choices[g["device_pick"].integers(0, len(choices), m.sum())]
    d = dev.iloc[dev_idx].reset_index(drop=True)
    for col in ("serial", "format", "model", "firmware", "clock_skew_s"):
        real[col] = d[col].to_numpy()
    v = visits.iloc[real["visit_pos"].to_numpy()]
    local = v["date"].to_numpy().astype("datetime64[s]") + (
        v["start_min"].to_numpy() * 60 + g["session_clock"].integers(120, 900, n)
    ).astype("timedelta64[s]")
    tzs = np.array([net.clinics[c].tz for c in clinic], dtype=object)
    off = np.zeros(n, np.int64)
    for tz in np.unique(tzs):
        m = tzs == tz
        off[m] = utc_offsets(tz, local[m])
    real["local_start"] = local
    real["utc_offset_min"] = off
    real["utc_start"] = local - off.astype("timedelta64[m]")
    real["device_start"] = local + real["clock_skew_s"].to_numpy().astype("timedelta64[s]")
    gidx = (
        eps["episode_index"].to_numpy()[real["episode_row"].to_numpy()] * 32
        + real["ionto_seq"].to_numpy()
    )
    real["global_index"] = gidx
    fmt = real["format"].to_numpy()
    sid = np.where(
        fmt == "kathodyne_csv",
        pd.Series(scramble(gidx, net.ids["kathodyne_session_id"], 10**8)).map("K{:08d}".format),
        pd.Series(scramble(gidx, net.ids["dermapatch_session_id"], 10**6)).map("R{:06d}".format),
    )
    uuid_key = net.ids["phoresys_session_id"]
    sid = np.where(
        fmt == "phoresys_json", [det_uuid(uuid_key, "session", int(i)) for i in gidx], sid
    )
    real["session_id"] = sid
    real["encounter_true"] = v["encounter_id"].to_numpy()
    doc = g["documentation"]
    entered = doc.random(n) < 0.92
    real["encounter_entered"] = entered
    real["polarity"] = np.where(real["wrong_polarity"], "anode", "cathode")
    real["drug"] = s["drug"]["name"]
    real["concentration_mg_per_mL"] = s["drug"]["concentration_mg_per_mL"]
    real["channel_no"] = doc.integers(1, 3, n)
    real["channel"] = np.where(real["channel_no"] == 1, "A", "B")
    clinic_keys = [net.clinics[c].key for c in clinic]
    stamp = pd.to_datetime(real["device_start"]).dt.strftime("%Y%m%d_%H%M%S").to_numpy()
    real["rel_path"] = [
        f"devices/{ck}/{ser}/{st}_{ses}.{EXTENSIONS[f]}"
        for ck, ser, st, ses, f in zip(
            clinic_keys, real["serial"], stamp, real["session_id"], fmt, strict=True
        )
    ]
    real["duration_s"] = 0.0
    real["delivered_mA_min"] = 0.0
    real["current_limited"] = False
    files: list[str] = []
    for f in sorted(np.unique(fmt)):
        m = np.flatnonzero(fmt == f)
        part = real.iloc[m].reset_index(drop=True)
        smp = simulate(g["signals"], s, part)
        events = session_events(part, smp)
        files += WRITERS[f](net.out_dir, part, smp, events)
        real.loc[m, "duration_s"] = smp.duration_s
        real.loc[m, "delivered_mA_min"] = smp.delivered
        real.loc[m, "current_limited"] = ~np.isnan(smp.limited_at_s)
        real.loc[m, "n_samples"] = np.diff(smp.start)
        real.loc[m, "events"] = pd.Series([";".join(c for _, c in e) for e in events], index=m)
    return real, files


def _count(name: str, value: int | None, default: int) -> int:
    """A network size given to :func:`emulate`, or the scenario's default when ``None``.

    Examples
    --------
    >>> _count("clinics", None, 6), _count("clinics", 2, 6)
    (6, 2)
    >>> _count("patients", 0, 1500)
    Traceback (most recent call last):
    ...
    data_schemas.errors.InputError: emulate: patients must be a whole number above 0 (got 0); \
pass patients=None for the scenario's default of 1500
    """
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(
            f"emulate: {name} must be a whole number above 0 (got {value!r}); "
            f"pass {name}=None for the scenario's default of {default}"
        )
    return int(value)


def _settings(
    scenario: str | Path,
    seed: int,
    clinics: int | None,
    patients: int | None,
    start: dt.date | None,
    end: dt.date | None,
) -> tuple[dict[str, Any], list[Clinic], pd.DataFrame, int, np.datetime64, np.datetime64]:
    """The validated scenario, its clinics and devices, the episode count and the window
    of intake dates: what :func:`emulate` and :func:`draw_episodes` share."""
    s = load_scenario(scenario)
    d = s["defaults"]
    n_clinics = _count("clinics", clinics, d["clinics"])
    n_pat = _count("patients", patients, d["patients"])
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(
            f"emulate: seed must be a non-negative integer (got {seed!r}); pass e.g. seed=0"
        )
    start64 = np.datetime64(str(start or d["start"]), "D")
    end64 = np.datetime64(str(end or d["end"]), "D")
    if end64 < start64:
        raise InputError(
            f"emulate: the window of intake dates must end on or after its start "
            f"(got start {start64}, end {end64}); swap them"
        )
    cl = resolve_clinics(s, n_clinics)
    return s, cl, _devices(streams(seed)["devices"], s, cl, start64), n_pat, start64, end64


def draw_episodes(
    *,
    scenario: str | Path = "default",
    seed: int = 0,
    clinics: int | None = None,
    patients: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> Iterator[ChunkDraws]:
    """The clinical draws of :func:`emulate`, chunk by chunk, in memory and exporting nothing.

    Same arguments, same random streams: the episodes, arms, visits and scores are those
    :func:`emulate` exports for the same scenario and seed (before dropout, with ``kept``
    marking the visits that happen). For checks of the data-generating process itself at
    sizes no export could reach (millions of episodes).

    Examples
    --------
    >>> first = next(draw_episodes(seed=3, patients=40))
    >>> len(first.episodes), bool(first.kept.all())
    (40, False)
    """
    s, cl, devices, n_pat, start64, end64 = _settings(scenario, seed, clinics, patients, start, end)
    for ci, first in enumerate(range(0, n_pat, CHUNK)):
        g = streams(seed, ci)
        n = min(CHUNK, n_pat - first)
        eps, _, dose, visits, scores, keep = _draw(s, cl, devices, g, first, n, start64, end64)
        calendar = visits[["episode_row", "seq", "day", "kind"]]
        yield ChunkDraws(eps, dose, calendar, scores, keep, g["truth"])


def emulate(
    out_dir: Path,
    *,
    scenario: str | Path = "default",
    seed: int = 0,
    clinics: int | None = None,
    patients: int | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EmulationSummary:
    """Emulate a clinic network: device files, EHR CSV, FHIR and the planted truth.

    Parameters
    ----------
    out_dir : Path
        Output folder (created; existing emulator outputs in it are replaced).
    scenario : str or Path
        A shipped scenario name or a YAML file.
    seed : int
        Seed; same scenario and seed give byte-identical output.
    clinics, patients : int, optional
        Network size (defaults from the scenario); ``patients`` counts episodes.
    start, end : datetime.date, optional
        Window of intake dates.
    progress : callable, optional
        Called as ``progress(done, total)`` after each chunk.

    Returns
    -------
    EmulationSummary
        Counts, files and the ground-truth path.

    Raises
    ------
    data_schemas.errors.InputError
        Before anything is written: an unknown or invalid scenario (``ScenarioError``),
        ``clinics`` or ``patients`` below 1, a negative seed, or ``end`` before ``start``.
    """
    out_dir = Path(out_dir)
    s, cl, devices, n_pat, start64, end64 = _settings(scenario, seed, clinics, patients, start, end)
    for sub in ("devices", "ehr", "fhir", "ground_truth.json", "scenario.yaml", "manifest.json"):
        p = out_dir / sub
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    net = _Network(s, cl, devices, seed, out_dir, id_keys(seed))
    shutil.copyfile(scenario_path(scenario), out_dir / "scenario.yaml")
    ehr = EhrCsvWriter(out_dir, [c.key for c in cl])
    ehr.write(
        "clinics",
        pd.DataFrame(
            {
                "clinic": [c.index for c in cl],
                "clinic_id": [c.key for c in cl],
                "name": [c.name for c in cl],
                "city": [c.city for c in cl],
                "state": [c.state for c in cl],
                "zip": [c.zip for c in cl],
                "time_zone": [c.tz for c in cl],
            }
        ),
    )
    ehr.write(
        "devices",
        devices[["clinic", "serial", "vendor", "model", "firmware", "kind", "in_service_date"]],
    )
    fhir = FhirWriter(out_dir, cl)
    truth = TruthAccumulator(s)
    key = AnswerKey(out_dir)
    device_files: list[str] = []
    counts = {"clinics": len(cl), "devices": len(devices)}
    try:
        for ci, first in enumerate(range(0, n_pat, CHUNK)):
            n = min(CHUNK, n_pat - first)
            res = _chunk(net, ci, first, n, start64, end64)
            for table, df in res["tables"].items():
                ehr.write(table, df)
            fhir.write_chunk(ci, res["eps"], res["tables"], res["sessions"])
            truth.add(res["truth_rng"], cl, res["eps"], res["dose"], res["calendar"])
            key.add(res["eps"], res["sessions"], res["dose"], cl)
            device_files += res["device_files"]
            if progress is not None:
                progress(first + n, n_pat)
    finally:
        ehr.close()
        fhir.close()
    for t, k in ehr.rows.items():
        if t not in ("clinics", "devices"):
            counts[t] = k
    counts["sessions"] = key.n_sessions
    counts["device_files"] = len(device_files)
    counts.update({f"fhir_{k}": v for k, v in fhir.counts.items()})
    gt = write_ground_truth(
        out_dir,
        s,
        seed,
        cl,
        devices,
        truth,
        key,
        counts,
        {"clinics": len(cl), "patients": n_pat, "start": str(start64), "end": str(end64)},
    )
    files = sorted(
        [
            *device_files,
            *(str(p.relative_to(out_dir)) for p in ehr.paths()),
            *fhir.files(),
            "ground_truth.json",
            "scenario.yaml",
        ]
    )
    (out_dir / "manifest.json").write_text(json.dumps({"files": files, "counts": counts}, indent=1))
    files.append("manifest.json")
    return EmulationSummary(out_dir, counts, tuple(sorted(files)), gt)
