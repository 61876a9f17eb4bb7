"""PAWN sensitivity indices from given data (Pianosi & Wagener 2015, 2018), vectorised.

For each input, its range is split into `S` conditioning slices at its empirical quantiles
0, 1/S, ..., 1; the index of a slice is the Kolmogorov-Smirnov statistic (largest absolute gap
between empirical CDFs) between the output of the draws inside the slice and the output of all
draws; an input's PAWN index is the median over its slices. A large index means fixing the input
changes the output's distribution. Indices and KS statistics are unitless, in [0, 1].

The conventions are SALib's `SALib.analyze.pawn.analyze` (1.5-1.6), reproduced exactly so the
numbers are the same to the last bit: the slice edges are `np.nanquantile(x, np.arange(0, 1 + 1/S,
1/S))`, slice s holds the draws with `edge[s] <= x < edge[s+1]` (so the draw(s) at the input's
maximum fall in no slice, nor do draws whose input is NaN), an empty slice has no statistic (NaN)
and the summaries ignore NaN. What differs is the cost: SALib calls `scipy.stats.ks_2samp` once per
input and slice, which also computes an exact p-value nobody here reads. Here the output is sorted
once and the KS statistics of every input and slice come from one compiled pass over the slice labels
in output order (`ks_statistics`), with no p-values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

__all__ = ["EXACT_MAX_DRAWS", "PawnResult", "ks_statistics", "pawn", "slice_labels"]

# SALib's ks_2samp call reports the exact rational statistic up to this many draws, the float one above
EXACT_MAX_DRAWS = 10_000


@dataclass(frozen=True)
class PawnResult:
    """PAWN indices of each input (arrays over inputs, in the columns' order).

    `statistics[s, i]` is the KS statistic of slice s of input i (NaN: an empty slice); `median` over
    the slices is the PAWN index; the other summaries SALib reports are computed when asked for,
    as SALib computes them (NaN-ignoring, per input; NaN for an input with no non-empty slice)."""

    statistics: np.ndarray
    median: np.ndarray

    def _summary(self, reduce) -> np.ndarray:
        columns = self.statistics.T
        return np.array([reduce(c) if np.any(~np.isnan(c)) else np.nan for c in columns], dtype=float)

    @property
    def minimum(self) -> np.ndarray:
        return self._summary(np.nanmin)

    @property
    def mean(self) -> np.ndarray:
        return self._summary(np.nanmean)

    @property
    def maximum(self) -> np.ndarray:
        return self._summary(np.nanmax)

    @property
    def stdev(self) -> np.ndarray:
        return self._summary(np.nanstd)

    @property
    def cv(self) -> np.ndarray:
        """Coefficient of variation over the slices (stdev / mean)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.stdev / self.mean


def ks_statistics(y: np.ndarray, subset: np.ndarray, groups: int) -> np.ndarray:
    """Two-sample KS statistics between subsets of the draws and all of them, for many subsets at once.

    `y` [n] holds finite outputs; subset k holds the draws `np.flatnonzero(subset == k)` for k in
    `range(groups)` (other values of `subset`, e.g. -1, belong to no subset); `subset` may also be
    [rows, n], one partition of the draws per row (then the result is [rows, groups]). Returns
    `scipy.stats.ks_2samp(y[members], y).statistic` of each subset to the last bit, NaN for an empty one.

    How: with the draws sorted by output, ks_2samp reads the ECDF gap F_subset - F_all at the end of each
    group of tied outputs (its `searchsorted(side="right")`); one compiled pass over the sorted draws per
    row counts each subset's members so far and keeps the largest gap of either sign where it can peak
    (`_ks_gaps`). Up to `EXACT_MAX_DRAWS` draws the gap is an exact integer over n * members, reduced and
    divided as ks_2samp rounds it in its exact mode; above, it is ks_2samp's float difference.
    """
    y = np.asarray(y, dtype=float)
    rows = np.atleast_2d(np.asarray(subset))
    n = y.shape[0]
    if y.ndim != 1 or rows.shape[1] != n:
        raise ValueError(f"y must be 1-D with one entry per draw of subset; got {y.shape} and {np.shape(subset)}")
    if not np.all(np.isfinite(y)):
        raise ValueError("ks_statistics needs finite outputs; drop the NaN/inf draws first")
    order = np.argsort(y, kind="stable")
    ordered = y[order]
    ends = np.append(ordered[1:] != ordered[:-1], True) if n else np.zeros(0, bool)  # last draw of a tie group
    labels = np.ascontiguousarray(rows, dtype=np.int64)
    exact = n <= EXACT_MAX_DRAWS
    gaps, sizes = _ks_gaps(labels, order, ends, int(groups), exact)
    result = np.full(sizes.shape, np.nan)
    present = sizes > 0
    if exact:
        # the gap numerator over n * size, reduced by gcd(size, n) before the division, as ks_2samp does
        common = np.gcd(sizes[present], n)
        numerators = gaps[present].astype(np.int64)
        result[present] = (numerators // common) * 1.0 / ((sizes[present] // common) * n)
    else:
        result[present] = gaps[present]
    result[present] = np.maximum(result[present], 0.0)
    return result if np.ndim(subset) == 2 else result[0]


@nb.njit(cache=True)
def _ks_gaps(labels: np.ndarray, order: np.ndarray, ends: np.ndarray, groups: int, exact: bool
             ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per row and subset of `labels` ([rows, n]): the largest |ECDF gap| over the ends of tie groups
    (`ends`, of the draws in output order `order`), as `_gap` gives it, and the subset's size.

    The gap F_subset - F_all rises only at a group holding a member and falls in between, so its maximum
    is read at the end of the members' groups and its minimum at the end of the group before them (or at
    the very end, where it is 0): one step per draw, whatever the number of subsets."""
    count, n = labels.shape
    best = np.zeros((count, groups))
    sizes = _subset_sizes(labels, groups)
    counted = np.zeros(groups, np.int64)
    seen = np.full(groups, -1, np.int64)   # the group (its first draw) in which a subset last had a member
    touched = np.empty(groups, np.int64)
    for r in range(count):
        counted[:] = 0
        seen[:] = -1
        first = 0
        while first < n:
            last = first
            while not ends[last]:
                last += 1
            found = 0
            for j in range(first, last + 1):  # before the group: the low side, its members not yet counted
                label = labels[r, order[j]]
                if 0 <= label < groups and seen[label] != first:
                    seen[label] = first
                    touched[found] = label
                    found += 1
                    best[r, label] = max(best[r, label], _gap(counted[label], first, sizes[r, label], n, exact, False))
            for j in range(first, last + 1):
                label = labels[r, order[j]]
                if 0 <= label < groups:
                    counted[label] += 1
            for t in range(found):  # at the group's end: the high side
                label = touched[t]
                best[r, label] = max(best[r, label], _gap(counted[label], last + 1, sizes[r, label], n, exact, True))
            first = last + 1
    return best, sizes


@nb.njit(cache=True)
def _gap(members: int, drawn: int, size: int, n: int, exact: bool, high: bool) -> float:  # pragma: no cover
    """The ECDF gap members/size - drawn/n (its negation unless `high`): when `exact`, its numerator over
    n * size (an integer, exact as a float below 2**53), else ks_2samp's float difference."""
    if exact:
        numerator = members * n - drawn * size
        return float(numerator if high else -numerator)
    return members / size - drawn / n if high else drawn / n - members / size


@nb.njit(cache=True)
def _subset_sizes(labels: np.ndarray, groups: int) -> np.ndarray:  # pragma: no cover - compiled
    """[rows, groups] the number of draws of each subset (labels outside 0..groups-1 belong to none)."""
    count, n = labels.shape
    sizes = np.zeros((count, groups), np.int64)
    for r in range(count):
        for j in range(n):
            label = labels[r, j]
            if 0 <= label < groups:
                sizes[r, label] += 1
    return sizes


def slice_labels(x: np.ndarray, slices: int) -> tuple[np.ndarray, np.ndarray]:
    """The conditioning slice of each draw for each input ([inputs, n]; -1: in none) and the slice
    edges ([slices + 1, inputs]), by SALib's rule: slice s holds `edge[s] <= x < edge[s + 1]`."""
    n, inputs = x.shape
    step = 1 / slices
    # SALib's grid, float quirks included (its slice s spans grid points s and s + 1; arange can give an
    # extra point past 1, which SALib never reads but hands to nanquantile, which refuses it)
    probabilities = np.minimum(np.arange(0, 1 + step, step)[:slices + 1], 1.0)
    edges = np.full((len(probabilities), inputs), np.nan)
    missing = np.isnan(x).any(axis=0)
    if n and not missing.all():
        # the same numbers as SALib's per-column nanquantile (quantiles do not depend on the order of the
        # draws), faster on sorted rows
        complete = np.sort(x[:, ~missing].T, axis=1)
        edges[:, ~missing] = np.quantile(complete, probabilities, axis=1)
    for i in np.flatnonzero(missing):
        if not np.isnan(x[:, i]).all():
            edges[:, i] = np.nanquantile(x[:, i], probabilities)
    # numpy's quantiles are monotone in the probability, so slice s is the last edge at or below x: count
    # the edges at or below x (the running maximum only guards that; it leaves ordered edges unchanged).
    # NaN (in x or edges) is at or above nothing: label -1; at or above edge[slices] (the maximum): none.
    ordered = np.ascontiguousarray(np.maximum.accumulate(edges, axis=0).T)
    return _count_edges_below(np.ascontiguousarray(x.T), ordered, slices), edges


@nb.njit(cache=True)
def _count_edges_below(values: np.ndarray, edges: np.ndarray, slices: int) -> np.ndarray:  # pragma: no cover
    """[inputs, n] labels: the number of `edges[i]` (ordered) at or below each value, less one; -1 for a
    value below every edge, NaN, or at or above the last edge (compiled: one pass over the draws)."""
    inputs, n = values.shape
    labels = np.empty((inputs, n), np.int64)
    for i in range(inputs):
        for j in range(n):
            value = values[i, j]
            label = -1
            for edge in edges[i]:
                if value >= edge:
                    label += 1
            labels[i, j] = -1 if label >= slices else label
    return labels


def pawn(x: np.ndarray, y: np.ndarray, slices: int = 10) -> PawnResult:
    """PAWN indices of the columns of `x` ([n, inputs]; NaN allowed: such draws join no slice) for
    the output `y` ([n], finite), with `slices` conditioning intervals per input."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be [draws, inputs] with one row per output; got {x.shape} and {y.shape}")
    if slices < 1:
        raise ValueError(f"slices must be at least 1, got {slices}")
    labels, _ = slice_labels(x, slices)
    statistics = ks_statistics(y, labels, slices).T
    empty = np.isnan(statistics)
    median = np.full(x.shape[1], np.nan)
    whole = ~empty.any(axis=0)
    median[whole] = np.median(statistics[:, whole], axis=0)  # the same numbers as nanmedian without NaN
    for i in np.flatnonzero(~whole & ~empty.all(axis=0)):
        median[i] = np.nanmedian(statistics[:, i])
    return PawnResult(statistics, median)
