"""DrawTable: out-of-core statistics equal numpy's on the concatenated columns, whatever the file layout."""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evlaunch.errors import RunError
from evlaunch.runs.draw_table import DrawTable, quantile_key

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

PROBS = (0.0, 0.01, 0.1, 0.25, 0.5, 0.9, 0.975, 1.0)


# Two ways `stats` orders a column: in memory (the column fits the budget) or by DuckDB out-of-core.
IN_MEMORY, OUT_OF_CORE = 256 * 2**20, 8


def write_chunks(directory, columns: dict[str, np.ndarray], chunk_size: int, memory_budget: int = IN_MEMORY) -> DrawTable:
    """Split columns into consecutive Parquet files of chunk_size rows, as execution does."""
    directory.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(columns.values())))
    paths = []
    for k, start in enumerate(range(0, n, chunk_size)):
        path = directory / f"chunk-{k:06d}.parquet"
        pq.write_table(pa.table({name: values[start : start + chunk_size] for name, values in columns.items()}), path)
        paths.append(path)
    return DrawTable(paths, memory_budget=memory_budget)


def extended_quantile(values: np.ndarray, q: float) -> float:
    """Reference for data with infinities: numpy's linear rule, interpolated in the extended reals."""
    x = np.sort(values.astype(np.float64))
    if np.isnan(x).any():
        return math.nan
    virtual = (len(x) - 1) * q
    lower = min(math.floor(virtual), len(x) - 1)
    upper = min(lower + 1, len(x) - 1)
    a, b, t = float(x[lower]), float(x[upper]), virtual - lower
    if a == b or t == 0:
        return a
    if math.isfinite(a) and math.isfinite(b):
        return float(np.quantile(x, q))
    if a == -math.inf and b == math.inf:
        return math.nan
    return -math.inf if a == -math.inf else math.inf


def exact_mean(values: np.ndarray) -> float:
    return float(sum(map(Fraction, values.astype(np.float64).tolist())) / len(values))


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(2023)
    n = 5_003
    months = rng.gamma(4.0, 4.0, size=n)
    months[rng.random(n) < 0.07] = np.inf  # never launches
    return {
        "cash": rng.normal(-2e9, 3e9, size=n),
        "share": rng.beta(2, 30, size=n).astype(np.float32),
        "launched": rng.random(n) < 0.9,
        "months": months,
        "heavy": rng.standard_cauchy(size=n) * 1e12,
    }


@pytest.mark.parametrize("budget", [IN_MEMORY, OUT_OF_CORE], ids=["in_memory", "duckdb"])
def test_stats_equal_numpy_bit_for_bit_on_finite_columns(budget, tmp_path, sample):
    table = write_chunks(tmp_path, sample, chunk_size=333, memory_budget=budget)
    stats = table.stats(["cash", "share", "launched", "heavy"], probs=PROBS)
    for name in ("cash", "share", "launched", "heavy"):
        column = sample[name].astype(np.float64)
        expected = np.quantile(column, PROBS, method="linear")
        got = [stats[name][quantile_key(p)] for p in PROBS]
        assert got == expected.tolist(), name  # exact equality, not approx
        assert stats[name]["mean"] == pytest.approx(float(np.mean(column)), rel=1e-13, abs=0)
        assert stats[name]["mean"] == exact_mean(column)
        assert stats[name]["share_finite"] == 1.0
    assert set(stats["cash"]) == {"mean", "mean_finite", "share_finite"} | {quantile_key(p) for p in PROBS}
    assert quantile_key(0.1) == "p10" and quantile_key(0.025) == "p2.5" and quantile_key(0.9) == "p90"
    with pytest.raises(ValueError, match="too close"):
        table.stats("cash", probs=(0.5, 0.5 + 1e-15))


