"""The table of Monte Carlo draws: one row per draw, one column per model output, kept on disk.

A `DrawTable` reads an ordered list of Parquet files (the chunk files of a run, in draw order; one
`draws.parquet`; or a finished run's `draws.parquet` joined column-wise with its `chunks/series.parquet`)
and answers summary questions with bounded memory, whatever the number
of draws: `stats` loads as many whole columns at a time as fit in `memory_budget` bytes (fast exact
order statistics with `np.partition`), and a column too long for the budget is sorted out-of-core by
DuckDB instead; `mean`, `fraction`, `iter_batches` and `to_parquet` stream record batches.

Statistics and their conventions (all returned as Python floats, computed on float64 values; float32
and bool columns are converted exactly, bool as 0/1):

* Quantiles use numpy's default definition (`np.quantile(x, q, method="linear")`): for finite data the
  result is bit-for-bit the value numpy gives on the concatenated column. The order statistics come
  from `np.partition` (column within the memory budget) or an out-of-core DuckDB sort (beyond it);
  the interpolation is numpy's own formula, replayed in Python.
* NaN anywhere in a column makes every quantile and the mean of that column NaN, as in numpy.
* +inf / -inf (e.g. "months to launch" of a draw that never launches) are ordered values. Where numpy
  would interpolate with infinities it produces NaN from `inf - inf` (e.g. the median of [1, 2, inf]);
  here the interpolation is taken in the extended reals instead: between a finite value and +inf
  (weight > 0) the quantile is +inf, between -inf and anything it is -inf, and a quantile that falls
  exactly on an order statistic is that statistic. So "p90 = inf" reads "more than 10% never launch".
* `mean` follows numpy's propagation (any NaN -> NaN; +inf -> inf; both +inf and -inf -> NaN), but its
  value is the *correctly rounded exact* mean: finite values are summed exactly (integer arithmetic on
  their binary mantissas) and rounded once. It therefore does not depend on chunking, worker count or
  summation order, and agrees with `np.mean` to within numpy's own pairwise-summation rounding (~1e-15
  relative; not necessarily bit-for-bit, since `np.mean` itself is not exact).
* `mean_finite` is the exact mean over finite draws only (NaN if none) and `share_finite` the share of
  draws that are finite: together they describe e.g. "launches in 62% of draws, after 14.2 months on
  average when it does".
"""

from __future__ import annotations

import json
import math
import operator
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from evlaunch.atomic import atomic_path
from evlaunch.errors import RunError
from evlaunch.runs.run_dir import (
    DRAWS_NAME,
    SERIES_ENCODING_KEY,
    SERIES_METADATA_KEY,
    SERIES_NAME,
    compact_options,
    decode_series,
    finished_chunk_paths,
    read_manifest,
)

__all__ = ["DEFAULT_PROBS", "DrawTable", "quantile_key"]

DEFAULT_PROBS: tuple[float, ...] = (0.1, 0.5, 0.9)
DEFAULT_BATCH_ROWS = 65_536
DEFAULT_MEMORY_BUDGET = 256 * 2**20  # bytes of float64 columns `stats` may hold at once
_DUCKDB_MEMORY_LIMIT = "1GB"  # DuckDB spills its sorts to a temporary directory beyond this

_COMPARISONS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def quantile_key(prob: float) -> str:
    """The stats key for a probability: 0.1 -> "p10", 0.5 -> "p50", 0.025 -> "p2.5"."""
    return f"p{prob * 100:.12g}"


