"""Leave-one-brand-out backtest of the new-brand ramp reference class (issue 12, item 7).

For each ramp in the reconciled panel (`entry.ramp_panel`) with enough of its first year known, the
reference class is fitted on the OTHER ramps only and predicts the held-out ramp's cumulative
deliveries in its first 12 months (vehicles) as a distribution:

- model: each other ramp's logistic fit (plateau, midpoint, width; `entry.reference_class.fit_brand`
  on its known months — imputed months are never fitted); a log-normal across those ramps of the
  three parameters; the same N standard-normal draws for every forecast (common random numbers, so a
  forecast changes only when its class does); each draw's curve summed over months 1..12.
- honest intervals: the spread of that distribution is widened, if too narrow, by the empirical error
  model of the OTHER ramps: each other ramp is itself forecast from the rest (the held-out ramp
  excluded too), its log error log(actual / median) taken, and the draws' log deviations from their
  median are scaled by max(1, rms(errors) / sd(log draws)). The held-out ramp's own outcome never
  enters its forecast.
- baseline: the median of the other ramps' first-12-month deliveries (a point forecast).

Scores per ramp: inside the 80% interval (p10..p90), the median's error as a fraction of the actual
(p50 / actual - 1), CRPS (`scoringrules.crps_ensemble`, vehicles) and the PIT (share of draws below
the actual). Summary: how many inside, and the median over ramps of |median error| for the model and
the baseline.

A second, stricter pass ("as of launch") rebuilds the panel from only the rows published before each
held-out ramp's launch month (the loader's as-of guard) and scores the ramps that still have at least
`min_class` earlier ramps to learn from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import scoringrules
from scipy.special import expit

from evlaunch.entry.ramp_panel import Eligibility, RampPanel, eligible_ramps, load_ramp_panel
from evlaunch.entry.reference_class import BrandRamp, RampFitConfig, fit_brand

TARGET_MONTHS = 12
DRAWS = 4000
SEED = 20231031
MIN_CLASS = 3
FIT = RampFitConfig()
RULE = Eligibility()
# entrants.csv, Xiaomi 2023-08-23 (Reuters via CnEVPost): "plans ~100,000 EVs in 2024"
XIAOMI_AS_OF = date(2023, 10, 31)
XIAOMI_PLAN = (100_000.0, "Xiaomi's public plan: ~100,000 EVs in 2024 (entrants.csv, 2023-08-23)")


@dataclass
class RampForecast:
    """One held-out ramp: actual and forecast first-12-month deliveries (vehicles) and the scores."""

    ramp: str
    launch: str
    actual: float
    imputed_months: int
    bases: str
    class_size: int
    p10: float
    p50: float
    p90: float
    inside_80: bool
    median_error: float
    crps: float
    pit: float
    widening: float
    baseline: float
    baseline_error: float
    price_at_launch: float | None = None
    prelaunch_orders: float | None = None


@dataclass(frozen=True)
class ClassOutlook:
    """What the whole class (every scored ramp) says about a new entrant's first 12 months
    (vehicles), widened by the ramps' own leave-one-out errors, beside a stated plan."""

    class_size: int
    p10: float
    p50: float
    p90: float
    widening: float
    plan: float | None = None
    plan_quantile: float | None = None  # share of the class's draws at or below the plan
    plan_note: str = ""


@dataclass
class RampBacktest:
    """The leave-one-out forecasts, the ramps left out (ramp -> reason), and the as-of-launch pass."""

    forecasts: list[RampForecast]
    excluded: dict[str, str] = field(default_factory=dict)
    as_of_launch: list[RampForecast] = field(default_factory=list)
    as_of_launch_skipped: dict[str, str] = field(default_factory=dict)
    outlook: ClassOutlook | None = None

    @property
    def inside(self) -> int:
        return sum(f.inside_80 for f in self.forecasts)

    @property
    def median_abs_error(self) -> float:
        return median_abs([f.median_error for f in self.forecasts])

    @property
    def baseline_median_abs_error(self) -> float:
        return median_abs([f.baseline_error for f in self.forecasts])

    def summary_line(self) -> str:
        return summary_line(self.inside, len(self.forecasts), self.median_abs_error, self.baseline_median_abs_error)

    def to_dict(self) -> dict:
        return {"forecasts": [asdict(f) for f in self.forecasts], "excluded": self.excluded,
                "inside": self.inside, "n": len(self.forecasts), "median_abs_error": self.median_abs_error,
                "baseline_median_abs_error": self.baseline_median_abs_error, "summary": self.summary_line(),
                "as_of_launch": {"forecasts": [asdict(f) for f in self.as_of_launch],
                                 "skipped": self.as_of_launch_skipped,
                                 "summary": summary_line(sum(f.inside_80 for f in self.as_of_launch),
                                                         len(self.as_of_launch),
                                                         median_abs([f.median_error for f in self.as_of_launch]),
                                                         median_abs([f.baseline_error for f in self.as_of_launch]))
                                 if self.as_of_launch else None},
                "outlook": None if self.outlook is None else asdict(self.outlook)}


