"""The run's draws as the report reads them: each column read once, whatever the number of sections.

The report's sections ask the draw table for overlapping sets of columns (inputs, NPVs, monthly
series), each over the first few thousand draws. Every `DrawTable.to_numpy` call opens and scans the
run's Parquet files again, a fixed cost that dominated the report of a small run. `ReportDraws`
reads the first `rows` draws of every column in one pass when they fit in `preload_bytes` (a run of
up to a few thousand draws), else each column on first request, and serves later requests from
memory. Other questions (`stats` over all draws, ...) go to the table itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

PRELOAD_BYTES = 64 * 2**20


class ReportDraws:
    """A DrawTable-like view for the report: `columns`, `to_numpy(columns, limit)`, and everything else of
    the wrapped table (`stats`, `n_rows`, ...). Arrays returned are copies (a section may modify them)."""

    def __init__(self, table: Any, rows: int, preload_bytes: int = PRELOAD_BYTES) -> None:
        self._table = table
        self.columns: list[str] = list(table.columns)
        self._known = frozenset(self.columns)
        self._rows = max(0, min(int(rows), table.n_rows))
        self._preload = len(self.columns) * self._rows * 8 <= preload_bytes
        self._cache: dict[str, np.ndarray] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never for private names (nor before __init__ ran, e.g. in copy/pickle)
            raise AttributeError(name)
        return getattr(self._table, name)

    def __len__(self) -> int:
        return len(self._table)

    def to_numpy(self, columns: str | Iterable[str] | None = None, limit: int | None = None) -> dict[str, np.ndarray]:
        """The first `limit` draws (all if None) of each column, as `DrawTable.to_numpy` gives them."""
        names = self.columns if columns is None else [columns] if isinstance(columns, str) else list(columns)
        wanted = self._table.n_rows if limit is None else max(0, min(int(limit), self._table.n_rows))
        if wanted > self._rows or not self._rows or any(name not in self._known for name in names):
            return self._table.to_numpy(names, limit)  # beyond what is kept (or an unknown column: its error)
        missing = [name for name in dict.fromkeys(names) if name not in self._cache]
        if missing:
            self._cache.update(self._read(None if self._preload and not self._cache else missing))
        return {name: self._cache[name][:wanted].copy() for name in names}

    def _read(self, names: list[str] | None) -> dict[str, np.ndarray]:
        """The first `rows` draws of the named columns (None: all) in one pass over the files."""
        parts: dict[str, list[np.ndarray]] = {}
        taken = 0
        for block in self._table.iter_batches(names, batch_size=self._rows):
            size = min(self._rows - taken, len(next(iter(block.values()))))
            for name, values in block.items():
                parts.setdefault(name, []).append(values[:size])
            taken += size
            if taken >= self._rows:
                break
        return {name: np.concatenate(arrays) for name, arrays in parts.items()}
