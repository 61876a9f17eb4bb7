"""Partners' facts: what `firms.csv` says about the carmaker behind a path, as of the scenario's date.

A path's `partner` names a firm of the firms table (sales, NEV sales, plants and capacity, utilisation,
licence, and the note on financial distress), each row with its source. The model's capacity, fee,
cost and deal-risk numbers for the path stay assumptions in the scenario (the table gives no idle
capacity or contract terms); these facts are shown beside them in the report so an analyst can judge
the assumptions, and a partner the table does not know is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from evlaunch.data import load_table
from evlaunch.errors import ScenarioError

FACT_COLUMNS = ("total_sales", "nev_sales", "notable_plants", "capacity_utilisation", "production_licence")


@dataclass(frozen=True)
class PartnerFacts:
    """The public rows of one firm (oldest first), without gap rows."""

    firm: str
    rows: pd.DataFrame   # columns: year, FACT_COLUMNS, note, source

    def lines(self) -> list[tuple[str, str, str]]:
        """(year, 'column: value; ...', source) per row, for reports."""
        out = []
        for _, row in self.rows.iterrows():
            facts = "; ".join(f"{column.replace('_', ' ')}: {row[column]}" for column in FACT_COLUMNS
                              if isinstance(row[column], str) and row[column].strip())
            note = str(row["note"]) if isinstance(row["note"], str) else ""
            out.append((str(row["year"]), facts + (f" — {note}" if note else ""), str(row["source"])))
        return out


def firms_table(as_of: date, path: str | None = None) -> pd.DataFrame:
    return load_table("firms", as_of, path).rows


def partner_facts(firm: str, as_of: date, path: str | None = None) -> PartnerFacts:
    rows = firms_table(as_of, path)
    rows = rows[(rows["firm"] == firm) & ~rows["gap"]].sort_values("year")
    return PartnerFacts(firm, rows[["year", *FACT_COLUMNS, "note", "source"]].reset_index(drop=True))


def check_partners(paths: dict, as_of: date, path: str | None = None) -> None:
    """Every `partner` must be a firm of the firms table (its facts are shown with the path)."""
    firms = sorted(set(firms_table(as_of, path)["firm"]))
    for name, entry in paths.items():
        if entry.partner is not None and entry.partner not in firms:
            raise ScenarioError(f"field paths.{name}.partner: got {entry.partner!r}; expected a firm with rows in "
                                f"firms.csv public by {as_of}: {', '.join(firms) or 'none'} (or leave `partner` out)")
