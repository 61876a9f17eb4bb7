"""The SALib wrapper against analytic indices, and its guards on designs and outputs."""

import math

import numpy as np
import pytest
from scipy import stats

from evlaunch.analysis.sensitivity import (
    AnalysisOptions,
    DerivedOutput,
    DesignConfig,
    DesignMismatchError,
    Method,
    NonFiniteRule,
    Parameter,
    SensitivityError,
    analyse,
    build_design,
    make_finite,
    parameters_from_marginals,
    rank_decision_drivers,
    run_model,
    run_sensitivity,
)
from evlaunch.analysis.test_functions import ishigami, ishigami_indices, sobol_g, sobol_g_indices

# Sobol estimates with base N = 2048 have standard errors of ~0.01-0.03 for these functions.
N_BASE = 2048
TOL = 0.05


def ishigami_model(values):
    return {"y": ishigami(values["x1"], values["x2"], values["x3"])}


def test_ishigami_matches_analytic_indices():
    params = [Parameter(name, -math.pi, math.pi) for name in ("x1", "x2", "x3")]
    result = run_sensitivity(params, ishigami_model, ["y"], DesignConfig(base_samples=N_BASE),
                             np.random.default_rng(11))["y"]
    first, total = ishigami_indices(7.0, 0.1)
    np.testing.assert_allclose(result.first_order, first, atol=TOL)
    np.testing.assert_allclose(result.total, total, atol=TOL)
    assert first == pytest.approx([0.314, 0.442, 0.0], abs=1e-3)
    assert total == pytest.approx([0.558, 0.442, 0.244], abs=1e-3)
    assert result.ranking == ("x1", "x2", "x3")
    assert np.all(result.first_order_conf > 0) and np.all(result.total_conf > 0)
    assert list(result.table().index) == ["x1", "x2", "x3"]


def test_ishigami_through_scipy_marginals():
    marginals = {name: stats.uniform(loc=-math.pi, scale=2 * math.pi) for name in ("x1", "x2", "x3")}
    params = parameters_from_marginals(marginals)
    assert params[0].lower == pytest.approx(-math.pi + 0.001 * 2 * math.pi)
    result = run_sensitivity(params, ishigami_model, ["y"], DesignConfig(base_samples=N_BASE),
                             np.random.default_rng(12))["y"]
    np.testing.assert_allclose(result.total, ishigami_indices()[1], atol=TOL)


def test_sobol_g_matches_analytic_indices():
    a = [0.0, 1.0, 4.5, 9.0, 99.0, 99.0]
    names = [f"x{i}" for i in range(len(a))]
    params = [Parameter(name, 0.0, 1.0) for name in names]

    def model(values):
        return {"g": sobol_g(np.column_stack([values[n] for n in names]), a)}

    result = run_sensitivity(params, model, ["g"], DesignConfig(base_samples=N_BASE), np.random.default_rng(13))["g"]
    first, total = sobol_g_indices(a)
    np.testing.assert_allclose(result.first_order, first, atol=TOL)
    np.testing.assert_allclose(result.total, total, atol=TOL)
    assert result.ranking[:2] == ("x0", "x1")


def test_non_uniform_marginals_are_respected():
    # y = x1 + x2 with x1 ~ N(0, 1) and x2 ~ U(-1, 1) (variance 1/3): S1 = (0.75, 0.25).
    params = parameters_from_marginals({"x1": stats.norm(0, 1), "x2": stats.uniform(-1, 2)})
    design = build_design(params, DesignConfig(base_samples=1024), np.random.default_rng(14))
    assert np.std(design.values["x1"]) == pytest.approx(1.0, abs=0.03)
    assert np.ptp(design.values["x2"]) <= 2.0
    outputs = run_model(design, lambda v: {"y": v["x1"] + v["x2"]})
    result = analyse(design, outputs, "y")
    np.testing.assert_allclose(result.first_order, [0.75, 0.25], atol=TOL)


def test_morris_ranks_the_influential_input_first():
    params = [Parameter("weak", 0, 1), Parameter("strong", 0, 1), Parameter("tiny", 0, 10)]
    config = DesignConfig(method=Method.MORRIS, base_samples=20)
    result = run_sensitivity(params, lambda v: {"y": v["weak"] + 10 * v["strong"] + 0.01 * v["tiny"]}, ["y"],
                             config, np.random.default_rng(15))["y"]
    assert result.ranking == ("strong", "weak", "tiny")
    assert result.mu_star == pytest.approx([1.0, 10.0, 0.1])  # per full range of each input
    assert result.first_order is None and result.design.n_rows == 20 * 4


def test_morris_with_unbounded_marginal_stays_finite():
    params = parameters_from_marginals({"a": stats.norm(0, 1), "b": stats.uniform(0, 1)})
    design = build_design(params, DesignConfig(method=Method.MORRIS, base_samples=10), np.random.default_rng(16))
    assert np.all(np.isfinite(design.values["a"]))
    assert np.max(np.abs(design.values["a"])) == pytest.approx(stats.norm.ppf(0.999))


def test_design_records_its_metadata_and_is_reproducible():
    params = [Parameter("a", 0, 1), Parameter("b", 0, 1)]
    one = build_design(params, DesignConfig(base_samples=64), np.random.default_rng(1))
    two = build_design(params, DesignConfig(base_samples=64), np.random.default_rng(1))
    assert one.meta == two.meta
    assert one.meta.method is Method.SOBOL and one.meta.base_samples == 64
    assert one.meta.names == ("a", "b") and one.meta.n_rows == 64 * 4
    other = build_design(params, DesignConfig(base_samples=64), np.random.default_rng(2))
    assert other.meta.fingerprint != one.meta.fingerprint


