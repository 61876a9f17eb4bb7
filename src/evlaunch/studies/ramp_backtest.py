"""Leave-one-brand-out backtest of the new-brand ramp reference class (issue 12, item 7).

For each ramp in the reconciled panel (`entry.ramp_panel`) with enough of its first year known, the
OTHER ramps only predict the held-out ramp's cumulative deliveries in its first 12 months (vehicles)
as a distribution:

- market at launch: China's NEV sales (CAAM, `market_annual`) in the latest calendar year published before
  the launch month. A *scaled* method rescales each other ramp j to the held-out ramp's market: its
  deliveries (and its curve's plateau) times market(held-out) / market(j), i.e. the class is one of
  first-year market shares applied to the market the held-out brand launched into.
- candidate methods (`METHODS`): 'shares', the predictive log Student-t of the other ramps' first-12-month
  totals (`share_draws`); 'curves', each other ramp's logistic fit (plateau, midpoint, width;
  `entry.reference_class.fit_brand` on its known months, imputed months never fitted), a log-normal
  across those ramps of the three parameters, each draw's curve summed over months 1..12 — each scaled
  or not. The same N standard-normal draws serve every forecast (common random numbers).
- the method is chosen per held-out ramp, nested (`choose_method`): the candidate whose forecasts of the
  OTHER ramps, each from the rest with the held-out ramp excluded, have the smallest median |error|.
  Nothing about the held-out ramp but its launch month and market enters its forecast.
- honest intervals: the spread of the chosen method's draws is widened, if too narrow, by the empirical
  error of the OTHER ramps: each is forecast from the rest (the held-out ramp excluded too), its log
  error log(actual / median) taken, and the draws' log deviations from their median are scaled by
  max(1, rms(errors) / sd(log draws)).
- baseline: the median of the other ramps' first-12-month deliveries (a point forecast).
- for comparison, the previous method (`PREVIOUS`: the curves, unscaled; `unscaled_*` fields).

Why the market, and only it: it was fixed a priori as the one candidate covariate (a brand launching
into a market of 3.5 million NEVs a year meets more buyers than one launching into 0.8 million; CAAM's
annual figure is public before every launch). The brand's own pre-launch facts are too sparse in the
bundled tables for a regression across the other brands: a launch price for 3 of the 8 scored ramps, a
pre-launch order count for 2 (XPeng's launch-day 1,573, AITO's rumoured 1,000), a capacity at launch
for none; they are carried into the table, not used.

Scores per ramp: inside the 80% interval (p10..p90), the median's error as a fraction of the actual
(p50 / actual - 1), CRPS (`scoringrules.crps_ensemble`, vehicles) and the PIT (share of draws below
the actual). Summary: how many inside, and the median over ramps of |median error| for the model and
the baseline.

The mechanism the model itself runs is scored too (`shape_check`, the `ramp shapes:` line): each ramp's first 12
months as its own fitted plateau times the plateau-relative ramp of a shape drawn, as the model draws it, from the
other ramps' class widened by the model's rule (`entry.ramp_spread`, from the other ramps only).

A second, stricter pass ("as of launch") rebuilds the panel from only the rows published before each
held-out ramp's launch month (the loader's as-of guard) and scores the ramps that still have at least
`min_class` earlier ramps to learn from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd
import scoringrules
from scipy.special import expit
from scipy.stats import norm
from scipy.stats import t as student_t

from evlaunch.data.loader import load_table
from evlaunch.entry.ramp_panel import (
    MARKET_TABLE,
    Eligibility,
    RampPanel,
    eligible_ramps,
    load_ramp_panel,
    market_at_launch,
)
from evlaunch.entry.ramp_spread import class_of, first_year_fraction, spread_scale
from evlaunch.entry.reference_class import (
    BrandRamp,
    RampFitConfig,
    class_midpoint_bounds,
    fit_brand,
    reference_class_from_panel,
)

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
    market_at_launch: float | None = None  # NEV sales per year public before launch (vehicles)
    unscaled_p50: float | None = None  # the class's median without the market rescaling (vehicles)
    unscaled_error: float | None = None  # its error, unscaled_p50 / actual - 1
    method: str = ""  # the method chosen for this ramp on the other ramps only (`Method.label`)


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
    market: float | None = None  # the NEV market (vehicles/year) the class's shares are applied to
    method: str = ""  # the method chosen by the ramps' leave-one-out errors


@dataclass
class RampBacktest:
    """The leave-one-out forecasts, the ramps left out (ramp -> reason), and the as-of-launch pass."""

    forecasts: list[RampForecast]
    excluded: dict[str, str] = field(default_factory=dict)
    as_of_launch: list[RampForecast] = field(default_factory=list)
    as_of_launch_skipped: dict[str, str] = field(default_factory=dict)
    outlook: ClassOutlook | None = None
    shapes: list[RampForecast] = field(default_factory=list)  # the model's mechanism (`shape_check`)

    @property
    def inside(self) -> int:
        return sum(f.inside_80 for f in self.forecasts)

    @property
    def median_abs_error(self) -> float:
        return median_abs([f.median_error for f in self.forecasts])

    @property
    def baseline_median_abs_error(self) -> float:
        return median_abs([f.baseline_error for f in self.forecasts])

    @property
    def unscaled_median_abs_error(self) -> float:
        """The same score for the class without the market rescaling (NaN if not computed)."""
        errors = [f.unscaled_error for f in self.forecasts if f.unscaled_error is not None]
        return median_abs(errors)

    def summary_line(self) -> str:
        return summary_line(self.inside, len(self.forecasts), self.median_abs_error, self.baseline_median_abs_error)

    def shapes_line(self) -> str:
        """The model's mechanism scored (`shape_check`): `ramp shapes: inside=<k>/<n> median_abs_error=<x>`."""
        return (f"ramp shapes: inside={sum(f.inside_80 for f in self.shapes)}/{len(self.shapes)} "
                f"median_abs_error={median_abs([f.median_error for f in self.shapes]):.3f}")

    def to_dict(self) -> dict:
        return {"forecasts": [asdict(f) for f in self.forecasts], "excluded": self.excluded,
                "inside": self.inside, "n": len(self.forecasts), "median_abs_error": self.median_abs_error,
                "baseline_median_abs_error": self.baseline_median_abs_error,
                "unscaled_median_abs_error": self.unscaled_median_abs_error, "summary": self.summary_line(),
                "as_of_launch": {"forecasts": [asdict(f) for f in self.as_of_launch],
                                 "skipped": self.as_of_launch_skipped,
                                 "summary": summary_line(sum(f.inside_80 for f in self.as_of_launch),
                                                         len(self.as_of_launch),
                                                         median_abs([f.median_error for f in self.as_of_launch]),
                                                         median_abs([f.baseline_error for f in self.as_of_launch]))
                                 if self.as_of_launch else None},
                "outlook": None if self.outlook is None else asdict(self.outlook),
                "shapes": {"forecasts": [asdict(f) for f in self.shapes],
                           "summary": self.shapes_line() if self.shapes else None}}


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
    width): mean and covariance (n - 1) of the logs across `curves`, applied to `normals` [N, 3]; midpoints
    clipped to `class_midpoint_bounds` (none later than the longest window the curves were fitted to)."""
    logs = np.log([[c.plateau, c.midpoint, c.width] for c in curves])
    mean = logs.mean(axis=0)
    cov = np.atleast_2d(np.cov(logs, rowvar=False, ddof=1))
    values, vectors = np.linalg.eigh(cov)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    drawn = mean + normals @ root.T
    midpoint = np.clip(np.exp(drawn[:, 1]), *class_midpoint_bounds(curves, config))  # never past every window
    width = np.clip(np.exp(drawn[:, 2]), *config.width_bounds)
    return cumulative(np.exp(drawn[:, 0]), midpoint, width, months)


@dataclass(frozen=True)
class Method:
    """One way to forecast a held-out ramp's first 12 months from the other ramps (vehicles).

    kind 'shares': the other ramps' first-12-month totals, log Student-t (centre the median of the logs,
    scale their standard deviation (n - 1) times sqrt(1 + 1/n), n - 1 degrees of freedom: the predictive
    distribution of one more draw). kind 'curves': the class of logistic curves (`class_draws`).
    `scaled`: the other ramps first rescaled to the held-out ramp's market at launch (`rescaled`)."""

    kind: str
    scaled: bool

    @property
    def label(self) -> str:
        return ("first-year totals" if self.kind == "shares" else "logistic curves") + (
            " x market" if self.scaled else "")


