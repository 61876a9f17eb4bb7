"""Random-coefficients (BLP) logit demand: pure numerical functions on arrays, batched over markets.

The model (Berry, Levinsohn and Pakes 1995).  In market ``b`` consumer type ``i`` gets from product ``j``

    u[b,i,j] = delta[b,j] + sum_k x2[b,j,k] * sigma_nu[b,i,k] + alpha_i[b,i] * price[b,j] + eps[b,i,j]

and 0 + eps[b,i,0] from the outside option (no purchase), with ``eps`` i.i.d. type-I extreme value.

* ``delta[b,j]`` is the mean utility *at the prices in* ``ProductSet.price`` (utils).  It contains the
  mean price term ``alpha_mean[b] * price[b,j]``; when prices move to ``p`` the mean utility becomes
  ``delta + alpha_mean * (p - price)`` (see :func:`mean_utility_at`).
* ``sigma_nu[b,i,k]`` is type ``i``'s taste deviation for characteristic ``k`` (utils per unit of the
  characteristic), already multiplied by sigma and including any demographic interactions — the caller
  forms it (pyblp: ``sigma @ nu_i + pi @ d_i`` restricted to the non-price characteristics).
* ``alpha_i[b,i]`` is type ``i``'s deviation of the price coefficient (utils per currency unit), e.g.
  ``pi_income * 1 / income_i``.  The type's marginal utility of money is ``-(alpha_mean + alpha_i)``.

Shapes (batch axis first): ``B`` markets, ``J`` products (padded: ``available[B,J]`` masks the products
really on sale — an unavailable product has zero share and drops out of every derivative), ``I`` consumer
types (integration nodes) with ``weights[B,I]`` and ``K`` random-coefficient characteristics (``K`` may be
0, ``I`` may be 1: plain logit).  Prices are in CNY in evlaunch, but any currency works as long as
``alpha`` is per the same unit.  Shares are fractions of the market size (population-normalised).

Conventions follow pyblp: ``jacobian[b,j,k] = d s_j / d p_k``; ``elasticities[b,j,k] = d s_j/d p_k *
p_k / s_j``; diversion ratios ``D[j,k] = -(d s_k/d p_j) / (d s_j/d p_j)`` with the diversion to the
outside option on the diagonal; consumer surplus per capita in currency units.  Entries that involve an
unavailable product are 0 in Jacobians and NaN in elasticities and diversion ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

__all__ = [
    "INVERSION_TOLERANCE",
    "MAX_NEWTON_STEP",
    "ConsumerTastes",
    "MeanUtilities",
    "ProductSet",
    "choice_probabilities",
    "consumer_surplus",
    "diversion_from_probabilities",
    "diversion_ratios",
    "elasticities",
    "evaluate_market",
    "exp_nonpositive",
    "invert_market",
    "mean_utility_at",
    "pad_markets",
    "price_derivatives",
    "solve_mean_utilities",
    "utilities",
]


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# exp(r) on |r| <= ln2/2: degree-11 Chebyshev fit (mpmath.chebyfit at 50 digits, rounded to float64);
# max relative error 2.2e-16 on a dense grid (the same as the degree-13 Taylor polynomial)
_P = (
    2.5110037605963777e-08,
    2.763263963904103e-07,
    2.755724091857897e-06,
    2.4801485482328494e-05,
    0.00019841269890047113,
    0.0013888888952314775,
    0.008333333333319601,
    0.0416666666664881,
    0.1666666666666668,
    0.5000000000000019,
)
_P11, _P10, _P9, _P8, _P7, _P6, _P5, _P4, _P3, _P2 = _P


# the fast-math flags of supply.equilibrium's kernel, which inlines it (its results are pinned by tests)
@nb.njit(cache=True, fastmath={"contract", "reassoc", "nsz", "arcp"})
def exp_nonpositive(v: float) -> float:  # pragma: no cover
    """exp(v) for v <= 0 (flushed to exp(-708) below -708): a vectorisable Cody-Waite reduction and
    polynomial, its binary exponent added to the bits of the result.  Relative error about 2.2e-16 +
    3.4e-17 |v| (1 ulp near 0, 1.5e-15 at -40, 2.4e-14 at -700: "reassoc" lets the compiler merge the
    two-part ln 2 of the reduction)."""
    v = max(v, -708.0)
    kf = math.floor(v * _LOG2E + 0.5)
    r = (v - kf * _LN2_HI) - kf * _LN2_LO
    q = _P11
    q = q * r + _P10
    q = q * r + _P9
    q = q * r + _P8
    q = q * r + _P7
    q = q * r + _P6
    q = q * r + _P5
    q = q * r + _P4
    q = q * r + _P3
    q = q * r + _P2
    q = q * r + 1.0
    q = q * r + 1.0
    return np.int64(np.float64(q).view(np.int64) + (np.int64(kf) << 52)).view(np.float64)


INVERSION_TOLERANCE = 1e-14  # max |log s_j(delta) - log S_j| at which the BLP inversion has converged
MAX_NEWTON_STEP = 1.0  # utils: the most one Newton step of the inversion moves any mean utility
# inversion steps without a new best point before Newton gives up (8; 3 in the round-off zone, a max
# log-share error below 1e-10) and before the contraction that follows stops (3)
_NEWTON_PATIENCE, _ROUNDING_PATIENCE, _ROUNDING_ZONE = 8, 3, 1e-10


def _as_float(name: str, value: Any, ndim: int) -> np.ndarray:
    array = np.ascontiguousarray(value, dtype=np.float64)
    if array.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {array.shape}")
    return array


@dataclass(frozen=True)
class ConsumerTastes:
    """Consumer heterogeneity in each market: the discrete consumer types (integration nodes).

    alpha_mean: mean price coefficient (utils per currency unit, normally negative), a float or ``[B]``;
        it lives inside ``delta`` and is only needed to move ``delta`` when prices change and for the
        marginal utility of money.
    alpha_i: ``[B,I]`` type-specific deviation of the price coefficient (utils per currency unit).
    sigma_nu: ``[B,I,K]`` type-specific taste deviations for the ``K`` characteristics in ``x2``
        (utils per characteristic unit).
    weights: ``[B,I]`` integration weights (type masses); they normally sum to 1 per market, but are
        used as given (importance-sampling weights need not sum to 1 — pyblp does the same).
    """

    alpha_mean: Any
    alpha_i: np.ndarray
    sigma_nu: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        alpha_i = _as_float("alpha_i", self.alpha_i, 2)
        markets, types = alpha_i.shape
        sigma_nu = np.asarray(self.sigma_nu, dtype=np.float64)
        if sigma_nu.ndim == 2 and sigma_nu.shape[1] == 0:
            sigma_nu = sigma_nu.reshape(markets, types, 0)
        sigma_nu = _as_float("sigma_nu", sigma_nu, 3)
        weights = _as_float("weights", self.weights, 2)
        alpha_mean = np.broadcast_to(np.asarray(self.alpha_mean, dtype=np.float64), (markets,)).copy()
        if sigma_nu.shape[:2] != (markets, types) or weights.shape != (markets, types):
            raise ValueError(
                f"alpha_i {alpha_i.shape}, sigma_nu {sigma_nu.shape} and weights {weights.shape} "
                "must agree on [B,I]"
            )
        if not (np.all(np.isfinite(weights)) and np.all(weights >= 0)):
            raise ValueError("weights must be finite and non-negative")
        if not (
            np.all(np.isfinite(alpha_i)) and np.all(np.isfinite(sigma_nu)) and np.all(np.isfinite(alpha_mean))
        ):
            raise ValueError("alpha_mean, alpha_i and sigma_nu must be finite")
        object.__setattr__(self, "alpha_mean", alpha_mean)
        object.__setattr__(self, "alpha_i", alpha_i)
        object.__setattr__(self, "sigma_nu", sigma_nu)
        object.__setattr__(self, "weights", weights)

    @property
    def markets(self) -> int:
        return self.alpha_i.shape[0]

    @property
    def types(self) -> int:
        return self.alpha_i.shape[1]

    @property
    def price_derivative(self) -> np.ndarray:
        """``[B,I]`` d u_ij / d p_j = alpha_mean + alpha_i (utils per currency unit)."""
        return self.alpha_mean[:, None] + self.alpha_i

    @classmethod
    def plain_logit(cls, alpha: Any, markets: int) -> ConsumerTastes:
        """One consumer type with price coefficient ``alpha`` and no random tastes (plain logit)."""
        return cls(
            alpha_mean=alpha,
            alpha_i=np.zeros((markets, 1)),
            sigma_nu=np.zeros((markets, 1, 0)),
            weights=np.ones((markets, 1)),
        )


@dataclass(frozen=True)
class ProductSet:
    """The products of each market (padded to a common ``J``).

    x2: ``[B,J,K]`` characteristics that carry random tastes (any units matching ``sigma_nu``).
    price: ``[B,J]`` prices at which ``delta`` is evaluated (CNY in evlaunch).
    available: ``[B,J]`` bool, products on sale (default: all).  Unavailable products get zero share and
        are left out of the pricing equilibrium.
    firm_ids: optional ``[B,J]`` integer owner of each product (used by the pricing equilibrium).
    """

    x2: np.ndarray
    price: np.ndarray
    available: np.ndarray | None = None
    firm_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        price = _as_float("price", self.price, 2)
        markets, products = price.shape
        x2 = np.asarray(self.x2, dtype=np.float64)
        if x2.ndim == 2 and x2.shape[1] == 0:
            x2 = x2.reshape(markets, products, 0)
        x2 = _as_float("x2", x2, 3)
        if x2.shape[:2] != (markets, products):
            raise ValueError(f"x2 {x2.shape} and price {price.shape} must agree on [B,J]")
        if self.available is None:
            available = np.ones((markets, products), dtype=bool)
        else:
            available = np.ascontiguousarray(self.available, dtype=bool)
            if available.shape != (markets, products):
                raise ValueError(f"available {available.shape} must be [B,J] = {(markets, products)}")
        # padded (unavailable) slots may hold anything; make them harmless
        x2 = np.where(available[:, :, None], x2, 0.0)
        price = np.where(available, price, np.where(np.isfinite(price), price, 0.0))
        if not (np.all(np.isfinite(x2)) and np.all(np.isfinite(price))):
            raise ValueError("x2 and price of available products must be finite")
        firm_ids = None
        if self.firm_ids is not None:
            firm_ids = np.ascontiguousarray(self.firm_ids)
            if firm_ids.shape != (markets, products):
                raise ValueError(f"firm_ids {firm_ids.shape} must be [B,J] = {(markets, products)}")
        object.__setattr__(self, "x2", np.ascontiguousarray(x2))
        object.__setattr__(self, "price", np.ascontiguousarray(price))
        object.__setattr__(self, "available", available)
        object.__setattr__(self, "firm_ids", firm_ids)

    @property
    def markets(self) -> int:
        return self.price.shape[0]

    @property
    def products(self) -> int:
        return self.price.shape[1]

    def with_available(self, available: np.ndarray) -> ProductSet:
        """The same products with another availability mask (e.g. entry or exit)."""
        return ProductSet(self.x2, self.price, available, self.firm_ids)


@dataclass(frozen=True)
class MeanUtilities:
    """Result of :func:`solve_mean_utilities`.

    delta: ``[B,J]`` mean utilities (utils; 0 for unavailable products).
    iterations: ``[B]`` share evaluations used per market (0 for the closed form).
    converged: ``[B]`` whether max |log s(delta) - log S| <= tol.
    max_log_share_error: ``[B]`` the achieved max |log s(delta) - log S|.
    """

    delta: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    max_log_share_error: np.ndarray


def _check(products: ProductSet, tastes: ConsumerTastes, delta: np.ndarray | None = None) -> None:
    if products.markets != tastes.markets:
        raise ValueError(f"products have {products.markets} markets, tastes {tastes.markets}")
    if products.x2.shape[2] != tastes.sigma_nu.shape[2]:
        raise ValueError(
            f"x2 has K={products.x2.shape[2]} characteristics, sigma_nu K={tastes.sigma_nu.shape[2]}"
        )
    if delta is not None and delta.shape != products.price.shape:
        raise ValueError(f"delta {delta.shape} must be [B,J] = {products.price.shape}")


def mean_utility_at(delta: Any, products: ProductSet, tastes: ConsumerTastes, prices: Any) -> np.ndarray:
    """``[B,J]`` mean utility at ``prices``: ``delta + alpha_mean * (prices - products.price)``."""
    delta = np.asarray(delta, dtype=np.float64)
    return delta + tastes.alpha_mean[:, None] * (np.asarray(prices, dtype=np.float64) - products.price)


def utilities(delta: Any, products: ProductSet, tastes: ConsumerTastes, prices: Any = None) -> np.ndarray:
    """``[B,I,J]`` deterministic utilities (utils) at ``prices`` (default ``products.price``);
    ``-inf`` for unavailable products."""
    delta = _as_float("delta", delta, 2)
    _check(products, tastes, delta)
    price = products.price if prices is None else _as_float("prices", prices, 2)
    mean = delta if prices is None else mean_utility_at(delta, products, tastes, price)
    mu = np.matmul(tastes.sigma_nu, products.x2.transpose(0, 2, 1))  # [B,I,J]
    u = mean[:, None, :] + mu + tastes.alpha_i[:, :, None] * price[:, None, :]
    return np.where(products.available[:, None, :], u, -np.inf)


def _probabilities_from_utilities(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logit probabilities with the outside option (utility 0) by log-sum-exp; returns (s_ij, log of the
    inclusive value log(1 + sum_j exp u_ij)) with the latter ``[..., I]``."""
    peak = np.maximum(np.max(u, axis=-1, initial=-np.inf), 0.0)  # [...,I] >= 0, finite
    with np.errstate(under="ignore"):
        exp_u = np.exp(u - peak[..., None])
        total = np.exp(-peak) + exp_u.sum(axis=-1)
    return exp_u / total[..., None], peak + np.log(total)


