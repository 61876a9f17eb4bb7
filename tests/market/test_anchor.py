"""The market anchor: the outside option's offset that keeps the no-entrant inside share on target."""

import warnings

import numpy as np
import pytest

from evlaunch.errors import DataError
from evlaunch.market.demand import anchor_offset, offset_from_inclusive


def inside_share(utility, available, weights, offset):
    exp = np.where(available[:, None, :], np.exp(utility + offset[:, None, None]), 0.0)
    typed = exp.sum(axis=2) / (1.0 + exp.sum(axis=2))
    return (weights * typed).sum(axis=1), typed


def test_one_type_is_the_closed_form():
    rng = np.random.default_rng(1)
    utility = rng.normal(-3.0, 1.0, (5, 1, 7))
    available = np.ones((5, 7), dtype=bool)
    target = np.array([0.2, 0.4, 0.5, 0.6, 0.8])
    offset = anchor_offset(utility, available, np.ones((5, 1)), target)
    closed = np.log(target / (1.0 - target)) - np.log(np.exp(utility[:, 0, :]).sum(axis=1))
    np.testing.assert_allclose(offset, closed, rtol=0, atol=1e-12)


def test_many_types_hit_the_target_and_skip_unavailable_products():
    rng = np.random.default_rng(2)
    utility = rng.normal(-2.0, 2.0, (8, 16, 9)) + rng.normal(0.0, 3.0, (8, 16, 1))   # types far apart
    available = rng.uniform(size=(8, 9)) < 0.7
    available[:, 0] = True
    weights = rng.dirichlet(np.ones(16), size=8)
    target = rng.uniform(0.05, 0.95, 8)
    offset = anchor_offset(utility, available, weights, target)
    inside, _ = inside_share(utility, available, weights, offset)
    np.testing.assert_allclose(inside, target, rtol=0, atol=1e-12)
    # an unavailable product's utility does not matter
    changed = np.where(available[:, None, :], utility, 50.0)
    np.testing.assert_array_equal(anchor_offset(changed, available, weights, target), offset)


def test_entry_expands_the_anchored_market_by_the_entrants_buyers_from_the_outside_option():
    """Keeping the no-entrant offset, a new product adds, per type, its share times the no-entrant outside
    share (1/(1+D) - 1/(1+D+E) = s_e * O'): positive and below the entrant's share."""
    rng = np.random.default_rng(3)
    utility = rng.normal(-3.0, 1.0, (6, 4, 5))
    weights = rng.dirichlet(np.ones(4), size=6)
    available = np.ones((6, 5), dtype=bool)
    available[:, -1] = False
    target = np.full(6, 0.45)
    offset = anchor_offset(utility, available, weights, target)
    without, typed_without = inside_share(utility, available, weights, offset)
    with_entrant, _ = inside_share(utility, np.ones((6, 5), dtype=bool), weights, offset)
    entrant = np.exp(utility[:, :, -1] + offset[:, None]) / (1.0 + np.exp(utility + offset[:, None, None]).sum(axis=2))
    expansion = with_entrant - without
    np.testing.assert_allclose(expansion, (weights * entrant * (1.0 - typed_without)).sum(axis=1), rtol=1e-10)
    assert np.all(expansion > 0) and np.all(expansion < (weights * entrant).sum(axis=1))


def test_an_unreachable_target_is_a_clear_error():
    utility = np.zeros((1, 2, 3))
    with pytest.raises(DataError, match="outside_share"):
        anchor_offset(utility, np.ones((1, 3), dtype=bool), np.full((1, 2), 0.5), np.array([1.0]))


def test_types_beyond_exps_range_raise_no_warning_and_still_hit_the_target():
    """A type whose log-sum is far below the others' (its logistic overflows exp on the way) gets share 0
    without a floating-point warning; each draw's offset is its own (the same alone as with the others)."""
    log_d = np.array([[-0.88, -899.85, -3.29], [-1.30, -899.79, -4.88], [0.57, -199.68, -1.25]])
    weights = np.array([[0.605, 0.008, 0.387], [0.313, 0.002, 0.685], [0.856, 0.044, 0.100]])
    target = np.array([0.863, 0.017, 0.468])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        offset = offset_from_inclusive(log_d, weights, target)
        alone = offset_from_inclusive(log_d[1:2], weights[1:2], target[1:2])
    inside = (weights / (1.0 + np.exp(-np.maximum(log_d + offset[:, None], -700.0)))).sum(axis=1)
    np.testing.assert_allclose(inside, target, rtol=1e-11)
    assert alone[0] == offset[1]
