"""Write an emulated grid cell on which the unstructured MMRM is singular (``make reference``).

Run from the repository root: ``PYTHONPATH=. python tests/reference/make_singular_cell.py``.
The default scenario, seed 5001, 1,000 patients, imported with the real importer
(as ``bench/bench_coverage.py`` does): rheumatoid arthritis, NPRS, ``exercise+manual`` vs
``exercise``: 20 episodes with 66 follow-up scores over weeks 2, 4, 6 and 12 and 21 fixed
effects. Its unstructured REML covariance is singular (smallest eigenvalue about 1e-9):
the fit does not converge, and before the pre-specified fallback of :func:`ia.mmrm` its
intervals took a normal reference (Satterthwaite df of about 1e6). The episode and outcome
frames of the cell (every instrument: the intake PSFS is in the adjustment set) are
written as ``singular_cell_episodes.csv`` and ``singular_cell_outcomes.csv`` (keyed
pseudonyms of the emulator's invented patients).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parents[1] / "bench"))

from bench_coverage import load_study  # noqa: E402

CELL = ("rheumatoid", "nprs", ("exercise+manual", "exercise"))


def main() -> None:
    """Emulate, import, load and write the cell's two frames."""
    condition, _, arms = CELL
    episodes, outcomes, _, _ = load_study(5001, 1000, "default")
    ep = episodes[(episodes["condition"] == condition) & episodes["arm"].isin(arms)]
    oc = outcomes[outcomes["episode_id"].isin(ep["episode_id"])]
    oc = oc[["episode_id", "instrument", "days_from_intake", "score"]]
    ep.to_csv(HERE / "singular_cell_episodes.csv", index=False)
    oc.to_csv(HERE / "singular_cell_outcomes.csv", index=False)
    print(f"{len(ep)} episodes, {len(oc)} scores")


if __name__ == "__main__":
    main()
