"""Results for people who live in spreadsheets: a run as an .xlsx workbook (openpyxl).

Sheets: "run" (scenario, as-of date, draws, seed, version, recommendation), "paths" (key figures per
path), "per path and year" (deliveries, orders, share, revenue: mean and 10/50/90% quantiles), "market"
(total sales and NEV share per year) and "assumptions" (every numeric input: fixed value or distribution
with its quantiles and range, whether the file marks it a fact or an assumption, and the file's reason).
Money in CNY, volumes in vehicles, shares as fractions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pandas as pd
from openpyxl.utils import get_column_letter

from evlaunch.api.summary import Summary
from evlaunch.errors import RunError

SHEETS = ("run", "paths", "per path and year", "market", "assumptions")


def _run_sheet(summary: Summary) -> pd.DataFrame:
    rows = [("scenario", summary.scenario), ("as of", summary.as_of.isoformat()), ("draws", summary.draws),
            ("seed", summary.seed), ("evlaunch version", summary.version),
            ("recommended path", summary.recommended_path.name), ("criterion", summary.recommended_path.criterion),
            ("units", "money in CNY, volumes in vehicles, shares and probabilities as fractions")]
    return pd.DataFrame(rows, columns=["item", "value"])


def write_excel(path: Path, summary: Summary, paths: pd.DataFrame, assumptions: pd.DataFrame) -> Path:
    """Write the workbook to `path` atomically (a temporary file renamed into place); returns `path`."""
    if path.suffix.lower() != ".xlsx":
        raise RunError(f"--xlsx {path}: expected a file name ending in .xlsx")
    if not path.parent.is_dir():
        raise RunError(f"--xlsx {path}: the directory {path.parent} does not exist")
    by_year = summary.by_year()
    sheets = {
        "run": _run_sheet(summary),
        "paths": paths.reset_index(),
        "per path and year": by_year[by_year["path"] != "(market)"].reset_index(drop=True),
        "market": by_year[by_year["path"] == "(market)"].drop(columns="path").reset_index(drop=True),
        "assumptions": assumptions,
    }
    handle, temporary = tempfile.mkstemp(prefix=".evlaunch-", suffix=".xlsx", dir=path.parent)
    os.close(handle)
    try:
        with pd.ExcelWriter(temporary, engine="openpyxl") as writer:
            for name, frame in sheets.items():
                frame.to_excel(writer, sheet_name=name, index=False)
                sheet = writer.sheets[name]
                sheet.freeze_panes = "A2"
                for index, column in enumerate(frame.columns, start=1):
                    longest = max([len(str(column)), *(len(str(v)) for v in frame[column].head(200))])
                    sheet.column_dimensions[get_column_letter(index)].width = min(max(10, longest + 2), 80)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
