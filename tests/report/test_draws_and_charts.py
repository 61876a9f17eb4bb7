"""The report's fast paths give what the slow ones gave: ReportDraws = DrawTable.to_numpy (read once),
charts' template and quantile bands = plotly's validated template and numpy's nanquantile."""

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


@pytest.mark.parametrize("preload", [True, False])
def test_report_draws_give_what_the_table_gives(table, preload):
    draws = ReportDraws(table, rows=1000, preload_bytes=10**9 if preload else 0)
    assert draws.columns == table.columns and draws.n_rows == table.n_rows
    for columns, limit in [(["a", "b"], 1000), (["c"], 700), (["a", "d", "c"], 1000), ("b", 3), (["d"], None)]:
        assert_same(draws.to_numpy(columns, limit), table.to_numpy(columns, limit))
    with pytest.raises(ValueError, match="unknown draw column"):
        draws.to_numpy(["a", "nope"], 10)


def test_report_draws_read_the_files_once_when_small(table):
    draws = ReportDraws(table, rows=1000)
    draws.to_numpy(["a"], 1000)
    before = CountingTable.passes
    for columns in (["b"], ["c", "d"], ["a", "b", "c", "d"]):
        draws.to_numpy(columns, 800)
    assert CountingTable.passes == before  # every column came with the first pass
    draws.to_numpy(["a"], None)  # all 1,300 draws: beyond what is kept, read from the table
    assert CountingTable.passes == before + 1


def test_report_draws_hand_out_copies(table):
    draws = ReportDraws(table, rows=1000)
    first = draws.to_numpy(["b"], 1000)["b"]
    first[:] = -1
    assert_same(draws.to_numpy(["b"], 1000), table.to_numpy(["b"], 1000))


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