def median_abs(errors: list[float]) -> float:
    """Median of |error| (NaN for no errors)."""
    return float(np.median(np.abs(errors))) if errors else float("nan")


def summary_line(inside: int, n: int, model_error: float, baseline_error: float) -> str:
    """`ramps: inside=<k>/<n> median_abs_error=<x> baseline_median_abs_error=<y>` (fractions, 3 decimals)."""
    return (f"ramps: inside={inside}/{n} median_abs_error={model_error:.3f} "
            f"baseline_median_abs_error={baseline_error:.3f}")


def cumulative(plateau: np.ndarray, midpoint: np.ndarray, width: np.ndarray, months: int = TARGET_MONTHS
               ) -> np.ndarray:
    """Deliveries summed over months 1..months of logistic curves (vehicles), vectorised over curves."""
    grid = np.arange(1, months + 1, dtype=float)
    p, m, w = (np.asarray(a, float)[..., None] for a in (plateau, midpoint, width))
    return (p * expit((grid - m) / w)).sum(axis=-1)


def class_draws(curves: list[BrandRamp], normals: np.ndarray, months: int = TARGET_MONTHS,
                config: RampFitConfig = FIT) -> np.ndarray:
    """First-`months` deliveries of curves drawn from the class's log-normal of (plateau, midpoint,
    width): mean and covariance (n - 1) of the logs across `curves`, applied to `normals` [N, 3]."""
    logs = np.log([[c.plateau, c.midpoint, c.width] for c in curves])
    mean = logs.mean(axis=0)
    cov = np.atleast_2d(np.cov(logs, rowvar=False, ddof=1))
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    drawn = mean + normals @ root.T
    midpoint = np.clip(np.exp(drawn[:, 1]), *config.midpoint_bounds)
    width = np.clip(np.exp(drawn[:, 2]), *config.width_bounds)
    return cumulative(np.exp(drawn[:, 0]), midpoint, width, months)


def point_median(curves: list[BrandRamp], normals: np.ndarray) -> float:
    return float(np.median(class_draws(curves, normals)))


def error_scale(curves: dict[str, BrandRamp], actuals: dict[str, float], normals: np.ndarray) -> float:
    """Root-mean-square log error of each ramp forecast from the others in `curves` (the caller has
    already left the held-out ramp out); NaN if too few ramps for a nested class."""
    names = list(curves)
    if len(names) < MIN_CLASS + 1:
        return float("nan")
    errors = [np.log(actuals[name] / point_median([curves[o] for o in names if o != name], normals))
              for name in names]
    return float(np.sqrt(np.mean(np.square(errors))))


