"""`policy.effective_prices` (the compiled pass of the demand's month) equals the array functions it fuses:
price + `PolicySchedule.purchase_tax` - `PolicySchedule.subsidy` - `ExtraSubsidy.per_vehicle`, element by
element and bit for bit, in every month of the schedule (range bands, price caps, tax relief and its cap),
and raises the schedule's error where a band needs a missing range."""

from datetime import date

import numpy as np
import pytest

from evlaunch.errors import DataError
from evlaunch.market.policy import ExtraSubsidy, effective_prices, load_policy

POWERTRAINS = np.array(["BEV", "PHEV", "ICE", "BEV", "PHEV", "BEV", "ICE", "BEV"])


def array_functions(schedule, price, ranges, month, vat, extra):
    return (price + schedule.purchase_tax(price, np.isin(POWERTRAINS, ("BEV", "PHEV")), month, vat)
            - schedule.subsidy(price, POWERTRAINS, ranges, month) - extra.per_vehicle(price, POWERTRAINS, month))


@pytest.mark.parametrize("as_of", [date(2021, 3, 31), date(2023, 10, 31)])
def test_the_compiled_pass_equals_the_array_functions_in_every_month(as_of):
    schedule = load_policy(as_of)
    rng = np.random.default_rng(7)
    draws = 40
    price = rng.uniform(40_000, 600_000, (draws, len(POWERTRAINS)))
    price[:, 0] = 300_000.0                      # exactly at the 2020-2022 price cap
    ranges = rng.uniform(150, 750, price.shape)
    ranges[:, 3] = 300.0                         # exactly at a band's lower bound
    vat = rng.uniform(0.09, 0.17, draws)
    extra = ExtraSubsidy(rng.uniform(0, 20_000, draws), ("BEV",), 2024 * 12, 2025 * 12 + 5, 250_000.0)
    compared = 0
    for month in range(2016 * 12, 2029 * 12):
        try:
            expected = array_functions(schedule, price, ranges, month, vat, extra)
        except DataError as error:               # an unknown sourced amount: the same error
            with pytest.raises(DataError) as raised:
                effective_prices(schedule, price, POWERTRAINS, ranges, month, vat, extra)
            assert str(raised.value) == str(error)
            continue
        np.testing.assert_array_equal(effective_prices(schedule, price, POWERTRAINS, ranges, month, vat, extra),
                                      expected, err_msg=str(month))
        compared += 1
    assert compared > 100


def test_a_band_with_a_missing_range_raises_the_schedules_error():
    schedule = load_policy(date(2021, 3, 31))
    price = np.full((2, len(POWERTRAINS)), 150_000.0)
    ranges = np.full(price.shape, 400.0)
    ranges[1, 5] = np.nan
    extra = ExtraSubsidy(np.zeros(2), ("BEV",), 0, np.inf, np.inf)
    with pytest.raises(DataError, match="range band"):
        effective_prices(schedule, price, POWERTRAINS, ranges, 2021 * 12 + 5, np.full(2, 0.13), extra)
