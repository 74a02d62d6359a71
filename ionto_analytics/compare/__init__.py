"""Between-arm comparisons: the analysis frame, one module per estimator, one result type.

Every estimator takes the analysis frame from ``comparison_frame`` first (ANCOVA, IPTW,
MICE, responders and dose response also take a plain DataFrame with its columns plus
``arms=``) and returns a ``ComparisonResult`` whose estimate is *first arm minus second
arm*. Modules, from the bottom up:

* :mod:`~ionto_analytics.compare.frame` – ``comparison_frame``, ``AnalysisFrame``;
  :mod:`~ionto_analytics.compare.spec` – ``ComparisonSpec`` (what ``ionto compare`` asks);
  :mod:`~ionto_analytics.compare.table1` – baseline characteristics with SMDs;
* :mod:`~ionto_analytics.compare.evalue` – E-values (unmeasured-confounding sensitivity);
  :mod:`~ionto_analytics.compare.result` – ``ComparisonResult`` and its one constructor
  ``ComparisonResult.from_fit`` (which adds the E-values);
* :mod:`~ionto_analytics.compare.fit` – the fitting core (OLS/WLS with a chosen variance,
  coefficient table, arm-presence check, minimum-cluster rule);
  :mod:`~ionto_analytics.compare.repeated` – the repeated-measures long frame, design and
  per-window contrasts (on the :mod:`ionto_analytics.lmm` engine);
* estimators, one module each: :mod:`~ionto_analytics.compare.ancova`,
  :mod:`~ionto_analytics.compare.responders` (with the Wilson and Newcombe intervals),
  :mod:`~ionto_analytics.compare.iptw` (propensity, balance),
  :mod:`~ionto_analytics.compare.ipcw` (censoring weights from every instrument's history),
  :mod:`~ionto_analytics.compare.mixed`, :mod:`~ionto_analytics.compare.mmrm`,
  :mod:`~ionto_analytics.compare.mice`,
  :mod:`~ionto_analytics.compare.dose_response`;
* :mod:`~ionto_analytics.compare.command` – the logic of ``ionto compare``.

Nothing is re-exported here: the estimator modules are named after their estimators
(``compare.ancova.ancova``), and a package attribute cannot be both. Use the public API
(``import ionto_analytics as ia``; ``ia.ancova``, ``ia.iptw``, ...) or import from the module.

Examples
--------
>>> import pandas as pd
>>> import ionto_analytics as ia
>>> df = pd.DataFrame({
...     "arm": ["ionto+exercise"] * 4 + ["exercise"] * 4,
...     "baseline": [6.0, 7.0, 5.0, 8.0, 6.0, 7.0, 5.0, 8.0],
...     "follow_up": [3.0, 4.5, 2.5, 5.0, 4.0, 5.0, 3.5, 6.5]})
>>> r = ia.ancova(df, arms=("ionto+exercise", "exercise"), covariates=(), clinic_effects=False,
...               se="hc3")
>>> round(r.estimate, 6), type(r).__name__
(-1.0, 'ComparisonResult')
"""
