"""The report's fast paths give what the slow ones gave: ReportDraws = DrawTable.to_numpy (only the columns
asked for, each read once), charts' template and quantile bands = plotly's validated template and numpy's
nanquantile, the launch chart's counted bars = plotly's probability histogram."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evlaunch.report import charts
from evlaunch.report.draws import ReportDraws
from evlaunch.runs.draw_table import DrawTable
from evlaunch.runs.run_dir import pack_series


class CountingTable(DrawTable):
    """A DrawTable that counts the passes over its files."""

    passes = 0

    def _iter_arrow(self, columns, batch_size):
        CountingTable.passes += 1
        yield from super()._iter_arrow(columns, batch_size)


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    n = 1300
    columns = {"a": rng.normal(size=n), "b": rng.integers(0, 5, n).astype(np.int64),
               "c": rng.uniform(size=n) < 0.3, "d": rng.normal(size=n).astype(np.float32)}
    columns["a"][::11] = np.nan
    paths = []
    for k, start in enumerate(range(0, n, 500)):  # chunks of 500 draws, as a run writes them
        path = tmp_path / f"chunk-{k:06d}.parquet"
        pq.write_table(pa.table({name: values[start:start + 500] for name, values in columns.items()}), path)
        paths.append(path)
    CountingTable.passes = 0
    return CountingTable(paths)


def assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert list(got) == list(expected)
    for name in expected:
        assert got[name].dtype == expected[name].dtype
        np.testing.assert_array_equal(got[name], expected[name])


@pytest.fixture
def finished(tmp_path):
    """A finished run's layout: plain columns in one file, packed monthly series (one plain column too)
    in another, the same 1,300 draws side by side."""
    rng = np.random.default_rng(2)
    n = 1300
    plain = {"a": rng.normal(size=n), "b": rng.integers(0, 5, n).astype(np.int64), "c": rng.uniform(size=n) < 0.3,
             "d": rng.normal(size=n).astype(np.float32)}
    plain["a"][::11] = np.nan
    series = {f"p.orders_month.2024-{m:02d}": rng.normal(size=n).astype(np.float32) for m in range(1, 13)}
    series |= {f"q.orders_month.2024-{m:02d}": rng.normal(size=n) for m in range(1, 4)}
    series["e"] = rng.normal(size=n)
    pq.write_table(pa.table(plain), tmp_path / "draws.parquet")
    pq.write_table(pack_series(series), tmp_path / "series.parquet")
    CountingTable.passes = 0
    return CountingTable([[tmp_path / "draws.parquet", tmp_path / "series.parquet"]])


REQUESTS = [(["a", "b"], 1000), (["c"], 700), (["a", "d", "c"], 1000), ("b", 3), (["d"], None)]


def test_report_draws_give_what_the_table_gives(table):
    draws = ReportDraws(table, rows=1000)
    assert draws.columns == table.columns and draws.n_rows == table.n_rows
    for columns, limit in REQUESTS:
        assert_same(draws.to_numpy(columns, limit), table.to_numpy(columns, limit))
    with pytest.raises(ValueError, match="unknown draw column"):
        draws.to_numpy(["a", "nope"], 10)


@pytest.mark.parametrize("preload", [True, False])
def test_report_draws_of_a_finished_run_give_what_the_table_gives(finished, preload):
    draws = ReportDraws(finished, rows=1000, preload_bytes=10**9 if preload else 0)
    assert draws.columns == finished.columns and "p.orders_month.2024-03" in draws.columns
    assert "nope" not in draws.columns
    months = [f"p.orders_month.2024-{m:02d}" for m in (3, 1, 12)]
    for columns, limit in [*REQUESTS, (months + ["e", "a"], 1000), (["q.orders_month.2024-02", "e"], 999),
                           (months, 10)]:
        assert_same(draws.to_numpy(columns, limit), finished.to_numpy(columns, limit))


def test_report_draws_read_only_what_is_asked_and_once(finished, monkeypatch):
    passes: list[tuple[str, ...]] = []   # the files of each pass over a DrawTable (joined or of one file)
    original = DrawTable._iter_arrow

    def counted(self, columns, batch_size):
        passes.append(tuple(path.name for path in self.paths))
        yield from original(self, columns, batch_size)

    monkeypatch.setattr(DrawTable, "_iter_arrow", counted)
    draws = ReportDraws(finished, rows=1000)
    draws.to_numpy(["a", "b"], 1000)
    assert set(draws._cache) == {"a", "b"} and passes == []   # plain columns by projection, nothing else
    draws.to_numpy(["p.orders_month.2024-01"], 1000)
    assert passes == [("series.parquet",)]                     # the series file alone, whole, once
    assert "c" not in draws._cache and "p.orders_month.2024-01" in draws._cache
    for columns in (["a"], ["p.orders_month.2024-02", "q.orders_month.2024-01"], ["b", "p.orders_month.2024-01"]):
        draws.to_numpy(columns, 800)
    assert passes == [("series.parquet",)]
    draws.to_numpy(["a"], None)                      # all 1,300 draws: beyond what is kept, read from the table
    assert passes[1:] == [("draws.parquet", "series.parquet")]


def test_report_draws_of_chunk_files_read_each_column_once(table):
    draws = ReportDraws(table, rows=1000)
    draws.to_numpy(["a", "b"], 1000)
    before = CountingTable.passes
    for columns in (["b"], ["a", "b"]):
        draws.to_numpy(columns, 800)
    assert CountingTable.passes == before
    draws.to_numpy(["c", "a"], 1000)                 # only c is read
    assert CountingTable.passes == before + 1


def test_report_draws_hand_out_copies(table):
    draws = ReportDraws(table, rows=1000)
    first = draws.to_numpy(["b"], 1000)["b"]
    first[:] = -1
    assert_same(draws.to_numpy(["b"], 1000), table.to_numpy(["b"], 1000))


def test_launch_histogram_bars_are_the_probability_histogram():
    """The launch chart's bars (counted shares) are what plotly's probability histogram of one label per
    draw showed: per month, the share of the path's launching draws."""
    rng = np.random.default_rng(3)
    index = rng.integers(0, 30, 500).astype(float)
    months, counts = np.unique(index.astype(int), return_counts=True)
    labels = [f"m{int(i):02d}" for i in months]
    figure = charts.launch_histogram({"own": (labels, counts / len(index))}, {"own": 0.1}, "t")
    bars = figure.data[0]
    drawn = [f"m{int(i):02d}" for i in index]
    assert list(bars.x) == sorted(set(drawn))
    np.testing.assert_array_equal(bars.y, [drawn.count(label) / len(drawn) for label in bars.x])
    assert bars.name == "own (never: 10%)" and figure.layout.barmode == "overlay"


