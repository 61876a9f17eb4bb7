"""The new-brand ramp reference class: curve fits, the bundled table, the shape sampler and ramp_fraction."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evlaunch.entry.ramp_panel import eligible_ramps, load_ramp_panel
from evlaunch.entry.reference_class import (
    RampFitConfig,
    ReferenceClassError,
    fit_brand,
    fit_reference_class,
    ramp_fraction,
    reference_class_from_panel,
    sample_ramp_shape,
)

TABLE = Path(__file__).resolve().parents[2] / "src" / "evlaunch" / "data" / "tables" / "new_brand_ramps.csv"


def _curve(plateau, midpoint, width, months):
    return plateau / (1 + np.exp(-(months - midpoint) / width))


def _synthetic(params, months=None, noise=0.0, seed=0):
    months = np.arange(1, 25) if months is None else months
    rng = np.random.default_rng(seed)
    rows = []
    for brand, (plateau, midpoint, width) in params.items():
        deliveries = _curve(plateau, midpoint, width, months) * (1 + noise * rng.standard_normal(months.size))
        rows += [{"brand": brand, "month_index": m, "deliveries": d} for m, d in zip(months, deliveries)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("plateau", "midpoint", "width"), [(10_000, 8.0, 2.0), (30_000, 12.0, 3.5), (5_000, 4.0, 1.0)])
def test_synthetic_parameters_are_recovered(plateau, midpoint, width):
    months = np.arange(1, 25)
    fit = fit_brand("X", months, _curve(plateau, midpoint, width, months))
    assert fit.plateau == pytest.approx(plateau, rel=1e-3)
    assert fit.midpoint == pytest.approx(midpoint, rel=1e-3)
    assert fit.width == pytest.approx(width, rel=1e-3)
    assert fit.at_bound == () and fit.rmse_share < 1e-3


def test_recovery_with_noise_and_missing_months():
    months = np.array([1, 2, 3, 5, 8, 9, 10, 13, 14, 17, 20, 24], dtype=float)
    rng = np.random.default_rng(1)
    truth = _curve(20_000, 9.0, 2.5, months)
    noisy = truth * (1 + 0.05 * rng.standard_normal(months.size))
    noisy[6] *= 0.3  # one recall-like dip: the soft-L1 loss keeps it from dragging the fit
    fit = fit_brand("X", months, noisy)
    assert fit.plateau == pytest.approx(20_000, rel=0.08)
    assert fit.midpoint == pytest.approx(9.0, abs=0.7)
    assert fit.width == pytest.approx(2.5, rel=0.25)
    assert fit.n_months == months.size


def test_class_spread_and_exclusions_on_synthetic_brands():
    params = {"A": (10_000, 6.0, 1.5), "B": (20_000, 10.0, 2.5), "C": (8_000, 14.0, 4.0)}
    table = pd.concat([_synthetic(params), _synthetic({"Short": (1_000, 3.0, 1.0)}, months=np.arange(1, 5))])
    table = pd.concat([table, pd.DataFrame({"brand": ["A"], "month_index": [np.nan], "deliveries": [99_999]})])
    ref = fit_reference_class(table)
    assert [b.brand for b in ref.brands] == ["A", "B", "C"]
    assert "Short" in ref.excluded and "4 monthly figures" in ref.excluded["Short"]
    logs = np.log([[6.0, 1.5], [10.0, 2.5], [14.0, 4.0]])
    np.testing.assert_allclose(ref.log_mean, logs.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(ref.log_cov, np.cov(logs, rowvar=False), atol=1e-3)
    assert ref.table().loc["B", "midpoint"] == pytest.approx(10.0, rel=1e-3)


def test_bundled_table_fits():
    ref = fit_reference_class(pd.read_csv(TABLE))
    fitted = {b.brand for b in ref.brands}
    assert {"NIO", "Li Auto", "Zeekr"} <= fitted
    assert all(ref.excluded[b].startswith(tuple("0123456789")) for b in ref.excluded)
    assert not fitted & set(ref.excluded)
    config = RampFitConfig()
    for b in ref.brands:
        assert b.n_months >= config.min_months
        assert config.midpoint_bounds[0] <= b.midpoint <= config.midpoint_bounds[1]
        assert config.width_bounds[0] <= b.width <= config.width_bounds[1]
        assert b.plateau > 0
    assert np.all(np.linalg.eigvalsh(ref.log_cov) >= 0)


def test_sampler_is_reproducible_bounded_and_matches_the_fit():
    params = {"A": (10_000, 6.0, 1.5), "B": (20_000, 10.0, 2.5), "C": (8_000, 14.0, 4.0), "D": (9_000, 8.0, 3.0)}
    ref = fit_reference_class(_synthetic(params))
    mid1, width1 = sample_ramp_shape(ref, 20_000, np.random.default_rng(7))
    mid2, width2 = sample_ramp_shape(ref, 20_000, np.random.default_rng(7))
    np.testing.assert_array_equal(mid1, mid2)
    np.testing.assert_array_equal(width1, width2)
    assert mid1.min() >= ref.midpoint_bounds[0] and mid1.max() <= ref.midpoint_bounds[1]
    assert width1.min() >= ref.width_bounds[0] and width1.max() <= ref.width_bounds[1]
    assert np.mean(np.log(mid1)) == pytest.approx(ref.log_mean[0], abs=0.02)
    assert np.corrcoef(np.log(mid1), np.log(width1))[0, 1] == pytest.approx(
        ref.log_cov[0, 1] / np.sqrt(ref.log_cov[0, 0] * ref.log_cov[1, 1]), abs=0.05)
    mid3, width3 = sample_ramp_shape(ref, 20_000, np.random.default_rng(7), correlated=False)
    assert abs(np.corrcoef(np.log(mid3), np.log(width3))[0, 1]) < 0.05


def test_refusals():
    with pytest.raises(ReferenceClassError, match="lacks columns"):
        fit_reference_class(pd.DataFrame({"brand": ["A"], "deliveries": [1]}))
    with pytest.raises(ReferenceClassError, match="at least 2"):
        fit_reference_class(_synthetic({"A": (10_000, 6.0, 1.5)}))
    with pytest.raises(ReferenceClassError, match="width"):
        ramp_fraction(np.array([1.0]), np.array([1.0]), np.array([0.0]))
    with pytest.raises(ReferenceClassError, match="at least 1"):
        sample_ramp_shape(fit_reference_class(_synthetic({"A": (1e4, 6, 1.5), "B": (1e4, 9, 2)})), 0,
                          np.random.default_rng(0))


def test_ramp_fraction_broadcasts_over_draws_and_handles_never():
    months = np.array([[-1.0, 0.0, 1.0, 6.0, 12.0, np.inf], [np.nan, -np.inf, 1.0, 6.0, 12.0, 24.0]])
    frac = ramp_fraction(months, np.array([6.0, 12.0]), np.array([2.0, 3.0]))
    assert frac.shape == (2, 6)
    assert frac[0, :2].tolist() == [0.0, 0.0] and frac[1, :2].tolist() == [0.0, 0.0]
    assert frac[0, 3] == pytest.approx(0.5) and frac[1, 4] == pytest.approx(0.5)
    assert frac[0, 5] == 1.0
    assert ramp_fraction(6.0, 6.0, 2.0) == pytest.approx(0.5)


@settings(max_examples=100, deadline=None)
@given(
    mids=arrays(float, 5, elements=st.floats(0.5, 36.0)),
    widths=arrays(float, 5, elements=st.floats(0.3, 24.0)),
    months=arrays(float, 40, elements=st.floats(-5.0, 60.0)),
)
def test_ramp_fraction_is_monotone_and_in_unit_interval(mids, widths, months):
    ordered = np.sort(months)
    frac = ramp_fraction(np.broadcast_to(ordered, (5, ordered.size)), mids, widths)
    assert np.all((frac >= 0.0) & (frac <= 1.0))
    assert np.all(np.diff(frac, axis=1) >= 0.0)


def test_class_from_the_reconciled_panel_fits_known_months_of_the_eligible_ramps():
    panel = load_ramp_panel()
    fitted = reference_class_from_panel(panel)
    assert [b.brand for b in fitted.brands] == eligible_ramps(panel)[0]
    known = panel.months[panel.months["how"] != "imputed"].groupby("ramp").size()
    assert all(b.n_months == known[b.brand] for b in fitted.brands)   # imputed months are never fitted
    wider = reference_class_from_panel(panel, spread_scale=1.5)
    np.testing.assert_allclose(wider.log_cov, fitted.log_cov * 2.25)
    np.testing.assert_array_equal(wider.log_mean, fitted.log_mean)
    with pytest.raises(ReferenceClassError, match="spread_scale"):
        reference_class_from_panel(panel, spread_scale=0.0)


def test_a_brand_seen_only_before_its_turn_gets_no_midpoint_beyond_its_window():
    # 12 months of a logistic whose midpoint is month 20: the data never show the curve turning, so plateau
    # and midpoint are not identified; the fit stops at the window's end and says so
    months = np.arange(1, 13, dtype=float)
    deliveries = _curve(10_000, 20.0, 3.0, months)
    fit = fit_brand("early", months, deliveries)
    assert fit.midpoint <= 12.0 + 1e-9 and "midpoint" in fit.at_bound
    assert fit.plateau < 10_000 / 2   # about twice the last level, not the unidentified true plateau
    fitted_last = fit.plateau / (1 + np.exp(-(12.0 - fit.midpoint) / fit.width))
    assert fitted_last == pytest.approx(deliveries[-1], rel=0.05)   # it still passes through the data
    unbounded = fit_brand("early", months, deliveries, RampFitConfig(midpoint_within_window=False))
    # without the bound the fit extrapolates past the data until the plateau cap (3x the peak) stops it
    assert unbounded.midpoint > 13.0 and unbounded.at_bound == ("plateau",)


def test_a_brand_whose_data_turn_inside_a_short_window_recovers_its_curve():
    months = np.arange(1, 13, dtype=float)
    fit = fit_brand("turned", months, _curve(10_000, 7.0, 1.5, months))
    assert (fit.plateau, fit.midpoint, fit.width) == pytest.approx((10_000, 7.0, 1.5), rel=1e-3)
    assert fit.at_bound == ()


def test_a_late_midpoint_is_recovered_when_the_data_cover_it():
    months = np.arange(1, 37, dtype=float)
    fit = fit_brand("slow", months, _curve(12_000, 20.0, 4.0, months))
    assert (fit.plateau, fit.midpoint, fit.width) == pytest.approx((12_000, 20.0, 4.0), rel=1e-3)
    assert fit.at_bound == ()


def test_no_bundled_brand_is_fitted_a_midpoint_beyond_its_data():
    ref = fit_reference_class(pd.read_csv(TABLE))
    table = pd.read_csv(TABLE)
    last = pd.to_numeric(table["month_index"], errors="coerce").where(table["deliveries"].notna()).groupby(
        table["brand"]).max()
    for brand in ref.brands:
        assert brand.midpoint <= last[brand.brand] + 1e-9, brand
    slow = {b.brand: b for b in ref.brands}
    assert "midpoint" in slow["NIO"].at_bound and "midpoint" in slow["Li Auto"].at_bound


def test_drawn_shapes_are_never_half_way_later_than_the_longest_window():
    # two brands seen 12 and 18 months, one still accelerating: no drawn midpoint passes month 18
    table = pd.concat([_synthetic({"fast": (10_000, 4.0, 1.0)}, months=np.arange(1, 13)),
                       _synthetic({"slow": (10_000, 30.0, 6.0)}, months=np.arange(1, 19))])
    ref = fit_reference_class(table)
    assert ref.midpoint_bounds == (RampFitConfig.midpoint_bounds[0], 18.0)
    midpoint, _ = sample_ramp_shape(ref, 5_000, np.random.default_rng(3))
    assert midpoint.max() <= 18.0 and np.mean(midpoint == 18.0) > 0.01   # the bound binds, it is not vacuous
    free = fit_reference_class(table, RampFitConfig(midpoint_within_window=False))
    assert free.midpoint_bounds == RampFitConfig.midpoint_bounds
