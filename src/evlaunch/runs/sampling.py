"""Quasi-random draws of a scenario's uncertain inputs, reproducible however the draws are split.

Every uncertain quantity and every random event (a stage failing, a supply shock happening) is one
dimension of a scrambled Sobol sequence seeded by the run's seed. Draw i is always the sequence's
i-th point, so chunks [start, stop) computed anywhere give the same rows as one big run.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc

from evlaunch.config.scenario import Scenario, uncertain_parameters
from evlaunch.errors import ScenarioError
from evlaunch.simulation import Model, simulate

EPSILON = 1e-12


@dataclass(frozen=True)
class SamplingDesign:
    """What the draws are: method, seed and the order of the dimensions (recorded with every run)."""

    method: str
    seed: int
    dimensions: tuple[str, ...]

    def describe(self) -> dict[str, object]:
        return {"method": self.method, "seed": self.seed, "dimensions": list(self.dimensions)}


def design(scenario: Scenario, seed: int, events: tuple[str, ...]) -> SamplingDesign:
    """The sampling design: the scenario's distributions plus uniform event draws, in a fixed order."""
    return SamplingDesign("sobol-scrambled", int(seed), tuple(sorted(uncertain_parameters(scenario))) + events)


def uniforms(sampling: SamplingDesign, start: int, stop: int) -> np.ndarray:
    """Points start..stop-1 of the scrambled Sobol sequence, [stop-start, dims], in (0, 1)."""
    dims = max(len(sampling.dimensions), 1)
    engine = qmc.Sobol(d=dims, scramble=True, seed=np.random.default_rng(sampling.seed))
    if start:
        engine.fast_forward(start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # balance warning for counts that are not powers of 2
        points = engine.random(stop - start)
    return np.clip(points, EPSILON, 1.0 - EPSILON)


def sample_inputs(scenario: Scenario, sampling: SamplingDesign, start: int, stop: int) -> dict[str, np.ndarray]:
    """Per-draw values of every uncertain input for draws [start, stop); a non-finite draw is refused naming
    the field and its distribution."""
    points = uniforms(sampling, start, stop)
    distributions = uncertain_parameters(scenario)
    inputs = {}
    for column, name in enumerate(sampling.dimensions):
        inputs[name] = distributions[name].ppf(points[:, column]) if name in distributions else points[:, column]
        if not np.all(np.isfinite(inputs[name])):
            raise ScenarioError(f"field {name}: got a {distributions[name].dist if name in distributions else 'uniform'}"
                                f" distribution {distributions.get(name)!r} that draws non-finite values; expected "
                                f"parameters whose draws are finite numbers")
    return inputs


def sample_draws(model: Model, seed: int, start: int, stop: int) -> dict[str, np.ndarray]:
    """The model's sampled inputs (uncertain quantities and random events) for draws [start, stop) of the run
    with `seed`."""
    return sample_inputs(model.scenario, design(model.scenario, seed, model.event_names), start, stop)


def simulate_draws(model: Model, seed: int, start: int, stop: int
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(inputs, outputs) of draws [start, stop) of the run with `seed`: sample, then simulate."""
    inputs = sample_draws(model, seed, start, stop)
    return inputs, simulate(model, inputs)
