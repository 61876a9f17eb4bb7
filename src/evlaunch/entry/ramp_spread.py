"""The ramp class's spread of shapes, widened to the errors its own brands make of each other.

The model draws each run's delivery ramp as the plant's capacity times the class's plateau-relative shape
(`entry.reference_class`, `supply.capacity`). The leave-one-brand-out check of exactly that mechanism
(`studies.ramp_backtest.shape_check`: a brand's first-12-month deliveries as its own plateau times the summed
ramp of a shape drawn from the OTHER brands) found the fitted spread too narrow: 4 of 8 brands inside their 80%
intervals. The stated rule, the one the backtest already applies to its volume forecasts: widen the spread,
never narrow it, until the draws' log spread of first-year deliveries reaches the root-mean-square log error
of the class's leave-one-out medians.

- Plateau-free: with the plateau fixed, log(first-year deliveries) = log(plateau) + log(sum of the ramp
  fraction over months 1..12), so the spread of the shape alone is what the rule compares.
- The widening scales the log covariance of (midpoint, width) by the square of a factor from `SCALES` (the
  smallest whose spread reaches the errors; the largest if none does): a short grid, not a fit, so that a
  factor never chases one brand. Draws are still clipped to the class's bounds.
- The uniforms are fixed (`calibration_uniforms`, seed `SEED`), so a run's class is the same however it is
  chunked, and the model and its backtest widen the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import date

import numpy as np

from evlaunch.entry.ramp_panel import load_ramp_panel
from evlaunch.entry.reference_class import (
    BrandRamp,
    RampFitConfig,
    RampReferenceClass,
    class_midpoint_bounds,
    ramp_fraction,
    ramp_shape_from_uniforms,
    reference_class_from_panel,
)

SCALES = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0)  # candidate widening factors of the shapes' log spread
TARGET_MONTHS = 12  # the first year, as the backtest scores it
DRAWS = 4000
SEED = 20231031
FIT = RampFitConfig()  # the fit settings the class is fitted with


def calibration_uniforms(draws: int = DRAWS, seed: int = SEED) -> np.ndarray:
    """[2, draws] fixed uniforms the widening rule draws shapes with."""
    return np.random.default_rng(seed).uniform(size=(2, draws))


def class_of(brands: list[BrandRamp], config: RampFitConfig = FIT, spread_scale: float = 1.0
             ) -> RampReferenceClass:
    """The class of already fitted brands (at least 2): mean and covariance (n - 1) of (log midpoint, log
    width), the covariance times spread_scale squared, midpoints bounded as `fit_reference_class` bounds them."""
    logs = np.log([[b.midpoint, b.width] for b in brands])
    return RampReferenceClass(brands=tuple(brands), log_mean=logs.mean(axis=0),
                              log_cov=np.atleast_2d(np.cov(logs, rowvar=False, ddof=1)) * spread_scale ** 2,
                              midpoint_bounds=class_midpoint_bounds(brands, config), width_bounds=config.width_bounds)


def first_year_fraction(reference: RampReferenceClass, uniforms: np.ndarray, months: int = TARGET_MONTHS
                        ) -> np.ndarray:
    """[draws] the plateau-relative ramp summed over months 1..months (plateau-months) for shapes drawn from
    `reference` as the model draws them (`ramp_shape_from_uniforms`)."""
    midpoint, width = ramp_shape_from_uniforms(reference, uniforms[0], uniforms[1])
    grid = np.broadcast_to(np.arange(1, months + 1, dtype=float), (midpoint.size, months))
    return ramp_fraction(grid, midpoint, width).sum(axis=1)


def leave_one_out_log_errors(brands: list[BrandRamp], actuals: dict[str, float], uniforms: np.ndarray,
                             config: RampFitConfig = FIT) -> np.ndarray:
    """log(actual / median) of each brand's first-year deliveries (vehicles) forecast as its plateau times the
    summed ramp of the OTHER brands' class (unwidened). Needs at least 3 brands."""
    errors = []
    for brand in brands:
        rest = class_of([b for b in brands if b.brand != brand.brand], config)
        median = brand.plateau * float(np.median(first_year_fraction(rest, uniforms)))
        errors.append(np.log(actuals[brand.brand] / median))
    return np.asarray(errors)


def spread_scale(brands: list[BrandRamp], actuals: dict[str, float], uniforms: np.ndarray | None = None,
                 config: RampFitConfig = FIT, scales: tuple[float, ...] = SCALES) -> float:
    """The widening factor of the class of `brands` (module docstring): the smallest in `scales` whose draws'
    sd of log first-year deliveries reaches the rms leave-one-out log error; 1 with fewer than 3 brands."""
    if len(brands) < 3:
        return 1.0
    uniforms = calibration_uniforms() if uniforms is None else uniforms
    target = float(np.sqrt(np.mean(np.square(leave_one_out_log_errors(brands, actuals, uniforms, config)))))
    for scale in scales:
        if np.std(np.log(first_year_fraction(class_of(brands, config, scale), uniforms))) >= target:
            return float(scale)
    return float(scales[-1])


def widened(reference: RampReferenceClass, scale: float) -> RampReferenceClass:
    """`reference` with its log covariance times scale squared (mean and bounds unchanged)."""
    return replace(reference, log_cov=reference.log_cov * scale ** 2)


def reference_class_as_of(as_of: date, paths: Mapping[str, str] | None = None,
                          config: RampFitConfig = FIT) -> RampReferenceClass:
    """The class a scenario dated `as_of` draws its delivery ramp from: the reconciled panel of the three ramp
    tables (`entry.ramp_panel.load_ramp_panel`) restricted to rows published by `as_of`, fitted on the ramps the
    leave-one-brand-out backtest scores (`eligible_ramps`), its spread widened by `spread_scale` on those
    ramps' first-year deliveries: the class and the mechanism its backtest validates (`shape_check`).
    `paths`: a scenario's own files for any of the panel's tables (table name -> CSV path)."""
    panel = load_ramp_panel(as_of, paths=paths)
    fitted = reference_class_from_panel(panel, config=config)
    actuals = {b.brand: float(panel.ramps.loc[b.brand, "cum12"]) for b in fitted.brands}
    return widened(fitted, spread_scale(list(fitted.brands), actuals, config=config))
