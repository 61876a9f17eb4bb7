"""Backtest: run a scenario as of a past date and score its forecasts against what happened.

An actuals file is data, never code: a CSV with columns `quantity, period, value, source, note` (and
an optional `basis`), one observed figure per row. `quantity` names a series of the run summary:
`market.total_sales`, `market.nev_share` (market series are taken from the recommended path, as in
summary.json) or `<path>.deliveries|orders|share|revenue`; `period` is a year `YYYY` or a month
`YYYY-MM` (monthly only where the run keeps monthly draws: `market.nev_share`, `<path>.deliveries`).
Every problem is reported with file, line, column, value and what was expected.

Per actual: the forecast's p10/p50/p90, whether the actual lies in the 80% interval, the median's
relative error and the CRPS of the draws (`scoringrules.crps_ensemble`); overall: the 80%-interval
coverage. Beside the model, two naive baselines from the same as-of date and the same data the model
saw (market series only): the last full public year frozen, and the straight-line trend of the last
three full public years. Their errors are printed next to the model's; if the model's median does
worse on average, the verdict says so.
"""

from __future__ import annotations

import csv
import io
import math
import re
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc

from evlaunch.config.scenario import Scenario, load_scenario
from evlaunch.data import load_table
from evlaunch.errors import DataError
from evlaunch.market.adoption import DriftFit, walk_change
from evlaunch.market.adoption import market_fits as history_fits
from evlaunch.market.history import load_history, numeric_value
from evlaunch.runs.draw_table import DrawTable
from evlaunch.runs.runner import DEFAULT_SEED, RunOptions, run_scenario

MAX_ACTUALS_BYTES = 5 * 1024 * 1024
MAX_ACTUALS_ROWS = 10_000
REQUIRED_COLUMNS = ("quantity", "period", "value", "source", "note")
MARKET_SERIES = {"market.total_sales": "market_total", "market.nev_share": "nev_share"}
PATH_SERIES = ("deliveries", "orders", "share", "revenue")
MONTHLY_SERIES = {"market.nev_share": "nev_share_month", "deliveries": "deliveries_month"}
PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2]))?$")
BASELINES = ("frozen", "trend")


@dataclass(frozen=True)
class Actual:
    """One observed figure (a validated row of the actuals file)."""

    line: int
    quantity: str
    period: str
    value: float
    basis: str
    source: str
    note: str

    @property
    def is_month(self) -> bool:
        return len(self.period) == 7


@dataclass
class Score:
    """The forecast of one actual and how it fared."""

    quantity: str
    period: str
    actual: float
    basis: str
    source: str
    column: str
    p10: float
    p50: float
    p90: float
    inside_80: bool
    median_error: float | None        # (p50 - actual) / actual
    crps: float
    baselines: dict[str, dict[str, float | None]] = field(default_factory=dict)  # name -> value, error, crps


@dataclass
class BacktestResult:
    scenario: str
    as_of: str
    draws: int
    seed: int
    actuals_file: str
    market_path: str
    scores: list[Score]
    coverage_80: float
    mean_abs_error: dict[str, float | None]   # model / each baseline, mean |relative error| where all exist
    verdict: list[str]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return _clean(asdict(self))


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


# -- reading and validating actuals -------------------------------------------------------------------

def _problem(path: str, line: int | None, column: str | None, value: Any, expected: str) -> str:
    where = path if line is None else f"{path}: line {line}" + (f", column {column}" if column else "")
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{where}: got {shown}; expected {expected}"


def _csv_rows(path: str | Path) -> list[list[str]]:
    """The non-blank rows of an actuals CSV, after the file checks (exists, size, UTF-8, readable CSV)."""
    file_path = Path(path)
    name = str(path)
    if not file_path.is_file():
        raise DataError(f"{name}: no such actuals file")
    if file_path.stat().st_size > MAX_ACTUALS_BYTES:
        raise DataError(f"{name}: file is larger than {MAX_ACTUALS_BYTES // 2**20} MB; an actuals file is a short CSV")
    try:
        text = file_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataError(f"{name}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise DataError(f"{name}: not a readable CSV ({error})") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{name}: empty file; expected a header with columns {', '.join(REQUIRED_COLUMNS)}")
    return rows