def choice_probabilities(
    delta: Any, products: ProductSet, tastes: ConsumerTastes, prices: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Choice probabilities ``s_ij [B,I,J]`` of each type and market shares ``[B,J]`` (weighted by the
    integration weights) at ``prices`` (default ``products.price``).  Numerically safe for extreme
    utilities (log-sum-exp including the outside option's 0); unavailable products get exactly 0."""
    s_ij, _ = _probabilities_from_utilities(utilities(delta, products, tastes, prices))
    shares = np.einsum("bi,bij->bj", tastes.weights, s_ij)
    return s_ij, shares


def _has_heterogeneity(products: ProductSet, tastes: ConsumerTastes) -> bool:
    if np.any(tastes.alpha_i != 0.0):
        return True
    return bool(
        tastes.sigma_nu.shape[2] and np.any(np.matmul(tastes.sigma_nu, products.x2.transpose(0, 2, 1)) != 0.0)
    )


class _Inversion:
    """State of the BLP inversion for every market: the mean utilities, the choice probabilities and the
    log-share residuals they give, the error; the best point so far; share evaluations, steps since the
    last new best, and whether the market still takes Newton steps."""

    def __init__(self, products: ProductSet, tastes: ConsumerTastes, log_target: np.ndarray,
                 delta: np.ndarray) -> None:
        self.available = products.available
        self.weights = tastes.weights
        self.log_target = log_target
        self.mu = (
            np.matmul(tastes.sigma_nu, products.x2.transpose(0, 2, 1))
            + tastes.alpha_i[:, :, None] * products.price[:, None, :]
        )
        markets = delta.shape[0]
        self.delta = delta
        self.iterations = np.zeros(markets, dtype=np.int64)
        self.stalls = np.zeros(markets, dtype=np.int64)
        self.newton_on = np.ones(markets, dtype=bool)
        self.s_ij, self.s, self.resid = self.evaluate(np.arange(markets), delta)
        self.error = np.max(np.abs(self.resid), axis=1, initial=0.0)
        self.best_delta, self.best_error = delta.copy(), self.error.copy()

    def evaluate(self, idx: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(s_ij, s, log s - log S) of markets ``idx`` at mean utilities ``d``; counts the evaluation.
        A zero predicted share of an available product gives a residual of -inf."""
        available = self.available[idx]
        u = np.where(available[:, None, :], d[:, None, :] + self.mu[idx], -np.inf)
        s_ij, _ = _probabilities_from_utilities(u)
        s = np.einsum("bi,bij->bj", self.weights[idx], s_ij)
        with np.errstate(divide="ignore", invalid="ignore"):
            resid = np.where(available, np.log(s) - self.log_target[idx], 0.0)
        resid = np.where(np.isfinite(resid), resid, np.where(available, -np.inf, 0.0))
        self.iterations[idx] += 1
        return s_ij, s, resid

    def move(self, idx: np.ndarray, d: np.ndarray, evaluated: tuple, error: np.ndarray) -> None:
        """Markets ``idx`` go to ``d``; a new best point resets their stall count, else it grows."""
        self.delta[idx] = d
        self.s_ij[idx], self.s[idx], self.resid[idx] = evaluated
        self.error[idx] = error
        better = error < self.best_error[idx]
        self.best_delta[idx[better]], self.best_error[idx[better]] = d[better], error[better]
        self.stalls[idx] = np.where(better, 0, self.stalls[idx] + 1)

    def newton(self, active: np.ndarray, max_step: float) -> None:
        """A Newton step (trust region ``max_step``) in markets ``active``.  A step that fails or
        overshoots into zero shares returns the market to its best point, where it continues with the
        contraction."""
        d, r, w = self.delta[active], self.resid[active], self.weights[active]
        avail = self.available[active]
        # d log s / d delta = diag(1/s) (diag(s) - sum_i w_i s_ij s_ik)
        weighted = self.s_ij[active] * w[:, :, None]
        jac = -np.matmul(weighted.transpose(0, 2, 1), self.s_ij[active])
        jac[:, np.arange(jac.shape[1]), np.arange(jac.shape[1])] += self.s[active]
        jac = np.where(avail[:, :, None] & avail[:, None, :], jac, np.eye(jac.shape[1]))
        rhs = np.where(avail & np.isfinite(r), -self.s[active] * r, 0.0)
        try:
            step = np.linalg.solve(jac, rhs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.full_like(rhs, np.nan)
        # the trust region: no mean utility moves more than max_step utils in one step
        size = np.max(np.abs(step), axis=1, initial=0.0)
        with np.errstate(invalid="ignore"):
            step = step / np.maximum(size / max_step, 1.0)[:, None]
        candidate = d + step
        evaluated = self.evaluate(active, candidate)
        error = np.max(np.abs(evaluated[2]), axis=1, initial=0.0)
        ok = np.all(np.isfinite(candidate), axis=1) & np.isfinite(error)
        self.move(active[ok], candidate[ok], tuple(e[ok] for e in evaluated), error[ok])
        self.to_contraction(active[~ok])

    def to_contraction(self, idx: np.ndarray) -> None:
        """Markets ``idx`` stop taking Newton steps and go back to their best point."""
        if idx.size:
            self.newton_on[idx] = False
            self.stalls[idx] = 0
            self.delta[idx] = self.best_delta[idx]
            self.s_ij[idx], self.s[idx], self.resid[idx] = self.evaluate(idx, self.delta[idx])
            self.error[idx] = self.best_error[idx]

    def contraction(self, idx: np.ndarray) -> None:
        """One BLP contraction step ``delta <- delta - (log s - log S)`` in markets ``idx`` (a zero
        predicted share raises that product's utility by 1); in the round-off zone (error <= 1e-8) it is
        kept only where it improves."""
        r = self.resid[idx]
        d = self.delta[idx] - np.where(np.isfinite(r), r, -1.0)
        evaluated = self.evaluate(idx, d)
        error = np.max(np.abs(evaluated[2]), axis=1, initial=0.0)
        take = (error < self.error[idx]) | (self.error[idx] > 1e-8)
        self.stalls[idx[~take]] += 1
        self.move(idx[take], d[take], tuple(e[take] for e in evaluated), error[take])


def solve_mean_utilities(
    observed_shares: Any,
    products: ProductSet,
    tastes: ConsumerTastes,
    *,
    initial_delta: Any = None,
    tol: float = INVERSION_TOLERANCE,
    max_iterations: int = 1000,
    max_step: float = MAX_NEWTON_STEP,
    compiled: bool = False,
) -> MeanUtilities:
    """Mean utilities ``delta [B,J]`` that reproduce ``observed_shares [B,J]`` exactly (BLP inversion).

    Without heterogeneity (all ``alpha_i`` and ``sigma_nu @ x2`` zero) it is the closed form
    ``log s_j - log s_0`` (Berry 1994).  Otherwise each market takes Newton steps on
    ``log s(delta) = log S`` inside a trust region (no mean utility moves more than ``max_step`` utils
    per step) while they keep finding new best points; after 8 steps without one (3 once the error is
    below 1e-10), or a step that fails or overshoots into zero shares, it continues from its best point
    with the BLP contraction ``delta <- delta + log S - log s(delta)`` (always convergent, slower).

    Tolerance: a market is converged when ``max_j |log s_j(delta) - log S_j| <= tol`` (default
    ``INVERSION_TOLERANCE`` = 1e-14, i.e. shares reproduced to ~1e-14 relative).  It stops earlier, at
    rounding level, when 3 contraction steps in a row fail to improve (``converged``
    False, ``max_log_share_error`` then typically 1e-15..1e-12); ``max_iterations`` caps the share
    evaluations per market.  The best point found is returned.  Each market iterates on its own, so its
    result does not depend on the other markets in the batch.  Observed shares of available products must
    be positive with an outside share > 0; ``initial_delta`` defaults to the plain-logit inversion.
    ``compiled``: run each market's iterations in the numba kernel :func:`invert_market` (the same
    algorithm and tolerances, its own rounding: the same ``delta`` to about ``tol``, far faster).
    """
    _check(products, tastes)
    shares = _as_float("observed_shares", observed_shares, 2)
    available = products.available
    if shares.shape != available.shape:
        raise ValueError(f"observed_shares {shares.shape} must be [B,J] = {available.shape}")
    target = np.where(available, shares, 0.0)
    outside = 1.0 - target.sum(axis=1)
    if np.any(available & ~(target > 0)) or np.any(~(outside > 0)):
        raise ValueError("observed shares of available products must be > 0 and sum to < 1 in every market")
    log_target = np.log(np.where(available, target, 1.0))
    logit_delta = np.where(available, log_target - np.log(outside)[:, None], 0.0)
    markets = shares.shape[0]
    if not _has_heterogeneity(products, tastes):
        zeros = np.zeros(markets)
        return MeanUtilities(
            logit_delta, np.zeros(markets, dtype=np.int64), np.ones(markets, dtype=bool), zeros
        )
    delta = (
        logit_delta.copy()
        if initial_delta is None
        else np.where(available, _as_float("initial_delta", initial_delta, 2), 0.0)
    )
    if compiled:
        mu = (np.matmul(tastes.sigma_nu, products.x2.transpose(0, 2, 1))
              + tastes.alpha_i[:, :, None] * products.price[:, None, :])
        best, iterations, error = _invert_markets(np.ascontiguousarray(mu), tastes.weights, log_target, available,
                                                  np.ascontiguousarray(delta), float(tol), int(max_iterations),
                                                  float(max_step))
        return MeanUtilities(np.where(available, best, 0.0), iterations, error <= tol, error)
    state = _Inversion(products, tastes, log_target, delta)
    every = np.arange(markets)
    while True:
        patience = np.where(state.best_error > _ROUNDING_ZONE, _NEWTON_PATIENCE, _ROUNDING_PATIENCE)
        state.to_contraction(every[state.newton_on & (state.stalls >= patience) & (state.best_error > tol)])
        stopped = ~state.newton_on & (state.stalls >= _ROUNDING_PATIENCE)
        active = every[(state.best_error > tol) & (state.iterations < max_iterations) & ~stopped]
        if active.size == 0:
            break
        newton = state.newton_on[active]
        if np.any(newton):
            state.newton(active[newton], max_step)
        if not np.all(newton):
            state.contraction(active[~newton])
    error = state.best_error
    return MeanUtilities(np.where(available, state.best_delta, 0.0), state.iterations, error <= tol, error)


@nb.njit(cache=True)
def evaluate_market(delta, mu, weights, log_target, available, s_ij, s, resid):  # pragma: no cover - compiled
    """One market's `_Inversion.evaluate` in place: choice probabilities s_ij [I,J], shares s [J] and
    log-share residuals resid [J] at mean utilities delta [J] (mu [I,J] the type terms); returns
    max |resid| (inf where an available product has a zero share)."""
    types, products = mu.shape
    s[:] = 0.0
    for i in range(types):
        peak = 0.0
        for j in range(products):
            if available[j]:
                peak = max(peak, delta[j] + mu[i, j])
        total = math.exp(-peak)
        for j in range(products):
            e = math.exp(delta[j] + mu[i, j] - peak) if available[j] else 0.0
            s_ij[i, j] = e
            total += e
        for j in range(products):
            s_ij[i, j] = s_ij[i, j] / total
            s[j] += weights[i] * s_ij[i, j]
    error = 0.0
    for j in range(products):
        r = 0.0
        if available[j]:
            r = math.log(s[j]) - log_target[j] if s[j] > 0.0 else -np.inf
            if not np.isfinite(r):
                r = -np.inf
        resid[j] = r
        error = max(error, abs(r))
    return error


@nb.njit(cache=True)
def _solve_linear(a, b):  # pragma: no cover - compiled
    """Solve a x = b in place (b becomes x) by Gaussian elimination with partial pivoting (a is
    overwritten); False when a pivot is exactly zero (singular, as LAPACK's gesv reports)."""
    n = b.shape[0]
    for c in range(n):
        pivot = c
        for r in range(c + 1, n):
            if abs(a[r, c]) > abs(a[pivot, c]):
                pivot = r
        if a[pivot, c] == 0.0:
            return False
        if pivot != c:
            for k in range(n):
                a[c, k], a[pivot, k] = a[pivot, k], a[c, k]
            b[c], b[pivot] = b[pivot], b[c]
        for r in range(c + 1, n):
            f = a[r, c] / a[c, c]
            if f != 0.0:
                for k in range(c + 1, n):
                    a[r, k] -= f * a[c, k]
                b[r] -= f * b[c]
    for c in range(n - 1, -1, -1):
        total = b[c]
        for k in range(c + 1, n):
            total -= a[c, k] * b[k]
        b[c] = total / a[c, c]
    return True


@nb.njit(cache=True)
def _newton_step(s_ij, s, resid, weights, available, max_step, jac, step):  # pragma: no cover - compiled
    """The trust-region Newton step of `_Inversion.newton` into `step` [J]; False if the system is singular."""
    types, products = s_ij.shape
    jac[:, :] = 0.0
    for i in range(types):
        for j in range(products):
            a = weights[i] * s_ij[i, j]
            for k in range(products):
                jac[j, k] -= a * s_ij[i, k]
    for j in range(products):
        jac[j, j] += s[j]
        for k in range(products):
            if not (available[j] and available[k]):
                jac[j, k] = 1.0 if j == k else 0.0
        step[j] = -s[j] * resid[j] if available[j] and np.isfinite(resid[j]) else 0.0
    if not _solve_linear(jac, step):
        return False
    size = 0.0
    for j in range(products):
        size = max(size, abs(step[j]))
    scale = max(size / max_step, 1.0)
    for j in range(products):
        step[j] = step[j] / scale
    return True


@nb.njit(cache=True)
def invert_market(mu, weights, log_target, available, start, tol, max_iterations, max_step):  # pragma: no cover
    """One market's BLP inversion, the algorithm of :func:`solve_mean_utilities` compiled (the same Newton
    steps, trust region, patience and contraction; its own rounding): mu [I,J] the type terms
    (``sigma_nu @ x2 + alpha_i * price``), weights [I], log_target [J] log observed shares, available
    [J], start [J] initial mean utilities.  Returns (best delta [J], share evaluations, best error)."""
    types, products = mu.shape
    delta = start.copy()
    s_ij, s, resid = np.empty((types, products)), np.empty(products), np.empty(products)
    c_ij, c_s, c_resid = np.empty((types, products)), np.empty(products), np.empty(products)
    jac, candidate = np.empty((products, products)), np.empty(products)
    error = evaluate_market(delta, mu, weights, log_target, available, s_ij, s, resid)
    iterations, stalls, newton_on = 1, 0, True
    best_delta, best_error = delta.copy(), error
    while True:
        patience = _NEWTON_PATIENCE if best_error > _ROUNDING_ZONE else _ROUNDING_PATIENCE
        if newton_on and stalls >= patience and best_error > tol:
            newton_on, stalls, delta[:] = False, 0, best_delta
            evaluate_market(delta, mu, weights, log_target, available, s_ij, s, resid)
            iterations += 1
            error = best_error
        stopped = not newton_on and stalls >= _ROUNDING_PATIENCE
        if not (best_error > tol and iterations < max_iterations and not stopped):
            break
        if newton_on:
            ok = _newton_step(s_ij, s, resid, weights, available, max_step, jac, candidate)
            if ok:
                for j in range(products):
                    candidate[j] += delta[j]
            else:
                candidate[:] = np.nan
            new_error = evaluate_market(candidate, mu, weights, log_target, available, c_ij, c_s, c_resid)
            iterations += 1
            ok = np.isfinite(new_error) and np.all(np.isfinite(candidate))
            if not ok:  # back to the best point, where the contraction continues
                newton_on, stalls, delta[:] = False, 0, best_delta
                evaluate_market(delta, mu, weights, log_target, available, s_ij, s, resid)
                iterations += 1
                error = best_error
                continue
        else:
            for j in range(products):
                candidate[j] = delta[j] - (resid[j] if np.isfinite(resid[j]) else -1.0)
            new_error = evaluate_market(candidate, mu, weights, log_target, available, c_ij, c_s, c_resid)
            iterations += 1
            if not (new_error < error or error > 1e-8):
                stalls += 1
                continue
        delta[:], s_ij[:, :], s[:], resid[:], error = candidate, c_ij, c_s, c_resid, new_error
        if error < best_error:
            best_delta[:], best_error, stalls = delta, error, 0
        else:
            stalls += 1
    return best_delta, iterations, best_error


@nb.njit(cache=True)
def _invert_markets(mu, weights, log_target, available, start, tol, max_iterations, max_step):  # pragma: no cover
    """`invert_market` for every market [B]: (delta [B,J], iterations [B], best error [B])."""
    markets, products = start.shape
    delta = np.empty((markets, products))
    iterations = np.empty(markets, dtype=np.int64)
    error = np.empty(markets)
    for b in range(markets):
        delta[b], iterations[b], error[b] = invert_market(mu[b], weights[b], log_target[b], available[b], start[b],
                                                          tol, max_iterations, max_step)
    return delta, iterations, error


def _jacobian_from_probabilities(s_ij: np.ndarray, tastes: ConsumerTastes) -> np.ndarray:
    """``[B,J,J]`` d s_j / d p_k = sum_i w_i d_i s_ij (1[j=k] - s_ik), d_i = alpha_mean + alpha_i."""
    wd = tastes.weights * tastes.price_derivative  # [B,I]
    weighted = s_ij * wd[:, :, None]
    jac = -np.matmul(weighted.transpose(0, 2, 1), s_ij)
    diag = weighted.sum(axis=1)
    j = np.arange(s_ij.shape[2])
    jac[:, j, j] += diag
    return jac


def price_derivatives(
    delta: Any, products: ProductSet, tastes: ConsumerTastes, prices: Any = None
) -> np.ndarray:
    """``[B,J,J]`` Jacobian of shares with respect to prices, ``d s_j / d p_k`` (per currency unit);
    zero rows and columns for unavailable products."""
    s_ij, _ = choice_probabilities(delta, products, tastes, prices)
    return _jacobian_from_probabilities(s_ij, tastes)


def elasticities(delta: Any, products: ProductSet, tastes: ConsumerTastes, prices: Any = None) -> np.ndarray:
    """``[B,J,J]`` price elasticities ``d s_j / d p_k * p_k / s_j`` (pyblp's convention: row = the share
    that responds, column = the price that moves); NaN where a product is unavailable."""
    price = products.price if prices is None else _as_float("prices", prices, 2)
    s_ij, shares = choice_probabilities(delta, products, tastes, prices)
    jac = _jacobian_from_probabilities(s_ij, tastes)
    pair = products.available[:, :, None] & products.available[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = jac * price[:, None, :] / shares[:, :, None]
    return np.where(pair, out, np.nan)


def diversion_from_probabilities(
    s_ij: Any, weights: Any, price_derivative: Any, sources: Any = None
) -> np.ndarray:
    """``[B,R,J]`` diversion ratios with respect to price from the products ``sources`` (``R`` indices,
    default all products) given the choice probabilities ``s_ij [B,I,J]``, integration weights
    ``[B,I]`` and each type's price derivative of utility ``d_i [B,I]`` (any factor common to a market
    cancels).  With ``a_ij = w_i d_i s_ij``:

        D[j,k] = sum_i a_ij s_ik / sum_i a_ij (1 - s_ij)    (k != j: -(d s_k/d p_j) / (d s_j/d p_j)),
        D[j,j] = sum_i a_ij s_i0 / sum_i a_ij (1 - s_ij)    (to the outside option, s_i0 = 1 - sum_k s_ik);

    each row sums to 1.  The one diversion formula: :func:`diversion_ratios` evaluates it at a market's
    utilities, the simulation on its consumer types' shares."""
    s_ij = np.asarray(s_ij, dtype=np.float64)
    wd = np.asarray(weights, dtype=np.float64) * np.asarray(price_derivative, dtype=np.float64)
    rows = np.arange(s_ij.shape[2]) if sources is None else np.atleast_1d(np.asarray(sources))
    source = s_ij[:, :, rows]  # [B,I,R]
    scale = source * wd[:, :, None]
    own = np.einsum("bir,bir->br", scale, 1.0 - source)
    ratios = np.matmul(scale.transpose(0, 2, 1), s_ij)  # [B,R,J]
    ratios[:, np.arange(rows.size), rows] = np.einsum("bir,bi->br", scale, 1.0 - s_ij.sum(axis=2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return ratios / own[:, :, None]


def diversion_ratios(
    delta: Any, products: ProductSet, tastes: ConsumerTastes, prices: Any = None
) -> np.ndarray:
    """``[B,J,J]`` diversion ratios with respect to price (pyblp's convention):
    ``D[j,k] = -(d s_k/d p_j) / (d s_j/d p_j)`` for ``k != j`` and, on the diagonal, the diversion to
    the outside option ``D[j,j] = -(d s_0/d p_j) / (d s_j/d p_j)``; each row sums to 1.  NaN where a
    product is unavailable (:func:`diversion_from_probabilities` at the market's choice probabilities)."""
    s_ij, _ = choice_probabilities(delta, products, tastes, prices)
    ratios = diversion_from_probabilities(s_ij, tastes.weights, tastes.price_derivative)
    pair = products.available[:, :, None] & products.available[:, None, :]
    return np.where(pair, ratios, np.nan)


def consumer_surplus(
    delta: Any, products: ProductSet, tastes: ConsumerTastes, prices: Any = None, *, keep_all: bool = False
) -> np.ndarray:
    """Consumer surplus per capita (currency units; CNY in evlaunch) at ``prices``.

    ``CS_i = log(1 + sum_j exp u_ij) / -(alpha_mean + alpha_i)`` — the expected maximum utility over
    the type's marginal utility of money (no income effects), as pyblp's
    ``compute_consumer_surpluses``; returns ``sum_i w_i CS_i`` ``[B]``, or ``CS_i [B,I]`` with
    ``keep_all``.  Only differences of CS are meaningful (the constant of integration is dropped);
    compare availability masks or prices to value a product or a price change.
    """
    _, inclusive = _probabilities_from_utilities(utilities(delta, products, tastes, prices))
    with np.errstate(divide="ignore", invalid="ignore"):
        per_type = inclusive / -tastes.price_derivative
    if keep_all:
        return per_type
    return np.einsum("bi,bi->b", tastes.weights, per_type)


def pad_markets(market_ids: Any, values: Any, fill: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack long-format rows (one per product or per consumer type) into padded ``[B, N, ...]`` arrays.

    Returns ``(padded, mask, unique_market_ids)``: ``padded[b, n]`` is the n-th row of the b-th market in
    order of first appearance within the market (markets sorted like ``np.unique``), ``mask[b, n]`` marks
    real rows; missing slots hold ``fill``.  Use ``padded[mask]`` to go back to long format.
    """
    market_ids = np.asarray(market_ids).ravel()
    values = np.asarray(values)
    if values.shape[0] != market_ids.shape[0]:
        raise ValueError("values and market_ids need the same number of rows")
    unique, inverse = np.unique(market_ids, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=unique.size)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.empty(market_ids.size, dtype=np.int64)
    position[order] = np.arange(market_ids.size) - np.repeat(starts, counts)
    width = int(counts.max()) if counts.size else 0
    padded = np.full((unique.size, width) + values.shape[1:], fill, dtype=np.result_type(values, type(fill)))
    mask = np.zeros((unique.size, width), dtype=bool)
    padded[inverse, position] = values
    mask[inverse, position] = True
    return padded, mask, unique