def forecast_ramp(held_out: str, curves: dict[str, BrandRamp], actuals: dict[str, float],
                  normals: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(draws, widening factor, baseline) for `held_out` from the other ramps only.

    `curves` and `actuals` may include the held-out ramp; it is dropped before anything is fitted."""
    others = {name: curve for name, curve in curves.items() if name != held_out}
    draws = class_draws(list(others.values()), normals)
    logs = np.log(draws)
    centre = np.median(logs)
    spread = float(np.std(logs))
    empirical = error_scale(others, {name: actuals[name] for name in others}, normals)
    factor = max(1.0, empirical / spread) if np.isfinite(empirical) and spread > 0 else 1.0
    widened = np.exp(centre + (logs - centre) * factor)
    baseline = float(np.median([actuals[name] for name in others]))
    return widened, factor, baseline


@dataclass(frozen=True)
class RampFacts:
    """What the panel records about a held-out ramp besides its deliveries (carried into its RampForecast):
    launch month 'YYYY-MM', imputed months among months 1..12, the bases used, the lowest launch price (CNY)
    and the largest pre-launch order count (NaN or None when unknown)."""

    launch: str = ""
    imputed_months: int = 0
    bases: str = ""
    price_at_launch: float | None = None
    prelaunch_orders: float | None = None

    @classmethod
    def of(cls, row: pd.Series) -> RampFacts:
        """The facts in a row of `RampPanel.ramps`."""
        return cls(row["launch"], int(row["imputed_1_12"]), row["bases"], row["price_at_launch"],
                   row["prelaunch_orders"])


def score(ramp: str, actual: float, draws: np.ndarray, factor: float, baseline: float, class_size: int,
          facts: RampFacts = RampFacts()) -> RampForecast:
    """Scores of one forecast: 80% interval, median error (fraction of actual), CRPS, PIT; baseline error."""
    p10, p50, p90 = (float(q) for q in np.quantile(draws, [0.1, 0.5, 0.9]))
    price, orders = facts.price_at_launch, facts.prelaunch_orders
    return RampForecast(ramp=ramp, launch=facts.launch, actual=actual, imputed_months=facts.imputed_months,
                        bases=facts.bases,
                        class_size=class_size, p10=p10, p50=p50, p90=p90, inside_80=bool(p10 <= actual <= p90),
                        median_error=p50 / actual - 1.0, crps=float(scoringrules.crps_ensemble(actual, draws)),
                        pit=float(np.mean(draws <= actual)), widening=factor, baseline=baseline,
                        baseline_error=baseline / actual - 1.0,
                        price_at_launch=None if price is None or np.isnan(price) else float(price),
                        prelaunch_orders=None if orders is None or np.isnan(orders) else float(orders))


def fit_curves(panel: RampPanel, ramps: list[str]) -> dict[str, BrandRamp]:
    """Each ramp's logistic fit to its known months (1..24; imputed months left out)."""
    curves = {}
    for ramp in ramps:
        known = panel.observed(ramp)
        curves[ramp] = fit_brand(ramp, known["month"].to_numpy(), known["deliveries"].to_numpy())
    return curves


def leave_one_out(panel: RampPanel, normals: np.ndarray, rule: Eligibility = RULE
                  ) -> tuple[list[RampForecast], dict[str, str]]:
    """The leave-one-ramp-out forecasts of every eligible ramp in `panel`."""
    ramps, excluded = eligible_ramps(panel, rule)
    curves = fit_curves(panel, ramps)
    actuals = {ramp: float(panel.ramps.loc[ramp, "cum12"]) for ramp in ramps}
    forecasts = []
    for ramp in ramps:
        draws, factor, baseline = forecast_ramp(ramp, curves, actuals, normals)
        row = panel.ramps.loc[ramp]
        forecasts.append(score(ramp, actuals[ramp], draws, factor, baseline, len(ramps) - 1, RampFacts.of(row)))
    return forecasts, excluded


def as_of_launch(panel: RampPanel, normals: np.ndarray, rule: Eligibility = RULE,
                 loader=load_ramp_panel) -> tuple[list[RampForecast], dict[str, str]]:
    """Each eligible ramp forecast from the ramps whose rows were published before its launch month."""
    ramps, _ = eligible_ramps(panel, rule)
    forecasts, skipped = [], {}
    for ramp in ramps:
        launch = panel.ramps.loc[ramp, "launch"]
        cutoff = date.fromisoformat(launch + "-01")
        earlier = loader(cutoff)
        names, _ = eligible_ramps(earlier, rule) if not earlier.ramps.empty else ([], {})
        names = [name for name in names if name != ramp]
        if len(names) < MIN_CLASS:
            skipped[ramp] = f"{len(names)} ramps with a first year published before {cutoff} (< {MIN_CLASS})"
            continue
        curves = fit_curves(earlier, names)
        actuals = {name: float(earlier.ramps.loc[name, "cum12"]) for name in names}
        curves[ramp] = None  # placeholder: the held-out ramp is never in its own class
        draws, factor, baseline = forecast_ramp(ramp, {k: v for k, v in curves.items() if v is not None},
                                                actuals, normals)
        row = panel.ramps.loc[ramp]
        forecasts.append(score(ramp, float(row["cum12"]), draws, factor, baseline, len(names), RampFacts.of(row)))
    return forecasts, skipped


def class_outlook(panel: RampPanel, normals: np.ndarray, plan: float | None = None, plan_note: str = "",
                  rule: Eligibility = RULE) -> ClassOutlook:
    """The class of every eligible ramp as a forecast for a newcomer's first 12 months, widened by
    the ramps' leave-one-out errors, and where a stated plan falls in it."""
    ramps, _ = eligible_ramps(panel, rule)
    curves = fit_curves(panel, ramps)
    actuals = {ramp: float(panel.ramps.loc[ramp, "cum12"]) for ramp in ramps}
    draws, factor, _ = forecast_ramp("", curves, actuals, normals)
    p10, p50, p90 = (float(q) for q in np.quantile(draws, [0.1, 0.5, 0.9]))
    return ClassOutlook(len(ramps), p10, p50, p90, factor, plan,
                        None if plan is None else float(np.mean(draws <= plan)), plan_note)


def standard_normals(draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """The [draws, 3] standard normals every forecast shares."""
    return np.random.default_rng(seed).standard_normal((draws, 3))


def run_ramp_backtest(as_of: date | None = None, draws: int = DRAWS, seed: int = SEED,
                      with_as_of_launch: bool = True, plan: float | None = XIAOMI_PLAN[0],
                      plan_note: str = XIAOMI_PLAN[1], outlook_as_of: date = XIAOMI_AS_OF) -> RampBacktest:
    """The backtest on the bundled tables (rows published by `as_of`, all if None), with the whole
    class's outlook for a newcomer beside `plan` (default: Xiaomi's public plan for 2024), from the rows
    public at `outlook_as_of` (default: the reference scenario's as-of date)."""
    panel = load_ramp_panel(as_of)
    normals = standard_normals(draws, seed)
    forecasts, excluded = leave_one_out(panel, normals)
    outlook = class_outlook(load_ramp_panel(outlook_as_of), normals, plan, plan_note)
    result = RampBacktest(forecasts, excluded, outlook=outlook)
    if with_as_of_launch:
        result.as_of_launch, result.as_of_launch_skipped = as_of_launch(panel, normals)
    return result
