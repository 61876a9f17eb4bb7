"""Manufacturing paths as staged, failable processes, vectorised over draws.

A path's stages (agreement, approval, catalogue listing, plant readiness, start of production) run in
sequence, each with a duration and a failure probability. If a stage fails, the months spent so far are
lost and the path falls back to its named fallback path (which is taken up then; the upfront spent so far
is sunk, unless both paths build in the entrant's own plant, where it carries over); a path with no
fallback never produces. A stage `under_way` at the scenario start (an application already filed) keeps
running meanwhile, so falling back to its path does not restart it. The outcome per draw: when production can start (months after the scenario start, inf
if never) and which path's plant, costs and capacity then apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from evlaunch.config.parameters import PathParameters
from evlaunch.config.scenario import EntryPath


def failure_event_name(path: str, stage: int) -> str:
    """Name of the uniform draw that decides whether a stage fails (failed when below its probability)."""
    return f"paths.{path}.stages.{stage}.failure_event"


@dataclass(frozen=True)
class PathOutcome:
    """Per-draw outcome of following a path (with its fallbacks). Months after the scenario start."""

    production_start: np.ndarray   # [N] months, inf when no path in the chain succeeds
    operating_path: np.ndarray     # [N] index into the scenario's path order of the path that produces, -1 if none
    months_lost: np.ndarray        # [N] months spent on failed paths before the producing one was taken up
                                   #     (when every path failed: the month of the last failure)
    failed: np.ndarray             # [N] bool: the path itself failed (whether or not a fallback rescued it)
    sunk_upfront: np.ndarray       # [N] CNY spent on failed paths' upfront costs (pro rata to time spent)


def path_timeline(path: EntryPath, parameters: PathParameters, entry: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(month its last stage ends, failed flag, month of the failure) for one path taken up at month `entry`
    [N], per draw. A stage marked `under_way` (e.g. an application already filed) runs from the scenario
    start whenever the path is taken up: it ends at max(previous stage's end, its own duration)."""
    end = np.asarray(entry, dtype=float)
    failed = np.zeros(end.shape, dtype=bool)
    failure_time = np.full(end.shape, np.inf)
    for stage, drawn in zip(path.stages, parameters.stages, strict=True):
        months = np.maximum(drawn.months, 0.0)
        end = np.maximum(end, months) if stage.under_way else end + months
        fails_here = drawn.failure_event < drawn.failure
        failure_time = np.where(~failed & fails_here, end, failure_time)
        failed = failed | fails_here
    return end, failed, failure_time


def path_outcomes(paths: dict[str, EntryPath], parameters: Mapping[str, PathParameters]) -> dict[str, PathOutcome]:
    """Outcomes of every path taken up at the scenario start, following fallback chains (validated acyclic
    by the scenario); a fallback is taken up when the failing stage ends. `parameters`: each path's per-draw
    stage durations, failure probabilities and failure events, and its upfront cost."""
    order = list(paths)

    def outcome(name: str, entry: np.ndarray) -> PathOutcome:
        end, failed, failure_time = path_timeline(paths[name], parameters[name], entry)
        upfront = parameters[name].upfront_cost
        spent = np.minimum((failure_time - entry) / np.maximum(end - entry, 1e-9), 1.0)
        fallback = paths[name].fallback
        # spending on the own plant carries over to a fallback that builds in the same plant (it is not lost)
        same_plant = fallback is not None and paths[name].plant_site == paths[fallback].plant_site == "own"
        sunk_here = np.where(failed & (not same_plant), upfront * spent, 0.0)
        if fallback is None:
            return PathOutcome(np.where(failed, np.inf, end), np.where(failed, -1, order.index(name)),
                               np.where(failed, failure_time, entry), failed, sunk_here)
        rescue = outcome(fallback, np.where(failed, failure_time, entry))
        return PathOutcome(
            np.where(failed, rescue.production_start, end),
            np.where(failed, rescue.operating_path, order.index(name)),
            np.where(failed, rescue.months_lost, entry),
            failed,
            sunk_here + np.where(failed, rescue.sunk_upfront, 0.0),
        )

    draws = np.shape(parameters[order[0]].stages[0].months)
    return {name: outcome(name, np.zeros(draws)) for name in order}