def test_outputs_not_matching_the_design_are_refused():
    params = [Parameter("a", 0, 1), Parameter("b", 0, 1)]
    design = build_design(params, DesignConfig(base_samples=64), np.random.default_rng(3))
    outputs = run_model(design, lambda v: {"y": v["a"] + 2 * v["b"], "yy": np.ones((design.n_rows, 2))})
    with pytest.raises(DesignMismatchError, match="has 255 rows but design"):
        analyse(design, {"y": outputs["y"][:-1]}, "y")
    with pytest.raises(DesignMismatchError, match="shape"):
        analyse(design, outputs, "yy")
    shuffled = np.random.default_rng(0).permutation(design.n_rows)
    seen = {k: v[shuffled] for k, v in design.values.items()}
    with pytest.raises(DesignMismatchError, match="design row order"):
        analyse(design, {"y": outputs["y"][shuffled]}, "y", evaluated_inputs=seen)
    analyse(design, outputs, "y", evaluated_inputs=design.values)  # the right inputs pass
    with pytest.raises(SensitivityError, match="no output 'z'"):
        analyse(design, outputs, "z")


def test_bad_configurations_are_refused():
    params = [Parameter("a", 0, 1), Parameter("b", 0, 1)]
    with pytest.raises(SensitivityError, match="power of 2"):
        build_design(params, DesignConfig(base_samples=1000), np.random.default_rng(0))
    with pytest.raises(SensitivityError, match="at least 2"):
        build_design(params[:1], DesignConfig(), np.random.default_rng(0))
    with pytest.raises(SensitivityError, match="duplicate"):
        build_design([params[0], params[0]], DesignConfig(), np.random.default_rng(0))
    with pytest.raises(SensitivityError, match="bounds"):
        build_design([params[0], Parameter("c", 1, 1)], DesignConfig(), np.random.default_rng(0))
    design = build_design(params, DesignConfig(base_samples=16), np.random.default_rng(0))
    with pytest.raises(SensitivityError, match="same in every design row"):
        analyse(design, {"y": np.ones(design.n_rows)}, "y")


def test_never_launched_rows_are_capped_not_fatal():
    params = [Parameter("delay", 0, 1), Parameter("noise", 0, 1)]
    design = build_design(params, DesignConfig(base_samples=256), np.random.default_rng(4))

    def model(v):
        month = 10 + 20 * v["delay"] + v["noise"]
        return {"launch": np.where(v["delay"] > 0.8, np.inf, np.where(v["delay"] > 0.75, np.nan, month))}

    outputs = run_model(design, model)
    result = analyse(design, outputs, "launch", AnalysisOptions(nonfinite=NonFiniteRule(posinf_cap=36.0)))
    assert result.n_nonfinite_replaced > 0
    assert result.ranking[0] == "delay"
    with pytest.raises(SensitivityError, match="NaN"):
        analyse(design, outputs, "launch", AnalysisOptions(nonfinite=NonFiniteRule(nan="error")))


def test_make_finite_rules():
    values, replaced = make_finite(np.array([1.0, np.inf, -np.inf, np.nan]), NonFiniteRule(), "x")
    assert replaced == 3 and list(values) == [1.0, 1.0, 1.0, 1.0]
    values, _ = make_finite(np.array([1.0, 2.0, np.inf, np.nan]), NonFiniteRule(posinf_cap=24.0), "x")
    assert list(values) == [1.0, 2.0, 24.0, 24.0]
    with pytest.raises(SensitivityError, match="every row"):
        make_finite(np.array([np.inf, np.nan]), NonFiniteRule(), "x")


def test_decision_drivers_rank_the_inputs_that_move_the_gap():
    params = [Parameter(n, 0, 1) for n in ("demand", "approval", "price_war")]

    def model(v):
        return {
            "BAIC.npv": 5 * v["demand"] + 1 * v["approval"] + 3 * v["price_war"],
            "Chery.npv": 5 * v["demand"] + 0.5 * v["approval"],
        }

    result = rank_decision_drivers(params, model, "BAIC", "Chery", np.random.default_rng(5),
                                   config=DesignConfig(base_samples=512))
    assert result.output == "BAIC.npv - Chery.npv"
    assert result.ranking == ("price_war", "approval", "demand")
    assert result.total[0] == pytest.approx(0.0, abs=0.02)  # demand moves both paths alike
    with pytest.raises(SensitivityError, match="no output 'Brilliance.npv'"):
        rank_decision_drivers(params, model, "BAIC", "Brilliance", np.random.default_rng(5),
                              config=DesignConfig(base_samples=16))


def test_derived_output_and_several_outputs_share_one_run():
    calls = []
    params = [Parameter("a", 0, 1), Parameter("b", 0, 1)]

    def model(v):
        calls.append(1)
        return {"y": v["a"] + 0.1 * v["b"], "z": v["b"]}

    spec = DerivedOutput("y_minus_z", lambda out: out["y"] - out["z"])
    results = run_sensitivity(params, model, ["y", "z", spec], DesignConfig(base_samples=128),
                              np.random.default_rng(6))
    assert len(calls) == 1
    assert results["y"].ranking[0] == "a" and results["z"].ranking[0] == "b"
    assert set(results) == {"y", "z", "y_minus_z"}
