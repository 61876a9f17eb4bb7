"""The `summary.json` contract as typed, frozen objects (money in CNY, volumes in vehicles).

`Summary.from_dict` reads the document a run writes; `Summary.raw` keeps that document unchanged.
Years are ints here (the JSON's keys are their strings). A launch quantile beyond the horizon is None.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Stats:
    """Mean and 10/50/90% quantiles over the draws (None where not finite)."""

    mean: float | None
    p10: float | None
    p50: float | None
    p90: float | None

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> Stats:
        return cls(block["mean"], block["p10"], block["p50"], block["p90"])


@dataclass(frozen=True)
class LaunchQuantiles:
    """10/50/90% quantiles of the first delivery month, "YYYY-MM"; None = not within the horizon."""

    p10: str | None
    p50: str | None
    p90: str | None


@dataclass(frozen=True)
class PathSummary:
    """One manufacturing path's results: launch, volumes, money and cash risk."""

    name: str
    launch_month: LaunchQuantiles
    p_launch_by_target: float
    deliveries: dict[int, Stats]   # vehicles per calendar year
    orders: dict[int, Stats]       # vehicles per calendar year
    share: dict[int, Stats]        # of the whole new-car market, per calendar year
    revenue: dict[int, Stats]      # CNY per calendar year
    npv: Stats                     # CNY
    peak_cash_need: Stats          # CNY
    p_budget_exceeded: float       # P(peak cash need > budget available: the pledge less what was spent before)
    # pacing, beside the budget test: P(cash is needed faster than the pledge is paid in); None for older runs
    p_ahead_of_pledge_schedule: float | None = None


@dataclass(frozen=True)
class MarketSummary:
    """The whole new-car market (with the entrant on the recommended path), per calendar year."""

    total_sales: dict[int, Stats]
    nev_share: dict[int, Stats]


@dataclass(frozen=True)
class RecommendedPath:
    """The recommended path and the criterion, in words; whether it meets the budget tolerance (`passes`:
    when no path does, `name` is the best path on the objective, flagged in `note`, and `least_violating`
    the path with the lowest P(budget exceeded)); whether the budget constraint changed or failed the choice
    (`budget_binds`); whether it does better than staying out on an NPV objective (`beats_not_entering`). Both
    are None for runs written before they were reported."""

    name: str
    criterion: str
    passes: bool = True
    note: str = ""
    least_violating: str | None = None
    budget_binds: bool | None = None
    beats_not_entering: bool | None = None

    @classmethod
    def from_dict(cls, block: Mapping[str, Any]) -> RecommendedPath:
        return cls(block["name"], block["criterion"], bool(block.get("passes", True)), block.get("note", ""),
                   block.get("least_violating"), block.get("budget_binds"), block.get("beats_not_entering"))


def _years(blocks: Mapping[str, Any]) -> dict[int, Stats]:
    return {int(year): Stats.from_dict(block) for year, block in blocks.items()}


@dataclass(frozen=True)
class Summary:
    """A run's summary.json: scenario, draws, seed, version, per-path results, market, recommendation."""

    scenario: str
    as_of: dt.date
    draws: int
    seed: int
    version: str
    paths: dict[str, PathSummary]
    market: MarketSummary
    recommended_path: RecommendedPath
    raw: dict[str, Any]

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], order: Sequence[str] = ()) -> Summary:
        """Read a summary.json document (as `json.load` returns it); paths in `order` (the scenario's)
        come first, in that order (summary.json itself is written with sorted keys)."""
        paths = {}
        names = [name for name in order if name in document["paths"]]
        names += [name for name in document["paths"] if name not in names]
        for name in names:
            entry = document["paths"][name]
            launch = entry["launch_month"]
            paths[name] = PathSummary(
                name=name, launch_month=LaunchQuantiles(launch["p10"], launch["p50"], launch["p90"]),
                p_launch_by_target=float(entry["p_launch_by_target"]), deliveries=_years(entry["deliveries"]),
                orders=_years(entry["orders"]), share=_years(entry["share"]), revenue=_years(entry["revenue"]),
                npv=Stats.from_dict(entry["npv"]), peak_cash_need=Stats.from_dict(entry["peak_cash_need"]),
                p_budget_exceeded=float(entry["p_budget_exceeded"]),
                p_ahead_of_pledge_schedule=(None if entry.get("p_ahead_of_pledge_schedule") is None
                                            else float(entry["p_ahead_of_pledge_schedule"])))
        market = MarketSummary(_years(document["market"]["total_sales"]), _years(document["market"]["nev_share"]))
        return cls(scenario=document["scenario"], as_of=dt.date.fromisoformat(document["as_of"]),
                   draws=int(document["draws"]), seed=int(document["seed"]), version=document["version"],
                   paths=paths, market=market, recommended_path=RecommendedPath.from_dict(document["recommended_path"]),
                   raw=dict(document))

    def by_year(self) -> pd.DataFrame:
        """Per path and calendar year: deliveries, orders, share and revenue (mean, p10, p50, p90) in long
        form, columns path, year, quantity, mean, p10, p50, p90."""
        rows = []
        for name, path in self.paths.items():
            for quantity in ("deliveries", "orders", "share", "revenue"):
                for year, stats in getattr(path, quantity).items():
                    rows.append({"path": name, "year": year, "quantity": quantity, "mean": stats.mean,
                                 "p10": stats.p10, "p50": stats.p50, "p90": stats.p90})
        for quantity in ("total_sales", "nev_share"):
            for year, stats in getattr(self.market, quantity).items():
                rows.append({"path": "(market)", "year": year, "quantity": quantity, "mean": stats.mean,
                             "p10": stats.p10, "p50": stats.p50, "p90": stats.p90})
        return pd.DataFrame(rows, columns=["path", "year", "quantity", "mean", "p10", "p50", "p90"])