@pytest.mark.parametrize("budget", [IN_MEMORY, OUT_OF_CORE], ids=["in_memory", "duckdb"])
def test_stats_with_never_launching_draws(budget, tmp_path, sample):
    table = write_chunks(tmp_path, sample, chunk_size=1000, memory_budget=budget)
    months = sample["months"]
    stats = table.stats("months", probs=PROBS)["months"]
    for p in PROBS:
        assert stats[quantile_key(p)] == extended_quantile(months, p)
        numpy_value = float(np.quantile(months, p))
        if not math.isnan(numpy_value):  # where numpy is defined, the numbers are numpy's
            assert stats[quantile_key(p)] == numpy_value
    assert stats["p90"] < np.inf and stats["p100"] == np.inf
    assert stats["mean"] == np.inf == np.mean(months)
    finite = months[np.isfinite(months)]
    assert stats["mean_finite"] == exact_mean(finite)
    assert stats["share_finite"] == len(finite) / len(months)


@pytest.mark.parametrize("budget", [IN_MEMORY, OUT_OF_CORE], ids=["in_memory", "duckdb"])
def test_nan_makes_quantiles_and_mean_nan_like_numpy(budget, tmp_path):
    values = np.array([1.0, 2.0, np.nan, 4.0, np.inf])
    stats = write_chunks(tmp_path, {"x": values}, chunk_size=2, memory_budget=budget).stats("x")["x"]
    assert all(math.isnan(stats[k]) for k in ("mean", "p10", "p50", "p90"))
    assert all(math.isnan(v) for v in np.quantile(values, [0.1, 0.5, 0.9]))
    assert stats["mean_finite"] == 7 / 3 and stats["share_finite"] == 0.6


finite_floats = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)
any_floats = st.one_of(finite_floats, st.sampled_from([np.inf, -np.inf, 0.0, -0.0, 1.0]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(any_floats, min_size=1, max_size=40),
    chunk=st.integers(min_value=1, max_value=9),
    budget=st.sampled_from([IN_MEMORY, OUT_OF_CORE]),
    probs=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=4, unique_by=quantile_key),
)
def test_stats_match_reference_for_any_data_and_layout(tmp_path_factory, values, chunk, budget, probs):
    array = np.array(values, dtype=np.float64)
    table = write_chunks(tmp_path_factory.mktemp("h"), {"x": array}, chunk_size=chunk, memory_budget=budget)
    stats = table.stats("x", probs=probs)["x"]
    for p in probs:
        expected = extended_quantile(array, p)
        got = stats[quantile_key(p)]
        assert got == expected or (math.isnan(got) and math.isnan(expected)), (p, got, expected)
    finite = array[np.isfinite(array)]
    if len(finite) == len(array):
        assert stats["mean"] == exact_mean(array)
        assert math.isclose(stats["mean"], float(np.mean(array)), rel_tol=1e-12, abs_tol=1e-300) or not math.isfinite(
            np.mean(array)
        )
    else:
        with np.errstate(invalid="ignore"):
            reference = float(np.mean(array))
        assert stats["mean"] == reference or (math.isnan(stats["mean"]) and math.isnan(reference))


def test_stats_do_not_depend_on_chunking_or_memory_budget(tmp_path, sample):
    results = [
        write_chunks(tmp_path / f"{size}-{budget}", sample, size, budget).stats(probs=PROBS)
        for size in (7, 100, 1000, 6000)
        for budget in (IN_MEMORY, 3 * 8 * 5_003, OUT_OF_CORE)  # all columns at once, 3 at a time, DuckDB
    ]
    assert _equal_with_nan(results)


def _equal_with_nan(results):
    first = results[0]
    for other in results[1:]:
        for column, row in first.items():
            for key, value in row.items():
                if not (value == other[column][key] or (math.isnan(value) and math.isnan(other[column][key]))):
                    return False
    return True


