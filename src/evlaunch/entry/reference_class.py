"""The reference class for a new EV brand's sales ramp-up: how fast did earlier entrants ramp?

Monthly deliveries of each brand's first months (NIO, Li Auto, Zeekr, Tesla China, AITO, ...)
are fitted with a 3-parameter logistic curve in the month since launch m (month 1 = the first
month with deliveries):

    deliveries(m) = plateau / (1 + exp(-(m - midpoint) / width))

plateau (vehicles/month) is the brand's eventual monthly volume — a fact about the brand, not the
ramp. The *shape* is plateau-relative: `ramp_fraction(m) = deliveries(m) / plateau`, set by midpoint
(month at which half the plateau is reached) and width (months; ~4.4 widths take the ramp from 10%
to 90%). The class's spread of shapes is a log-normal fit across brands of (midpoint, width), from
which `sample_ramp_shape` draws a shape per Monte Carlo draw.

Fitting: `scipy.optimize.least_squares` on residuals scaled by the brand's largest monthly figure,
with a soft-L1 loss (a recall month or Chinese New Year dip should not drag the curve) and bounds
(`RampFitConfig`). Months missing from the table are simply absent (quarterly aggregate rows without
a month index are ignored). Parameters that end on a bound are flagged `at_bound`. Only brands with at
least `min_months` monthly figures are fitted; the others are listed with the reason.

**Only what the data identify: the midpoint stays inside the observed window.** A brand still
accelerating at its last observed month (NIO and Li Auto in the bundled table, 24 months each) has
data that never show the curve turning: every (plateau, midpoint) pair along a ridge fits them about
equally, from "half-way at the last month, plateau about twice the last level" outwards to any later
midpoint with a proportionally larger plateau. Unbounded, least squares runs along that ridge to
whatever cap stops it (3x the peak month gave NIO and Li Auto midpoints of ~33-34 months, beyond their
24 months of data: the class's slowest ramps were an extrapolation of the cap, not a fact). The fit
therefore bounds the midpoint by the brand's last fitted month (`RampFitConfig.midpoint_within_window`):
the nearest end of the ridge, the least extrapolation the data allow. Such a brand is flagged
`at_bound` ("midpoint"), read as "at least half-way by the end of its data". A brand whose data show
the turn (the concave part past the midpoint) is fitted as before and recovers its parameters.
Alternatives weighed: shrinking poorly identified brands toward a pooled class prior needs a class
mean that, with 3-5 brands of which two are the poorly identified ones, is itself mostly those brands;
setting the plateau to the last observed level ("months to X% of the last level") would claim every
brand had stopped growing when its data end (Li Auto's month-24 figure was twice its month-20 one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.special import expit
from scipy.stats import norm

from evlaunch.entry.ramp_panel import RampPanel, eligible_ramps
from evlaunch.errors import EvlaunchError


class ReferenceClassError(EvlaunchError):
    """The ramp table cannot be fitted (missing columns, too few brands, bad values)."""


@dataclass(frozen=True)
class RampFitConfig:
    """Fit settings. Bounds: midpoint and width in months; plateau as a multiple of the brand's
    largest observed monthly deliveries. For a brand still rising at its last month, plateau and midpoint
    run off together along a ridge the data cannot tell apart; `midpoint_within_window` stops it at the
    last fitted month (the module docstring says why), before the plateau cap (3x the peak) is reached."""

    min_months: int = 6
    midpoint_bounds: tuple[float, float] = (0.5, 36.0)
    midpoint_within_window: bool = True  # midpoint at most the brand's last fitted month (module docstring)
    width_bounds: tuple[float, float] = (0.3, 24.0)
    plateau_peak_multiple: tuple[float, float] = (0.5, 3.0)
    loss: str = "soft_l1"
    loss_scale: float = 0.1  # residual size (share of peak month) beyond which the loss turns linear


@dataclass(frozen=True)
class BrandRamp:
    """One brand's fitted ramp: plateau (vehicles/month), midpoint and width (months)."""

    brand: str
    plateau: float
    midpoint: float
    width: float
    n_months: int
    rmse_share: float  # root-mean-square residual as a share of the brand's peak month
    at_bound: tuple[str, ...] = ()
    last_month: float = float("nan")  # the brand's last fitted month since launch (its observed window)


@dataclass(frozen=True)
class RampReferenceClass:
    """Fitted brands, excluded brands (brand -> reason), and the log-normal spread of shapes.

    log_mean / log_cov: mean vector and covariance matrix of (log midpoint, log width) across the
    fitted brands (covariance with n - 1 degrees of freedom); midpoint_bounds / width_bounds: the
    fit's bounds (months), to which sampled shapes are clipped.
    """

    brands: tuple[BrandRamp, ...]
    excluded: dict[str, str] = field(default_factory=dict)
    log_mean: np.ndarray = field(default_factory=lambda: np.zeros(2))
    log_cov: np.ndarray = field(default_factory=lambda: np.eye(2))
    midpoint_bounds: tuple[float, float] = RampFitConfig.midpoint_bounds
    width_bounds: tuple[float, float] = RampFitConfig.width_bounds

    def table(self) -> pd.DataFrame:
        """Per-brand parameters as a DataFrame indexed by brand."""
        return pd.DataFrame([b.__dict__ for b in self.brands]).set_index("brand")


