"""evlaunch: simulate a newcomer's electric-car launch — path, launch month, sales, money, uncertainty.

The public API (every name in `__all__`; docs/api.md describes each)::

    import evlaunch
    scenario = evlaunch.Scenario.load("scenarios/xiaomi-2023.toml").with_levers({"product.price": 229_900})
    run = evlaunch.run(scenario, draws=500, seed=1)
    run.paths                      # per-path key figures (DataFrame)
    run.summary.recommended_path   # the summary.json contract, typed

Names are imported on first use, so `import evlaunch` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from evlaunch._version import __version__

if TYPE_CHECKING:
    from evlaunch.api.results import Comparison, Discovery, Sensitivity
    from evlaunch.api.run import (
        DEFAULT_CHUNK,
        DEFAULT_SEED,
        Run,
        RunCancelled,
        RunNotFinished,
        discover,
        run,
        sensitivity,
    )
    from evlaunch.api.scenario import Scenario
    from evlaunch.api.summary import (
        LaunchQuantiles,
        MarketSummary,
        PathSummary,
        RecommendedPath,
        Stats,
        Summary,
    )
    from evlaunch.config.locations import bundled_scenarios_dir, default_scenarios_dir
    from evlaunch.errors import DataError, EvlaunchError, RunError, ScenarioError

_LAZY = {
    "Scenario": "evlaunch.api.scenario",
    "run": "evlaunch.api.run",
    "Run": "evlaunch.api.run",
    "sensitivity": "evlaunch.api.run",
    "discover": "evlaunch.api.run",
    "RunNotFinished": "evlaunch.api.run",
    "DEFAULT_SEED": "evlaunch.api.run",
    "DEFAULT_CHUNK": "evlaunch.api.run",
    "RunCancelled": "evlaunch.api.run",
    "Summary": "evlaunch.api.summary",
    "PathSummary": "evlaunch.api.summary",
    "MarketSummary": "evlaunch.api.summary",
    "RecommendedPath": "evlaunch.api.summary",
    "LaunchQuantiles": "evlaunch.api.summary",
    "Stats": "evlaunch.api.summary",
    "Comparison": "evlaunch.api.results",
    "Sensitivity": "evlaunch.api.results",
    "Discovery": "evlaunch.api.results",
    "EvlaunchError": "evlaunch.errors",
    "ScenarioError": "evlaunch.errors",
    "DataError": "evlaunch.errors",
    "RunError": "evlaunch.errors",
    "bundled_scenarios_dir": "evlaunch.config.locations",
    "default_scenarios_dir": "evlaunch.config.locations",
}

__all__ = [
    "__version__", "Scenario", "run", "Run", "sensitivity", "discover", "Summary", "PathSummary", "MarketSummary",
    "RecommendedPath", "LaunchQuantiles", "Stats", "Comparison", "Sensitivity", "Discovery", "EvlaunchError",
    "ScenarioError", "DataError", "RunError", "RunNotFinished", "RunCancelled", "DEFAULT_SEED", "DEFAULT_CHUNK",
    "bundled_scenarios_dir",
    "default_scenarios_dir",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'evlaunch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