def test_quantile_band_equals_nanquantile():
    rng = np.random.default_rng(1)
    values = rng.lognormal(size=(2000, 30))
    values[::7, 3] = np.nan
    values[:, 5] = np.nan
    values[:, 8] = 4.0
    probs = [0.1, 0.5, 0.9]
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanquantile(values, probs, axis=0)  # warns of the all-NaN column
    np.testing.assert_array_equal(charts.quantile_band(values, probs), expected)


def test_figures_carry_the_template_as_update_layout_would():
    """Same JSON, key order included, as attaching the template through plotly's validation."""
    fast = charts.new_figure()
    fast.add_trace(go.Bar(x=[1, 2], y=["a", "b"], orientation="h"))
    fast.update_layout(title="t", height=420)
    slow = go.Figure()
    slow.add_trace(go.Bar(x=[1, 2], y=["a", "b"], orientation="h"))
    slow.update_layout(title="t", template=charts.TEMPLATE, height=420)
    assert pio.to_json(fast) == pio.to_json(slow)
    # the cached template is not shared: changing one figure's template leaves the next one alone
    fast.layout.template.layout.paper_bgcolor = "black"
    assert pio.to_json(charts.new_figure()) == pio.to_json(go.Figure(layout={"template": charts.TEMPLATE}))
