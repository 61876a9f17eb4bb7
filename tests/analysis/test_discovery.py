"""Scenario discovery with PRIM: planted boxes are recovered and described."""

import logging

import numpy as np
import pandas as pd
import pytest

from evlaunch.analysis.conditions import evaluate
from evlaunch.analysis.discovery import (
    DiscoveryConfig,
    DiscoveryError,
    choose_box,
    discover,
)


def _planted(n=1500, noise=0.05, seed=0):
    """Uniform draws of x1..x5; the condition holds in x1 > 0.7 and x2 < 0.3, with `noise` of labels flipped."""
    rng = np.random.default_rng(seed)
    inputs = pd.DataFrame({f"x{i}": rng.uniform(size=n) for i in range(1, 6)})
    inside = (inputs["x1"] > 0.7).to_numpy() & (inputs["x2"] < 0.3).to_numpy()
    flip = rng.uniform(size=n) < noise
    return inputs, np.where(flip, ~inside, inside)


@pytest.fixture(scope="module")
def planted_result():
    inputs, mask = _planted()
    return inputs, mask, discover(inputs, mask, "npv < 0")


def test_planted_box_is_recovered(planted_result):
    _, _, result = planted_result
    box = result.box
    assert set(box.limits) == {"x1", "x2"}  # x3..x5 are irrelevant and stay unrestricted
    assert box.limits["x1"].upper is None and box.limits["x2"].lower is None
    assert box.limits["x1"].lower == pytest.approx(0.7, abs=0.05)
    assert box.limits["x2"].upper == pytest.approx(0.3, abs=0.05)
    assert box.density > 0.85 and box.coverage > 0.5


def test_trajectory_and_sentence(planted_result):
    inputs, mask, result = planted_result
    box = result.box
    assert list(box.trajectory.columns) == ["coverage", "density", "mass", "n_restricted", "n_draws"]
    first = box.trajectory.iloc[0]
    assert first["coverage"] == 1.0 and first["mass"] == 1.0 and first["n_restricted"] == 0
    assert first["density"] == pytest.approx(mask.mean())
    assert 0 <= box.chosen < len(box.trajectory)
    assert result.n_draws == len(inputs) and result.n_cases == int(mask.sum())
    assert box.sentence.startswith(f"npv < 0 holds in {100 * box.density:.0f}% of draws (density) inside this box")
    assert f"covers {100 * box.coverage:.0f}% of all such draws (coverage)" in box.sentence
    assert box.sentence.endswith(box.rule)


def test_box_rule_is_a_condition_selecting_the_box(planted_result):
    inputs, mask, result = planted_result
    box = result.box
    in_box = evaluate(box.rule, {c: inputs[c].to_numpy() for c in inputs})
    assert in_box.mean() == pytest.approx(box.mass, abs=0.01)  # limits printed to 3 significant digits
    assert mask[in_box].mean() == pytest.approx(box.density, abs=0.03)


def test_choose_box_rule():
    trajectory = pd.DataFrame({
        "coverage": [1.0, 0.9, 0.8, 0.6, 0.4],
        "density": [0.2, 0.5, 0.90, 0.91, 0.99],
        "n_restricted": [0, 1, 2, 2, 3],
        "n_draws": [1000, 400, 200, 150, 90],
    })
    # best density with coverage >= 0.5 is 0.91 (n=150, se ~0.023); 0.90 is within 2 se and covers more
    assert choose_box(trajectory, DiscoveryConfig()) == 2
    assert choose_box(trajectory, DiscoveryConfig(density_tolerance_se=0.0)) == 3
    assert choose_box(trajectory, DiscoveryConfig(min_coverage=0.95)) == 0
    assert choose_box(trajectory, DiscoveryConfig(min_coverage=0.3, density_tolerance_se=0.0)) == 4


def test_second_box_explains_what_the_first_left(caplog):
    rng = np.random.default_rng(3)
    n = 1500
    inputs = pd.DataFrame({f"x{i}": rng.uniform(size=n) for i in range(1, 4)})
    mask = ((inputs["x1"] > 0.75) | (inputs["x2"] > 0.8)).to_numpy()
    with caplog.at_level(logging.DEBUG):
        result = discover(inputs, mask, "y", DiscoveryConfig(max_boxes=2))
    assert not [r for r in caplog.records if r.name.startswith("EMA")]  # ema's logging is silenced
    assert len(result.boxes) == 2
    found = {name for box in result.boxes for name in box.limits}
    assert found == {"x1", "x2"}
    assert sum(box.coverage for box in result.boxes) == pytest.approx(1.0, abs=0.1)


def test_bad_inputs_are_refused():
    inputs, mask = _planted(n=50)
    with pytest.raises(DiscoveryError, match="no draw"):
        discover(inputs, np.zeros(50, dtype=bool))
    with pytest.raises(DiscoveryError, match="every draw"):
        discover(inputs, np.ones(50, dtype=bool))
    with pytest.raises(DiscoveryError, match="shape"):
        discover(inputs, mask[:-1])
    with pytest.raises(DiscoveryError, match="boolean"):
        discover(inputs, mask.astype(int))
    with pytest.raises(DiscoveryError, match="not numeric"):
        discover(inputs.assign(path="BAIC"), mask)
    with pytest.raises(DiscoveryError, match="NaN"):
        discover(inputs.assign(x1=np.nan), mask)