def ramp_fraction(months_since_launch: np.ndarray, midpoint: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Share of the plateau delivered in a month, in [0, 1], vectorised over draws.

    `months_since_launch` has the draw axis first ([N] or [N, M, ...]; month 1 = first delivery
    month); `midpoint` and `width` are [N] (or scalars) and broadcast along the trailing axes. Months
    <= 0 (not launched yet), -inf and NaN (never launched) give 0. Non-decreasing in months for
    positive width.
    """
    m = np.asarray(months_since_launch, dtype=float)
    mid = np.asarray(midpoint, dtype=float)
    w = np.asarray(width, dtype=float)
    if np.any(w <= 0):
        raise ReferenceClassError("ramp width must be positive (months); check the sampled widths")
    extra = max(m.ndim - mid.ndim, 0)
    mid = mid.reshape(mid.shape + (1,) * extra)
    w = w.reshape(w.shape + (1,) * (m.ndim - w.ndim if m.ndim > w.ndim else 0))
    launched = m > 0  # False for NaN and -inf
    with np.errstate(invalid="ignore"):
        fraction = expit((np.where(launched, m, 0.0) - mid) / w)
    return np.where(launched, fraction, 0.0)


def _logistic(params: np.ndarray, months: np.ndarray) -> np.ndarray:
    plateau, midpoint, width = params
    return plateau * expit((months - midpoint) / width)


def fit_brand(brand: str, months: np.ndarray, deliveries: np.ndarray,
              config: RampFitConfig = RampFitConfig()) -> BrandRamp:
    """Least-squares logistic fit of one brand's monthly deliveries (months need not be contiguous), with the
    midpoint at most the last fitted month when `config.midpoint_within_window` (module docstring)."""
    months = np.asarray(months, dtype=float)
    deliveries = np.asarray(deliveries, dtype=float)
    peak = float(deliveries.max())
    if peak <= 0:
        raise ReferenceClassError(f"brand {brand!r} has no positive deliveries; drop it from the table")
    low_mult, high_mult = config.plateau_peak_multiple
    latest_midpoint = config.midpoint_bounds[1]
    if config.midpoint_within_window:
        latest_midpoint = max(min(latest_midpoint, float(months.max())), config.midpoint_bounds[0] * 1.01)
    lower = np.array([low_mult * peak, config.midpoint_bounds[0], config.width_bounds[0]])
    upper = np.array([high_mult * peak, latest_midpoint, config.width_bounds[1]])
    half = months[np.argmax(deliveries >= 0.5 * peak)]  # first month at half the peak
    start = np.clip(np.array([peak, half, 2.0]), lower * 1.0001, upper * 0.9999)

    def residuals(params: np.ndarray) -> np.ndarray:
        return (_logistic(params, months) - deliveries) / peak

    fit = least_squares(residuals, start, bounds=(lower, upper), loss=config.loss, f_scale=config.loss_scale,
                        x_scale=np.array([peak, 1.0, 1.0]))
    plateau, midpoint, width = fit.x
    names = ("plateau", "midpoint", "width")
    at_bound = tuple(n for n, v, lo, hi in zip(names, fit.x, lower, upper)
                     if np.isclose(v, lo, rtol=1e-3) or np.isclose(v, hi, rtol=1e-3))
    rmse = float(np.sqrt(np.mean(residuals(fit.x) ** 2)))
    return BrandRamp(brand=brand, plateau=float(plateau), midpoint=float(midpoint), width=float(width),
                     n_months=int(months.size), rmse_share=rmse, at_bound=at_bound, last_month=float(months.max()))


def fit_reference_class(ramps: pd.DataFrame, config: RampFitConfig = RampFitConfig()) -> RampReferenceClass:
    """Fit every brand in a `brand, month_index, deliveries` table and the class's spread of shapes.

    Rows without a month index (e.g. quarterly aggregates) or without deliveries are ignored; brands
    with fewer than `config.min_months` monthly figures are excluded and listed with the reason.
    """
    required = {"brand", "month_index", "deliveries"}
    missing = required - set(ramps.columns)
    if missing:
        raise ReferenceClassError(f"the ramp table lacks columns {sorted(missing)}; it needs brand, month_index "
                                  "(1 = first delivery month) and deliveries (vehicles in that month)")
    frame = ramps[["brand", "month_index", "deliveries"]].copy()
    frame["month_index"] = pd.to_numeric(frame["month_index"], errors="coerce")
    frame["deliveries"] = pd.to_numeric(frame["deliveries"], errors="coerce")
    if (frame["deliveries"] < 0).any():
        raise ReferenceClassError("the ramp table has negative deliveries; fix the data")
    usable = frame.dropna(subset=["month_index", "deliveries"])
    usable = usable[usable["month_index"] >= 1]
    brands, excluded = [], {}
    for brand in pd.unique(frame["brand"]):
        rows = usable[usable["brand"] == brand].groupby("month_index", as_index=False)["deliveries"].sum()
        if len(rows) < config.min_months:
            excluded[str(brand)] = (f"{len(rows)} monthly figures (< {config.min_months} needed); "
                                    "quarterly or missing months are not used")
            continue
        brands.append(fit_brand(str(brand), rows["month_index"].to_numpy(), rows["deliveries"].to_numpy(), config))
    if len(brands) < 2:
        raise ReferenceClassError(f"only {len(brands)} brand(s) have >= {config.min_months} monthly figures; "
                                  "a reference class needs at least 2 — add data or lower min_months")
    logs = np.log([[b.midpoint, b.width] for b in brands])
    return RampReferenceClass(brands=tuple(brands), excluded=excluded, log_mean=logs.mean(axis=0),
                              log_cov=np.atleast_2d(np.cov(logs, rowvar=False, ddof=1)),
                              midpoint_bounds=class_midpoint_bounds(brands, config), width_bounds=config.width_bounds)


def class_midpoint_bounds(brands: list[BrandRamp], config: RampFitConfig = RampFitConfig()) -> tuple[float, float]:
    """(lowest, latest) midpoint, months, a shape drawn from the class may take: the fit's bounds, the latest
    cut to the longest window among the fitted brands when midpoints are kept inside their windows (no draw
    is half-way later than any brand was ever observed)."""
    low, high = config.midpoint_bounds
    if config.midpoint_within_window and brands:
        high = max(min(high, max(b.last_month for b in brands)), low * 1.01)
    return low, high


def reference_class_from_panel(panel: RampPanel, ramps: list[str] | None = None,
                               config: RampFitConfig = RampFitConfig(), spread_scale: float = 1.0
                               ) -> RampReferenceClass:
    """The class fitted to the reconciled ramp panel (`entry.ramp_panel`: company deliveries preferred,
    registrations only where they are missing; imputed months never fitted): `ramps`, by default the
    panel's eligible ramps (`eligible_ramps`, those the leave-one-brand-out backtest scores).

    `spread_scale` widens the class's spread of shapes (log covariance times its square) — e.g. by the
    leave-one-brand-out backtest's widening factor (`studies.ramp_backtest`), so that the ramp draws
    carry the spread the backtest validated. 1 leaves the fitted spread as it is."""
    if not spread_scale > 0:
        raise ReferenceClassError(f"spread_scale must be positive, got {spread_scale}")
    chosen = eligible_ramps(panel)[0] if ramps is None else ramps
    known = panel.months[(panel.months["how"] != "imputed") & panel.months["ramp"].isin(chosen)]
    table = pd.DataFrame({"brand": known["ramp"], "month_index": known["month"], "deliveries": known["deliveries"]})
    fitted = fit_reference_class(table, config)
    return RampReferenceClass(brands=fitted.brands, excluded=fitted.excluded, log_mean=fitted.log_mean,
                              log_cov=fitted.log_cov * spread_scale ** 2, midpoint_bounds=fitted.midpoint_bounds,
                              width_bounds=fitted.width_bounds)


def sample_ramp_shape(reference: RampReferenceClass, n: int, rng: np.random.Generator,
                      *, correlated: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Draw n (midpoint, width) pairs, in months, from the class's log-normal fit.

    correlated=False ignores the fitted correlation between log midpoint and log width (with few
    brands it is poorly estimated); marginals are the same either way. Draws are clipped to the
    fit's bounds, so no draw is shaped outside what any brand could have been fitted to.
    """
    if n < 1:
        raise ReferenceClassError(f"number of draws must be at least 1, got {n}")
    cov = reference.log_cov if correlated else np.diag(np.diag(reference.log_cov))
    logs = rng.multivariate_normal(reference.log_mean, cov, size=n, method="eigh")
    midpoint = np.clip(np.exp(logs[:, 0]), *reference.midpoint_bounds)
    width = np.clip(np.exp(logs[:, 1]), *reference.width_bounds)
    return midpoint, width


def ramp_shape_from_uniforms(reference: RampReferenceClass, first: np.ndarray, second: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:
    """(midpoint, width) in months from two uniform draws through the class's correlated log-normal
    (Cholesky of the fitted covariance): the quasi-random counterpart of `sample_ramp_shape`, so a
    run's ramp shapes are reproducible however its draws are split."""
    # clipped: a design may put a uniform exactly at 0 or 1 (Morris levels), whose normal quantile is infinite
    first_normal = norm.ppf(np.clip(np.asarray(first, float), 1e-12, 1 - 1e-12))
    second_normal = norm.ppf(np.clip(np.asarray(second, float), 1e-12, 1 - 1e-12))
    factor = np.linalg.cholesky(reference.log_cov + 1e-12 * np.eye(2))
    # element-wise (not a matrix product over draws), so each draw's value is independent of the batch
    log_midpoint = reference.log_mean[0] + factor[0, 0] * first_normal
    log_width = reference.log_mean[1] + factor[1, 0] * first_normal + factor[1, 1] * second_normal
    return (np.clip(np.exp(log_midpoint), *reference.midpoint_bounds),
            np.clip(np.exp(log_width), *reference.width_bounds))
