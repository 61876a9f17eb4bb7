"""Load bundled (or user-supplied) sourced tables, with provenance and an as-of guard.

Every row must name its source; a row without one is refused. With `as_of`, rows published after
that date are withheld, so a scenario dated 2021-03-31 cannot see 2022 sales (no look-ahead).
Every table, bundled or a user's copy, is checked against its schema in the catalogue (columns,
months, years, dates, finite numbers within their ranges, no repeated rows); an error names the
table, the file, the line, the column, the value and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from evlaunch.data.catalogue import (
    CATALOGUE,
    FIRST_YEAR,
    LAST_YEAR,
    PERIOD,
    Column,
    TableInfo,
    parse_period_end,
)
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


NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"  # ASCII decimal, no 'inf'/'nan'


def _cells(frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """A column's cells as stripped text and whether each is filled."""
    text = frame[column].astype("string").str.strip()
    filled = (text.notna() & (text != "")).fillna(False).to_numpy(dtype=bool)  # plain bools, even for an empty column
    return text, pd.Series(filled, index=text.index)


def _bad_cells(text: pd.Series, filled: pd.Series, column: Column) -> pd.Series:
    """Which filled cells break the column's rule."""
    if column.kind == "text":
        return pd.Series(False, index=text.index)
    if column.kind == "choice":
        return filled & ~text.isin(column.choices)
    if column.kind in ("number", "integer"):
        cleaned = text.str.replace(",", "", regex=False)
        pattern = r"[+-]?[0-9]+" if column.kind == "integer" else NUMBER
        is_number = cleaned.str.fullmatch(pattern).fillna(False).astype(bool)
        with np.errstate(all="ignore"):
            value = pd.to_numeric(cleaned.where(is_number), errors="coerce").astype(float)
        inside = np.isfinite(value) & (value >= column.low) & (value <= column.high)
        wrong = filled & is_number & ~inside
        return wrong if column.remarks else wrong | (filled & ~is_number)
    shapes = {"month": r"[0-9]{4}-[0-9]{2}", "year": r"[0-9]{4}", "date": r"[0-9]{4}-[0-9]{2}-[0-9]{2}"}
    if column.kind == "period":
        ends = [parse_period_end(cell) if ok else None for cell, ok in zip(text.fillna(""), filled)]
        starts_ok = [bool(ok) and PERIOD.match(cell) is not None for cell, ok in zip(text.fillna(""), filled)]
        if column.remarks:  # a cell that does not start with a date is a remark ('(not found)')
            filled = filled & pd.Series(starts_ok, index=text.index)
    else:
        shaped = text.str.fullmatch(shapes[column.kind]).fillna(False).astype(bool).tolist()
        ends = [parse_period_end(cell) if ok and shape else None
                for cell, ok, shape in zip(text.fillna(""), filled, shaped)]
        starts_ok = shaped
    valid = [ok and end is not None and FIRST_YEAR <= end.year <= LAST_YEAR for ok, end in zip(starts_ok, ends)]
    return filled & ~pd.Series(valid, index=text.index)


def check_schema(frame: pd.DataFrame, info: TableInfo, file_path: str | Path) -> None:
    """Refuse a table whose cells break its schema (catalogue `Column`s) or that repeats a row's identity."""
    prefix = f"table {info.name!r}: {file_path}"
    for column in info.columns:
        if column.name not in frame.columns:
            raise DataError(f"{prefix} has no {column.name!r} column; expected the bundled table's columns")
        text, filled = _cells(frame, column.name)
        problems = (column.required & ~filled) | _bad_cells(text, filled, column)
        if problems.any():
            row = int(np.flatnonzero(problems.to_numpy())[0])
            shown = "an empty cell" if not filled.iloc[row] else repr(str(frame[column.name].iloc[row]))[:80]
            expected = column.expectation() + ("" if column.kind == "text" else ", or empty" if not column.required
                                               else "")
            raise DataError(f"{prefix} line {row + 2}, column {column.name}: got {shown}; expected {expected}")
    if info.unique and all(name in frame.columns for name in info.unique):
        # rows with an empty identifying cell (e.g. a quarterly ramp row without a month index) are not compared
        identity = frame[list(info.unique)].apply(lambda column: column.astype("string").str.strip())
        complete = (identity.notna() & (identity != "")).all(axis=1)
        repeated = (identity.duplicated(keep="first") & complete).to_numpy()
        if repeated.any():
            row = int(np.flatnonzero(repeated)[0])
            first = int(np.flatnonzero((identity == identity.iloc[row]).all(axis=1).to_numpy())[0])
            values = ", ".join(f"{name}={identity[name].iloc[row]!r}" for name in info.unique)
            raise DataError(f"{prefix} line {row + 2} repeats line {first + 2} ({values}); expected each "
                            f"{'/'.join(info.unique)} once")


