"""PAWN sensitivity indices from given data (Pianosi & Wagener 2015, 2018), vectorised.

For each input, its range is split into `S` conditioning slices at its empirical quantiles
0, 1/S, ..., 1; the index of a slice is the Kolmogorov-Smirnov statistic (largest absolute gap
between empirical CDFs) between the output of the draws inside the slice and the output of all
draws; an input's PAWN index is the median over its slices. A large index means fixing the input
changes the output's distribution.

The conventions are SALib's `SALib.analyze.pawn.analyze` (1.4-1.5), reproduced exactly so the
numbers are the same to the last bit: the slice edges are `np.nanquantile(x, np.arange(0, 1 + 1/S,
1/S))`, slice s holds the draws with `edge[s] <= x < edge[s+1]` (so the draw(s) at the input's
maximum fall in no slice, nor do draws whose input is NaN), an empty slice has no statistic (NaN)
and the summaries ignore NaN. What differs is the cost: SALib calls `scipy.stats.ks_2samp` once per
input and slice, which also computes an exact p-value nobody here reads. Here the output is sorted
once; the ECDF of every slice is a cumulative count along that order, read at the end of each group
of tied outputs (where `ks_2samp`'s `searchsorted(..., side="right")` reads it), for all inputs and
slices together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PawnResult", "ks_statistics", "pawn"]

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
    [subsets, n] for several partitions of the draws (then groups counts subsets per row and the
    result is [rows, groups]). Returns `scipy.stats.ks_2samp(y[members], y).statistic` of each
    subset to the last bit, NaN for an empty one.

    How: with the draws sorted by output, the ECDF gap F_subset - F_all, read at the end of each
    group of tied outputs, only rises at a group holding a member of the subset and falls in
    between, so its maximum is read at the groups holding members and its minimum just before them
    (or at the end, where it is 0). Up to `EXACT_MAX_DRAWS` draws the gap is kept as an exact integer
    numerator over n * members, as scipy's exact mode rounds it; above, as scipy's float difference.
    """
    y = np.asarray(y, dtype=float)
    rows = np.atleast_2d(subset)
    n = y.shape[0]
    if y.ndim != 1 or rows.shape[1] != n:
        raise ValueError(f"y must be 1-D with one entry per draw of subset; got {y.shape} and {np.shape(subset)}")
    if not np.all(np.isfinite(y)):
        raise ValueError("ks_statistics needs finite outputs; drop the NaN/inf draws first")
    result = np.full((rows.shape[0], groups), np.nan)
    if n == 0:
        return result if np.ndim(subset) == 2 else result[0]
    order = np.argsort(y, kind="stable")
    ordered = y[order]
    ties = np.append(0, np.cumsum(ordered[1:] != ordered[:-1]))          # tie group of each sorted draw
    first = np.flatnonzero(np.append(True, ordered[1:] != ordered[:-1]))  # sorted position starting each group
    last = np.append(first[1:], n) - 1                                    # ... and ending it
    labels = rows[:, order]
    inside = (labels >= 0) & (labels < groups)
    # members of every (row, subset), ordered by row, then subset, then output
    flat = np.flatnonzero(inside)
    keys = (flat // n) * groups + labels.reshape(-1)[flat]
    # a stable sort of small integers is a radix sort in numpy: narrow the keys when they fit
    narrow = np.int16 if rows.shape[0] * groups <= np.iinfo(np.int16).max else np.int64
    by_key = np.argsort(keys.astype(narrow), kind="stable")
    key, position = keys[by_key], flat[by_key] % n
    group = ties[position]
    sizes = np.bincount(key, minlength=rows.shape[0] * groups)
    if len(key) == 0:
        return result if np.ndim(subset) == 2 else result[0]
    starts = np.flatnonzero(np.append(True, key[1:] != key[:-1]))
    start_of = np.repeat(starts, np.diff(np.append(starts, len(key))))
    # members counted up to the end of their tie group (at or above) and before its start (below)
    run = np.flatnonzero(np.append(True, (key[1:] != key[:-1]) | (group[1:] != group[:-1])))
    run_end = np.append(run[1:], len(key))
    run_len = np.diff(np.append(run, len(key)))
    above = np.repeat(run_end, run_len) - start_of
    below = np.repeat(run, run_len) - start_of
    size = sizes[key]
    if n <= EXACT_MAX_DRAWS:
        high = above * n - (last[group] + 1) * size
        low = first[group] * size - below * n
        gap = np.maximum.reduceat(np.maximum(high, low), starts)
        present = key[starts]
        common = np.gcd(sizes[present], n)
        values = (gap // common) * 1.0 / ((sizes[present] // common) * n)
    else:
        high = above / size - (last[group] + 1) / n
        low = first[group] / n - below / size
        values = np.maximum.reduceat(np.maximum(high, low), starts)
        present = key[starts]
    result.flat[present] = np.maximum(values, 0.0)
    return result if np.ndim(subset) == 2 else result[0]


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
    labels = np.full((inputs, n), -1, dtype=np.int64)
    for i in range(inputs):
        column = x[:, i]
        # numpy's quantiles are monotone in the probability, so slice s is the last edge at or below x
        # (the running maximum only guards that assumption; it leaves ordered edges unchanged)
        index = np.searchsorted(np.maximum.accumulate(edges[:, i]), column, side="right") - 1
        inside = (index < slices) & ~np.isnan(column)
        labels[i, inside] = index[inside]
    return labels, edges


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
