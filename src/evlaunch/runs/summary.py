"""Build `summary.json` (the contract other tools read) from a run's per-draw outputs.

Money in CNY, volumes in vehicles. Quantiles are exact (linear interpolation, as numpy's default).
A launch quantile that falls beyond the horizon (the path never produced within it) is `null`.

Beside the contract's keys (DESIGN.md), each path carries `first_12_months_deliveries` (a quantile block),
`p_expansion` (share of draws in which the expansion rule ordered the next plant phase) and
`p_ahead_of_pledge_schedule` (pacing: share of draws in which cash is needed faster than the pledge is paid
in; not the budget test, which is `p_budget_exceeded`: P(peak cash need > budget available)); the
recommendation carries `passes` (false when no path meets the budget tolerance), `note` (what the rule did
then), `least_violating` (null when a path passes), `budget_binds` and `beats_not_entering`; and the document carries `guidance`: the firm's own public plan (`[product.guidance]`), shown beside the forecast
and never used to fit, with where it falls in each path's forecast for its year (`null` without a plan).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from evlaunch.analysis.decision import (
    DecisionConfig,
    DecisionCriterion,
    Objective,
    PathStats,
    Recommendation,
    path_stats,
    recommend_path,
)
from evlaunch.config.columns import (
    AHEAD_OF_PLEDGE,
    BUDGET_EXCEEDED,
    DELIVERIES,
    ENTRANT_VARIABLE_PROFIT,
    EXPANSION_ORDERED_MONTH,
    FIRST_12_MONTHS_DELIVERIES,
    INCUMBENT_PROFIT_CHANGE,
    LAUNCH_MONTH_INDEX,
    MARKET_TOTAL,
    NEV_SHARE,
    NPV,
    ORDER_SHARE,
    ORDER_SHARE_WITHOUT_RIVALS,
    PEAK_CASH_NEED,
    SURPLUS_CHANGE,
    WELFARE_CHANGE,
    path_column,
    rival_diversion_prefix,
    yearly,
)
from evlaunch.config.scenario import Scenario, month_label

QUANTILES = (0.1, 0.5, 0.9)
SPENT_BEFORE = "finance.spent_before_start_usd"  # the per-draw input column (present when it is uncertain)
OBJECTIVES = {"max_expected_npv": Objective.EXPECTED_NPV, "max_median_npv": Objective.MEDIAN_NPV,
              "max_cvar_npv": Objective.NPV_CVAR, "max_p_launch_by_target": Objective.P_LAUNCH_BY_TARGET}


class DrawStatistics(Protocol):
    """What the summary needs from a table of per-draw outputs (in memory, or streamed from disk by
    `uncertainty.draw_table.DrawTable`)."""

    columns: list[str]

    def stats(self, columns: list[str], probs: tuple[float, ...] = QUANTILES) -> dict[str, dict[str, float]]: ...

    def to_numpy(self, columns: list[str], limit: int | None = None) -> dict[str, np.ndarray]: ...


class ArrayTable:
    """Per-draw outputs held in memory (small runs, sensitivity designs, tests)."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.arrays = arrays
        self.columns = list(arrays)

    def stats(self, columns: list[str], probs: tuple[float, ...] = QUANTILES) -> dict[str, dict[str, float]]:
        result = {}
        for column in columns:
            values = np.asarray(self.arrays[column], dtype=float)
            quantiles = np.quantile(values, probs)
            result[column] = {"mean": float(values.mean()),
                              **{f"p{round(p * 100)}": float(q) for p, q in zip(probs, quantiles)}}
        return result

    def to_numpy(self, columns: list[str], limit: int | None = None) -> dict[str, np.ndarray]:
        return {column: np.asarray(self.arrays[column])[:limit] for column in columns}


