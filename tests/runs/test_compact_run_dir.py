"""The compact run directory: monthly series packed into list columns and read back under their flat names,
each value of a finished run stored once (draws.parquet + chunks/series.parquet), resume checking files by
their bytes without decoding them."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evlaunch.runs.draw_table import DrawTable
from evlaunch.runs.execution import consolidate, execute
from evlaunch.runs.run_dir import (
    SERIES_ENCODING_KEY,
    SERIES_METADATA_KEY,
    chunk_path,
    decode_series,
    encode_series,
    pack_series,
)

MONTHS = [f"2024-{m:02d}" for m in range(1, 13)]


def model_like(start: int, stop: int) -> dict[str, np.ndarray]:
    """An input, scalar outputs and two monthly series, depending on the draw index only."""
    index = np.arange(start, stop, dtype=np.float64)
    columns = {"market.outside_share": 0.5 + 0.1 * np.sin(index), "own.npv": np.cos(index * 7.0) * 1e9,
               "own.launched": index % 3 != 0}
    for month_number, month in enumerate(MONTHS):
        columns[f"own.deliveries_month.{month}"] = (index * (month_number + 1) % 97).astype(np.float32)
        columns[f"own.nev_share_month.{month}"] = np.float32(0.3) + (index % 7).astype(np.float32) / 100
    return columns


class Counting:
    def __init__(self):
        self.starts: list[int] = []

    def __call__(self, start, stop):
        self.starts.append(start)
        return model_like(start, stop)


def test_a_series_is_one_list_column_read_back_under_its_flat_names(tmp_path):
    table = pack_series(model_like(0, 10))
    assert table.column_names == ["market.outside_share", "own.npv", "own.launched", "own.deliveries_month",
                                  "own.nev_share_month"]
    assert table.schema.field("own.deliveries_month").metadata[SERIES_METADATA_KEY].decode().count("2024-") == 12
    draws = execute(model_like, 250, chunk_size=60, out_dir=tmp_path, run_fingerprint="fp")
    expected = model_like(0, 250)
    assert set(draws.columns) == set(expected)
    values = draws.to_numpy()
    for name, column in expected.items():
        assert values[name].dtype == column.dtype and values[name].tobytes() == column.tobytes(), name
    flat = DrawTable([_flat_copy(tmp_path / "flat.parquet", expected)])
    names = sorted(expected)
    assert draws.stats(names) == flat.stats(names)
    # the out-of-core path (DuckDB) indexes into the list columns
    tiny = DrawTable(draws.paths, memory_budget=1)
    assert tiny.stats(["own.deliveries_month.2024-07"]) == flat.stats(["own.deliveries_month.2024-07"])


def _flat_copy(path, columns):
    import pyarrow as pa

    pq.write_table(pa.table(columns), path)
    return path


def test_a_finished_run_stores_each_value_once_and_reads_the_same(tmp_path):
    chunked = execute(model_like, 250, chunk_size=60, out_dir=tmp_path, run_fingerprint="fp")
    before = chunked.to_numpy()
    finished = consolidate(tmp_path, row_group_rows=100)
    assert not list((tmp_path / "chunks").glob("chunk-*")) and not list((tmp_path / "chunks").glob("sha256-*"))
    draws_columns = pq.read_schema(tmp_path / "draws.parquet").names
    assert draws_columns == ["market.outside_share", "own.npv", "own.launched"]  # no monthly series
    assert pq.read_schema(tmp_path / "chunks" / "series.parquet").names == ["own.deliveries_month",
                                                                            "own.nev_share_month"]
    assert pq.read_metadata(tmp_path / "draws.parquet").num_row_groups == 3
    for table in (finished, DrawTable.open(tmp_path)):
        after = table.to_numpy()
        assert set(after) == set(before)
        for name, column in before.items():
            assert after[name].tobytes() == column.tobytes(), name
    assert consolidate(tmp_path).paths == finished.paths  # a second call changes nothing


def test_resuming_a_finished_run_computes_nothing_unless_its_files_changed(tmp_path):
    execute(model_like, 120, chunk_size=50, out_dir=tmp_path, run_fingerprint="fp")
    consolidate(tmp_path)
    expected = DrawTable.open(tmp_path).to_numpy()
    counting, notices = Counting(), []
    again = execute(counting, 120, chunk_size=50, out_dir=tmp_path, run_fingerprint="fp", resume=True,
                    notify=notices.append)
    assert counting.starts == [] and notices == []
    assert again.to_numpy()["own.npv"].tobytes() == expected["own.npv"].tobytes()

    draws = tmp_path / "draws.parquet"
    data = bytearray(draws.read_bytes())
    data[len(data) // 3] ^= 0xFF
    draws.write_bytes(bytes(data))
    again = execute(counting, 120, chunk_size=50, out_dir=tmp_path, run_fingerprint="fp", resume=True,
                    notify=notices.append)
    assert counting.starts == [0, 50, 100]
    assert len(notices) == 1 and str(draws) in notices[0] and "recomputing" in notices[0]
    consolidate(tmp_path)
    assert DrawTable.open(tmp_path).to_numpy()["own.npv"].tobytes() == expected["own.npv"].tobytes()


def test_resume_checks_chunks_by_their_bytes_without_decoding_them(tmp_path, monkeypatch):
    execute(model_like, 150, chunk_size=50, out_dir=tmp_path, run_fingerprint="fp")

    def forbidden(*args, **kwargs):
        raise AssertionError("a chunk whose bytes match its recorded SHA-256 must not be decoded")

    with monkeypatch.context() as patched:
        patched.setattr(pq, "read_table", forbidden)
        counting = Counting()
        execute(counting, 150, chunk_size=50, out_dir=tmp_path, run_fingerprint="fp", resume=True)
        assert counting.starts == []
    damaged = chunk_path(tmp_path / "chunks", 1)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 3] ^= 0xFF
    damaged.write_bytes(bytes(data))
    counting, notices = Counting(), []
    execute(counting, 150, chunk_size=50, out_dir=tmp_path, run_fingerprint="fp", resume=True,
            notify=notices.append)
    assert counting.starts == [50] and str(damaged) in notices[0]


@pytest.mark.parametrize("compact", [True, False])
def test_compact_chunks_are_smaller_than_pyarrows_defaults(tmp_path, compact):
    execute(model_like, 2000, chunk_size=2000, out_dir=tmp_path, run_fingerprint="fp")
    compact_size = chunk_path(tmp_path / "chunks", 0).stat().st_size
    import pyarrow as pa

    pq.write_table(pa.table(model_like(0, 2000)), tmp_path / "default.parquet")
    assert compact_size < 0.6 * (tmp_path / "default.parquet").stat().st_size


def test_outputs_are_stored_in_their_dtype_to_the_stated_precision():
    from evlaunch.runs.runner import STORED_MANTISSA_BITS, stored_output

    assert STORED_MANTISSA_BITS == 17
    values = np.array([1.0 / 3.0, -2.5e10, np.inf, -np.inf, np.nan, 0.0, 1e-300, 262_143.0, 12.0, -7.0])
    stored = stored_output(values)
    assert stored.dtype == np.float64  # draws.parquet's column types stay as they were
    assert stored[0] == 174_763 / 2**19 and stored[1] == -190_735 * 2**17  # the nearest 18 significant bits
    assert np.isposinf(stored[2]) and np.isneginf(stored[3]) and np.isnan(stored[4])
    assert stored[5] == 0.0 and stored[6] == 0.0  # below float32's range, as before
    np.testing.assert_array_equal(stored[7:], values[7:])  # integers below 2**18 stay exact
    rng = np.random.default_rng(3)
    wide = rng.normal(size=50_000) * np.exp(rng.normal(size=50_000) * 8)
    for sample in (wide, wide.astype(np.float32)):
        rounded = stored_output(sample)
        assert rounded.dtype == sample.dtype
        assert np.max(np.abs(rounded - sample) / np.abs(sample)) <= 2.0**-18  # within 1e-5, the stated precision
        as32 = rounded.astype(np.float32)
        assert np.array_equal(as32.astype(sample.dtype), rounded)  # exact in float32
        assert not (as32.view(np.uint32) & np.uint32(2 ** (23 - 17) - 1)).any()  # the dropped bits are zero
        assert np.array_equal(stored_output(rounded), rounded)  # idempotent
    flags = np.array([True, False])
    assert stored_output(flags) is flags


def test_a_finished_run_keeps_no_bytes_that_say_nothing(tmp_path):
    """Lists of floats are byte-stream-split like plain floats (by their leaf path); draws.parquet holds no
    min/max statistics and no Arrow schema (its types are Parquet's own); the manifest of a consolidated
    run no longer lists every column (the chunks it checked are gone), and the run still reads the same."""
    execute(model_like, 300, chunk_size=100, out_dir=tmp_path, run_fingerprint="fp")
    before = DrawTable.open(tmp_path).to_numpy()
    consolidate(tmp_path)
    series = pq.read_metadata(tmp_path / "chunks" / "series.parquet")
    leaf = series.row_group(0).column(0)
    assert leaf.path_in_schema == "own.deliveries_month.list.element" and "BYTE_STREAM_SPLIT" in leaf.encodings
    draws = pq.read_metadata(tmp_path / "draws.parquet")
    assert not draws.metadata  # no ARROW:schema
    assert not any(draws.row_group(0).column(k).is_stats_set for k in range(draws.num_columns))
    assert pq.read_schema(tmp_path / "draws.parquet").types == [pa.float64(), pa.float64(), pa.bool_()]
    assert "columns" not in json.loads((tmp_path / "chunks" / "manifest.json").read_text())
    after = DrawTable.open(tmp_path).to_numpy()
    assert all(after[name].tobytes() == column.tobytes() for name, column in before.items())


def test_the_stored_precision_is_part_of_the_run_fingerprint(monkeypatch):
    """Chunks of an evlaunch that stored outputs more finely (same version string) are another run's: a
    --resume recomputes them instead of mixing two precisions into one run."""
    from evlaunch.runs import runner

    now = runner.fingerprint("name = 'x'", 1)
    monkeypatch.setattr(runner, "STORED_MANTISSA_BITS", 23)
    assert runner.fingerprint("name = 'x'", 1) != now


def test_a_series_is_stored_as_month_differences_xored_with_another_paths_and_decodes_bit_for_bit():
    """`encode_series` is lossless for any float (NaN payloads, signed zeros, infinities, huge jumps whose
    integer differences wrap), and the stored integers of two paths' equal months are zero."""
    rng = np.random.default_rng(5)
    for dtype, bits in ((np.float32, np.int32), (np.float64, np.int64)):
        values = rng.standard_normal((40, 13)).astype(dtype) * dtype(1e30)
        values[0, :4] = [np.inf, -np.inf, -0.0, 0.0]
        infinity = int(np.array(np.inf, dtype=dtype).view(bits))
        values[1, 2] = (np.array(infinity + 12345, dtype=bits) | np.iinfo(bits).min).view(dtype)  # signed NaN, payload
        values[2] = np.array([np.iinfo(bits).max, np.iinfo(bits).min] * 6 + [1], dtype=bits).view(dtype)
        other = values.copy()
        other[::3] = rng.standard_normal((14, 13)).astype(dtype)
        alone, paired = encode_series(values), encode_series(other, values)
        assert alone.dtype == bits and paired.dtype == bits
        assert np.isnan(values[1, 2])
        assert decode_series(alone, None, np.dtype(dtype)).tobytes() == values.tobytes()
        assert decode_series(paired, alone, np.dtype(dtype)).tobytes() == other.tobytes()
        equal_rows = np.all(other.view(bits) == values.view(bits), axis=1)
        assert equal_rows.sum() == 26 and not paired[equal_rows].any()


def two_paths(start: int, stop: int) -> dict[str, np.ndarray]:
    """model_like with a second path whose series equal the first's in two draws out of three."""
    columns = model_like(start, stop)
    index = np.arange(start, stop)
    for month in MONTHS:
        own = columns[f"own.deliveries_month.{month}"]
        columns[f"BAIC.deliveries_month.{month}"] = np.where(index % 3 == 0, own * np.float32(1.5), own)
    return columns


def test_a_path_series_is_stored_against_the_first_paths_and_reads_back_exactly(tmp_path):
    table = pack_series(two_paths(0, 30))
    encoding = {name: json.loads(table.schema.field(name).metadata[SERIES_ENCODING_KEY])
                for name in ("own.deliveries_month", "BAIC.deliveries_month", "own.nev_share_month")}
    assert encoding == {"own.deliveries_month": {"dtype": "float32", "reference": None},
                        "BAIC.deliveries_month": {"dtype": "float32", "reference": "own.deliveries_month"},
                        "own.nev_share_month": {"dtype": "float32", "reference": None}}
    stored = np.array(table.column("BAIC.deliveries_month").combine_chunks().flatten()).reshape(30, 12)
    assert not stored[np.arange(30) % 3 != 0].any()  # equal to own's: nothing but zeros
    execute(two_paths, 250, chunk_size=60, out_dir=tmp_path, run_fingerprint="fp")
    consolidate(tmp_path, row_group_rows=100)
    draws, expected = DrawTable.open(tmp_path), two_paths(0, 250)
    assert draws.dtypes["BAIC.deliveries_month.2024-03"] == "float"
    values = draws.to_numpy(["BAIC.deliveries_month.2024-03", "own.npv"])  # the reference is read as well
    assert values["BAIC.deliveries_month.2024-03"].tobytes() == expected["BAIC.deliveries_month.2024-03"].tobytes()
    flat = DrawTable([_flat_copy(tmp_path / "flat.parquet", expected)])
    names = ["BAIC.deliveries_month.2024-07", "own.deliveries_month.2024-07"]
    assert DrawTable.open(tmp_path).stats(names) == flat.stats(names)
    # the out-of-core path (DuckDB) sorts a decoded copy of an encoded series
    tiny = DrawTable([draws.paths], memory_budget=1)
    assert tiny.stats(names) == flat.stats(names)


def test_a_run_stores_continuous_inputs_at_the_outputs_precision_and_event_draws_exactly(reference_path):
    """The model runs on the exact draws; a chunk stores the continuous ones rounded like outputs (within
    2**-18 relative) and the uniform event draws (which decide failures and shocks) bit for bit."""
    from evlaunch.runs.runner import compute_chunk, load_model
    from evlaunch.runs.sampling import sample_draws

    text = reference_path.read_text(encoding="utf-8")
    model = load_model(reference_path, text)
    drawn = sample_draws(model, 11, 3, 9)
    stored = compute_chunk(text, str(reference_path), str(reference_path.resolve().parent), 11, 3, 9)
    assert model.event_names and set(model.event_names) < set(drawn)
    rounded = 0
    for name, values in drawn.items():
        if name in model.event_names:
            assert stored[name].tobytes() == values.tobytes(), name
        else:
            assert stored[name].dtype == values.dtype
            assert np.all(np.abs(stored[name] - values) <= 2.0**-18 * np.abs(values)), name
            rounded += int(np.any(stored[name] != values))
    assert rounded > len(drawn) // 2  # most continuous inputs have more than 18 significant bits