def test_mean_and_fraction(tmp_path, sample):
    table = write_chunks(tmp_path, sample, chunk_size=250)
    means = table.mean(["cash", "launched"])
    assert means["launched"] == np.mean(sample["launched"])
    assert means["cash"] == exact_mean(sample["cash"])
    assert table.fraction("cash", "<", 0) == np.mean(sample["cash"] < 0)
    assert table.fraction("months", ">=", np.inf) == np.mean(sample["months"] == np.inf)
    assert table.fraction("launched", "==", True) == np.mean(sample["launched"])
    assert table.fraction("share", "<=", 0.05) == np.mean(sample["share"] <= 0.05)
    with pytest.raises(ValueError, match="unknown comparison"):
        table.fraction("cash", "=<", 0)
    with pytest.raises(ValueError, match="unknown draw column"):
        table.stats(["cash", "profit"])


def test_to_numpy_iter_batches_and_consolidated_parquet(tmp_path, sample):
    table = write_chunks(tmp_path / "chunks", sample, chunk_size=777)
    assert table.n_rows == len(table) == 5_003
    assert table.columns == list(sample)
    assert table.dtypes["share"] == "float" and table.dtypes["launched"] == "bool"
    head = table.to_numpy(["months", "share"], limit=1000)
    np.testing.assert_array_equal(head["months"], sample["months"][:1000])
    assert head["share"].dtype == np.float32
    everything = table.to_numpy()
    for name, values in sample.items():
        np.testing.assert_array_equal(everything[name], values)
        assert everything[name].dtype == values.dtype
    assert table.to_numpy("cash", limit=0)["cash"].shape == (0,)
    blocks = list(table.iter_batches("cash", batch_size=500))
    np.testing.assert_array_equal(np.concatenate([b["cash"] for b in blocks]), sample["cash"])
    assert max(len(b["cash"]) for b in blocks) <= 500

    out = table.to_parquet(tmp_path / "draws.parquet", row_group_rows=2000)
    metadata = pq.read_metadata(out)
    assert metadata.num_rows == 5_003 and metadata.num_row_groups == 3
    single = DrawTable([out])
    assert single.stats(probs=PROBS) == table.stats(probs=PROBS) or _equal_with_nan(
        [single.stats(probs=PROBS), table.stats(probs=PROBS)]
    )
    assert DrawTable.open(tmp_path).paths == (out,)


def test_mismatched_or_missing_files_are_refused(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"x": np.zeros(3)}), a)
    pq.write_table(pa.table({"y": np.zeros(3)}), b)
    with pytest.raises(RunError, match="different runs"):
        DrawTable([a, b])
    with pytest.raises(RunError, match="cannot read"):
        DrawTable([a, tmp_path / "missing.parquet"])
    with pytest.raises(RunError, match="at least one"):
        DrawTable([])


@pytest.mark.parametrize("columns_in_budget", [0, 2])
def test_stats_memory_is_bounded_by_the_budget_not_the_draws(tmp_path, monkeypatch, columns_in_budget):
    """400k draws in 100 chunks: stats hold at most the budget (DuckDB path: ~one batch), never a frame."""
    rng = np.random.default_rng(5)
    n = 400_000
    columns = {name: rng.exponential(size=n) for name in ("x", "y", "z", "w")}
    column_bytes = n * 8
    budget = columns_in_budget * column_bytes or OUT_OF_CORE
    table = write_chunks(tmp_path, columns, chunk_size=4_000, memory_budget=budget)

    def forbidden(*args, **kwargs):
        raise AssertionError("stats must not load whole tables")

    import pandas

    monkeypatch.setattr(pandas, "read_parquet", forbidden)
    monkeypatch.setattr(pq, "read_table", forbidden)
    monkeypatch.setattr(pq.ParquetFile, "read", forbidden)
    tracemalloc.start()
    try:
        stats = table.stats()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    limit = budget + column_bytes / 4 if columns_in_budget else column_bytes / 4
    assert peak < limit, f"peak {peak} bytes of Python/numpy memory; limit {limit}"
    assert stats["w"]["p50"] == float(np.quantile(columns["w"], 0.5))