# Candidates, in the fixed order that breaks ties; each held-out ramp's method is the one whose forecasts of
# the OTHER ramps (each from the rest, the held-out ramp never included) have the smallest median |error|.
METHODS = (Method("shares", True), Method("curves", True), Method("shares", False), Method("curves", False))
PREVIOUS = Method("curves", False)  # the class as it was before the market rescaling: shown for comparison


def share_draws(totals: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Draws of one more first-year total from `totals` (vehicles; at least 2): the log Student-t of
    `Method`, through the normal CDF of the first column of `normals` (common random numbers)."""
    logs = np.log(np.asarray(totals, float))
    n = logs.size
    scale = float(np.std(logs, ddof=1)) * np.sqrt(1.0 + 1.0 / n)
    quantiles = student_t.ppf(np.clip(norm.cdf(normals[:, 0]), 1e-12, 1 - 1e-12), n - 1)
    return np.exp(float(np.median(logs)) + scale * quantiles)


def method_draws(method: Method, curves: dict[str, BrandRamp], actuals: dict[str, float],
                 normals: np.ndarray) -> np.ndarray:
    """`method`'s draws from the ramps given (already rescaled if the method is)."""
    if method.kind == "curves":
        return class_draws(list(curves.values()), normals)
    return share_draws(np.array([actuals[name] for name in curves]), normals)


def point_median(curves: list[BrandRamp], normals: np.ndarray) -> float:
    return float(np.median(class_draws(curves, normals)))


def error_scale(curves: dict[str, BrandRamp], actuals: dict[str, float], normals: np.ndarray,
                method: Method = PREVIOUS) -> float:
    """Root-mean-square log error of each ramp forecast by `method` from the others in `curves` (the caller
    has already left the held-out ramp out, and rescaled them if the method does); NaN if too few ramps."""
    names = list(curves)
    if len(names) < MIN_CLASS + 1:
        return float("nan")
    errors = []
    for name in names:
        rest = {o: curves[o] for o in names if o != name}
        errors.append(np.log(actuals[name] / np.median(method_draws(method, rest, actuals, normals))))
    return float(np.sqrt(np.mean(np.square(errors))))


def rescaled(curves: dict[str, BrandRamp], actuals: dict[str, float], markets: dict[str, float],
             target: float) -> tuple[dict[str, BrandRamp], dict[str, float]]:
    """Each ramp's curve and first-year deliveries as if launched into a market of `target` (vehicles
    per year): plateau and deliveries times target / markets[ramp] (the market share is kept)."""
    factors = {name: target / markets[name] for name in curves}
    return ({name: replace(curve, plateau=curve.plateau * factors[name]) for name, curve in curves.items()},
            {name: actuals[name] * factors[name] for name in curves})


def forecast_ramp(held_out: str, curves: dict[str, BrandRamp], actuals: dict[str, float],
                  normals: np.ndarray, markets: dict[str, float] | None = None, target: float | None = None,
                  method: Method = PREVIOUS) -> tuple[np.ndarray, float, float]:
    """(draws, widening factor, baseline) for `held_out` from the other ramps only, by `method`.

    `curves` and `actuals` may include the held-out ramp; it is dropped before anything is fitted. A scaled
    method needs `markets` (ramp -> market at its launch) and the held-out ramp's `target` market. The
    draws' log spread is widened (never narrowed) to the rms log error of the method's forecasts of the
    other ramps from the rest. The baseline is the raw median of the other ramps' totals."""
    others = {name: curve for name, curve in curves.items() if name != held_out}
    baseline = float(np.median([actuals[name] for name in others]))
    others_actual = {name: actuals[name] for name in others}
    if method.scaled:
        if markets is None or target is None:
            raise ValueError(f"method {method.label!r} needs the markets at launch and the target market")
        others, others_actual = rescaled(others, others_actual, markets, target)
    logs = np.log(method_draws(method, others, others_actual, normals))
    centre = np.median(logs)
    spread = float(np.std(logs))
    empirical = error_scale(others, others_actual, normals, method)
    factor = max(1.0, empirical / spread) if np.isfinite(empirical) and spread > 0 else 1.0
    return np.exp(centre + (logs - centre) * factor), factor, baseline


def nested_score(method: Method, held_out: str, curves: dict[str, BrandRamp], actuals: dict[str, float],
                 markets: dict[str, float], normals: np.ndarray) -> float:
    """Median over the other ramps j of |p50 / actual - 1| when `method` forecasts j from the ramps other
    than j and `held_out` (each j in its own market). Never looks at the held-out ramp's outcome."""
    others = {name: curve for name, curve in curves.items() if name != held_out}
    errors = []
    for name in others:
        rest = {o: c for o, c in others.items() if o != name}
        rest_actual = {o: actuals[o] for o in rest}
        if method.scaled:
            rest, rest_actual = rescaled(rest, rest_actual, markets, markets[name])
        errors.append(float(np.median(method_draws(method, rest, rest_actual, normals))) / actuals[name] - 1.0)
    return median_abs(errors)


def choose_method(held_out: str, curves: dict[str, BrandRamp], actuals: dict[str, float],
                  markets: dict[str, float], normals: np.ndarray) -> Method:
    """The candidate in METHODS with the smallest `nested_score` (the first on a tie)."""
    scores = [nested_score(m, held_out, curves, actuals, markets, normals) for m in METHODS]
    return METHODS[int(np.argmin(scores))]


@dataclass(frozen=True)
class RampFacts:
    """What the panel records about a held-out ramp besides its deliveries (carried into its RampForecast):
    launch month 'YYYY-MM', imputed months among months 1..12, the bases used, the lowest launch price (CNY),
    the largest pre-launch order count and the NEV market at launch (vehicles/year; NaN or None when unknown)."""

    launch: str = ""
    imputed_months: int = 0
    bases: str = ""
    price_at_launch: float | None = None
    prelaunch_orders: float | None = None
    market_at_launch: float | None = None

    @classmethod
    def of(cls, row: pd.Series) -> RampFacts:
        """The facts in a row of `RampPanel.ramps`."""
        return cls(row["launch"], int(row["imputed_1_12"]), row["bases"], row["price_at_launch"],
                   row["prelaunch_orders"], row.get("market_at_launch"))


def _known(value: float | None) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def score(ramp: str, actual: float, draws: np.ndarray, factor: float, baseline: float, class_size: int,
          facts: RampFacts = RampFacts()) -> RampForecast:
    """Scores of one forecast: 80% interval, median error (fraction of actual), CRPS, PIT; baseline error."""
    p10, p50, p90 = (float(q) for q in np.quantile(draws, [0.1, 0.5, 0.9]))
    return RampForecast(ramp=ramp, launch=facts.launch, actual=actual, imputed_months=facts.imputed_months,
                        bases=facts.bases,
                        class_size=class_size, p10=p10, p50=p50, p90=p90, inside_80=bool(p10 <= actual <= p90),
                        median_error=p50 / actual - 1.0, crps=float(scoringrules.crps_ensemble(actual, draws)),
                        pit=float(np.mean(draws <= actual)), widening=factor, baseline=baseline,
                        baseline_error=baseline / actual - 1.0,
                        price_at_launch=_known(facts.price_at_launch),
                        prelaunch_orders=_known(facts.prelaunch_orders),
                        market_at_launch=_known(facts.market_at_launch))


@dataclass(frozen=True)
class Evidence:
    """What a held-out ramp is forecast from: the other ramps' curves, first-12-month totals (vehicles)
    and markets at launch (vehicles/year) — the held-out ramp may be among them; it is always dropped."""

    curves: dict[str, BrandRamp]
    actuals: dict[str, float]
    markets: dict[str, float]


def forecast_one(ramp: str, actual: float, target: float, evidence: Evidence, normals: np.ndarray,
                 facts: RampFacts) -> RampForecast:
    """`ramp` forecast by the method chosen on the other ramps only (`choose_method`), scored against
    `actual`, with the previous method's median beside it."""
    method = choose_method(ramp, evidence.curves, evidence.actuals, evidence.markets, normals)
    draws, factor, baseline = forecast_ramp(ramp, evidence.curves, evidence.actuals, normals, evidence.markets,
                                            target, method)
    class_size = len([name for name in evidence.curves if name != ramp])
    scored = score(ramp, actual, draws, factor, baseline, class_size, facts)
    previous = float(np.median(forecast_ramp(ramp, evidence.curves, evidence.actuals, normals)[0]))
    return replace(scored, method=method.label, unscaled_p50=previous, unscaled_error=previous / actual - 1.0)


def markets_of(panel: RampPanel, ramps: list[str]) -> dict[str, float]:
    """Ramp -> NEV market at its launch (vehicles/year) from the panel."""
    return {ramp: float(panel.ramps.loc[ramp, "market_at_launch"]) for ramp in ramps}


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
    ramps, excluded = _with_market(panel, ramps, excluded)
    curves = fit_curves(panel, ramps)
    actuals = {ramp: float(panel.ramps.loc[ramp, "cum12"]) for ramp in ramps}
    evidence = Evidence(curves, actuals, markets_of(panel, ramps))
    forecasts = [forecast_one(ramp, actuals[ramp], evidence.markets[ramp], evidence, normals,
                              RampFacts.of(panel.ramps.loc[ramp])) for ramp in ramps]
    return forecasts, excluded


def _with_market(panel: RampPanel, ramps: list[str], excluded: dict[str, str]
                 ) -> tuple[list[str], dict[str, str]]:
    """The ramps with a market at launch, and the others added to `excluded` with the reason."""
    keep = [ramp for ramp in ramps if np.isfinite(panel.ramps.loc[ramp, "market_at_launch"])]
    missing = {ramp: "no NEV market figure published before its launch" for ramp in ramps if ramp not in keep}
    return keep, {**excluded, **missing}


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
        names = [name for name in _with_market(earlier, names, {})[0] if name != ramp]
        if len(names) < MIN_CLASS:
            skipped[ramp] = f"{len(names)} ramps with a first year published before {cutoff} (< {MIN_CLASS})"
            continue
        evidence = Evidence(fit_curves(earlier, names),  # the held-out ramp is never in its own class
                            {name: float(earlier.ramps.loc[name, "cum12"]) for name in names},
                            markets_of(earlier, names))
        row = panel.ramps.loc[ramp]
        forecasts.append(forecast_one(ramp, float(row["cum12"]), float(row["market_at_launch"]), evidence,
                                      normals, RampFacts.of(row)))
    return forecasts, skipped


def class_outlook(panel: RampPanel, normals: np.ndarray, plan: float | None = None, plan_note: str = "",
                  rule: Eligibility = RULE, market: float | None = None) -> ClassOutlook:
    """The class of every eligible ramp as a forecast for a newcomer's first 12 months launching into a
    NEV market of `market` vehicles/year (the class unscaled if None), widened by the ramps' leave-one-out
    errors, and where a stated plan falls in it."""
    ramps, _ = eligible_ramps(panel, rule)
    ramps, _ = _with_market(panel, ramps, {})
    curves = fit_curves(panel, ramps)
    actuals = {ramp: float(panel.ramps.loc[ramp, "cum12"]) for ramp in ramps}
    markets = markets_of(panel, ramps)
    method = choose_method("", curves, actuals, markets, normals) if market is not None else PREVIOUS
    draws, factor, _ = forecast_ramp("", curves, actuals, normals, markets, market, method)
    p10, p50, p90 = (float(q) for q in np.quantile(draws, [0.1, 0.5, 0.9]))
    return ClassOutlook(len(ramps), p10, p50, p90, factor, plan,
                        None if plan is None else float(np.mean(draws <= plan)), plan_note, market, method.label)


def shape_check(panel: RampPanel, normals: np.ndarray, rule: Eligibility = RULE) -> list[RampForecast]:
    """The mechanism the model runs, scored leave-one-out: each eligible ramp's first-12-month deliveries
    forecast as its own fitted plateau (vehicles/month; in the model, the plant's installed capacity) times
    the plateau-relative ramp summed over months 1..12, the shape (midpoint, width) drawn as the model draws
    it (`ramp_shape_from_uniforms`, uniforms the normal CDF of `normals`' first two columns) from the class
    of the OTHER eligible ramps, its spread widened by the model's rule (`entry.ramp_spread.spread_scale`)
    applied to those other ramps only (nested: the held-out ramp never sets its own widening). Conditional on
    the plateau, which the held-out ramp's own data give (no capacity at launch is in the tables): it scores
    the shape, not the volume. The baseline is the other ramps' median first-12-month total, as in
    `leave_one_out`; `widening` holds the factor applied."""
    ramps, _ = eligible_ramps(panel, rule)
    uniforms = norm.cdf(normals[:, :2]).T
    fitted = {brand.brand: brand for brand in reference_class_from_panel(panel, ramps).brands}
    actuals = {ramp: float(panel.ramps.loc[ramp, "cum12"]) for ramp in ramps}
    forecasts = []
    for ramp in ramps:
        others = [fitted[name] for name in ramps if name != ramp]
        factor = spread_scale(others, actuals)
        draws = fitted[ramp].plateau * first_year_fraction(class_of(others, FIT, factor), uniforms, TARGET_MONTHS)
        baseline = float(np.median([actuals[b.brand] for b in others]))
        forecasts.append(score(ramp, actuals[ramp], draws, factor, baseline, len(others),
                               RampFacts.of(panel.ramps.loc[ramp])))
    return forecasts


def market_as_of(as_of: date) -> float:
    """NEV sales (vehicles/year) of the latest year published by `as_of` (a launch the month after)."""
    following = date(as_of.year + as_of.month // 12, as_of.month % 12 + 1, 1)
    return market_at_launch(load_table(MARKET_TABLE, as_of).rows, following.strftime("%Y-%m"))[0]


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
    outlook = class_outlook(load_ramp_panel(outlook_as_of), normals, plan, plan_note,
                            market=market_as_of(outlook_as_of))
    result = RampBacktest(forecasts, excluded, outlook=outlook, shapes=shape_check(panel, normals))
    if with_as_of_launch:
        result.as_of_launch, result.as_of_launch_skipped = as_of_launch(panel, normals)
    return result
