"""Load bundled (or user-supplied) sourced tables, with provenance and an as-of guard.

Every row must name its source; a row without one is refused. With `as_of`, rows published after
that date are withheld, so a scenario dated 2021-03-31 cannot see 2022 sales (no look-ahead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from evlaunch.data.catalogue import CATALOGUE, TableInfo
from evlaunch.errors import DataError

MAX_TABLE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Table:
    """A sourced table: its rows (each with `source`, `note`, `published`) and what was withheld."""

    info: TableInfo
    rows: pd.DataFrame
    path: str
    as_of: date | None = None
    withheld: int = 0
    withheld_examples: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.info.name


def bundled_path(name: str) -> Path:
    """Path of a bundled table's CSV inside the installed package."""
    return Path(str(resources.files("evlaunch.data") / "tables" / f"{name}.csv"))


@lru_cache(maxsize=64)
def _read_csv(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")


def read_rows(name: str, path: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """Read a table's raw rows as strings (cached), checking its columns and that every row has a source."""
    if name not in CATALOGUE:
        raise DataError(f"unknown table {name!r}; known tables: {', '.join(sorted(CATALOGUE))}")
    file_path = Path(path) if path is not None else bundled_path(name)
    if not file_path.is_file():
        raise DataError(f"table {name!r}: file {file_path} does not exist")
    if file_path.stat().st_size > MAX_TABLE_BYTES:
        raise DataError(f"table {name!r}: file {file_path} is larger than {MAX_TABLE_BYTES // 2**20} MB")
    try:
        frame = _read_csv(str(file_path.resolve()), file_path.stat().st_mtime).copy()
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"table {name!r}: {file_path} is not a readable CSV ({error})") from None
    if path is not None:
        bundled = bundled_path(name)
        expected = set(_read_csv(str(bundled.resolve()), bundled.stat().st_mtime).columns)
        missing = expected - set(frame.columns)
        if missing:
            raise DataError(f"table {name!r}: {file_path} lacks columns {sorted(missing)}; "
                            f"it needs the same columns as the bundled table")
    for column in ("source", "note"):
        if column not in frame.columns:
            raise DataError(f"table {name!r}: {file_path} has no {column!r} column; every row needs one")
    unsourced = frame["source"].isna() | (frame["source"].astype(str).str.strip() == "")
    info = CATALOGUE[name]
    figures = frame.drop(columns=[c for c in (*info.keys, "source", "note") if c in frame.columns])
    carries_number = figures.apply(lambda column: numeric(column).notna()).any(axis=1)
    refused = unsourced & carries_number
    if refused.any():
        line = int(refused.to_numpy().nonzero()[0][0]) + 2
        raise DataError(f"table {name!r}: {file_path} line {line} gives a figure without a source; every "
                        f"figure must say where it comes from (fill the 'source' column or empty the figure)")
    frame["gap"] = unsourced
    return frame, str(file_path)


def load_table(name: str, as_of: date | None = None, path: str | Path | None = None) -> Table:
    """Load a table with a `published` column; with `as_of`, withhold rows published after it.

    A row that lacks a source may only record a gap (no figure, e.g. 'not found'); it is kept with
    `gap=True` so that `evlaunch data` can show what is unknown, and carries no fact into the model.
    """
    frame, file_path = read_rows(name, path)
    info = CATALOGUE[name]
    frame = frame.copy()
    frame["published"] = [info.published(row) for _, row in frame.iterrows()]
    if as_of is None:
        return Table(info, frame.reset_index(drop=True), file_path)
    keep = frame["published"].map(lambda day: day is None or day <= as_of)
    dropped = frame[~keep]
    examples = tuple(str(row.iloc[0]) + " " + str(row.iloc[1]) for _, row in dropped.head(3).iterrows())
    return Table(info, frame[keep].reset_index(drop=True), file_path, as_of, int((~keep).sum()), examples)


def numeric(series: pd.Series) -> pd.Series:
    """Numbers from a text column ('1,234' -> 1234.0); empty or non-numeric cells become NaN (unknown)."""
    cleaned = series.astype(str).str.replace(",", "", regex=False).str.strip()
    return pd.to_numeric(cleaned, errors="coerce")
