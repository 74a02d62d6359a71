"""Speed and memory of the mixed-model engine ``ionto_analytics.lmm`` (not a test).

Synthetic episodes (20 clinics, two arms, baseline score, age and sex as the adjustment
set) at 1,000, 10,000 and 100,000 episodes:

* random intercept (REML): 10 visits per episode (1,000,000 rows at 100,000 episodes),
  fixed effects window + arm x window + baseline x window + age + sex + clinic (51 columns);
* MMRM (REML, unstructured): 5 windows per episode, 10% of visits missed and 20% of
  episodes dropping out, the same kind of design (36 columns).

Timed: everything from the arrays to the certified fit (sufficient statistics, search,
Hessian, df), best of 3 below 100,000 episodes, once at 100,000. Then statsmodels
``MixedLM(...).fit(reml=True)`` once on the random-intercept data at 20,000 episodes
(200,000 rows) for the ratio, with the largest difference between the two fits. Peak
memory is the process's ``ru_maxrss`` before statsmodels runs.

BLAS runs on one thread unless ``OPENBLAS_NUM_THREADS`` is set (see the note at the imports).

Then the estimators end to end on episode and outcome frames (NPRS at baseline and weeks 4,
6 and 12, 20 clinics, 20% dropping out after week 4, age, sex and symptom duration as the
adjustment set): ``comparison_frame`` + :func:`~ionto_analytics.compare.mixed.mixed_model`
and ``comparison_frame`` + :func:`~ionto_analytics.compare.mmrm.mmrm`, at 1,000, 10,000 and
100,000 episodes, once each: the mixed model with its default CR2 over episodes beside the
model-based baseline; the MMRM at its default (four covariance structures fitted, the
smallest AIC kept) beside the unstructured matrix pre-specified, with Kenward–Roger and with
the Satterthwaite baseline.

Targets: random intercept < 5 s and MMRM < 10 s at 100,000 episodes; >= 50x statsmodels at
20,000 episodes; peak memory < 2 GB. Run: ``.venv/bin/python bench/bench_mixed.py [max_n]
[--skip-statsmodels] [--skip-estimators]``.
"""

from __future__ import annotations

import os

# One BLAS thread unless the caller says otherwise: on this shared 2-core machine OpenBLAS's
# second thread spins against the main one and makes the many small products of a fit
# 10-50x slower (see bench/RESULTS.md). Must be set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ionto_analytics.compare.frame import comparison_frame
from ionto_analytics.compare.mixed import mixed_model
from ionto_analytics.compare.mmrm import mmrm
from ionto_analytics.lmm import fit_mmrm, fit_random_intercept

N_CLINICS = 20


def design(rng: np.random.Generator, n: int, windows: int, seen: np.ndarray):
    """Rows of the episodes' seen windows: (y, X, episode, window)."""
    arm = rng.integers(0, 2, n)
    clinic = rng.integers(0, N_CLINICS, n)
    baseline = rng.normal(6.5, 1.5, n)
    age = rng.normal(50, 12, n)
    sex = rng.integers(0, 2, n)
    episode, window = np.nonzero(seen)
    rows = episode.size
    onehot = np.zeros((rows, windows))
    onehot[np.arange(rows), window] = 1.0
    clinics = np.zeros((rows, N_CLINICS - 1))
    has = clinic[episode] > 0
    clinics[np.flatnonzero(has), clinic[episode][has] - 1] = 1.0
    X = np.column_stack([
        onehot, onehot * arm[episode, None], onehot * baseline[episode, None],
        (age[episode] - 50) / 12, sex[episode], clinics,
    ])
    effect = rng.normal(0, 0.5, N_CLINICS)[clinic] + rng.normal(0, 1.2, n)
    y = (
        0.6 * baseline[episode] - (0.8 + 0.1 * window) * arm[episode] - 0.2 * window
        + effect[episode] + rng.normal(0, 1.5, rows)
    )
    return y, X, episode, window


def random_intercept_data(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    return design(rng, n, 10, np.ones((n, 10), dtype=bool))


def mmrm_data(n: int, seed: int = 2):
    rng = np.random.default_rng(seed)
    dropout = np.where(rng.random(n) < 0.2, rng.integers(1, 5, n), 5)
    seen = (np.arange(5) < dropout[:, None]) & (rng.random((n, 5)) > 0.1)
    seen[:, 0] |= ~seen.any(axis=1)
    return design(rng, n, 5, seen)


def clinic_frames(n: int, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Episodes and long NPRS outcomes as the loaders return them (see the docstring)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"e{i:06d}" for i in range(n)])
    treated = rng.random(n) < 0.5
    baseline = np.clip(rng.normal(6.5, 1.5, n), 0, 10)
    episodes = pd.DataFrame({
        "episode_id": ids, "patient_id": ids, "clinic_id": rng.integers(0, N_CLINICS, n),
        "condition": "lateral_epicondylitis",
        "arm": np.where(treated, "ionto+exercise", "exercise"),
        "age_years": rng.normal(50, 12, n), "sex": np.where(rng.random(n) < 0.45, "male",
                                                              "female"),
        "symptom_duration_weeks": rng.gamma(2.0, 6.0, n), "n_visits": 8,
    })
    level = rng.normal(0, 1.0, n)
    dropped = rng.random(n) < 0.2
    parts = [pd.DataFrame({"episode_id": ids, "days_from_intake": 0, "score": baseline})]
    for k, week in enumerate((4, 6, 12)):
        seen = ~dropped if k else np.ones(n, dtype=bool)
        score = 0.6 * baseline + 1.5 - 0.3 * k - 1.0 * treated + level + rng.normal(0, 1, n)
        parts.append(pd.DataFrame({
            "episode_id": ids[seen], "days_from_intake": 7 * week + rng.integers(-3, 4, n)[seen],
            "score": np.clip(score, 0, 10)[seen],
        }))
    outcomes = pd.concat(parts, ignore_index=True).assign(instrument="nprs")
    return episodes, outcomes


