"""Write the data set that ``mice_reference.R`` imputes with R's ``mice`` (``make reference``).

Run from the repository root: ``PYTHONPATH=. python tests/reference/make_mice_dataset.py``.
The seed is fixed, so ``mice_dataset.csv`` is reproducible; the tests read the CSV and the
JSON R wrote, and never need R.

``mice_dataset.csv``: 300 episodes, ``treated`` (confounded by the baseline), ``age_years``,
``baseline`` (about 30 % missing at random given age and arm) and ``follow_up`` (about 15 %
missing at random given age and arm), on a 0-100 scale with a planted effect of -8.

Examples
--------
>>> sorted(mice_data(np.random.default_rng(0), 5))
['age_years', 'baseline', 'follow_up', 'treated']
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def mice_data(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Baseline and follow-up missing at random given age and arm; effect -8."""
    age = np.round(rng.uniform(20, 75, n), 1)
    b = rng.normal(50, 15, n) + 0.2 * (age - 45)
    t = (rng.random(n) < 1 / (1 + np.exp(-0.04 * (b - 50)))).astype(float)
    y = 10 + 0.6 * b - 8 * t + 0.1 * age + rng.normal(0, 10, n)
    p_b = 1 / (1 + np.exp(-(-1.0 + 0.04 * (age - 45) + 0.5 * t)))
    p_y = 1 / (1 + np.exp(-(-2.0 - 0.03 * (age - 45) + 0.3 * t)))
    return {
        "treated": t,
        "age_years": age,
        "baseline": np.where(rng.random(n) < p_b, np.nan, np.round(b, 3)),
        "follow_up": np.where(rng.random(n) < p_y, np.nan, np.round(y, 3)),
    }


def main() -> None:
    """Write ``mice_dataset.csv`` beside this file (NA for a missing score)."""
    data = mice_data(np.random.default_rng(20261201), 300)
    with (HERE / "mice_dataset.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(data))
        for row in zip(*data.values(), strict=True):
            w.writerow(["NA" if v != v else f"{v:g}" for v in row])


if __name__ == "__main__":
    main()
