"""Adapters between a prepared scenario model and the analysis layer (decision, sensitivity, discovery).

The analysis modules know nothing of scenarios: they take parameters with inverse CDFs, a plain
function from per-draw inputs to per-draw outputs, and arrays. This module builds those from a `Model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from evlaunch.analysis.decision import first_order_dominance
from evlaunch.analysis.sensitivity import (
    AnalysisOptions,
    DesignConfig,
    Method,
    NonFiniteRule,
    Parameter,
    SensitivityResult,
    difference_output,
    run_sensitivity,
)
from evlaunch.config.columns import LAUNCH_MONTH_INDEX, NPV, path_column
from evlaunch.config.scenario import uncertain_parameters
from evlaunch.runs.sampling import simulate_draws
from evlaunch.runs.summary import ArrayTable, path_statistics, recommendation
from evlaunch.simulation.simulate import Model, simulate


def scenario_parameters(model: Model) -> list[Parameter]:
    """Every uncertain input: the scenario's distributions (through their inverse CDFs) and the uniform
    event draws that decide stage failures and supply shocks."""
    distributions = uncertain_parameters(model.scenario)
    parameters = []
    for name in sorted(distributions):
        low, high = distributions[name].bounds()
        parameters.append(Parameter(name, low, high, ppf=distributions[name].ppf))
    parameters += [Parameter(name, 0.0, 1.0) for name in model.event_names]
    return parameters


def model_function(model: Model):
    """The scenario as a plain function: per-draw inputs -> per-draw outputs (for SALib designs)."""
    def evaluate(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return simulate(model, inputs)
    return evaluate


def sample_table(model: Model, draws: int, seed: int) -> ArrayTable:
    """Inputs and outputs of `draws` Monte Carlo draws, in memory (for quick studies and discovery)."""
    inputs, outputs = simulate_draws(model, seed, 0, draws)
    return ArrayTable({**inputs, **outputs})


@dataclass(frozen=True)
class DecisionStudy:
    """The recommended path, the runner-up, and the sensitivity of outputs and of the choice."""

    recommended: str
    runner_up: str | None
    results: dict[str, SensitivityResult]


def sensitivity_study(model: Model, method: str = "sobol", outputs: list[str] | None = None,
                      base_samples: int = 128, seed: int = 1, screening_draws: int = 2000) -> DecisionStudy:
    """SALib indices for the chosen outputs (default: the recommended path's NPV and launch month) and
    for the NPV difference between the recommended path and the runner-up (what decides the choice)."""
    table = sample_table(model, screening_draws, seed)
    statistics = path_statistics(table, model.scenario)
    chosen = recommendation(statistics, model.scenario)
    ranked = sorted(statistics, key=lambda name: -statistics[name].npv.mean)
    runner_up = next((name for name in ranked if name != chosen.path), None)
    horizon = float(model.scenario.horizon_months)
    wanted: list[Any] = outputs or [path_column(chosen.path, NPV), path_column(chosen.path, LAUNCH_MONTH_INDEX)]
    if runner_up is not None and outputs is None:
        wanted.append(difference_output(chosen.path, runner_up, "npv"))
    config = DesignConfig(method=Method(method), base_samples=base_samples)
    options = AnalysisOptions(nonfinite=NonFiniteRule(posinf_cap=horizon))
    results = run_sensitivity(scenario_parameters(model), model_function(model), wanted, config,
                              np.random.default_rng(seed), options)
    return DecisionStudy(chosen.path, runner_up, results)


def dominance_table(npv: dict[str, np.ndarray], launch: dict[str, np.ndarray]) -> list[tuple[str, str, str]]:
    """Pairs (A, B, statement) where A first-order stochastically dominates B in NPV (higher is better)
    or in launch month (earlier is better). Two identical distributions dominate each other only weakly:
    that is stated once, as 'A and B have the same distribution'."""
    statements = []
    names = list(npv)
    for i, a in enumerate(names):
        for b in names:
            if a == b:
                continue
            launch_a = np.where(np.isnan(launch[a]), math.inf, launch[a])
            launch_b = np.where(np.isnan(launch[b]), math.inf, launch[b])
            for quantity, x, y, higher in (("NPV", npv[a], npv[b], True), ("launch month", launch_a, launch_b, False)):
                result = first_order_dominance(x, y, higher_is_better=higher).value
                if result == "strict":
                    statements.append((a, b, f"{a} dominates {b} in {quantity} (strict)"))
                elif result == "weak" and names.index(b) > i:  # equal distributions: say it once
                    statements.append((a, b, f"{a} and {b} have the same {quantity} distribution"))
    return statements


def discovery_frame(table: Any, columns: list[str]) -> pd.DataFrame:
    """The sampled inputs as a DataFrame (one row per draw) for PRIM."""
    return pd.DataFrame(table.to_numpy(columns))


def screen_inputs(inputs: pd.DataFrame, mask: np.ndarray, keep: int = 8) -> pd.DataFrame:
    """The `keep` inputs whose distributions differ most between draws where the condition holds and
    the rest (two-sample Kolmogorov-Smirnov distance). PRIM peels greedily, so with ~100 mostly
    irrelevant inputs it wanders into chance restrictions; screening first keeps the boxes readable."""
    if mask.all() or not mask.any():
        return inputs
    distances = {column: ks_2samp(inputs[column].to_numpy()[mask], inputs[column].to_numpy()[~mask]).statistic
                 for column in inputs.columns if inputs[column].nunique() > 1}
    chosen = sorted(distances, key=lambda column: -distances[column])[:keep]
    return inputs[chosen]