class _ExactSum:
    """Streaming exact sum of finite float64 values, rounded once at the end (order-independent).

    Each value is mantissa * 2**(exponent - 53) with an integer mantissa below 2**53 in magnitude
    (`np.frexp`). Mantissas are split into 27- and 26-bit halves and summed per exponent with
    `np.bincount`; the per-batch partial sums stay below 2**53 and are therefore exact in float64.
    They are then accumulated into one Python integer counted in units of 2**-1126 (the smallest
    exponent a float64 can give here), and Python's correctly rounded int / int division finishes it.
    """

    _BLOCK = 8192  # values per vectorised step: ~8 temporaries of this size, independent of the draws
    _EXP_OFFSET = 1073  # np.frexp exponents of float64 lie in [-1073, 1024]

    def __init__(self) -> None:
        self.total = 0  # integer, in units of 2**-1126

    def add(self, finite: np.ndarray) -> None:
        for begin in range(0, finite.size, self._BLOCK):  # blocks < 2**26 also keep the bincounts exact
            self._add_batch(finite[begin : begin + self._BLOCK])

    def _add_batch(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        mantissa, exponent = np.frexp(values)
        integer = (mantissa * 2.0**53).astype(np.int64)  # exact: a float64 mantissa has 53 bits
        high = integer >> 26
        low = integer & ((1 << 26) - 1)
        bins = exponent.astype(np.int64) + self._EXP_OFFSET
        high_sums = np.bincount(bins, weights=high)
        low_sums = np.bincount(bins, weights=low)
        for shift in np.flatnonzero((high_sums != 0) | (low_sums != 0)):
            self.total += ((int(high_sums[shift]) << 26) + int(low_sums[shift])) << int(shift)

    def mean(self, count: int) -> float:
        if count == 0:
            return math.nan
        return self.total / (count << (self._EXP_OFFSET + 53))


@dataclass
class _ColumnScan:
    """What one streaming pass learns about a column."""

    n: int = 0
    n_nan: int = 0
    n_posinf: int = 0
    n_neginf: int = 0
    finite_sum: _ExactSum | None = None

    @property
    def n_finite(self) -> int:
        return self.n - self.n_nan - self.n_posinf - self.n_neginf

    def mean(self) -> float:
        """Mean with numpy's NaN/inf propagation and an exactly rounded finite value."""
        if self.n == 0 or self.n_nan or (self.n_posinf and self.n_neginf):
            return math.nan
        if self.n_posinf:
            return math.inf
        if self.n_neginf:
            return -math.inf
        return self.finite_sum.mean(self.n)

    def mean_finite(self) -> float:
        return self.finite_sum.mean(self.n_finite)

    def add(self, values: np.ndarray) -> None:
        """Count and sum float64 values, in blocks so temporaries stay small whatever the length."""
        for begin in range(0, values.size, DEFAULT_BATCH_ROWS):
            block = values[begin : begin + DEFAULT_BATCH_ROWS]
            finite = np.isfinite(block)
            self.n += block.size
            if not finite.all():
                self.n_nan += int(np.count_nonzero(np.isnan(block)))
                self.n_posinf += int(np.count_nonzero(block == np.inf))
                self.n_neginf += int(np.count_nonzero(block == -np.inf))
                block = block[finite]
            self.finite_sum.add(block)


def _quantile_positions(n: int, prob: float) -> tuple[int, int, float]:
    """numpy's "linear" method: (lower index, upper index, weight) into the sorted column of n values."""
    virtual = (n - 1) * prob
    if virtual >= n - 1:
        return n - 1, n - 1, 0.0
    if virtual < 0:
        return 0, 0, 0.0
    lower = math.floor(virtual)
    return lower, lower + 1, virtual - lower


def _interpolate(lower: float, upper: float, weight: float) -> float:
    """numpy's `_lerp` for finite neighbours; the extended-real limit when a neighbour is infinite."""
    if lower == upper or weight == 0.0:
        return lower
    if math.isfinite(lower) and math.isfinite(upper):
        diff = upper - lower
        if weight >= 0.5:
            return upper - diff * (1 - weight)
        return lower + diff * weight
    if lower == -math.inf and upper == math.inf:
        return math.nan  # undefined: between -inf and +inf
    return -math.inf if lower == -math.inf else math.inf


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _as_float64(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Exact float64 view of a numeric or bool Arrow column (nulls, which evlaunch never writes, as NaN)."""
    if array.type != pa.float64():
        array = pc.cast(array, pa.float64())
    if array.null_count:
        array = pc.fill_null(array, math.nan)
    return array.to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class _Source:
    """Where a column of the table is stored: file `file` of each part, physical column `column`, and for
    a packed monthly series (see `run_dir.pack_series`) the month's position `element` in the list."""

    file: int
    column: str
    element: int | None = None
    size: int = 0  # months in the packed series
    encoding: tuple[str, str | None] | None = None  # (float dtype, reference series) of an encoded series

    @property
    def physical(self) -> list[str]:
        """The stored columns needed to read it (an encoded series' reference too)."""
        if self.encoding is None or self.encoding[1] is None:
            return [self.column]
        return [self.encoding[1], self.column]


def _flat_fields(schema: pa.Schema, file: int) -> list[tuple[pa.Field, _Source]]:
    """The table's columns stored in one file: plain columns as they are, packed series one per month
    (as floats, whether stored as such or by `run_dir.encode_series`)."""
    result = []
    for stored in schema:
        labels = (stored.metadata or {}).get(SERIES_METADATA_KEY)
        if labels is None or not pa.types.is_fixed_size_list(stored.type):
            result.append((pa.field(stored.name, stored.type), _Source(file, stored.name)))
            continue
        months = json.loads(labels)
        value_type, encoding = stored.type.value_type, None
        if SERIES_ENCODING_KEY in stored.metadata:
            spec = json.loads(stored.metadata[SERIES_ENCODING_KEY])
            value_type, encoding = pa.from_numpy_dtype(np.dtype(spec["dtype"])), (spec["dtype"], spec["reference"])
        for k, month in enumerate(months):
            result.append((pa.field(SERIES_NAME.format(series=stored.name, month=month), value_type),
                           _Source(file, stored.name, k, len(months), encoding)))
    return result


def _layout_key(schema: pa.Schema) -> list[tuple[str, str, bytes | None, bytes | None]]:
    return [(f.name, str(f.type), (f.metadata or {}).get(SERIES_METADATA_KEY),
             (f.metadata or {}).get(SERIES_ENCODING_KEY)) for f in schema]


def _read_metadata(path: Path):
    try:
        return pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        raise RunError(f"cannot read draw file {path}: {exc}; re-run to recreate it") from exc


class DrawTable:
    """Ordered Parquet files holding one row per Monte Carlo draw (draw index = row position).

    Construct from the files in draw order, or with `DrawTable.open(out_dir)` for a run's output
    directory. An element of `paths` may itself be a sequence of files holding the same draws in
    different columns (a finished run's draws.parquet and series.parquet), read side by side. All
    elements must have the same columns and types. A packed monthly series (a fixed-size-list column
    written by `run_dir.pack_series`) reads as one column per month under its flat name
    ("own.deliveries_month.2024-03"). Nothing is loaded until asked. `memory_budget` (bytes) caps
    the float64 column data `stats` holds at once.
    """

    def __init__(
        self, paths: Sequence[str | os.PathLike[str] | Sequence[str | os.PathLike[str]]], *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET
    ) -> None:
        self._parts = tuple(
            (Path(p),) if isinstance(p, (str, os.PathLike)) else tuple(Path(q) for q in p) for p in paths)
        self.memory_budget = int(memory_budget)
        if not self._parts or not all(self._parts):
            raise RunError("a draw table needs at least one Parquet file; the run produced none")
        rows = []
        first: list[pa.Schema] = []
        for part in self._parts:
            metadata = [_read_metadata(path) for path in part]
            schemas = [m.schema.to_arrow_schema() for m in metadata]
            if not first:
                first = schemas
            elif [_layout_key(s) for s in schemas] != [_layout_key(s) for s in first]:
                raise RunError(
                    f"draw file {part[0]} has columns {[s.names for s in schemas]} but {self._parts[0][0]} has "
                    f"{[s.names for s in first]}; the files come from different runs: re-run into a new --out"
                )
            counts = {m.num_rows for m in metadata}
            if len(counts) != 1:
                raise RunError(f"draw files {[str(path) for path in part]} hold different numbers of draws; "
                               "re-run into a new --out")
            rows.append(counts.pop())
        fields = [item for file, schema in enumerate(first) for item in _flat_fields(schema, file)]
        names = [f.name for f, _ in fields]
        if len(set(names)) != len(names):
            raise RunError(f"draw files {[str(path) for path in self._parts[0]]} repeat column names; "
                           "they cannot be read side by side")
        self._schema = pa.schema([f for f, _ in fields])
        self._sources = {f.name: source for f, source in fields}
        self._rows = tuple(rows)

    @classmethod
    def open(cls, out_dir: str | os.PathLike[str]) -> DrawTable:
        """The draws of a run directory: a finished run's draws.parquet joined with its monthly series
        (chunks/series.parquet), else its chunk files (every column, the monthly series included), else
        a lone `draws.parquet` (inputs and key outputs)."""
        out = Path(out_dir)
        manifest = read_manifest(out)
        if (out / DRAWS_NAME).is_file() and manifest is None:
            return cls([out / DRAWS_NAME])
        if manifest is not None and manifest.get("consolidated"):
            files = [out / name for name in manifest["consolidated"]]
            if all(path.is_file() for path in files):
                return cls([files])
            missing = ", ".join(str(path) for path in files if not path.is_file())
            raise RunError(f"the run in {out} lost {missing}; re-run it into a new --out")
        return cls(finished_chunk_paths(out))

    # -- shape -----------------------------------------------------------------------------------

    @property
    def paths(self) -> tuple[Path, ...]:
        """The Parquet files, in draw order (side-by-side files of one block of draws in a row)."""
        return tuple(path for part in self._parts for path in part)

    @property
    def stored_columns(self) -> list[list[str]]:
        """The physical columns of each file of a block of draws (a packed series is one column)."""
        files: dict[int, list[str]] = {}
        for source in self._sources.values():
            names = files.setdefault(source.file, [])
            if source.column not in names:
                names.append(source.column)
        return [files.get(k, []) for k in range(len(self._parts[0]))]

    @property
    def columns(self) -> list[str]:
        """Output names, in file order."""
        return list(self._schema.names)

    @property
    def dtypes(self) -> dict[str, str]:
        """Arrow type name of each column (e.g. "double", "float", "bool")."""
        return {field.name: str(field.type) for field in self._schema}

    @property
    def n_rows(self) -> int:
        """Number of draws."""
        return sum(self._rows)

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return f"DrawTable({self.n_rows} draws x {len(self.columns)} columns in {len(self.paths)} files)"

    def _select(self, columns: str | Iterable[str] | None) -> list[str]:
        if columns is None:
            return self.columns
        names = [columns] if isinstance(columns, str) else list(columns)
        unknown = [name for name in names if name not in self._sources]  # a dict: membership in O(1)
        if unknown:
            raise ValueError(f"unknown draw column(s) {unknown}; the table has {self.columns}")
        return names

    # -- streaming ---------------------------------------------------------------------------------

    def _iter_arrow(self, columns: list[str], batch_size: int) -> Iterator[pa.RecordBatch]:
        needed: dict[int, list[str]] = {}
        for name in columns:
            stored = needed.setdefault(self._sources[name].file, [])
            stored.extend(column for column in self._sources[name].physical if column not in stored)
        files = sorted(needed) or [0]
        schema = pa.schema([self._schema.field(name) for name in columns])
        for part in self._parts:
            try:
                readers = [pq.ParquetFile(part[k], page_checksum_verification=True) for k in files]
                try:
                    streams = [reader.iter_batches(batch_size=batch_size, columns=needed.get(k, []))
                               for k, reader in zip(files, readers)]
                    for batches in zip(*streams, strict=True):
                        yield self._flat_batch(dict(zip(files, batches)), columns, schema)
                finally:
                    for reader in readers:
                        reader.close()
            except (OSError, ValueError, pa.ArrowException) as exc:  # damaged or removed since the footer was read
                raise RunError(f"cannot read draw file {part[0]}: {exc}; re-run (or --resume) to recreate it") from exc

    def _flat_batch(self, batches: dict[int, pa.RecordBatch], columns: list[str], schema: pa.Schema
                    ) -> pa.RecordBatch:
        """The requested columns of one block of draws, a packed series' months taken out of their lists."""
        rows = {batch.num_rows for batch in batches.values()}
        if len(rows) != 1:
            raise ValueError("side-by-side draw files are split into different row groups")
        arrays, unpacked = [], {}
        for name in columns:
            source = self._sources[name]
            column = batches[source.file].column(source.column)
            if source.element is not None:
                key = (source.file, source.column)
                if key not in unpacked:
                    unpacked[key] = self._unpack(batches[source.file], source)
                column = pa.array(np.ascontiguousarray(unpacked[key][:, source.element]))
            arrays.append(column)
        if not columns:
            return next(iter(batches.values()))  # no columns, but the block's row count
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    @staticmethod
    def _unpack(batch: pa.RecordBatch, source: _Source) -> np.ndarray:
        """A packed series of one block of draws as [draws, months] values (decoded if stored encoded)."""

        def stored(column: str) -> np.ndarray:
            return pc.list_flatten(batch.column(column)).to_numpy(zero_copy_only=False).reshape(-1, source.size)

        if source.encoding is None:
            return stored(source.column)
        dtype, reference = source.encoding
        return decode_series(stored(source.column), None if reference is None else stored(reference), np.dtype(dtype))

    def iter_batches(
        self, columns: str | Iterable[str] | None = None, *, batch_size: int = DEFAULT_BATCH_ROWS
    ) -> Iterator[dict[str, np.ndarray]]:
        """Yield consecutive blocks of draws (in draw order) as {column: 1-D array in its own dtype}."""
        names = self._select(columns)
        for batch in self._iter_arrow(names, batch_size):
            yield {name: batch.column(i).to_numpy(zero_copy_only=False) for i, name in enumerate(names)}

    def to_numpy(
        self, columns: str | Iterable[str] | None = None, limit: int | None = None
    ) -> dict[str, np.ndarray]:
        """The first `limit` draws (all if None) as {column: array}. Memory grows with `limit`."""
        names = self._select(columns)
        wanted = self.n_rows if limit is None else max(0, min(int(limit), self.n_rows))
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        taken = 0
        if wanted:
            for block in self.iter_batches(names, batch_size=min(DEFAULT_BATCH_ROWS, wanted)):
                size = min(wanted - taken, len(block[names[0]]) if names else 0)
                for name in names:
                    parts[name].append(block[name][:size])
                taken += size
                if taken >= wanted:
                    break
        result = {}
        for name in names:
            dtype = self._schema.field(name).type.to_pandas_dtype()
            result[name] = np.concatenate(parts[name]) if parts[name] else np.empty(0, dtype=dtype)
        return result

    def to_parquet(self, path: str | os.PathLike[str], *, row_group_rows: int = 131_072,
                   columns: Iterable[str] | None = None) -> Path:
        """Write all draws to one Parquet file (atomically) in row groups of `row_group_rows` draws,
        compactly (`run_dir.compact_options`); a monthly series is written as one column per month.

        Streams: at most about one row group is held in memory, whatever the number of draws.
        """
        names = self._select(columns)
        schema = pa.schema([self._schema.field(name) for name in names])
        buffered: list[pa.RecordBatch] = []
        buffered_rows = 0
        with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, **compact_options(schema)) as writer:
            for batch in self._iter_arrow(names, min(DEFAULT_BATCH_ROWS, row_group_rows)):
                buffered.append(batch)
                buffered_rows += batch.num_rows
                if buffered_rows >= row_group_rows:
                    block = pa.Table.from_batches(buffered, schema)
                    writer.write_table(block.slice(0, row_group_rows), row_group_rows)
                    buffered = block.slice(row_group_rows).to_batches()
                    buffered_rows -= row_group_rows
            if buffered_rows:
                writer.write_table(pa.Table.from_batches(buffered, schema), row_group_rows)
        return Path(path)

    # -- statistics --------------------------------------------------------------------------------

    def _scan(self, names: list[str]) -> dict[str, _ColumnScan]:
        """One streaming pass: counts and exact sums per column."""
        scans = {name: _ColumnScan(finite_sum=_ExactSum()) for name in names}
        for batch in self._iter_arrow(names, DEFAULT_BATCH_ROWS):
            for i, name in enumerate(names):
                scans[name].add(_as_float64(batch.column(i)))
        return scans

    def _load_float64(self, names: list[str]) -> dict[str, np.ndarray]:
        """Whole columns as float64 arrays, filled batch by batch (no intermediate copies)."""
        arrays = {name: np.empty(self.n_rows, dtype=np.float64) for name in names}
        offset = 0
        for batch in self._iter_arrow(names, DEFAULT_BATCH_ROWS):
            for i, name in enumerate(names):
                arrays[name][offset : offset + batch.num_rows] = _as_float64(batch.column(i))
            offset += batch.num_rows
        return arrays

    @contextmanager
    def _duckdb(self):
        import duckdb

        with tempfile.TemporaryDirectory(prefix="evlaunch-duckdb-") as spill:
            con = duckdb.connect(config={"memory_limit": _DUCKDB_MEMORY_LIMIT, "temp_directory": spill})
            try:
                yield con
            finally:
                con.close()

    def _order_statistics(self, con, name: str, ranks: set[int]) -> dict[int, float]:
        """Values at the given 0-based ranks of the ascending-sorted column (out-of-core DuckDB sort). A series
        stored encoded (which DuckDB cannot decode) is first streamed, decoded, into a temporary file."""
        rank_list = ", ".join(str(int(r)) for r in sorted(ranks))
        source = self._sources[name]
        with tempfile.TemporaryDirectory(prefix="evlaunch-decoded-") as scratch:
            if source.encoding is None:
                value = _quote(source.column) + ("" if source.element is None else f"[{source.element + 1}]")
                files = [str(part[source.file]) for part in self._parts]
            else:
                value, files = _quote(name), [str(self.to_parquet(Path(scratch) / "column.parquet", columns=[name]))]
            query = (
                "SELECT r, v FROM ("
                "SELECT v, row_number() OVER (ORDER BY v) - 1 AS r "
                f"FROM (SELECT CAST({value} AS DOUBLE) AS v FROM read_parquet($files)) "
                f"QUALIFY r IN ({rank_list}))"
            )
            rows = con.execute(query, {"files": files}).fetchall()
        return {int(r): float(v) for r, v in rows}

    def stats(
        self, columns: str | Iterable[str] | None = None, probs: Sequence[float] = DEFAULT_PROBS
    ) -> dict[str, dict[str, float]]:
        """Per column: mean, one quantile per prob (keys "p10", "p50", ...), mean_finite, share_finite.

        See the module docstring for the exact conventions (numpy's linear quantiles; NaN/inf handling).
        """
        names = self._select(columns)
        probs = [float(p) for p in probs]
        bad = [p for p in probs if not 0.0 <= p <= 1.0]
        if bad:
            raise ValueError(f"quantile probabilities must lie in [0, 1], got {bad}")
        if len({quantile_key(p) for p in probs}) != len(set(probs)):
            raise ValueError(f"quantile probabilities {probs} are too close to tell apart in their keys (p<percent>)")
        n = self.n_rows
        positions = [_quantile_positions(n, p) for p in probs] if n else []
        ranks = sorted({i for lower, upper, _ in positions for i in (lower, upper)})

        def finish(name: str, scan: _ColumnScan, order: dict[int, float] | None) -> None:
            row = {"mean": scan.mean()}
            for i, p in enumerate(probs):
                if order is None:  # NaN in the column, or no draws
                    row[quantile_key(p)] = math.nan
                else:
                    lower, upper, weight = positions[i]
                    row[quantile_key(p)] = _interpolate(order[lower], order[upper], weight)
            row["mean_finite"] = scan.mean_finite()
            row["share_finite"] = scan.n_finite / n if n else math.nan
            result[name] = row

        result: dict[str, dict[str, float]] = {}
        per_group = self.memory_budget // (8 * n) if n else max(1, len(names))
        if per_group >= 1:  # whole columns fit: exact order statistics by partial sorting in memory
            for begin in range(0, len(names), per_group):
                group = list(dict.fromkeys(names[begin : begin + per_group]))
                arrays = self._load_float64(group)
                for name in group:
                    values = arrays.pop(name)  # freed after use: the next group starts from nothing
                    scan = _ColumnScan(finite_sum=_ExactSum())
                    scan.add(values)
                    order = None
                    if n and not scan.n_nan:  # numpy: any NaN makes every quantile NaN
                        values.partition(ranks)
                        order = {rank: float(values[rank]) for rank in ranks}
                    del values
                    finish(name, scan, order)
        else:  # a column longer than the budget: stream the sums, let DuckDB sort out-of-core
            scans = self._scan(names)
            with self._duckdb() as con:
                for name in names:
                    order = None if scans[name].n_nan else self._order_statistics(con, name, set(ranks))
                    finish(name, scans[name], order)
        return {name: result[name] for name in names}

    def mean(self, columns: str | Iterable[str] | None = None) -> dict[str, float]:
        """Exact, order-independent mean per column (NaN/inf propagate as in numpy)."""
        return {name: scan.mean() for name, scan in self._scan(self._select(columns)).items()}

    def fraction(self, column: str, op: str, value: float | bool) -> float:
        """Share of draws with `column <op> value` (op one of < <= > >= == !=), with numpy's comparisons.

        Used for probabilities, e.g. `fraction("cash_min_cny", "<", 0)` = probability of running out
        of money. NaN compares false except with "!=", as in numpy.
        """
        try:
            compare = _COMPARISONS[op]
        except KeyError:
            raise ValueError(f"unknown comparison {op!r}; use one of {sorted(_COMPARISONS)}") from None
        (name,) = self._select([column])
        hits = 0
        for block in self.iter_batches([name]):
            hits += int(np.count_nonzero(compare(block[name], value)))
        return hits / self.n_rows if self.n_rows else math.nan

