"""The bundled emulator: a clinic network's raw device and EHR exports plus the planted truth.

Examples
--------
>>> from emulator import load_scenario
>>> load_scenario("default")["name"]
'default'
"""

from .engine import ChunkDraws, EmulationSummary, draw_episodes, emulate
from .scenario import ScenarioError, load_scenario, shipped_scenarios, validate_scenario

__all__ = [
    "ChunkDraws",
    "EmulationSummary",
    "ScenarioError",
    "draw_episodes",
    "emulate",
    "load_scenario",
    "shipped_scenarios",
    "validate_scenario",
]
