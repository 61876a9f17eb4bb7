"""Our vectorised PAWN against SALib's `pawn.analyze` (the reference; it stays a dependency) and the KS
statistics against `scipy.stats.ks_2samp`: the same numbers and the same rankings, ties and NaN included."""

import contextlib
import logging
import math
import warnings

import numpy as np
import pytest
from SALib.analyze import pawn as salib_pawn
from scipy import stats

from evlaunch.analysis.pawn import EXACT_MAX_DRAWS, ks_statistics, pawn, slice_labels
from evlaunch.analysis.test_functions import ishigami
from evlaunch.report.sensitivity import NOISE, PAWN_SLICES, pawn_ranking

TOLERANCE = 0.0  # bit for bit: the same arithmetic as SALib/scipy
SUMMARIES = ("minimum", "mean", "median", "maximum", "stdev")

logging.getLogger("SALib").setLevel(logging.ERROR)


@contextlib.contextmanager
def quiet():
    """Silence numpy's all-NaN-slice warnings inside SALib (empty slices are among the cases tested)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def salib(x: np.ndarray, y: np.ndarray, slices: int = 10) -> dict[str, np.ndarray]:
    problem = {"num_vars": x.shape[1], "names": [f"x{i}" for i in range(x.shape[1])],
               "bounds": [[0.0, 1.0]] * x.shape[1]}
    with quiet():
        result = salib_pawn.analyze(problem, x, y, S=slices, print_to_console=False)
    return {key: np.asarray(result[key], float) for key in SUMMARIES}


def ranking(median: np.ndarray) -> list[int]:
    """Inputs by decreasing index, ties in column order (as the report sorts them)."""
    return sorted(range(len(median)), key=lambda i: -median[i])


def assert_same_as_salib(x: np.ndarray, y: np.ndarray, slices: int = 10) -> None:
    ours, reference = pawn(x, y, slices), salib(x, y, slices)
    for key in SUMMARIES:
        np.testing.assert_allclose(getattr(ours, key), reference[key], rtol=0, atol=TOLERANCE, err_msg=key)
        assert np.array_equal(np.isnan(getattr(ours, key)), np.isnan(reference[key])), key
    assert ranking(ours.median) == ranking(reference["median"])


def ishigami_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(seed).uniform(-math.pi, math.pi, size=(n, 3))
    return x, ishigami(x[:, 0], x[:, 1], x[:, 2])


@pytest.mark.parametrize("n, seed", [(500, 1), (2000, 2), (4000, 3)])
def test_ishigami_matches_salib(n, seed):
    x, y = ishigami_sample(n, seed)
    assert_same_as_salib(x, y)
    # and the known answer: x2 and x1 matter, x3 (interaction only) much less
    order = ranking(pawn(x, y).median)
    assert order[-1] == 2


def test_ishigami_with_noise_inputs_and_other_slice_counts():
    x, y = ishigami_sample(3000, 4)
    noise = np.random.default_rng(5).uniform(size=(3000, 4))
    x = np.column_stack([x, noise])
    for slices in (3, 7, 10, 20):
        assert_same_as_salib(x, y, slices)
    # the pure-noise inputs rank below x1 and x2
    median = pawn(x, y).median
    assert median[:2].min() > median[3:].max()


def test_random_models_with_ties_discrete_inputs_and_nan():
    rng = np.random.default_rng(6)
    for case in range(6):
        n = int(rng.integers(150, 3000))
        x = rng.normal(size=(n, 6))
        x[:, 1] = rng.integers(0, 3, n)                 # a discrete input: slices with many ties, some empty
        x[:, 2] = np.round(x[:, 2], 1)                 # heavy ties inside the input
        x[rng.uniform(size=n) < 0.07, 3] = np.nan      # NaN inputs join no slice
        y = x[:, 0] + 0.5 * x[:, 1] ** 2 + rng.normal(scale=0.3, size=n) * (case % 3)
        if case % 2:
            y = np.round(y, 1)                          # ties in the output
        assert_same_as_salib(x, y)


def test_discrete_output_and_constant_or_empty_inputs():
    rng = np.random.default_rng(7)
    n = 800
    x = np.column_stack([rng.uniform(size=n), np.full(n, 0.25), np.full(n, np.nan), rng.integers(0, 2, n)])
    y = (x[:, 0] > 0.5).astype(float) + x[:, 3]        # three output values only
    ours = pawn(x, y)
    assert np.isnan(ours.median[1]) and np.isnan(ours.median[2])  # no non-empty slice: no index
    assert_same_as_salib(x[:, [0, 1, 3]], y)


def test_above_the_exact_limit_uses_the_float_statistic_as_scipy_does():
    rng = np.random.default_rng(8)
    n = EXACT_MAX_DRAWS + 1500
    x = rng.uniform(size=(n, 3))
    y = np.round(np.sin(4 * x[:, 0]) + x[:, 1] ** 2 + 0.2 * rng.normal(size=n), 2)
    assert_same_as_salib(x, y)


@pytest.mark.parametrize("n", [60, 997, 5000, EXACT_MAX_DRAWS, EXACT_MAX_DRAWS + 7])
def test_ks_statistics_equal_scipy_ks_2samp(n):
    rng = np.random.default_rng(n)
    y = rng.normal(size=n)
    y[: n // 5] = np.round(y[: n // 5], 1)             # ties, some of them across subsets
    labels = rng.integers(-1, 5, size=(3, n))           # -1: in no subset
    labels[2, labels[2] == 3] = 4                       # subset 3 of row 2 empty
    ours = ks_statistics(y, labels, 5)
    for row in range(3):
        for subset in range(5):
            members = y[labels[row] == subset]
            if len(members) == 0:
                assert np.isnan(ours[row, subset])
            else:
                assert abs(ours[row, subset] - stats.ks_2samp(members, y).statistic) <= TOLERANCE


def test_ks_statistics_extremes():
    y = np.arange(10.0)
    # the subset of the 3 smallest draws: ECDF gap 1 - 3/10 at y=2
    assert ks_statistics(y, np.where(y < 3, 0, -1), 1)[0] == pytest.approx(0.7, abs=TOLERANCE)
    # everything: no gap
    assert ks_statistics(y, np.zeros(10, int), 1)[0] == 0.0
    with pytest.raises(ValueError, match="finite"):
        ks_statistics(np.array([1.0, np.nan]), np.zeros(2, int), 1)


def test_slice_labels_follow_salibs_rule():
    rng = np.random.default_rng(9)
    x = np.column_stack([rng.normal(size=500), rng.integers(0, 4, 500).astype(float)])
    x[::17, 0] = np.nan
    labels, edges = slice_labels(x, 10)
    for i in range(2):
        for s in range(10):
            inside = (x[:, i] >= edges[s, i]) & (x[:, i] < edges[s + 1, i])
            np.testing.assert_array_equal(labels[i] == s, inside)
        assert np.all(labels[i, np.isnan(x[:, i])] == -1)
        assert np.all(labels[i, x[:, i] == np.nanmax(x[:, i])] == -1)  # the maximum is in no slice (SALib)


def salib_ranking(inputs: dict[str, np.ndarray], output: np.ndarray, seed: int = 0) -> list[tuple[str, float]]:
    """The report's ranking as it was computed with SALib (the reference)."""
    names = [n for n, v in inputs.items() if np.nanstd(v) > 0]
    dummy = np.random.default_rng(seed).uniform(size=len(output))
    matrix = np.column_stack([inputs[n] for n in names] + [dummy])
    finite = np.isfinite(output)
    problem = {"num_vars": len(names) + 1, "names": names + [NOISE], "bounds": [[0.0, 1.0]] * (len(names) + 1)}
    with quiet():
        result = salib_pawn.analyze(problem, matrix[finite], output[finite], S=PAWN_SLICES, print_to_console=False,
                                    seed=seed)
    return sorted(zip(names + [NOISE], (float(v) for v in result["median"])), key=lambda item: -item[1])


