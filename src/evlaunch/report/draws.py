"""The run's draws as the report reads them: only the columns sections ask for, each read once.

The report's sections ask the draw table for overlapping sets of columns (inputs, NPVs, monthly
series), each over the first few thousand draws. A finished run holds thousands of columns (every
month of every series), and the report needs a third of them: reading everything (what this module
once did for small runs) cost more than all the report's statistics. `ReportDraws` keeps the first
`rows` draws of each column it has read and reads only missing columns, as few times as it can:

* a run whose files hold the same draws side by side (a finished run: draws.parquet beside the
  monthly series) is read file by file: a column stored as itself, in the type the table gives it,
  straight from its Parquet file (projection: only those columns' pages are decoded; the file's footer
  is parsed once); the rest (a
  packed monthly series, unpacked into one column per month) through a `DrawTable` of that file
  alone, all of the file's columns at once when they fit in `preload_bytes`;
* other tables (chunk files of an unfinished run, any DrawTable-like object) through their own
  `to_numpy`.

Requests beyond the kept draws (`limit` above `rows`, or None on a larger run) and other questions
(`stats` over all draws, ...) go to the table itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from evlaunch.runs.draw_table import DrawTable

PRELOAD_BYTES = 64 * 2**20
MAX_SIDE_BY_SIDE = 4  # files of one block of draws (a finished run has two); more: chunk files


class ColumnNames(list):
    """The table's column names in file order (a list), with set-speed `in`: sections test membership of
    hundreds of names against thousands of columns."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(names)
        self._set = frozenset(self)

    def __contains__(self, name: object) -> bool:
        return name in self._set


class ReportDraws:
    """A DrawTable-like view for the report: `columns`, `to_numpy(columns, limit)`, `prefetch(columns)`, and
    everything else of the wrapped table (`stats`, `n_rows`, ...). Arrays returned are copies (a section may
    modify them)."""

    def __init__(self, table: Any, rows: int, preload_bytes: int = PRELOAD_BYTES) -> None:
        self._table = table
        self.columns = ColumnNames(table.columns)
        self._known = self.columns._set
        self._rows = max(0, min(int(rows), table.n_rows))
        self._preload_bytes = preload_bytes
        self._cache: dict[str, np.ndarray] = {}
        self._files: list[_File] | None = None  # built on the first read

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never for private names (nor before __init__ ran, e.g. in copy/pickle)
            raise AttributeError(name)
        return getattr(self._table, name)

    def __len__(self) -> int:
        return len(self._table)

    def prefetch(self, columns: Iterable[str]) -> None:
        """Read those of `columns` the table has and that are not kept yet, in one pass."""
        missing = [name for name in dict.fromkeys(columns) if name in self._known and name not in self._cache]
        if missing and self._rows:
            self._cache.update(self._read(missing))

    def to_numpy(self, columns: str | Iterable[str] | None = None, limit: int | None = None) -> dict[str, np.ndarray]:
        """The first `limit` draws (all if None) of each column, as `DrawTable.to_numpy` gives them."""
        names = self.columns if columns is None else [columns] if isinstance(columns, str) else list(columns)
        wanted = self._table.n_rows if limit is None else max(0, min(int(limit), self._table.n_rows))
        if wanted > self._rows or not self._rows or any(name not in self._known for name in names):
            return self._table.to_numpy(names, limit)  # beyond what is kept (or an unknown column: its error)
        self.prefetch(names)
        return {name: self._cache[name][:wanted].copy() for name in names}

    def _read(self, names: list[str]) -> dict[str, np.ndarray]:
        """The first `rows` draws of the named columns."""
        if self._files is None:
            self._files = _side_by_side_files(self._table)
        if not self._files:
            return self._table.to_numpy(names, self._rows)
        result: dict[str, np.ndarray] = {}
        left = set(names)
        for file in self._files:
            mine = [name for name in names if name in left and name in file.columns]
            if mine:
                result.update(file.read(mine, self._rows, self._preload_bytes))
                left.difference_update(mine)
        if left:  # not in any file alone (cannot happen for a well-formed table): the table's own answer
            result.update(self._table.to_numpy([name for name in names if name in left], self._rows))
        return result


class _File:
    """One Parquet file of a block of draws stored side by side: its columns stored as themselves (read by
    projection) and, through a DrawTable of the file alone, the others."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.table = DrawTable([path])
        self.columns = frozenset(self.table.columns)
        self.reader = pq.ParquetFile(path)  # its footer parsed once, whatever the number of reads
        physical = {field.name: str(field.type) for field in self.reader.schema_arrow}
        self.direct = frozenset(name for name, kind in self.table.dtypes.items() if physical.get(name) == kind)
        self.kept: dict[str, np.ndarray] = {}

    def read(self, names: list[str], rows: int, preload_bytes: int) -> dict[str, np.ndarray]:
        direct = [name for name in names if name in self.direct]
        result = _read_projected(self.reader, direct, rows) if direct else {}
        packed = [name for name in names if name not in self.direct]
        if packed:
            absent = [name for name in packed if name not in self.kept]
            if absent:
                everything = len(self.columns) * rows * 8 <= preload_bytes
                # all of the file's columns in one pass (no name look-ups), or only those asked for
                self.kept.update(_first_rows(self.table, rows) if everything else self.table.to_numpy(absent, rows))
            result.update({name: self.kept.pop(name) for name in packed})
        return result


def _read_projected(reader: pq.ParquetFile, names: list[str], rows: int) -> dict[str, np.ndarray]:
    """The first `rows` draws of columns stored as themselves in one Parquet file (only their pages read)."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
    taken = 0
    for batch in reader.iter_batches(batch_size=max(rows, 1), columns=names, use_threads=False):
        size = min(rows - taken, batch.num_rows)
        for i, name in enumerate(names):
            parts[name].append(batch.column(i).to_numpy(zero_copy_only=False)[:size])
        taken += size
        if taken >= rows:
            break
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _first_rows(table: DrawTable, rows: int) -> dict[str, np.ndarray]:
    """The first `rows` draws of every column of `table` (`iter_batches` of all columns: no per-name checks)."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in table.columns}
    taken = 0
    for block in table.iter_batches(None, batch_size=max(rows, 1)):
        size = min(rows - taken, len(next(iter(block.values()))))
        for name, values in block.items():
            parts[name].append(values[:size])
        taken += size
        if taken >= rows:
            break
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _side_by_side_files(table: Any) -> list[_File]:
    """The files of a table whose draws all sit in one block of side-by-side files (a finished run), each
    holding its own columns; [] for any other table (chunk files, a DrawTable-like object)."""
    paths = getattr(table, "paths", None)
    if not isinstance(table, DrawTable) or not paths or len(paths) > MAX_SIDE_BY_SIDE:
        return []
    files = [_File(Path(path)) for path in paths]  # chunk files: each holds fewer draws than the table
    if any(file.table.n_rows != table.n_rows for file in files) or sum(len(f.columns) for f in files) != len(
            table.columns):
        return []
    return files
