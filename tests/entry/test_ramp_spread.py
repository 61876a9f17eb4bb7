"""The ramp class's spread, widened to its brands' leave-one-out errors (entry.ramp_spread)."""

from datetime import date

import numpy as np

from evlaunch.entry.ramp_panel import load_ramp_panel
from evlaunch.entry.ramp_spread import (
    SCALES,
    calibration_uniforms,
    class_of,
    first_year_fraction,
    leave_one_out_log_errors,
    reference_class_as_of,
    spread_scale,
)
from evlaunch.entry.reference_class import BrandRamp, reference_class_from_panel

AS_OF = date(2023, 10, 31)


def _brand(name, plateau, midpoint, width):
    return BrandRamp(brand=name, plateau=plateau, midpoint=midpoint, width=width, n_months=24, rmse_share=0.0,
                     last_month=24.0)


def _first_year(plateau, midpoint, width):
    months = np.arange(1, 13)
    return float(np.sum(plateau / (1 + np.exp(-(months - midpoint) / width))))


def test_first_year_fraction_of_a_class_without_spread_is_the_curves_sum():
    brands = [_brand(name, 1000.0, 6.0, 2.0) for name in "ABC"]
    fraction = first_year_fraction(class_of(brands), calibration_uniforms(500))
    np.testing.assert_allclose(fraction, _first_year(1.0, 6.0, 2.0), rtol=1e-4)   # Cholesky jitter 1e-12


def test_brands_that_predict_each_other_exactly_are_not_widened():
    brands = [_brand("A", 5e3, 4.0, 1.5), _brand("B", 2e4, 9.0, 3.0), _brand("C", 1e4, 6.0, 2.0),
              _brand("D", 3e4, 12.0, 5.0)]
    uniforms = calibration_uniforms()
    # each brand's first year exactly at the median its other brands forecast: no error, so no widening
    actuals = {b.brand: b.plateau * float(np.median(first_year_fraction(
        class_of([o for o in brands if o is not b]), uniforms))) for b in brands}
    np.testing.assert_allclose(leave_one_out_log_errors(brands, actuals, uniforms), 0.0, atol=1e-12)
    assert spread_scale(brands, actuals) == 1.0
    missed = {name: value * (3.0 if name in "AC" else 1 / 3) for name, value in actuals.items()}
    assert spread_scale(brands, missed) > 1.0       # a factor-3 miss each way is wider than this class
    assert spread_scale(brands[:2], missed) == 1.0  # too few brands to measure an error: never widened


def test_the_factor_is_the_smallest_whose_spread_reaches_the_errors():
    panel = load_ramp_panel(AS_OF)
    fitted = reference_class_from_panel(panel)
    brands = list(fitted.brands)
    actuals = {b.brand: float(panel.ramps.loc[b.brand, "cum12"]) for b in brands}
    uniforms = calibration_uniforms()
    target = np.sqrt(np.mean(np.square(leave_one_out_log_errors(brands, actuals, uniforms))))
    scale = spread_scale(brands, actuals)
    spread = {s: np.std(np.log(first_year_fraction(class_of(brands, spread_scale=s), uniforms))) for s in SCALES}
    assert scale > 1.0 and spread[scale] >= target
    assert all(spread[s] < target for s in SCALES if s < scale)
    far = {name: value * (4.0 if i % 2 else 0.25) for i, (name, value) in enumerate(actuals.items())}
    assert spread_scale(brands, far) >= scale      # larger errors of the brands, no narrower class


def test_the_model_class_is_the_panel_class_widened_by_the_rule():
    panel = load_ramp_panel(AS_OF)
    fitted = reference_class_from_panel(panel)
    actuals = {b.brand: float(panel.ramps.loc[b.brand, "cum12"]) for b in fitted.brands}
    model = reference_class_as_of(AS_OF)
    scale = spread_scale(list(fitted.brands), actuals)
    np.testing.assert_array_equal(model.log_mean, fitted.log_mean)
    np.testing.assert_allclose(model.log_cov, fitted.log_cov * scale ** 2)
    assert model.brands == fitted.brands and model.midpoint_bounds == fitted.midpoint_bounds