@lru_cache(maxsize=64)
def _published_cached(name: str, path: str, mtime: float) -> tuple[date | None, ...]:
    frame = _checked_csv(name, path, mtime)
    return tuple(CATALOGUE[name].published(row) for _, row in frame.iterrows())


def _published(name: str, path: str, mtime: float, frame: pd.DataFrame) -> tuple[date | None, ...]:
    """Each row's publication date (cached per file version; `frame` holds the same rows as the file)."""
    dates = _published_cached(name, path, mtime)
    if len(dates) != len(frame):  # the file changed within the clock's resolution: compute afresh
        return tuple(CATALOGUE[name].published(row) for _, row in frame.iterrows())
    return dates


@lru_cache(maxsize=64)
def _checked_csv(name: str, path: str, mtime: float) -> pd.DataFrame:
    """A table's rows, read and checked against its schema (cached per file version)."""
    frame = _read_csv(path, mtime)
    check_schema(frame, CATALOGUE[name], path)
    return frame


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
    except OSError as error:
        raise DataError(f"table {name!r}: cannot read {file_path} ({error.strerror})") from None
    if path is not None:
        bundled = bundled_path(name)
        expected = set(_read_csv(str(bundled.resolve()), bundled.stat().st_mtime).columns)
        missing = expected - set(frame.columns)
        if missing:
            raise DataError(f"table {name!r}: {file_path} lacks columns {sorted(missing)}; "
                            f"it needs the same columns as the bundled table")
        if frame.empty:
            raise DataError(f"table {name!r}: {file_path} has a header but no rows; expected the table's rows")
    frame = _checked_csv(name, str(file_path.resolve()), file_path.stat().st_mtime).copy()
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
    """Load a table with a `published` column; with `as_of`, withhold rows published after it, and fact rows
    whose publication date is unknown (nothing shows they were public by then).

    A row that lacks a source may only record a gap (no figure, e.g. 'not found'); it is kept with
    `gap=True` so that `evlaunch data` can show what is unknown, and carries no fact into the model.
    """
    frame, file_path = read_rows(name, path)
    info = CATALOGUE[name]
    frame = frame.copy()
    resolved = Path(file_path).resolve()
    frame["published"] = list(_published(name, str(resolved), resolved.stat().st_mtime, frame))
    if as_of is None:
        return Table(info, frame.reset_index(drop=True), file_path)
    # a fact whose publication date is unknown cannot be shown to have been public by `as_of`: withheld
    keep = frame["gap"] | frame["published"].map(lambda day: day is not None and day <= as_of)
    dropped = frame[~keep]
    examples = tuple(str(row.iloc[0]) + " " + str(row.iloc[1]) for _, row in dropped.head(3).iterrows())
    return Table(info, frame[keep].reset_index(drop=True), file_path, as_of, int((~keep).sum()), examples)


def numeric(series: pd.Series) -> pd.Series:
    """Numbers from a text column ('1,234' -> 1234.0); empty or non-numeric cells become NaN (unknown)."""
    cleaned = series.astype(str).str.replace(",", "", regex=False).str.strip()
    return pd.to_numeric(cleaned, errors="coerce")
