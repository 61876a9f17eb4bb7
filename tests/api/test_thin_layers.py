"""The command line and the dashboard are thin layers over the public API: where they still reach the
model's layers (runs, simulation, studies) directly, it is for a reason listed here, and the list only
shrinks (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "evlaunch"
MODEL_LAYERS = ("evlaunch.runs", "evlaunch.simulation", "evlaunch.studies")

# (file under src/evlaunch, module) -> why the public API does not cover it yet
DIRECT: dict[tuple[str, str], str] = {
    ("cli/run_commands.py", "evlaunch.runs.cost"): "`run`/`validate` print the cost estimate and ask for --yes",
    ("cli/run_commands.py", "evlaunch.runs.execution"): "`run` tells an interrupted run (RunCancelled) from a failure",
    ("cli/run_commands.py", "evlaunch.runs.runner"): "`run` checks its options and estimates from the prepared model",
    ("cli/run_commands.py", "evlaunch.runs.store"): "`run` records into the RunStore its --store names",
    ("cli/backtest_commands.py", "evlaunch.studies.backtest"): "backtests are not part of the public API yet",
    ("cli/backtest_commands.py", "evlaunch.studies.ramp_backtest"): "backtests are not part of the public API yet",
    ("cli/analysis_commands.py", "evlaunch.studies.calibration_report"): "the calibration tables are terminal "
                                                                         "tables (rich), not API results",
    ("web/jobs.py", "evlaunch.runs.store"): "the job manager's store",
    ("web/state.py", "evlaunch.runs.store"): "the dashboard reads run records (status, timings) from its store",
    ("web/app.py", "evlaunch.runs.store"): "the dashboard opens the store `evlaunch serve --store` names",
}


def _model_layer_imports() -> set[tuple[str, str]]:
    found = set()
    for layer in ("cli", "web"):
        for path in (PACKAGE / layer).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import) else
                           [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                found.update((path.relative_to(PACKAGE).as_posix(), module) for module in modules
                             if module.startswith(MODEL_LAYERS))
    return found


def test_cli_and_web_reach_the_model_only_where_listed():
    unlisted = sorted(_model_layer_imports() - set(DIRECT))
    assert not unlisted, ("use the public API (evlaunch.api) instead, or add what it lacks there:\n"
                          + "\n".join(f"{file} imports {module}" for file, module in unlisted))


@pytest.mark.parametrize("key", sorted(DIRECT))
def test_every_listed_direct_import_is_still_there(key):
    """An entry whose import has gone must be removed, so the list shrinks with the code."""
    assert key in _model_layer_imports(), f"{key[0]} no longer imports {key[1]}; drop it from DIRECT"
