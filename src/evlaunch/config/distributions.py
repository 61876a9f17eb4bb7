"""Distributions a scenario may give for any scalar, and their inverse CDFs.

A scenario scalar is either a fixed number or a table such as
`{dist = "triangular", low = 1, mode = 3, high = 9}`. Sampling maps quasi-random uniforms through
each distribution's inverse CDF (`ppf`), so the same uniforms give the same draws everywhere.

Parameters are strict like fixed scalars (numbers only: no booleans, no strings) and finite; a
distribution whose inverse CDF gives a non-finite value anywhere the sampler may reach (e.g. a
normal truncated to a window 1e308 standard deviations from its mean) is refused
(`support_problem`).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

# Probabilities at which a distribution must give finite values: the sampler's extremes (uniforms are
# clipped to [1e-12, 1 - 1e-12], runs.sampling), the quantiles shown to users, and the median.
PROBES = np.array([1e-12, 1e-6, 0.001, 0.1, 0.5, 0.9, 0.999, 1 - 1e-6, 1 - 1e-12])


def is_uncertain(quantity: object) -> bool:
    """Whether a scenario quantity is a distribution (sampled per draw) rather than a fixed number."""
    return isinstance(quantity, _Distribution)


class _Distribution(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    def ppf(self, uniform: np.ndarray) -> np.ndarray:
        """Values at the given probabilities (inverse CDF), one per uniform in (0, 1)."""
        raise NotImplementedError

    def bounds(self) -> tuple[float, float]:
        """The 0.1% and 99.9% quantiles: the range shown to users and used for sensitivity designs."""
        low, high = self.ppf(np.array([0.001, 0.999]))
        return float(low), float(high)

    @property
    def centre(self) -> float:
        """The median: the value used when a run asks for a single deterministic case."""
        return float(self.ppf(np.array([0.5]))[0])

    def support_problem(self) -> str | None:
        """Why the distribution cannot be sampled (its inverse CDF gives a non-finite value at some
        probability the sampler may reach), or None when every probe is finite."""
        with np.errstate(all="ignore"):
            values = np.asarray(self.ppf(PROBES), dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            where = ", ".join(f"{p:g}" for p in PROBES[bad][:3])
            return f"its inverse CDF gives {values[bad][0]} at probability {where}"
        return None


def _finite(*values: float) -> bool:
    return all(math.isfinite(value) for value in values)


class Normal(_Distribution):
    """Normal(mean, sd), optionally truncated to [low, high]."""

    dist: Literal["normal"]
    mean: float
    sd: float = Field(gt=0)
    low: float = -math.inf
    high: float = math.inf

    @model_validator(mode="after")
    def _check(self) -> Normal:
        if not _finite(self.mean, self.sd):
            raise ValueError("mean and sd must be finite numbers")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def ppf(self, uniform: np.ndarray) -> np.ndarray:
        a, b = (self.low - self.mean) / self.sd, (self.high - self.mean) / self.sd
        return stats.truncnorm.ppf(uniform, a, b, loc=self.mean, scale=self.sd)


class LogNormal(_Distribution):
    """Log-normal with the given median and log-scale sigma (so the median is the typical value)."""

    dist: Literal["lognormal"]
    median: float = Field(gt=0)
    sigma: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> LogNormal:
        if not _finite(self.median, self.sigma):
            raise ValueError("median and sigma must be finite numbers")
        return self

    def ppf(self, uniform: np.ndarray) -> np.ndarray:
        return stats.lognorm.ppf(uniform, s=self.sigma, scale=self.median)


class Triangular(_Distribution):
    """Triangular(low, mode, high): the usual way to state an expert's range with a most likely value."""

    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _check(self) -> Triangular:
        if not _finite(self.low, self.mode, self.high):
            raise ValueError("low, mode and high must be finite numbers")
        if not (self.low <= self.mode <= self.high and self.low < self.high):
            raise ValueError(f"need low <= mode <= high and low < high, got {self.low}, {self.mode}, {self.high}")
        return self

    def ppf(self, uniform: np.ndarray) -> np.ndarray:
        width = self.high - self.low
        return stats.triang.ppf(uniform, (self.mode - self.low) / width, loc=self.low, scale=width)


class Uniform(_Distribution):
    """Uniform(low, high)."""

    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _check(self) -> Uniform:
        if not _finite(self.low, self.high) or not self.low < self.high:
            raise ValueError(f"need finite low < high, got {self.low}, {self.high}")
        return self

    def ppf(self, uniform: np.ndarray) -> np.ndarray:
        return self.low + (self.high - self.low) * np.asarray(uniform, dtype=float)


class Beta(_Distribution):
    """Beta(alpha, beta) scaled to [low, high] (default [0, 1]): for probabilities and fractions."""

    dist: Literal["beta"]
    alpha: float = Field(gt=0)
    beta: float = Field(gt=0)
    low: float = 0.0
    high: float = 1.0

    @model_validator(mode="after")
    def _check(self) -> Beta:
        if not _finite(self.alpha, self.beta, self.low, self.high) or not self.low < self.high:
            raise ValueError("alpha, beta must be finite and positive, and low < high")
        return self

    def ppf(self, uniform: np.ndarray) -> np.ndarray:
        return stats.beta.ppf(uniform, self.alpha, self.beta, loc=self.low, scale=self.high - self.low)


class Discrete(_Distribution):
    """One of a few values with given weights (weights are normalised)."""

    dist: Literal["discrete"]
    values: list[float] = Field(min_length=1, max_length=1000)
    weights: list[float] | None = None

    @model_validator(mode="after")
    def _check(self) -> Discrete:
        if not _finite(*self.values):
            raise ValueError("values must be finite numbers")
        if self.weights is not None:
            if len(self.weights) != len(self.values):
                raise ValueError(f"{len(self.weights)} weights for {len(self.values)} values")
            if any(w < 0 or not math.isfinite(w) for w in self.weights) or not 0 < math.fsum(self.weights) < math.inf:
                raise ValueError("weights must be finite, non-negative and not all zero")
        return self

    def ppf(self, uniform: np.ndarray) -> np.ndarray:
        weights = np.ones(len(self.values)) if self.weights is None else np.asarray(self.weights, float)
        cumulative = np.cumsum(weights) / weights.sum()
        index = np.searchsorted(cumulative, np.asarray(uniform, dtype=float), side="right")
        return np.asarray(self.values, dtype=float)[np.minimum(index, len(self.values) - 1)]


Distribution = Annotated[
    Normal | LogNormal | Triangular | Uniform | Beta | Discrete, Field(discriminator="dist")
]
DISTRIBUTION_NAMES = ("normal", "lognormal", "triangular", "uniform", "beta", "discrete")
