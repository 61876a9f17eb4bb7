"""The one set of formatters shared by the report, the dashboard and the CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evlaunch.report.formatting import MISSING, bn_cny, is_number, month, percent, units


def test_bn_cny_writes_billions_with_separators_sign_and_suffix():
    assert bn_cny(15_412_000_000) == "15.4"
    assert bn_cny(-9_460_000_000) == "-9.5"
    assert bn_cny(1_234_567_000_000) == "1,234.6"
    assert bn_cny(71_500_000_000, 2) == "71.50"
    assert bn_cny(2_000_000_000, sign=True) == "+2.0" and bn_cny(-2_000_000_000, sign=True) == "-2.0"
    assert bn_cny(3e9, suffix=" bn") == "3.0 bn"
    assert bn_cny(np.float32(5e9)) == "5.0" and bn_cny(np.int64(5_000_000_000)) == "5.0"


@pytest.mark.parametrize("value", [None, math.nan, math.inf, -math.inf, True, "12", np.float64("nan")])
def test_missing_or_non_finite_values_are_a_dash(value):
    assert not is_number(value)
    assert bn_cny(value) == units(value) == percent(value) == MISSING


def test_units_percent_and_month():
    assert units(123456.7) == "123,457" and units(0) == "0"
    assert percent(0.456) == "46%" and percent(0.456, 1) == "45.6%" and percent(1) == "100%"
    assert month("2024-07") == "2024-07" and month(None) == "never"