def _clean(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _stat_block(stats: dict[str, float]) -> dict[str, float | None]:
    return {key: _clean(stats[key]) for key in ("mean", "p10", "p50", "p90")}


def decision_config(scenario: Scenario, inputs: dict[str, np.ndarray]) -> DecisionConfig:
    """Target month (months after the start) and the budget available in CNY for the decision statistics:
    the mean over the draws of (pledge - spent before the start) x exchange rate, from the per-draw inputs
    `finance.usd_cny` and `finance.spent_before_start_usd` where the run varied them (else the scenario's
    central values)."""
    finance = scenario.finance
    usd_cny = inputs.get("finance.usd_cny", np.array([_central(finance.usd_cny)]))
    spent = inputs.get(SPENT_BEFORE, np.array([_central(finance.spent_before_start_usd)]))
    available = (finance.budget_usd - np.asarray(spent, dtype=float)) * np.asarray(usd_cny, dtype=float)
    return DecisionConfig(target_month=float(scenario.target_launch_index), budget_cny=float(np.mean(available)))


def _central(value: Any) -> float:
    """A scenario quantity's central value: the number itself, or an uncertain quantity's median."""
    return float(getattr(value, "centre", value))


def _mean_input(arrays: dict[str, np.ndarray], column: str) -> float | None:
    return float(np.mean(arrays[column])) if column in arrays else None


def path_statistics(table: DrawStatistics, scenario: Scenario) -> dict[str, PathStats]:
    """Decision statistics of each path: NPV (mean, quantiles, CVaR10), launch odds, budget risk (and
    pacing, beside it)."""
    result = {}
    config = decision_config(scenario, table.to_numpy([c for c in ("finance.usd_cny", SPENT_BEFORE)
                                                       if c in table.columns]))
    for path in scenario.paths:
        columns = [path_column(path, NPV), path_column(path, LAUNCH_MONTH_INDEX), path_column(path, PEAK_CASH_NEED),
                   path_column(path, BUDGET_EXCEEDED), path_column(path, AHEAD_OF_PLEDGE)]
        arrays = table.to_numpy([c for c in columns if c in table.columns])
        stats = path_stats(path, npv=arrays[path_column(path, NPV)],
                           launch_month_index=arrays[path_column(path, LAUNCH_MONTH_INDEX)],
                           peak_cash_need=arrays[path_column(path, PEAK_CASH_NEED)], config=config)
        # The budget test is per draw (each draw has its own exchange rate and spending before the start),
        # so take it from the draws.
        exceeded = float(np.mean(arrays[path_column(path, BUDGET_EXCEEDED)]))
        ahead = _mean_input(arrays, path_column(path, AHEAD_OF_PLEDGE))
        result[path] = PathStats(**{**stats.__dict__, "p_budget_exceeded": exceeded,
                                    "p_ahead_of_pledge_schedule": ahead})
    return result


def recommendation(statistics: dict[str, PathStats], scenario: Scenario) -> Recommendation:
    """The recommended path under the scenario's criterion."""
    criterion = DecisionCriterion(objective=OBJECTIVES[scenario.recommendation.criterion],
                                  max_p_budget_exceeded=scenario.recommendation.max_p_budget_exceeded)
    return recommend_path(statistics, criterion)


# added beside the entrant's figures: what entry does to buyers (consumer surplus) and to welfare (the
# incumbents' variable-profit change, the entrant's variable profit, their sum with the surplus)
ENTRY_KEYS = (SURPLUS_CHANGE, ORDER_SHARE, ORDER_SHARE_WITHOUT_RIVALS, INCUMBENT_PROFIT_CHANGE,
              ENTRANT_VARIABLE_PROFIT, WELFARE_CHANGE)


def rival_diversion(table: DrawStatistics, scenario: Scenario, path: str) -> dict[str, dict[str, float | None]]:
    """Per scheduled launch: the mean share of its first-year buyers it takes from each group (the entrant:
    'entrant'; nothing: 'outside') on `path`, over the draws in which it sold (null where it never did)."""
    result: dict[str, dict[str, float | None]] = {}
    for launch in scenario.competition.launches:
        prefix = rival_diversion_prefix(path, launch.name)
        columns = [c for c in table.columns if c.startswith(prefix)]
        arrays = table.to_numpy(columns)
        sold = [np.asarray(arrays[c], dtype=float) for c in columns]
        result[launch.name] = {c[len(prefix):]: (_clean(float(np.nanmean(v))) if np.isfinite(v).any() else None)
                               for c, v in zip(columns, sold)}
    return result


def firm_guidance(table: DrawStatistics, scenario: Scenario) -> dict[str, Any] | None:
    """The firm's own plan beside the forecast: year, deliveries, source, and per path the share of draws
    whose deliveries that year fall below the plan (its percentile in the forecast); None without a plan or
    when its year is outside the horizon (percentiles then null)."""
    guidance = scenario.product.guidance
    if guidance is None:
        return None
    in_horizon = guidance.year in scenario.years
    arrays = (table.to_numpy([yearly(path, DELIVERIES, guidance.year) for path in scenario.paths])
              if in_horizon else {})
    percentile = {path: (float(np.mean(arrays[yearly(path, DELIVERIES, guidance.year)] < guidance.deliveries))
                         if in_horizon else None) for path in scenario.paths}
    return {"year": guidance.year, "deliveries": float(guidance.deliveries), "source": guidance.source,
            "used_to_fit": False, "percentile_in_forecast": percentile}


def recommended_path(chosen: Recommendation) -> dict[str, Any]:
    """summary.json's `recommended_path`: the contract's name and criterion, plus whether the path meets the
    budget tolerance (`passes`), what the rule did when no path does (`note`), the least-violating path then
    (else null), whether the budget constraint changed or failed the choice (`budget_binds`) and whether the
    path does better than staying out on an NPV objective (`beats_not_entering`)."""
    return {"name": chosen.path, "criterion": chosen.criterion, "passes": chosen.passes, "note": chosen.note,
            "least_violating": chosen.least_violating, "budget_binds": chosen.binds,
            "beats_not_entering": chosen.beats_not_entering}


def build_summary(table: DrawStatistics, scenario: Scenario, draws: int, seed: int, version: str
                  ) -> dict[str, Any]:
    """The summary.json document for a run."""
    years = [str(year) for year in scenario.years]
    start = scenario.start_month
    statistics = path_statistics(table, scenario)
    chosen = recommendation(statistics, scenario)
    # one streamed pass over the draws for every column the summary needs
    columns = [yearly(path, key, year) for path in scenario.paths
               for key in ("deliveries", "orders", "share", "revenue") for year in years]
    columns += [f"{path}.{key}" for path in scenario.paths for key in ("npv", "peak_cash_need")]
    book = [path_column(path, name) for path in scenario.paths
            for name in (FIRST_12_MONTHS_DELIVERIES, EXPANSION_ORDERED_MONTH)]
    book_arrays = table.to_numpy([column for column in book if column in table.columns])
    columns += [column for column in book_arrays if column.endswith(FIRST_12_MONTHS_DELIVERIES)]
    columns += [yearly(chosen.path, key, year) for key in ("market_total", "nev_share") for year in years]
    entry_columns = [yearly(path, key, year) for path in scenario.paths for key in ENTRY_KEYS for year in years]
    columns += [c for c in entry_columns if c in table.columns]  # runs made before these outputs lack them
    series = table.stats(columns)
    paths: dict[str, Any] = {}
    for path in scenario.paths:
        launch = statistics[path].launch_month
        entry: dict[str, Any] = {
            "launch_month": {
                key: (month_label(start + int(getattr(launch, key)))
                      if math.isfinite(getattr(launch, key)) and getattr(launch, key) < scenario.horizon_months
                      else None)
                for key in ("p10", "p50", "p90")},
            "p_launch_by_target": statistics[path].p_launch_by_target,
        }
        for key in ("deliveries", "orders", "share", "revenue"):
            entry[key] = {year: _stat_block(series[yearly(path, key, year)]) for year in years}
        entry["npv"] = _stat_block(series[path_column(path, NPV)])
        entry["peak_cash_need"] = _stat_block(series[path_column(path, PEAK_CASH_NEED)])
        entry["p_budget_exceeded"] = statistics[path].p_budget_exceeded
        if statistics[path].p_ahead_of_pledge_schedule is not None:
            entry["p_ahead_of_pledge_schedule"] = statistics[path].p_ahead_of_pledge_schedule
        for key in ENTRY_KEYS:
            if yearly(path, key, years[0]) in series:
                entry[key] = {year: _stat_block(series[yearly(path, key, year)]) for year in years}
        if scenario.competition.launches and yearly(path, SURPLUS_CHANGE, years[0]) in series:
            entry["rival_diversion"] = rival_diversion(table, scenario, path)
        if path_column(path, FIRST_12_MONTHS_DELIVERIES) in book_arrays:
            entry["first_12_months_deliveries"] = _stat_block(series[path_column(path, FIRST_12_MONTHS_DELIVERIES)])
            entry["p_expansion"] = float(np.mean(np.isfinite(book_arrays[path_column(path, EXPANSION_ORDERED_MONTH)])))
        paths[path] = entry
    market = {
        "total_sales": {year: _stat_block(series[yearly(chosen.path, MARKET_TOTAL, year)]) for year in years},
        "nev_share": {year: _stat_block(series[yearly(chosen.path, NEV_SHARE, year)]) for year in years},
    }
    return {
        "scenario": scenario.name,
        "as_of": scenario.as_of.isoformat(),
        "draws": int(draws),
        "seed": int(seed),
        "version": version,
        "paths": paths,
        "market": market,
        "recommended_path": recommended_path(chosen),
        "guidance": firm_guidance(table, scenario),
    }