def _header(name: str, rows: list[list[str]]) -> list[str]:
    """The header's column names ('year' read as 'period'); every required column present, rows within the cap."""
    header = [cell.strip() for cell in rows[0]]
    if "period" not in header and "year" in header:
        header[header.index("year")] = "period"
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise DataError(_problem(name, 1, None, ",".join(rows[0]), f"a header with columns "
                                 f"{', '.join(REQUIRED_COLUMNS)} (optional: basis); missing {', '.join(missing)}"))
    if len(rows) - 1 > MAX_ACTUALS_ROWS:
        raise DataError(f"{name}: {len(rows) - 1} rows; at most {MAX_ACTUALS_ROWS:,} are allowed")
    return header


def _row_value(name: str, number: int, cells: dict[str, str], problems: list[str]) -> float:
    """One row's checked value (NaN when unreadable); its problems (quantity, period, value, source) appended."""
    quantity, period = cells["quantity"], cells["period"]
    if not (quantity in MARKET_SERIES or re.fullmatch(r"[A-Za-z][A-Za-z0-9_\-]{0,39}\.(" + "|".join(PATH_SERIES)
                                                       + r")", quantity)):
        problems.append(_problem(name, number, "quantity", quantity,
                                 f"one of {', '.join(MARKET_SERIES)} or <path>.{{{','.join(PATH_SERIES)}}}"))
    match = PERIOD.match(period)
    if not match or not 1990 <= int(match.group(1)) <= 2100:
        problems.append(_problem(name, number, "period", period, "a year YYYY or a month YYYY-MM (1990-2100)"))
    try:
        value = float(cells["value"].replace(",", ""))
        if not math.isfinite(value):
            raise ValueError
    except ValueError:
        problems.append(_problem(name, number, "value", cells["value"], "a finite number"))
        value = math.nan
    if math.isfinite(value):
        share = quantity == "market.nev_share" or quantity.endswith(".share")
        if value < 0 and not quantity.endswith(".revenue"):
            problems.append(_problem(name, number, "value", cells["value"], "a number >= 0"))
        elif share and value > 1:
            problems.append(_problem(name, number, "value", cells["value"],
                                     "a share between 0 and 1 (0.357, not 35.7)"))
    if not cells["source"]:
        problems.append(_problem(name, number, "source", cells["source"],
                                 "where the figure comes from (every actual needs a source)"))
    return value


