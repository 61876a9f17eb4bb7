"""Benchmark functions with known Sobol indices, used to check the sensitivity wrapper end to end.

* Ishigami (Ishigami & Homma 1990): Y = sin X1 + a sin^2 X2 + b X3^4 sin X1, X_i ~ U(-pi, pi).
* Sobol G (Saltelli & Sobol 1995): Y = prod_i (|4 X_i - 2| + a_i) / (1 + a_i), X_i ~ U(0, 1);
  small a_i = important input.

Each comes as a vectorised function over draws and its analytic first-order (S1) and total (ST)
indices. (Module name aside, these are library code, not pytest tests.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

ISHIGAMI_BOUNDS = (-math.pi, math.pi)


def ishigami(x1: np.ndarray, x2: np.ndarray, x3: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """The Ishigami function, elementwise over draws."""
    return np.sin(x1) + a * np.sin(x2) ** 2 + b * x3**4 * np.sin(x1)


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Analytic (S1, ST) of Ishigami for inputs (x1, x2, x3); a=7, b=0.1 gives S1 ~ (0.314, 0.442, 0)
    and ST ~ (0.558, 0.442, 0.244)."""
    pi4, pi8 = math.pi**4, math.pi**8
    v1 = 0.5 * (1 + b * pi4 / 5) ** 2
    v2 = a**2 / 8
    v13 = 8 * b**2 * pi8 / 225  # the x1-x3 interaction, all of x3's influence
    variance = v1 + v2 + v13
    first = np.array([v1, v2, 0.0]) / variance
    total = np.array([v1 + v13, v2, v13]) / variance
    return first, total


def sobol_g(x: np.ndarray, a: Sequence[float]) -> np.ndarray:
    """Sobol G over draws: `x` has shape [N, D] in the unit cube, `a` has D non-negative entries."""
    coeff = np.asarray(a, dtype=float)
    return np.prod((np.abs(4 * x - 2) + coeff) / (1 + coeff), axis=1)


def sobol_g_indices(a: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Analytic (S1, ST) of Sobol G: V_i = 1 / (3 (1 + a_i)^2), V = prod(1 + V_i) - 1,
    S1_i = V_i / V, ST_i = V_i prod_{j != i} (1 + V_j) / V."""
    partial = 1.0 / (3.0 * (1.0 + np.asarray(a, dtype=float)) ** 2)
    variance = np.prod(1 + partial) - 1
    first = partial / variance
    total = partial * np.prod(1 + partial) / (1 + partial) / variance
    return first, total
