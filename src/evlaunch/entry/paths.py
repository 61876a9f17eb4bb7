"""Manufacturing paths as staged, failable processes, vectorised over draws.

A path's stages (agreement, approval, catalogue listing, plant readiness, start of production) run in
sequence, each with a duration and a failure probability. If a stage fails, the months spent so far are
lost and the path falls back to its named fallback path (which starts then); a path with no fallback
never produces. The outcome per draw: when production can start (months after the scenario start, inf
if never) and which path's plant, costs and capacity then apply.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evlaunch.scenario import EntryPath


def failure_event_name(path: str, stage: int) -> str:
    """Name of the uniform draw that decides whether a stage fails (failed when below its probability)."""
    return f"paths.{path}.stages.{stage}.failure_event"


@dataclass(frozen=True)
class PathOutcome:
    """Per-draw outcome of following a path (with its fallbacks). Months after the scenario start."""

    production_start: np.ndarray   # [N] months, inf when no path in the chain succeeds
    operating_path: np.ndarray     # [N] index into the scenario's path order of the path that produces, -1 if none
    months_lost: np.ndarray        # [N] months spent on failed paths before the producing one
    failed: np.ndarray             # [N] bool: the path itself failed (whether or not a fallback rescued it)
    sunk_upfront: np.ndarray       # [N] CNY spent on failed paths' upfront costs (pro rata to time spent)


def own_timeline(path_name: str, path: EntryPath, value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(planned total months, failed flag, months until the failure) for one path alone, per draw."""
    elapsed = 0.0
    failed = None
    failure_time = None
    for index, _stage in enumerate(path.stages):
        months = np.maximum(value(f"paths.{path_name}.stages.{index}.months"), 0.0)
        elapsed = elapsed + months
        fails_here = value(failure_event_name(path_name, index)) < value(f"paths.{path_name}.stages.{index}.failure")
        if failed is None:
            failed = fails_here
            failure_time = np.where(fails_here, elapsed, np.inf)
        else:
            failure_time = np.where(~failed & fails_here, elapsed, failure_time)
            failed = failed | fails_here
    return np.asarray(elapsed, float), failed, failure_time


def path_outcomes(paths: dict[str, EntryPath], value) -> dict[str, PathOutcome]:
    """Outcomes of every path, following fallback chains (validated acyclic by the scenario)."""
    order = list(paths)
    alone = {name: own_timeline(name, path, value) for name, path in paths.items()}
    outcomes: dict[str, PathOutcome] = {}

    def outcome(name: str) -> PathOutcome:
        if name in outcomes:
            return outcomes[name]
        total, failed, failure_time = alone[name]
        upfront = value(f"paths.{name}.upfront_cost")
        sunk_here = np.where(failed, upfront * np.minimum(failure_time / np.maximum(total, 1e-9), 1.0), 0.0)
        fallback = paths[name].fallback
        if fallback is None:
            result = PathOutcome(np.where(failed, np.inf, total), np.where(failed, -1, order.index(name)),
                                 np.where(failed, failure_time, 0.0), failed, sunk_here)
        else:
            rescue = outcome(fallback)
            result = PathOutcome(
                np.where(failed, failure_time + rescue.production_start, total),
                np.where(failed, rescue.operating_path, order.index(name)),
                np.where(failed, failure_time + rescue.months_lost, 0.0),
                failed,
                sunk_here + np.where(failed, rescue.sunk_upfront, 0.0),
            )
        outcomes[name] = result
        return result

    for name in order:
        outcome(name)
    return outcomes