def read_actuals(path: str | Path) -> list[Actual]:
    """Read and validate an actuals CSV; raise DataError listing every problem (file, line, column, value)."""
    name = str(path)
    rows = _csv_rows(path)
    header = _header(name, rows)
    problems: list[str] = []
    actuals: list[Actual] = []
    seen: dict[tuple[str, str], int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            problems.append(_problem(name, number, None, ",".join(row),
                                     f"{len(header)} cells like the header (found {len(row)}; quote cells with commas)"))
            continue
        cells = {column: cell.strip() for column, cell in zip(header, row)}
        quantity, period = cells["quantity"], cells["period"]
        value = _row_value(name, number, cells, problems)
        key = (quantity, period)
        if key in seen:
            problems.append(_problem(name, number, "period", period,
                                     f"one row per quantity and period ({quantity} {period} is also on line {seen[key]})"))
        seen[key] = number
        actuals.append(Actual(number, quantity, period, value, cells.get("basis", ""), cells["source"], cells["note"]))
    if problems:
        more = f"\n... and {len(problems) - 20} more problems" if len(problems) > 20 else ""
        raise DataError("\n".join(problems[:20]) + more)
    if not actuals:
        raise DataError(f"{name}: no rows after the header; expected one actual per row")
    return actuals


def forecast_column(actual: Actual, scenario: Scenario, market_path: str, source: str) -> str:
    """The per-draw output column that forecasts an actual (DataError if the run has none)."""
    years = scenario.years
    year = int(actual.period[:4])
    if actual.quantity in MARKET_SERIES:
        path, series = market_path, actual.quantity
    else:
        path, series = actual.quantity.split(".", 1)
        if path not in scenario.paths:
            raise DataError(_problem(source, actual.line, "quantity", actual.quantity,
                                     f"a path of scenario {scenario.name} ({', '.join(scenario.paths)}) or market.*"))
    if actual.is_month:
        monthly = MONTHLY_SERIES.get(series)
        if monthly is None:
            raise DataError(_problem(source, actual.line, "period", actual.period,
                                     "a year: the run keeps monthly draws only for market.nev_share and "
                                     "<path>.deliveries"))
        if actual.period not in scenario.months:
            raise DataError(_problem(source, actual.line, "period", actual.period,
                                     f"a month within the scenario's horizon {scenario.months[0]}..{scenario.months[-1]}"))
        return f"{path}.{monthly}.{actual.period}"
    if year not in years:
        raise DataError(_problem(source, actual.line, "period", actual.period,
                                 f"a year within the scenario's horizon {years[0]}..{years[-1]}"))
    name = MARKET_SERIES.get(series, series)
    return f"{path}.{name}.{year}"


# -- naive baselines --------------------------------------------------------------------------------

def naive_history(scenario: Scenario, base_dir: str | Path) -> dict[str, dict[int, float]]:
    """Annual market series on the model's basis, from the data public at the scenario's as-of date:
    total registrations, and NEV share = BEV registrations x (1 + PHEV/BEV ratio) / total."""
    tables = {name: str(Path(base_dir) / table) for name, table in scenario.data.tables.items()}
    history = load_history(scenario.as_of, tables)
    totals: dict[int, float] = {}
    bev: dict[int, float] = {}
    for series, target in ((history.monthly_total, totals), (history.monthly_bev, bev)):
        by_year: dict[int, list[float]] = {}
        for month, units in series.items():
            by_year.setdefault(int(month[:4]), []).append(float(units))
        target.update({year: sum(values) for year, values in by_year.items() if len(values) == 12})
    shares = {year: bev[year] * (1.0 + history.phev_to_bev_by_year[year]) / totals[year]
              for year in totals if year in bev and year in history.phev_to_bev_by_year}
    return {"market.total_sales": totals, "market.nev_share": shares}


def baseline_value(series: dict[int, float], actual: Actual, kind: str) -> float | None:
    """A naive forecast for an actual: 'frozen' (last full year) or 'trend' (line through the last three)."""
    if not series:
        return None
    years = sorted(series)
    when = int(actual.period[:4]) + ((int(actual.period[5:7]) - 6.5) / 12.0 if actual.is_month else 0.0)
    if kind == "frozen":
        return series[years[-1]]
    last = years[-3:]
    if len(last) < 2:
        return None
    slope, intercept = np.polyfit(np.array(last, float), np.array([series[y] for y in last]), 1)
    value = float(slope * when + intercept)
    return min(max(value, 0.0), 1.0) if actual.quantity == "market.nev_share" else max(value, 0.0)


# -- scoring ----------------------------------------------------------------------------------------

def relative_error(forecast: float, actual: float) -> float | None:
    return None if actual == 0 else (forecast - actual) / actual


def crps(actual: float, draws: np.ndarray) -> float:
    import scoringrules

    finite = np.asarray(draws, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return math.nan
    return float(scoringrules.crps_ensemble(actual, finite))


def score(actual: Actual, column: str, draws: np.ndarray) -> Score:
    values = np.asarray(draws, dtype=float)
    finite = values[np.isfinite(values)]
    p10, p50, p90 = (np.quantile(finite, [0.1, 0.5, 0.9]) if finite.size else (math.nan,) * 3)
    return Score(actual.quantity, actual.period, actual.value, actual.basis, actual.source, column,
                 float(p10), float(p50), float(p90), bool(p10 <= actual.value <= p90),
                 relative_error(float(p50), actual.value), crps(actual.value, finite))


def summarise(scores: list[Score]) -> tuple[float, dict[str, float | None], list[str]]:
    """Coverage, mean |relative error| of the model and the baselines on common rows, and the verdict."""
    coverage = float(np.mean([s.inside_80 for s in scores])) if scores else math.nan
    common = [s for s in scores if s.median_error is not None
              and all(s.baselines.get(b, {}).get("error") is not None for b in BASELINES)]
    errors: dict[str, float | None] = {"model": None, **{b: None for b in BASELINES}}
    verdict: list[str] = []
    if common:
        errors["model"] = float(np.mean([abs(s.median_error) for s in common]))
        for name in BASELINES:
            errors[name] = float(np.mean([abs(s.baselines[name]["error"]) for s in common]))
        losses = [name for name in BASELINES if errors[name] < errors["model"]]
        for name in losses:
            verdict.append(f"The structural model LOSES to the naive '{name}' baseline: mean |error| of its median "
                           f"{errors['model']:.1%} vs {errors[name]:.1%} over {len(common)} market actuals.")
        if not losses:
            verdict.append(f"The model's median beats both naive baselines on mean |error| "
                           f"({errors['model']:.1%} vs frozen {errors['frozen']:.1%}, trend {errors['trend']:.1%}) "
                           f"over {len(common)} market actuals.")
        for quantity in sorted({s.quantity for s in common}):
            rows = [s for s in common if s.quantity == quantity]
            model = np.mean([abs(s.median_error) for s in rows])
            for name in BASELINES:
                other = np.mean([abs(s.baselines[name]["error"]) for s in rows])
                if other < model:
                    verdict.append(f"On {quantity} alone the model loses to '{name}' ({model:.1%} vs {other:.1%}).")
    else:
        verdict.append("No actual has both a model forecast and naive baselines (baselines cover market series only).")
    return coverage, errors, verdict


def run_backtest(scenario_path: str | Path, actuals_path: str | Path, draws: int = 1000, seed: int | None = None,
                 workers: int | None = None) -> BacktestResult:
    """Validate the actuals, run the scenario (no report, no store) and score every actual."""
    actuals = read_actuals(actuals_path)
    scenario = load_scenario(scenario_path)
    source = str(actuals_path)
    # check every actual maps to an output before spending time on the run (market path: any path)
    problems = []
    for actual in actuals:
        try:
            forecast_column(actual, scenario, next(iter(scenario.paths)), source)
        except DataError as error:
            problems.append(str(error))
    if problems:
        raise DataError("\n".join(problems[:20]) + (f"\n... and {len(problems) - 20} more problems"
                                                     if len(problems) > 20 else ""))
    seed = DEFAULT_SEED if seed is None else seed
    with tempfile.TemporaryDirectory(prefix="evlaunch-backtest-") as out:
        result = run_scenario(scenario_path, out, RunOptions(draws=draws, seed=seed, report=False, workers=workers))
        market_path = result.summary["recommended_path"]["name"]
        columns = {actual.line: forecast_column(actual, scenario, market_path, source) for actual in actuals}
        table = DrawTable.open(out)
        values = table.to_numpy(sorted(set(columns.values())))
    history = naive_history(scenario, Path(scenario_path).resolve().parent)
    scores = []
    for actual in actuals:
        entry = score(actual, columns[actual.line], values[columns[actual.line]])
        if actual.quantity in MARKET_SERIES:
            for name in BASELINES:
                forecast = baseline_value(history[actual.quantity], actual, name)
                entry.baselines[name] = {
                    "value": forecast,
                    "error": None if forecast is None else relative_error(forecast, actual.value),
                    "crps": None if forecast is None else abs(forecast - actual.value)}
        scores.append(entry)
    coverage, errors, verdict = summarise(scores)
    last_year = {q: max(series) if series else None for q, series in history.items()}
    notes = [
        f"Market series come from the recommended path ({market_path}), as in summary.json.",
        ("Yearly market figures are whole calendar years; months of the start year before the scenario start are "
         "model estimates too."),
        (f"Naive baselines use only data public on {scenario.as_of}: 'frozen' repeats the last full year "
         f"({', '.join(f'{q}: {y}' for q, y in last_year.items())}), 'trend' extends the line through the last three "
         f"full years; both on the model's registrations basis (NEV share = BEV registrations x (1 + PHEV/BEV) / all)."),
        ("CRPS of a naive baseline is its absolute error (a point forecast). Check each actual's basis: a different "
         "basis adds its own gap to the error."),
    ]
    return BacktestResult(scenario.name, scenario.as_of.isoformat(), draws, seed, source, market_path, scores,
                          coverage, errors, verdict, notes)


# -- rolling-origin market backtest -----------------------------------------------------------------

ORIGINS = ("2019-12-31", "2020-12-31", "2021-03-31", "2021-12-31", "2022-12-31")
HORIZONS = (1, 2)
ROLLING_ACTUALS = Path(__file__).resolve().parents[3] / "backtests" / "china-2020-2023.csv"
# forecasts_of_the_time quantity -> (the model's quantity, market_annual basis prefix, market_annual column)
INDUSTRY_BASES = {
    ("nev_share", "CAAM wholesale"): ("market.nev_share", "CAAM", "nev_share"),
    ("nev_sales", "CAAM wholesale"): ("market.nev_share", "CAAM", "nev_sales"),
    ("pv_sales", "CAAM wholesale"): ("market.total_sales", "CAAM", "pv_sales"),
    ("nev_share", "CPCA retail"): ("market.nev_share", "CPCA retail", "nev_share"),
    ("nev_sales", "CPCA retail"): ("market.nev_share", "CPCA retail", "nev_pv_sales"),
}


@dataclass
class OriginScore:
    """One origin's forecast of one calendar year's market figure."""

    origin: str
    quantity: str
    year: int
    horizon: int
    actual: float
    p10: float
    p50: float
    p90: float
    inside_80: bool
    error: float              # p50 / actual - 1
    crps: float
    frozen: float
    frozen_error: float
    trend: float
    trend_error: float
    industry_error: float | None  # median of the forecasts of the time on their own bases (None: none public)
    industry_count: int


@dataclass
class RollingBacktest:
    """The rolling-origin scores: `scores` of the issue's targets (total sales, NEV share; the `market:` line)
    and `phev_scores` of the PHEV/EREV share of NEVs (CAAM basis), scored apart (the `phev:` line)."""

    draws: int
    scores: list[OriginScore]
    fits: dict[str, dict[str, dict[str, float]]]   # origin -> quantity -> drift, sd, count
    phev_scores: list[OriginScore] = field(default_factory=list)

    @property
    def inside(self) -> int:
        return sum(s.inside_80 for s in self.scores)

    def mean_abs(self, attribute: str, rows: list[OriginScore] | None = None) -> float:
        chosen = self.scores if rows is None else rows
        values = [abs(getattr(s, attribute)) for s in chosen if getattr(s, attribute) is not None]
        return float(np.mean(values)) if values else math.nan

    @property
    def naive_mae(self) -> float:
        return min(self.mean_abs("frozen_error"), self.mean_abs("trend_error"))

    def summary_line(self) -> str:
        return (f"market: inside={self.inside}/{len(self.scores)} model_mae={self.mean_abs('error'):.3f} "
                f"naive_mae={self.naive_mae:.3f} industry_mae={self.mean_abs('industry_error'):.3f}")

    def phev_line(self) -> str:
        """The PHEV/EREV rows' summary: inside the 80% interval, mean |error| of the model and the better naive."""
        rows = self.phev_scores
        naive = min(self.mean_abs("frozen_error", rows), self.mean_abs("trend_error", rows))
        return (f"phev: inside={sum(s.inside_80 for s in rows)}/{len(rows)} model_mae={self.mean_abs('error', rows):.3f} "
                f"naive_mae={naive:.3f}")

    def to_dict(self) -> dict[str, Any]:
        return _clean({"draws": self.draws, "scores": [asdict(s) for s in self.scores], "fits": self.fits,
                       "inside": self.inside, "count": len(self.scores), "model_mae": self.mean_abs("error"),
                       "frozen_mae": self.mean_abs("frozen_error"), "trend_mae": self.mean_abs("trend_error"),
                       "naive_mae": self.naive_mae, "industry_mae": self.mean_abs("industry_error"),
                       "model_mae_on_industry_rows": self.mean_abs(
                           "error", [s for s in self.scores if s.industry_error is not None]),
                       "line": self.summary_line(), "phev_scores": [asdict(s) for s in self.phev_scores],
                       "phev_line": self.phev_line()})


FIT_NAMES = {"market.nev_share": "nev_log_odds", "market.total_sales": "log_total",
             "market.phev_share": "phev_log_ratio"}


def market_fits(as_of: Any) -> dict[str, DriftFit]:
    """The adoption ('market.nev_share'), market-size ('market.total_sales') and PHEV/EREV share of NEVs
    ('market.phev_share', log PHEV/BEV = its log-odds) fits public at `as_of` (`market.adoption.market_fits`,
    the estimates a scenario's `{dist = "estimated"}` quantities resolve to)."""
    fits = history_fits(load_history(as_of))
    return {quantity: fits[name] for quantity, name in FIT_NAMES.items()}


def phev_actuals() -> dict[int, float]:
    """PHEV share of NEV sales, PHEV / (BEV + PHEV), by year: every CAAM year of market_annual (all rows, as
    published later) with both figures."""
    annual = load_table("market_annual").rows
    shares = {}
    for row in annual.itertuples():
        bev, phev = numeric_value(row.bev_sales), numeric_value(row.phev_sales)
        if str(row.basis).startswith("CAAM") and bev and phev:
            shares[int(row.year)] = phev / (bev + phev)
    return shares


def _from_level(quantity: str, level: np.ndarray | float) -> np.ndarray:
    level = np.asarray(level, float)
    return np.exp(level) if quantity == "market.total_sales" else 1.0 / (1.0 + np.exp(-level))


def naive_forecasts(levels: dict[int, float], quantity: str, year: int) -> tuple[float, float]:
    """'frozen' (the last yearly level) and 'trend' (the straight line through the last three yearly levels,
    in log-odds for the NEV share and in logs for sales), both from the same public levels as the model."""
    years = sorted(levels)[-3:]
    frozen = float(_from_level(quantity, levels[years[-1]]))
    slope, intercept = np.polyfit(np.array(years, float), np.array([levels[y] for y in years]), 1)
    return frozen, float(_from_level(quantity, slope * year + intercept))


def industry_errors(as_of: Any, quantity: str, year: int) -> list[float]:
    """Relative errors of the forecasts of the time for `year` published by `as_of`, each on its own basis
    (CAAM wholesale vs CPCA retail figures of market_annual); rows whose basis has no outcome are skipped."""

    forecasts = load_table("forecasts_of_the_time", as_of).rows
    outcomes = load_table("market_annual").rows
    errors = []
    for row in forecasts.itertuples():
        mapped = INDUSTRY_BASES.get((row.quantity, row.basis))
        value = numeric_value(row.value)
        if mapped is None or mapped[0] != quantity or int(row.target_year) != year or value is None:
            continue
        matches = outcomes[(outcomes["year"].astype(int) == year) & outcomes["basis"].str.startswith(mapped[1])]
        actual = next((numeric_value(v) for v in matches[mapped[2]] if numeric_value(v)), None)
        if actual:
            errors.append(value / actual - 1.0)
    return errors


def walk_uniforms(draws: int, steps: int, seed: int = DEFAULT_SEED) -> np.ndarray:
    """[draws, 1 + steps] scrambled Sobol points in (0, 1): the drift's and each year's innovation's uniform."""
    engine = qmc.Sobol(d=1 + steps, scramble=True, seed=np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # balance warning for counts that are not powers of 2
        points = engine.random(draws)
    return np.clip(points, 1e-12, 1.0 - 1e-12)


def origin_score(origin: str, fit: DriftFit, quantity: str, year: int, horizon: int, actual: float,
                 draws: int) -> OriginScore:
    """One origin's forecast of `year` from `fit`, scored against `actual` beside the naive baselines and the
    forecasts of the time public at the origin. The forecast is the random walk the simulation draws
    (`market.adoption.walk_change`): from the last public level, `year - last public year` years of a drift
    drawn from its estimate's sampling error plus one innovation per year, `draws` quasi-random draws."""
    as_of = date.fromisoformat(origin)
    steps = year - fit.last_year
    sample = _from_level(quantity, fit.last_level + walk_change(fit.walk(), walk_uniforms(draws, steps)))
    p10, p50, p90 = (float(v) for v in np.quantile(sample, [0.1, 0.5, 0.9]))
    frozen, trend = naive_forecasts(fit.levels, quantity, year)
    industry = industry_errors(as_of, quantity, year)
    return OriginScore(origin, quantity, year, horizon, actual, p10, p50, p90, bool(p10 <= actual <= p90),
                       p50 / actual - 1.0, crps(actual, sample), frozen, frozen / actual - 1.0, trend,
                       trend / actual - 1.0, float(np.median(industry)) if industry else None, len(industry))


def run_rolling_backtest(draws: int = 1000, actuals_path: str | Path = ROLLING_ACTUALS,
                         origins: tuple[str, ...] = ORIGINS) -> RollingBacktest:
    """Forecast the next one and two calendar years of total sales and NEV share (scored against the actuals
    file) and of the PHEV/EREV share of NEVs (scored against the CAAM years of market_annual, `phev_actuals`)
    from each origin with the market's estimated models (`market.adoption`)."""
    actuals = {(a.quantity, int(a.period)): a.value for a in read_actuals(actuals_path) if not a.is_month}
    actuals.update({("market.phev_share", year): share for year, share in phev_actuals().items()})
    scores: dict[str, list[OriginScore]] = {"market": [], "phev": []}
    fits_out: dict[str, dict[str, dict[str, float]]] = {}
    for origin in origins:
        as_of = date.fromisoformat(origin)
        fits = market_fits(as_of)
        fits_out[origin] = {q: {"drift": f.drift, "sd": f.sd, "increments": f.count, "last_year": f.last_year}
                            for q, f in fits.items()}
        first = as_of.year + 1 if (as_of.month, as_of.day) == (12, 31) else as_of.year  # the next calendar year
        for quantity in ("market.total_sales", "market.nev_share", "market.phev_share"):
            for horizon in HORIZONS:
                year = first + horizon - 1
                if (quantity, year) in actuals:
                    scores["phev" if quantity == "market.phev_share" else "market"].append(origin_score(
                        origin, fits[quantity], quantity, year, horizon, actuals[(quantity, year)], draws))
    return RollingBacktest(draws, scores["market"], fits_out, scores["phev"])
