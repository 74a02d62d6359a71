"""Write the simulated data sets that ``mmrm_reference.R`` fits (``make reference``).

Run from the repository root: ``PYTHONPATH=. python tests/reference/make_datasets.py``.
Seeds are fixed, so the CSVs are reproducible; the test suite reads the CSVs and never
needs R.

* ``ri_balanced.csv``: 50 patients x 4 visits, a covariate and an arm.
* ``ri_unbalanced.csv``: 80 patients with 1-7 visits each.
* ``ri_boundary.csv``: 30 patients x 3 visits with no patient effect planted, drawn until
  the REML variance of the patient intercepts is 0 (the boundary).
* ``mmrm_emulated.csv``: NPRS-like outcomes of 160 episodes at weeks 4, 6, 12 and 26,
  two arms, baseline NPRS, three clinics, dropout and intermittent missed visits.

Examples
--------
>>> frame = ri_data(np.random.default_rng(0), np.full(3, 2), tau=1.0)
>>> sorted(frame)
['arm', 'patient', 'x', 'y']
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np

from ionto_analytics.lmm import fit_random_intercept

HERE = Path(__file__).parent
WEEKS = np.array([4, 6, 12, 26])


def ri_data(rng: np.random.Generator, visits: np.ndarray, tau: float) -> dict[str, np.ndarray]:
    """A random-intercept data set: ``y = 2 + 0.5 x - 0.8 arm + b + e``."""
    patient = np.repeat(np.arange(1, visits.size + 1), visits)
    n = patient.size
    arm = (patient % 2).astype(float)
    x = np.round(rng.normal(size=n), 4)
    b = tau * rng.normal(size=visits.size)
    y = np.round(2 + 0.5 * x - 0.8 * arm + b[patient - 1] + rng.normal(size=n), 4)
    return {"patient": patient, "x": x, "arm": arm, "y": y}


def mmrm_data(rng: np.random.Generator, episodes: int = 160) -> dict[str, np.ndarray]:
    """Emulated-like NPRS follow-up: unstructured errors, dropout and missed visits."""
    T = WEEKS.size
    arm = rng.integers(0, 2, size=episodes)
    clinic = rng.integers(1, 4, size=episodes)
    baseline = np.clip(np.round(rng.normal(6.5, 1.5, size=episodes), 1), 0, 10)
    sd = np.array([1.6, 1.8, 2.0, 2.3])
    corr = 0.35 + 0.5 * 0.7 ** np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    np.fill_diagonal(corr, 1.0)
    errors = rng.multivariate_normal(np.zeros(T), corr * np.outer(sd, sd), size=episodes)
    mean = (
        baseline[:, None] * (0.55 + 0.03 * np.arange(T))
        - np.array([0.8, 1.1, 1.5, 1.6]) * arm[:, None]
        - np.array([0.5, 0.8, 1.2, 1.0])
        + 0.3 * (clinic[:, None] == 2)
        - 0.4 * (clinic[:, None] == 3)
    )
    y = np.round(mean + errors, 3)
    dropout_at = np.where(rng.random(episodes) < 0.3, rng.integers(1, T, size=episodes), T)
    seen = (np.arange(T) < dropout_at[:, None]) & (rng.random((episodes, T)) > 0.1)
    seen[:, 0] |= ~seen.any(axis=1)
    ep, win = np.nonzero(seen)
    return {
        "patient": ep + 1,
        "week": WEEKS[win],
        "arm": arm[ep],
        "clinic": clinic[ep],
        "baseline": baseline[ep],
        "y": y[ep, win],
    }


def write_csv(path: Path, frame: dict[str, np.ndarray]) -> None:
    """Write columns of equal length as a CSV with a header."""
    names = list(frame)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        writer.writerows(zip(*(frame[name].tolist() for name in names), strict=True))


def boundary_data(seed: int) -> dict[str, np.ndarray]:
    """The first draw (from ``seed`` on) whose REML patient variance is 0."""
    for attempt in range(seed, seed + 200):
        frame = ri_data(np.random.default_rng(attempt), np.full(30, 3), tau=0.0)
        X = np.column_stack([np.ones(frame["y"].size), frame["x"], frame["arm"]])
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            fit = fit_random_intercept(frame["y"], X, frame["patient"])
        if fit.patient_variance == 0.0:
            return frame
    raise RuntimeError("no boundary draw in 200 seeds")


def main() -> None:
    """Write every data set next to this file."""
    write_csv(HERE / "ri_balanced.csv", ri_data(np.random.default_rng(11), np.full(50, 4), 0.9))
    visits = np.random.default_rng(12).integers(1, 8, size=80)
    write_csv(HERE / "ri_unbalanced.csv", ri_data(np.random.default_rng(13), visits, 0.7))
    write_csv(HERE / "ri_boundary.csv", boundary_data(14))
    write_csv(HERE / "mmrm_emulated.csv", mmrm_data(np.random.default_rng(15)))


if __name__ == "__main__":
    main()
