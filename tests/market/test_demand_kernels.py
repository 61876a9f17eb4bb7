"""The compiled month kernels of `market.demand` against the numpy functions they fuse (`market.regions`,
`market.logit`): the same shares and log-sums to rounding, also for unavailable products and utilities far
beyond exp's range."""

from __future__ import annotations

import numpy as np
import pytest

from evlaunch.market.demand import _draw_log_sums, _log_inclusive, _type_shares, anchor_offset
from evlaunch.market.logit import logit_shares
from evlaunch.market.rc_logit import exp_nonpositive


def month(seed: int = 7):
    rng = np.random.default_rng(seed)
    draws, types, products = 6, 5, 9
    mean = rng.normal(-3.0, 2.0, (draws, products))
    mean[0, 2] = 800.0                       # overflows exp without the shift
    mean[1] = -900.0                         # every inside share underflows
    coefficient = -rng.uniform(1e-5, 1e-4, (draws, types))
    effective = rng.uniform(5e4, 3e5, (draws, products))
    extras = rng.normal(0.0, 1.0, (draws, types, products))
    available = rng.random((draws, products)) < 0.8
    available[:, 0] = True
    weights = rng.dirichlet(np.ones(types), draws)
    utility = mean[:, None, :] + coefficient[:, :, None] * effective[:, None, :] + extras
    return (mean, coefficient, effective, extras, available, weights), utility


def test_type_shares_equal_the_logit_shares_and_their_weighted_sum():
    args, utility = month()
    typed, national = _type_shares(*args)
    available, weights = args[4], args[5]
    expected = logit_shares(utility, available[:, None, :])
    np.testing.assert_allclose(typed, expected, rtol=1e-13, atol=1e-300)
    assert np.all(typed[~np.broadcast_to(available[:, None, :], typed.shape)] == 0.0)
    np.testing.assert_allclose(national, (weights[:, :, None] * expected).sum(axis=1), rtol=1e-13, atol=1e-300)
    assert typed[0, :, 2].min() > 0.99      # the overflowing product takes (nearly) the whole market
    assert np.all(typed[1] < 1e-300)        # underflow (flushed at exp(-708)): the outside option takes it all


def test_log_sums_equal_logaddexp_and_need_no_utility_array():
    args, utility = month()
    available = args[4]
    expected = np.logaddexp.reduce(np.where(available[:, None, :], utility, -np.inf), axis=2)
    np.testing.assert_allclose(_log_inclusive(utility, available), expected, rtol=1e-14)
    mean_utility, coefficient, effective, extras = args[:4]
    scratch, fused = np.empty((extras.shape[2] + 2, extras.shape[1])), np.empty(expected.shape)
    for n in range(expected.shape[0]):   # the anchor's kernel, one draw at a time, never storing u
        _draw_log_sums(mean_utility[n], coefficient[n], effective[n], extras[n], available[n], scratch, fused[n])
    np.testing.assert_allclose(fused, expected, rtol=1e-14)
    none = np.zeros_like(available)
    assert np.all(_log_inclusive(utility, none) == -np.inf)
    # the anchor from them hits its target: sum_t w_t logistic(log D_t + c) = target
    target = np.full(utility.shape[0], 0.3)
    offset = anchor_offset(utility[2:], available[2:], args[5][2:], target[2:])
    inside = (args[5][2:] / (1.0 + np.exp(-(expected[2:] + offset[:, None])))).sum(axis=1)
    np.testing.assert_allclose(inside, 0.3, rtol=1e-11)


def test_exp_nonpositive_is_accurate_and_flushes_below_its_range():
    # 2.2e-16 + 3.4e-17 |v| with FMA (docstring); without it (NUMBA_CPU_NAME=generic) up to ~1.2e-16 |v|
    for low, rtol in ((1.0, 4.5e-16), (40.0, 8.3e-15), (700.0, 1.4e-13)):  # 2.5e-16 + 2e-16 |v|
        x = -np.linspace(0.0, low, 20_001)
        np.testing.assert_allclose([exp_nonpositive(v) for v in x], np.exp(x), rtol=rtol)
    assert exp_nonpositive(-1e4) == exp_nonpositive(-708.0) == pytest.approx(np.exp(-708.0), rel=3e-14)