def test_report_ranking_equals_salibs():
    rng = np.random.default_rng(10)
    n = 2000
    inputs = {f"input {i}": rng.uniform(size=n) for i in range(12)}
    inputs["discrete"] = rng.integers(0, 3, n).astype(float)
    inputs["sometimes missing"] = np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(size=n))
    inputs["constant"] = np.full(n, 0.5)
    output = 3 * inputs["input 0"] + inputs["discrete"] + np.nan_to_num(inputs["sometimes missing"]) \
        + rng.normal(scale=0.5, size=n)
    output[rng.uniform(size=n) < 0.05] = np.inf         # e.g. a launch month that never comes
    output[:7] = np.nan
    ours = pawn_ranking(inputs, output)
    reference = salib_ranking(inputs, output)
    assert [name for name, _ in ours] == [name for name, _ in reference]
    np.testing.assert_allclose([v for _, v in ours], [v for _, v in reference], rtol=0, atol=TOLERANCE)
    assert "constant" not in dict(ours)
    assert {name for name, _ in ours[:3]} == {"input 0", "discrete", "sometimes missing"}


def test_report_ranking_needs_enough_varying_finite_draws():
    rng = np.random.default_rng(11)
    inputs = {"a": rng.uniform(size=300)}
    assert pawn_ranking(inputs, np.where(np.arange(300) < 250, np.nan, 1.0)) == []   # 50 finite draws
    assert pawn_ranking(inputs, np.full(300, 2.0)) == []                             # no variation
