"""The frozen fixed workload of benchmarks/bench_scale.py must stay a scenario the model can run.

It is frozen so that model growth does not move the speed target, but a model change that makes it invalid
(a field newly required, a table no longer accepted) would silently break the benchmark; this catches that."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evlaunch.runs import runner, sampling

FIXED_WORKLOAD = Path(__file__).resolve().parents[1] / "benchmarks" / "fixed_workload" / "xiaomi-2023.toml"


def test_the_fixed_workload_loads_and_simulates_finite_outputs():
    model = runner.load_model(FIXED_WORKLOAD)
    assert list(model.scenario.paths) == ["own", "BAIC", "Chery", "Brilliance"]  # frozen: four paths
    _, outputs = sampling.simulate_draws(model, 2023, 0, 8)
    deliveries = np.asarray(outputs["own.deliveries.2024"])
    assert deliveries.shape == (8,) and np.isfinite(deliveries).all() and (deliveries >= 0).all()