ESTIMATOR_RUNS = (
    ("mixed_model", "CR2 (default)", lambda af: mixed_model(af)),
    ("mixed_model", "model-based (baseline)", lambda af: mixed_model(af, variance="model")),
    ("mmrm", "covariance by AIC (default)", lambda af: mmrm(af)),
    ("mmrm", "unstructured, Kenward-Roger", lambda af: mmrm(af, covariance="unstructured")),
    (
        "mmrm",
        "unstructured, Satterthwaite (baseline)",
        lambda af: mmrm(af, covariance="unstructured", ddf="satterthwaite"),
    ),
)
"""Each estimator at its defaults beside the model-based baseline (the MMRM also with the
one structure it fitted before the covariance was chosen by AIC)."""


def estimators(sizes: list[int]) -> None:
    """Wall seconds of comparison_frame + each estimator, default inference beside the
    baseline (model-based SE), with the SE each gives."""
    print("episodes | outcome rows | estimator | inference | seconds (frame + fit) | "
          "estimate | SE")
    arms = ("ionto+exercise", "exercise")
    for n in sizes:
        episodes, outcomes = clinic_frames(n)
        for name, inference, fit in ESTIMATOR_RUNS:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = fit(comparison_frame(episodes, outcomes, "nprs", 12, arms))
            t = time.perf_counter() - t0
            se = result.table.loc[result.table["week"] == 12, "se"].iloc[0]
            print(f"{n:,} | {len(outcomes):,} | {name} | {inference} | {t:.2f} | "
                  f"{result.estimate:.3f} | {se:.4f}")


def timed(fn, repeats: int, *args) -> tuple[float, object]:
    """Best wall time of ``fn(*args)`` over ``repeats`` runs, and its result."""
    best, result = np.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    max_n = int(args[0]) if args else 100_000
    sizes = [s for s in (1_000, 10_000, 100_000) if s <= max_n]
    print(f"OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']}")
    print("episodes | model | rows | columns | seconds | converged | max |gradient|")
    for n in sizes:
        repeats = 3 if n < 100_000 else 1
        y, X, episode, _ = random_intercept_data(n)
        t, fit = timed(fit_random_intercept, repeats, y, X, episode)
        print(f"{n:,} | random intercept | {y.size:,} | {X.shape[1]} | {t:.3f} | "
              f"{fit.convergence.converged} | {fit.convergence.gradient_norm:.1e}")
        del y, X, episode
        y, X, episode, window = mmrm_data(n)
        t, fit = timed(fit_mmrm, repeats, y, X, episode, window)
        print(f"{n:,} | MMRM unstructured, {fit.n_patterns} patterns | {y.size:,} | "
              f"{X.shape[1]} | {t:.3f} | {fit.convergence.converged} | "
              f"{fit.convergence.gradient_norm:.1e}")
        del y, X, episode, window
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mb:,.0f} MB")
    if "--skip-estimators" not in sys.argv:
        estimators(sizes)
    if "--skip-statsmodels" in sys.argv:
        return

    n = 20_000
    y, X, episode, _ = random_intercept_data(n, seed=3)
    t_ours, fit = timed(fit_random_intercept, 3, y, X, episode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        sm_fit = sm.MixedLM(y, X, episode, exog_re=np.ones((y.size, 1))).fit(reml=True)
        t_sm = time.perf_counter() - t0
    diff = max(
        np.max(np.abs(fit.beta - sm_fit.fe_params) / np.abs(sm_fit.fe_params)),
        abs(fit.residual_variance / sm_fit.scale - 1),
        abs(fit.patient_variance / float(np.asarray(sm_fit.cov_re)[0, 0]) - 1),
    )
    print(f"{n:,} episodes, {y.size:,} rows: lmm {t_ours:.3f} s, statsmodels MixedLM "
          f"{t_sm:.1f} s, ratio {t_sm / t_ours:.0f}x; largest relative difference {diff:.1e}; "
          f"loglik {fit.loglik:.4f} vs {sm_fit.llf:.4f}")


if __name__ == "__main__":
    main()
