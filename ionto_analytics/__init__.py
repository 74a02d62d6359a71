"""ionto-analytics: does iontophoresis help?

Device logs and treatment records to honest outcome comparisons. This is the public API:
``import ionto_analytics as ia`` and use the names below. Each is imported on first use
(PEP 562), so ``import ionto_analytics`` itself stays fast.

Examples
--------
>>> import ionto_analytics as ia
>>> "Cohort" in dir(ia) and "ancova" in dir(ia)
True
>>> from data_schemas import store
>>> engine = store.connect("sqlite://"); store.upgrade(engine)  # an empty store
>>> frames = ia.load(engine)  # or ia.load(url), ia.load() for the default store
>>> sorted(frames), len(frames["episode"])
(['episode', 'intervention', 'outcome', 'session'], 0)

A public function never shares its name with a module of the package (Python binds a
submodule to the package once it is imported, which would shadow the function):

>>> import importlib.util
>>> [n for n in __all__ if importlib.util.find_spec(f"ionto_analytics.{n}")
...  and _PUBLIC[n] != f"ionto_analytics.{n}"]
[]
>>> ia.no_such_name
Traceback (most recent call last):
...
AttributeError: module 'ionto_analytics' has no attribute 'no_such_name'
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC: dict[str, str] = {
    # name: the module that defines it (a row naming ionto_analytics.<name> is that module)
    "load": "ionto_analytics.loaders",
    "open_store": "ionto_analytics.loaders",
    "load_episodes": "ionto_analytics.loaders",
    "load_outcomes": "ionto_analytics.loaders",
    "load_sessions": "ionto_analytics.loaders",
    "load_interventions": "ionto_analytics.loaders",
    "load_session_details": "ionto_analytics.loaders",
    "Cohort": "ionto_analytics.cohorts",
    "table1": "ionto_analytics.compare.table1",
    "comparison_frame": "ionto_analytics.compare.frame",
    "ComparisonSpec": "ionto_analytics.compare.spec",
    "ComparisonResult": "ionto_analytics.compare.result",
    "ancova": "ionto_analytics.compare.ancova",
    "responders": "ionto_analytics.compare.responders",
    "iptw": "ionto_analytics.compare.iptw",
    "ipcw": "ionto_analytics.compare.ipcw",
    "PositivityDiagnostics": "ionto_analytics.compare.diagnostics",
    "mixed_model": "ionto_analytics.compare.mixed",
    "mmrm": "ionto_analytics.compare.mmrm",
    "mice_sensitivity": "ionto_analytics.compare.mice",
    "dose_response": "ionto_analytics.compare.dose_response",
    "e_value_difference": "ionto_analytics.compare.evalue",
    "e_value_rr": "ionto_analytics.compare.evalue",
    "change_from_baseline": "ionto_analytics.outcomes",
    "mcid_responders": "ionto_analytics.outcomes",
    "clinic_funnel": "ionto_analytics.funnel",
    "quarter_funnel": "ionto_analytics.report.combinations",
    "report_quarter": "ionto_analytics.report",
    "window_text": "data_schemas.windows",
    "explore": "ionto_analytics.explorer",
    "Explorer": "ionto_analytics.widgets",
    "TraceViewer": "ionto_analytics.widgets",
    "build_report": "ionto_analytics.report",
    "plots": "ionto_analytics.plots",
    "devices": "ionto_analytics.devices",
    "study": "ionto_analytics.study",
    "load_study": "data_schemas.study",
    "run_study": "ionto_analytics.study.command",
    "pool_study": "ionto_analytics.study.command",
    "meta_analysis": "ionto_analytics.study.meta",
    "forest_figure": "ionto_analytics.study.page",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    module_name = _PUBLIC.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
