"""Multiproduct Bertrand-Nash pricing under random-coefficients logit demand, batched over markets.

Each firm sets the prices of its products to maximise ``sum_j (p_j - c_j) s_j(p)``.  The first-order
conditions (FOCs), product by product, are

    s_j + sum_k H[j,k] (d s_k / d p_j) (p_k - c_k) = 0,

with ``H`` the ownership matrix (1 when the same firm sells ``j`` and ``k``).  Write the share Jacobian
as ``d s/d p = Lambda - Gamma`` with ``Lambda = diag(sum_i w_i a_i s_ij)`` and
``Gamma[j,k] = sum_i w_i a_i s_ij s_ik`` (``a_i = alpha_mean + alpha_i`` the type's price derivative of
utility).  Morrow and Skerlos (2011) rearrange the FOCs into the zeta-markup fixed point

    p <- c + zeta(p),   zeta(p) = Lambda^{-1} (H o Gamma') (p - c) - Lambda^{-1} s,

which pyblp's ``ProblemResults.compute_prices`` iterates; convergence is declared when the FOC residual
``max_j |Lambda_j (c_j + zeta_j(p) - p_j)|`` (shares per currency unit x currency = share units) falls
below ``tol`` (``EQUILIBRIUM_TOLERANCE`` = 1e-12, pyblp's) and the updated prices are returned.  The
tolerance, not the CPU, bounds the error: on another CPU or BLAS kernel the iterates differ in the last
bits and a market may stop one evaluation earlier or later, so prices agree across machines to ~1e-8
relative (Anderson: 1.1e-8 from a solve to 1e-15 on pyblp's perturbed BLP markets; products with tiny
shares under the simple iteration to ~1e-6), bit for bit only on one machine.  On one machine, too, the
kernel's fast-math sums (``_FASTMATH``: "reassoc" lets LLVM vectorise the reductions over consumer types)
may be ordered differently by a fresh numba compile than by the object code loaded from numba's disk cache:
measured on pyblp's 1000 perturbed BLP markets (200 types), prices 1.1e-10 relative apart, the same
iteration counts; the reference scenario's outputs were byte-identical either way.  Summing in a fixed
order without "reassoc" makes the two agree, but the sums then stay scalar (1.4-2x slower evaluations).

Call ``solve_prices(PricingProblem(delta=..., products=..., tastes=..., costs=...), options=
EquilibriumOptions(...))``: the problem holds the markets (demand, costs, owners, rates, capacity), the
options how to solve them.

* ``method="simple"`` is exactly that iteration (same iterations as pyblp from the same start).
* ``method="anderson"`` (default) accelerates the same map: plain steps until the FOC residual has
  fallen tenfold, then Anderson mixing (memory 5), restarting plain steps from the best point whenever
  the residual blows up or stops improving.  It needs ~3x fewer evaluations and, under the same stopping
  rule, lands closer to the exact fixed point than the simple iteration (whose error at stopping can
  reach ~1e-6 relative for products with tiny shares, because Lambda_j is tiny for them).
* Markets the fixed point does not solve — evaluation cap, non-finite values, or (Anderson) 20
  restarts, typically a cycling map — go to Newton's method on the FOCs with the analytic Jacobian
  (one I x J x J product) and an Armijo line search on the share-scaled FOC residual, first from the
  best point found, then from the start; markets still unsolved resume plain fixed-point steps from the
  best point with the rest of the evaluation budget.  A warning gives the count of markets that remain
  unconverged.  Every loop is capped.

Backends: ``"numba"`` (default) compiles the per-market fixed point (cached on disk; it releases the
GIL and markets are spread over a few threads: the calling thread and helpers from a pool kept for the
process, ``threads`` in all, default the CPU count capped by ``NUMBA_NUM_THREADS``, which the run's dask
workers set to 1); the ownership must be a partition into firms (``firm_ids``) — its cost per evaluation
is O(I J) instead of O(I J^2).  An evaluation's cost is mostly the I J exponentials; once prices move
little between evaluations the kernel carries them, E_ij(p') = E_ij(p) exp(a_i (p'_j - p_j)), with a
Taylor polynomial of degree 4, 6 or 9 chosen per product so that the truncation stays below 3e-17
relative (products that moved more are recomputed in full), and recomputes all of them every 16
evaluations or after 50 utils of accumulated movement: each evaluation agrees with a fresh one to ~1e-15
relative and costs about half (BLP's markets).  ``"numpy"`` is a pure-numpy
path batched over markets that also accepts general (e.g. partial) ownership matrices.  Both run the
same algorithm and agree to rounding.

Capacity: with ``capacity[B,J]`` (maximum share of the market a product can serve, i.e. units over
market size) a product whose unconstrained share would exceed it behaves as if it had an extra marginal
cost ``lambda_j >= 0``, the shadow price of capacity (the firm's Lagrangian with ``s_j <= K_j``).  The
multipliers are found by an outer loop: solve the equilibrium with costs ``c + lambda``, then raise
``lambda_j`` for products over capacity (lower it, not below 0, for products strictly under) by the own
price change that moves ``log s_j`` to ``log K_j`` at the current own semi-elasticity; repeat until every
product satisfies ``s_j <= K_j (1 + capacity_tol)`` and every positive ``lambda_j`` binds.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from evlaunch.market.rc_logit import (
    ConsumerTastes,
    ProductSet,
    _jacobian_from_probabilities,
    choice_probabilities,
    exp_nonpositive,
)

__all__ = [
    "EQUILIBRIUM_TOLERANCE",
    "EquilibriumOptions",
    "EquilibriumWarning",
    "PriceEquilibrium",
    "PricingProblem",
    "foc_residual",
    "marginal_costs",
    "ownership_matrix",
    "solve_prices",
]

_METHODS = {"simple": 0, "anderson": 1}
_MEMORY = 5  # Anderson memory
_SWITCH = 0.1  # start mixing once the FOC residual fell below this fraction of its value at the (re)start
_BLOWUP = 10.0  # restart when the residual exceeds this multiple of the best one
_PATIENCE = 5  # restart after this many evaluations without a new best
_MAX_RESTARTS = 20  # then hand the market to the Newton fallback (the map may be cycling)
_RESCALES = 16  # evaluations between full computations of the exponentials
_DRIFT = 50.0  # utils: the largest total move of the utilities carried by rescaling the exponentials
_BIG = 1e300  # pyblp bounds 1/Lambda at 1/1e-300 when Lambda underflows
EQUILIBRIUM_TOLERANCE = 1e-12  # max |FOC residual| (share units) at which a market has converged (pyblp's)
_NEWTON_STEPS = 60  # cap on the Newton steps of the fallback per start
_NEWTON_REL_TOL = 1e-10  # and its bound on max |FOC_j / s_j|


class EquilibriumWarning(RuntimeWarning):
    """Some markets' pricing equilibrium did not converge."""


@dataclass(frozen=True)
class PriceEquilibrium:
    """Result of :func:`solve_prices`.

    prices: ``[B,J]`` equilibrium prices (currency units); unavailable products keep their start price.
    shares: ``[B,J]`` shares at those prices (0 for unavailable products).
    iterations: ``[B]`` evaluations of the zeta map per market (fallback evaluations included).
    converged: ``[B]`` whether the FOC residual met ``tol``.
    foc_norm: ``[B]`` max |FOC residual| at the returned prices (share units; with capacity, against
        costs plus shadow costs).
    fallback: ``[B]`` whether the market went to the Newton fallback.
    shadow_costs: ``[B,J]`` capacity multipliers (currency units per unit; zeros without capacity).
    """

    prices: np.ndarray
    shares: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray
    foc_norm: np.ndarray
    fallback: np.ndarray
    shadow_costs: np.ndarray


@dataclass(frozen=True, kw_only=True)
class EquilibriumOptions:
    """How :func:`solve_prices` solves (the same for every market).

    method: ``"anderson"`` (default) or ``"simple"`` (pyblp's iteration); see the module docstring.
    backend: ``"numba"`` (default) or ``"numpy"`` (chosen automatically for partial ownership).
    tol: FOC residual tolerance, max_j |s_j + sum_k H[j,k] (d s_k/d p_j)(p_k - c_k)| in share units
        (default ``EQUILIBRIUM_TOLERANCE`` = 1e-12, pyblp's).  This leaves prices within ~1e-8 relative
        of the exact fixed point for the Anderson method (up to ~1e-6 for products with tiny shares
        under the simple iteration); compare prices computed on different CPUs at rtol 1e-6.
    max_evaluations: cap on zeta-map evaluations per market.
    fallback: hand markets that have not converged after ``newton_after`` evaluations to Newton's method
        on the FOCs (analytic Jacobian, backtracking), resuming the fixed point if Newton fails.
    newton_after: evaluations before the Newton fallback (default ``max_evaluations``: Newton only for
        markets the fixed point cannot solve).  Earlier hand-over rarely pays: markets that converge
        slowly are mostly ones whose FOCs nearly touch zero away from the root (a luxury car priced far
        above rivals, bought by a few very rich consumer types), where Newton stalls too.
    capacity_tol: relative slack of the capacity constraints ``s_j <= K_j (1 + capacity_tol)``.
    max_capacity_rounds: cap on the outer rounds of shadow costs.
    threads: worker threads for the numba backend (default: the CPU count); markets are independent.
    """

    method: str = "anderson"
    backend: str = "numba"
    tol: float = EQUILIBRIUM_TOLERANCE
    max_evaluations: int = 5000
    fallback: bool = True
    newton_after: int | None = None
    capacity_tol: float = 1e-9
    max_capacity_rounds: int = 100
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}, got {self.method!r}")
        if self.backend not in ("numba", "numpy"):
            raise ValueError(f"backend must be 'numba' or 'numpy', got {self.backend!r}")
        if self.max_evaluations < 1:
            raise ValueError("max_evaluations must be >= 1")


@dataclass(frozen=True, kw_only=True)
class PricingProblem:
    """The markets to price (``B`` markets, ``J`` products padded as in :class:`ProductSet`).

    delta: ``[B,J]`` mean utilities at ``products.price`` (they move with ``alpha_mean`` as prices move).
    products, tastes: the demand side (``market.rc_logit``).
    costs: ``[B,J]`` marginal costs (currency units per unit).
    firm_ids / ownership: owners as ``[B,J]`` ids, or a ``[B,J,J]`` ownership matrix (partial ownership
        runs on the numpy backend); default ``products.firm_ids``.
    rates: optional ``[B,J]`` positive d p / d q of the price ``p`` demand sees with respect to the price
        ``q`` the firm sets (e.g. 1 + a marginal purchase tax: ``p = rates * q + k``), with ``costs`` and
        prices in demand's units; firm-level FOCs then carry the ownership ``H[j,k] rates_j / rates_k``.
        Needs ``firm_ids``; default 1 (pyblp's problem).
    capacity: optional ``[B,J]`` capacity in shares of the market (units / market size; inf or NaN =
        unconstrained); prices rise until shares fit (shadow-cost approach, module docstring).
    """

    delta: Any
    products: ProductSet
    tastes: ConsumerTastes
    costs: Any
    firm_ids: Any = None
    ownership: Any = None
    rates: Any = None
    capacity: Any = None


# ----------------------------------------------------------------------------------------------
# ownership, cost recovery, FOC residual
# ----------------------------------------------------------------------------------------------


def ownership_matrix(firm_ids: Any, available: Any = None) -> np.ndarray:
    """``[B,J,J]`` ownership: 1.0 where products ``j`` and ``k`` belong to the same firm, else 0;
    rows and columns of unavailable products are 0."""
    firm_ids = np.asarray(firm_ids)
    if firm_ids.ndim != 2:
        raise ValueError(f"firm_ids must be [B,J], got shape {firm_ids.shape}")
    same = firm_ids[:, :, None] == firm_ids[:, None, :]
    if available is not None:
        available = np.asarray(available, dtype=bool)
        same &= available[:, :, None] & available[:, None, :]
    return same.astype(np.float64)


def marginal_costs(
    price: Any, shares: Any, jacobian: Any, ownership: Any, available: Any = None
) -> np.ndarray:
    """``[B,J]`` marginal costs implied by the Bertrand FOCs at observed prices and shares.

    ``c = p - eta`` with markups ``eta = -(H o (ds/dp)')^{-1} s`` (pyblp's ``compute_costs``);
    ``jacobian[b,j,k] = d s_j / d p_k``.  ``available`` defaults to ``shares > 0``; unavailable products
    get NaN.
    """
    price = np.asarray(price, dtype=np.float64)
    shares = np.asarray(shares, dtype=np.float64)
    jacobian = np.asarray(jacobian, dtype=np.float64)
    ownership = np.asarray(ownership, dtype=np.float64)
    available = shares > 0 if available is None else np.asarray(available, dtype=bool)
    matrix = ownership * jacobian.transpose(0, 2, 1)
    pair = available[:, :, None] & available[:, None, :]
    matrix = np.where(pair, matrix, np.eye(price.shape[1]))
    rhs = np.where(available, -shares, 0.0)
    markup = np.linalg.solve(matrix, rhs[..., None])[..., 0]
    return np.where(available, price - markup, np.nan)


def foc_residual(
    prices: Any, costs: Any, delta: Any, products: ProductSet, tastes: ConsumerTastes, ownership: Any = None
) -> np.ndarray:
    """``[B,J]`` FOC residual ``s_j + sum_k H[j,k] (d s_k/d p_j)(p_k - c_k)`` at ``prices`` (share units;
    0 for unavailable products).  ``delta`` is the mean utility at ``products.price``; ownership
    defaults to ``products.firm_ids``."""
    if ownership is None:
        if products.firm_ids is None:
            raise ValueError("give ownership or ProductSet.firm_ids")
        ownership = ownership_matrix(products.firm_ids, products.available)
    prices = np.asarray(prices, dtype=np.float64)
    s_ij, shares = choice_probabilities(delta, products, tastes, prices)
    jac = _jacobian_from_probabilities(s_ij, tastes)
    margin = np.where(products.available, prices - np.asarray(costs, dtype=np.float64), 0.0)
    out = shares + np.einsum("bjk,bkj,bk->bj", np.asarray(ownership, dtype=np.float64), jac, margin)
    return np.where(products.available, out, 0.0)


# ----------------------------------------------------------------------------------------------
# numba kernel
# ----------------------------------------------------------------------------------------------

# fast-math flags that allow vectorised reductions but keep NaN/inf semantics
_FASTMATH = {"contract", "reassoc", "nsz", "arcp"}


@nb.njit(cache=True)
def _scratch(J, I, nseg):  # pragma: no cover
    """Work arrays of :func:`_zeta_eval` for a market of J products, I types and nseg firms:
    (E, A, mx, inv, ws, wds, wds2, S, L, G, held, state); ``held`` [J] the prices at which E was last
    computed and ``state`` = [E valid (0/1), evaluations since E was last computed in full, max_i |d_i|, utils the
    utilities may have moved since]
    (:func:`_exponentials`)."""
    return (
        np.empty((J, I)),
        np.empty((max(nseg, 1), I)),
        np.empty(I),
        np.empty(I),
        np.empty(I),
        np.empty(I),
        np.empty(I),
        np.empty(J),
        np.empty(J),
        np.empty(J),
        np.empty(J),
        np.zeros(4),
    )


class _Kernel(NamedTuple):
    """One market for the numba kernels, products sorted by firm (``J`` available products, ``I`` types).

    base: ``[J,I]`` non-price utility; d: ``[I]`` price derivative of utility; w: ``[I]`` type weights;
    costs, rate: ``[J]``; seg: ``[F+1]`` bounds of the firms' product ranges."""

    base: np.ndarray
    d: np.ndarray
    w: np.ndarray
    costs: np.ndarray
    rate: np.ndarray
    seg: np.ndarray


class _Stopping(NamedTuple):
    """When the fixed point stops: FOC tolerance (share units), evaluation cap, method (``_METHODS``)."""

    tol: float
    max_evals: int
    method: int


@nb.njit(cache=True, fastmath=_FASTMATH)
def _full_exponentials(market, p, scratch):  # pragma: no cover
    """E[j,i] = exp(u_ij - mx_i), u_ij = base[j,i] + d_i p_j shifted by each type's peak
    mx_i = max(0, max_j u_ij); inv[i] = exp(-mx_i) + sum_j E[j,i] (the shifted logit denominator)."""
    E, _A, mx, inv = scratch[0], scratch[1], scratch[2], scratch[3]
    base, d = market.base, market.d
    J, I = base.shape
    for i in range(I):
        mx[i] = 0.0
    for j in range(J):
        pj = p[j]
        for i in range(I):
            mx[i] = max(mx[i], base[j, i] + d[i] * pj)
    for i in range(I):
        inv[i] = math.exp(-mx[i])
    for j in range(J):
        pj = p[j]
        for i in range(I):
            e = exp_nonpositive(base[j, i] + d[i] * pj - mx[i])
            E[j, i] = e
            inv[i] += e


@nb.njit(cache=True, fastmath=_FASTMATH)
def _scaled_exponentials(market, p, scratch):  # pragma: no cover
    """E[j,i] <- E[j,i] exp(d_i (p_j - held_j)), the shift mx_i kept, row by row: by the Taylor
    polynomial of exp of degree 4, 6 or 9 when y_j = max_i |d_i| |p_j - held_j| is at most 1e-3, 1e-2
    or 0.1 (truncation error below 3e-17 relative), else in full; inv as in :func:`_full_exponentials`."""
    E, mx, inv, held, state = scratch[0], scratch[2], scratch[3], scratch[10], scratch[11]
    base, d = market.base, market.d
    J, I = E.shape
    for i in range(I):
        inv[i] = math.exp(-mx[i])
    for j in range(J):
        step = p[j] - held[j]
        y_j = abs(step) * state[2]
        if y_j <= 1e-3:
            for i in range(I):
                y = d[i] * step
                e = E[j, i] * (1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0)))))
                E[j, i] = e
                inv[i] += e
        elif y_j <= 1e-2:
            for i in range(I):
                y = d[i] * step
                t = 1.0 / 24.0 + y * (1.0 / 120.0 + y * (1.0 / 720.0))
                e = E[j, i] * (1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * t))))
                E[j, i] = e
                inv[i] += e
        elif y_j <= 0.1:
            for i in range(I):
                y = d[i] * step
                t = 1.0 / 5040.0 + y * (1.0 / 40320.0 + y * (1.0 / 362880.0))
                t = 1.0 / 24.0 + y * (1.0 / 120.0 + y * (1.0 / 720.0 + y * t))
                e = E[j, i] * (1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * t))))
                E[j, i] = e
                inv[i] += e
        else:
            pj = p[j]
            for i in range(I):
                e = exp_nonpositive(base[j, i] + d[i] * pj - mx[i])
                E[j, i] = e
                inv[i] += e


@nb.njit(cache=True)
def _rescalable(p, scratch):  # pragma: no cover
    """Whether E may be carried to prices p by :func:`_scaled_exponentials`: it is valid, was computed in
    full fewer than ``_RESCALES`` evaluations ago, and the utilities moved by at most ``_DRIFT`` in all
    since (bound: the sum over evaluations of max_i |d_i| max_j |p_j - held_j|), which keeps u_ij - mx_i,
    the logit denominators and their squares well inside the floating-point range."""
    held, state = scratch[10], scratch[11]
    if state[0] == 0.0 or state[1] >= _RESCALES:
        return False
    top = 0.0
    for j in range(p.shape[0]):
        top = max(top, abs(p[j] - held[j]))
    state[3] += top * state[2]
    return state[3] <= _DRIFT


@nb.njit(cache=True, fastmath=_FASTMATH)
def _type_sums(market, p, scratch):  # pragma: no cover
    """Exponentiated utilities E[j,i] = exp(u_ij - mx_i) (in full, or rescaled from the previous
    evaluation's when the prices moved little: :func:`_rescalable`) and, per type, the inverse logit
    denominator inv, ws = w * inv, wds = ws * d and wds2 = wds * inv (in ``scratch``)."""
    _E, _A, _mx, inv, ws, wds, wds2 = scratch[:7]
    held, state = scratch[10], scratch[11]
    d, w = market.d, market.w
    I = d.shape[0]
    if not _rescalable(p, scratch):
        _full_exponentials(market, p, scratch)
        top = 0.0
        for i in range(I):
            top = max(top, abs(d[i]))
        state[0] = 1.0
        state[1] = 0.0
        state[2] = top
        state[3] = 0.0
    else:
        _scaled_exponentials(market, p, scratch)
        state[1] += 1.0
    held[:] = p
    for i in range(I):
        t = 1.0 / inv[i]
        inv[i] = t
        ws[i] = w[i] * t
        wds[i] = ws[i] * d[i]
        wds2[i] = wds[i] * t


@nb.njit(cache=True, fastmath=_FASTMATH)
def _firm_sums(market, p, scratch):  # pragma: no cover
    """Shares S, Lambda L and the Gamma-tilde margin G of every product (in ``scratch``), through the
    firm-level margin sums A[f,i] = sum_{j of f} m_j E[j,i], firm by firm."""
    E, A, _mx, _inv, ws, wds, wds2, S, L, G = scratch[:10]
    costs, rate, seg = market.costs, market.rate, market.seg
    I = E.shape[1]
    nseg = seg.shape[0] - 1
    for f in range(nseg):
        for i in range(I):
            A[f, i] = 0.0
        for j in range(seg[f], seg[f + 1]):
            mj = (p[j] - costs[j]) / rate[j]
            s_sum = 0.0
            l_sum = 0.0
            for i in range(I):
                e = E[j, i]
                s_sum += ws[i] * e
                l_sum += wds[i] * e
                A[f, i] += mj * e
            S[j] = s_sum
            L[j] = l_sum
        # the firm's rows again while they are still in the L1 cache
        for j in range(seg[f], seg[f + 1]):
            g = 0.0
            for i in range(I):
                g += wds2[i] * E[j, i] * A[f, i]
            G[j] = g * rate[j]


@nb.njit(cache=True, fastmath=_FASTMATH)
def _zeta_eval(market, p, scratch, p_new):  # pragma: no cover
    """One evaluation of the zeta map in one market (a :class:`_Kernel`).

    ``scratch`` from :func:`_scratch`.  Fills shares S, Lambda L, Gamma-tilde margin G (in ``scratch``)
    and p_new; returns the FOC residual max_j |L_j (p_new_j - p_j)|.
    """
    _type_sums(market, p, scratch)
    _firm_sums(market, p, scratch)
    S, L, G = scratch[7], scratch[8], scratch[9]
    costs = market.costs
    foc = 0.0
    for j in range(p.shape[0]):
        lam = L[j]
        li = 1.0 / lam
        if not (abs(li) < _BIG):
            li = _BIG
        pn = costs[j] + li * (G[j] - S[j])
        p_new[j] = pn
        f = abs(lam * (pn - p[j]))
        if not (f <= foc):  # also propagates NaN
            foc = f
    return foc


@nb.njit(cache=True)
def _solve_small(M, rhs, n):  # pragma: no cover
    """Solve the n x n system M x = rhs in place by Gaussian elimination with partial pivoting."""
    for c in range(n):
        piv = c
        best = abs(M[c, c])
        for r in range(c + 1, n):
            if abs(M[r, c]) > best:
                best = abs(M[r, c])
                piv = r
        if piv != c:
            for k in range(n):
                tmp = M[c, k]
                M[c, k] = M[piv, k]
                M[piv, k] = tmp
            tmp = rhs[c]
            rhs[c] = rhs[piv]
            rhs[piv] = tmp
        if M[c, c] == 0.0:
            M[c, c] = 1e-300
        for r in range(c + 1, n):
            factor = M[r, c] / M[c, c]
            for k in range(c, n):
                M[r, k] -= factor * M[c, k]
            rhs[r] -= factor * rhs[c]
    for c in range(n - 1, -1, -1):
        acc = rhs[c]
        for k in range(c + 1, n):
            acc -= M[c, k] * rhs[k]
        rhs[c] = acc / M[c, c]


@nb.njit(cache=True)
def _all_finite(x):  # pragma: no cover
    for v in x:
        if not np.isfinite(v):
            return False
    return True


@nb.njit(cache=True)
def _anderson_memory(J):  # pragma: no cover
    """Anderson mixing state for J products: (dX, dF, prev_x, prev_f, f, gram, gamma, history), history =
    [count of stored differences, next slot, whether a previous point exists]."""
    m = _MEMORY
    return (
        np.zeros((m, J)),
        np.zeros((m, J)),
        np.empty(J),
        np.empty(J),
        np.empty(J),
        np.empty((m, m)),
        np.empty(m),
        np.zeros(3, dtype=np.int64),
    )


@nb.njit(cache=True)
def _push_difference(x, f, memory):  # pragma: no cover
    """Store the differences of point x and residual f from the previous ones (a ring of ``_MEMORY``)
    and make (x, f) the previous point."""
    dX, dF, prev_x, prev_f, _f, _gram, _gamma, history = memory
    if history[2]:
        pos = history[1]
        for j in range(x.shape[0]):
            dX[pos, j] = x[j] - prev_x[j]
            dF[pos, j] = f[j] - prev_f[j]
        history[1] = (pos + 1) % _MEMORY
        if history[0] < _MEMORY:
            history[0] += 1
    prev_x[:] = x
    prev_f[:] = f
    history[2] = 1


@nb.njit(cache=True)
def _mixing_weights(f, memory, count):  # pragma: no cover
    """gamma (in ``memory``) minimising ||f - dF' gamma|| over the ``count`` stored differences, by the
    normal equations regularised with 1e-10 times the largest diagonal entry."""
    _dX, dF, _prev_x, _prev_f, _f, gram, gamma, _history = memory
    J = f.shape[0]
    top = 0.0
    for a in range(count):
        for b in range(a, count):
            acc = 0.0
            for j in range(J):
                acc += dF[a, j] * dF[b, j]
            gram[a, b] = acc
            gram[b, a] = acc
        top = max(top, gram[a, a])
        acc = 0.0
        for j in range(J):
            acc += dF[a, j] * f[j]
        gamma[a] = acc
    reg = 1e-10 * top + 1e-300
    for a in range(count):
        gram[a, a] += reg
    _solve_small(gram, gamma, count)


@nb.njit(cache=True)
def _anderson_step(x, g, memory):  # pragma: no cover
    """Replace x by the Anderson-mixed next point from x and its image g = c + zeta(x): memory
    ``_MEMORY`` differences of points and residuals f = g - x, regularised normal equations."""
    dX, dF, _prev_x, _prev_f, f, _gram, gamma, history = memory
    J = x.shape[0]
    for j in range(J):
        f[j] = g[j] - x[j]
    _push_difference(x, f, memory)
    count = history[0]
    if count == 0:
        x[:] = g
        return
    _mixing_weights(f, memory, count)
    for j in range(J):
        acc = g[j]
        for a in range(count):
            acc -= (dX[a, j] + dF[a, j]) * gamma[a]
        x[j] = acc


@nb.njit(cache=True)
def _foc_at(market, p, scratch, g):  # pragma: no cover
    """max_j |FOC_j| at prices p (shares left in scratch)."""
    _zeta_eval(market, p, scratch, g)
    S, L, G = scratch[7], scratch[8], scratch[9]
    costs = market.costs
    foc_at = 0.0
    for j in range(p.shape[0]):
        r = abs(S[j] + L[j] * (p[j] - costs[j]) - G[j])
        if not (r <= foc_at):
            foc_at = r
    return foc_at


@nb.njit(cache=True)
def _iterate_market(market, start, stopping, scratch, g):  # pragma: no cover
    """The fixed point of one market from ``start`` (same state machine as :func:`_solve_chunk_numpy`,
    see there); returns (prices, evaluations, converged): the image that met the tolerance, else the best
    point found (else the start)."""
    memory = _anderson_memory(start.shape[0])
    x = start.copy()
    best_g = start.copy()
    best_foc = np.inf
    have_best = False
    accelerating = False
    f_ref = np.inf
    since = 0
    restarts = 0
    evals = 0
    while evals < stopping.max_evals:
        foc = _zeta_eval(market, x, scratch, g)
        evals += 1
        finite = np.isfinite(foc) and _all_finite(g)
        if evals == 1:
            f_ref = foc
        if finite and foc < best_foc:
            best_foc = foc
            best_g[:] = g
            have_best = True
            since = 0
        else:
            since += 1
        if finite and foc <= stopping.tol:
            return g.copy(), evals, True
        if stopping.method == 0 or not accelerating:
            if not finite:
                break
            if stopping.method == 1 and foc < _SWITCH * f_ref:
                accelerating = True
                since = 0
            else:
                x[:] = g
                continue
        if (not finite) or foc > _BLOWUP * best_foc or since >= _PATIENCE:
            restarts += 1
            if restarts > _MAX_RESTARTS:
                break
            x[:] = best_g
            memory[7][:] = 0
            accelerating = False
            f_ref = best_foc
            continue
        _anderson_step(x, g, memory)
    return (best_g if have_best else start.copy()), evals, False


@nb.njit(cache=True)
def _solve_market(market, start, stopping, out_p, out_s):  # pragma: no cover
    """Solve one market (a :class:`_Kernel`); writes prices and shares to out_p, out_s and returns
    (evaluations, converged, foc_norm_at_result)."""
    J, I = market.base.shape
    scratch = _scratch(J, I, market.seg.shape[0] - 1)
    g = np.empty(J)
    result, evals, converged = _iterate_market(market, start, stopping, scratch, g)
    foc_at = _foc_at(market, result, scratch, g)
    out_p[:J] = result
    out_s[:J] = scratch[7]
    return evals, converged, foc_at


@nb.njit(cache=True, nogil=True)
def _solve_batch_numba(inputs, which, stopping, outputs):  # pragma: no cover
    """Solve the markets ``which`` (indices) of a batch.  inputs: (delta0 [B,J], x2 [B,J,K], sigma_nu
    [B,I,K] (unused, may be empty, when ``identity``: sigma_nu is the identity), identity, d [B,I], w [B,I],
    costs, rates, start [B,J], n_avail [B], seg_bounds [B,J+1], n_seg [B]),
    products sorted as in :func:`_run_numba`; outputs: (prices [B,J], shares [B,J], evaluations,
    converged, foc_norm [B]), filled for those markets."""
    delta0, x2, sigma_nu, identity, d, w, costs, rates, start, n_avail, seg_bounds, n_seg = inputs
    out_p, out_s, out_evals, out_conv, out_foc = outputs
    K = x2.shape[2]
    I = d.shape[1]
    for b in which:
        J = n_avail[b]
        if J == 0:
            out_evals[b] = 0
            out_conv[b] = True
            out_foc[b] = 0.0
            continue
        base = np.empty((J, I))
        for j in range(J):
            dj = delta0[b, j]
            for i in range(I):
                if identity:  # sigma_nu = I: the same sum without its exact zeros (x * 1 = x, acc + 0 = acc)
                    base[j, i] = dj + x2[b, j, i]
                    continue
                acc = dj
                for k in range(K):
                    acc += x2[b, j, k] * sigma_nu[b, i, k]
                base[j, i] = acc
        seg = seg_bounds[b, : n_seg[b] + 1].copy()
        market = _Kernel(base, d[b], w[b], costs[b, :J].copy(), rates[b, :J].copy(), seg)
        evals, conv, foc = _solve_market(market, start[b, :J].copy(), stopping, out_p[b], out_s[b])
        out_evals[b] = evals
        out_conv[b] = conv
        out_foc[b] = foc


# ----------------------------------------------------------------------------------------------
# numpy path (batched over markets, general ownership)
# ----------------------------------------------------------------------------------------------


def _zeta_numpy(base, d, w, p, costs, H, avail):
    """Batched zeta map: base [b,I,J] non-price utility (-inf unavailable).  Returns
    (p_new, foc_norm, S, L, G)."""
    u = base + d[:, :, None] * p[:, None, :]
    peak = np.maximum(np.max(u, axis=2), 0.0)
    with np.errstate(under="ignore", over="ignore", invalid="ignore", divide="ignore"):
        e = np.exp(u - peak[:, :, None])
        s = e / (np.exp(-peak) + e.sum(axis=2))[:, :, None]
        wd = w * d
        S = np.einsum("bi,bij->bj", w, s)
        L = np.einsum("bi,bij->bj", wd, s)
        margin = np.where(avail, p - costs, 0.0)
        T = np.matmul(s * margin[:, None, :], H.transpose(0, 2, 1))
        G = np.einsum("bi,bij->bj", wd, s * T)
        inv = 1.0 / L
        inv = np.where(np.abs(inv) < _BIG, inv, _BIG)
        p_new = np.where(avail, costs + inv * (G - S), p)
        foc = np.max(np.where(avail, np.abs(L * (p_new - p)), 0.0), axis=1, initial=0.0)
        bad = ~np.all(np.isfinite(p_new), axis=1) | ~np.isfinite(foc)
    foc = np.where(bad, np.nan, foc)
    return p_new, foc, S, L, G


class _ChunkState:
    """Per-market state of the fixed point in :func:`_solve_chunk_numpy` (``b`` markets, ``J`` products)."""

    def __init__(self, start: np.ndarray) -> None:
        b, J = start.shape
        m = _MEMORY
        self.start = start
        self.x, self.result, self.best_g = start.copy(), start.copy(), start.copy()
        self.best_foc, self.f_ref = np.full(b, np.inf), np.full(b, np.inf)
        self.dX, self.dF = np.zeros((b, m, J)), np.zeros((b, m, J))
        self.prev_x, self.prev_f = np.zeros((b, J)), np.zeros((b, J))
        self.count, self.pos = np.zeros(b, dtype=np.int64), np.zeros(b, dtype=np.int64)
        self.since, self.restarts = np.zeros(b, dtype=np.int64), np.zeros(b, dtype=np.int64)
        self.evals = np.zeros(b, dtype=np.int64)
        self.have_best, self.have_prev = np.zeros(b, dtype=bool), np.zeros(b, dtype=bool)
        self.accelerating = np.zeros(b, dtype=bool)
        self.converged, self.done = np.zeros(b, dtype=bool), np.zeros(b, dtype=bool)

    def record(self, act: np.ndarray, g: np.ndarray, foc: np.ndarray, tol: float) -> np.ndarray:
        """Count the evaluation of markets ``act`` (images g, residuals foc), keep new best points and
        finish the converged; returns the mask of markets still live."""
        finite = np.isfinite(foc)
        self.evals[act] += 1
        first = self.evals[act] == 1
        self.f_ref[act[first]] = foc[first]
        better = finite & (foc < self.best_foc[act])
        self.best_foc[act[better]] = foc[better]
        self.best_g[act[better]] = g[better]
        self.have_best[act[better]] = True
        self.since[act] = np.where(better, 0, self.since[act] + 1)
        conv = finite & (foc <= tol)
        self.result[act[conv]] = g[conv]
        self.converged[act[conv]] = True
        self.done[act[conv]] = True
        return ~conv

    def restart(self, ridx: np.ndarray) -> None:
        """Markets ``ridx`` restart plain steps from their best point (or give up after _MAX_RESTARTS)."""
        self.restarts[ridx] += 1
        give_up = self.restarts[ridx] > _MAX_RESTARTS
        self.done[ridx[give_up]] = True
        again = ridx[~give_up]
        self.x[again] = self.best_g[again]
        self.count[again] = 0
        self.pos[again] = 0
        self.have_prev[again] = False
        self.accelerating[again] = False
        self.f_ref[again] = self.best_foc[again]

    def anderson(self, sidx: np.ndarray, gs: np.ndarray) -> None:
        """Anderson-mixed next points of markets ``sidx`` from their images ``gs`` (as :func:`_anderson_step`)."""
        m = _MEMORY
        xs = self.x[sidx]
        f = gs - xs
        hp = self.have_prev[sidx]
        if np.any(hp):
            hidx = sidx[hp]
            self.dX[hidx, self.pos[hidx]] = xs[hp] - self.prev_x[hidx]
            self.dF[hidx, self.pos[hidx]] = f[hp] - self.prev_f[hidx]
            self.pos[hidx] = (self.pos[hidx] + 1) % m
            self.count[hidx] = np.minimum(self.count[hidx] + 1, m)
        self.prev_x[sidx] = xs
        self.prev_f[sidx] = f
        self.have_prev[sidx] = True
        used = np.arange(m)[None, :] < self.count[sidx][:, None]  # [n,m]
        DF = np.where(used[:, :, None], self.dF[sidx], 0.0)
        DX = np.where(used[:, :, None], self.dX[sidx], 0.0)
        gram = np.matmul(DF, DF.transpose(0, 2, 1))
        top = np.max(np.diagonal(gram, axis1=1, axis2=2), axis=1)
        reg = 1e-10 * top + 1e-300
        eye = np.eye(m)
        gram = gram + reg[:, None, None] * eye
        gram = np.where(used[:, :, None] & used[:, None, :], gram, eye)
        rhs = np.where(used, np.einsum("nmj,nj->nm", DF, f), 0.0)
        gamma = np.linalg.solve(gram, rhs[..., None])[..., 0]
        self.x[sidx] = gs - np.einsum("nmj,nm->nj", DX + DF, gamma)


def _solve_chunk_numpy(base, d, w, costs, start, H, avail, stopping: _Stopping):
    """The fixed point for the markets of a chunk, vectorised over markets (same algorithm as the numba
    kernel :func:`_iterate_market`).

    Per market: evaluate ``g = c + zeta(x)`` and the FOC residual; stop when it is <= tol (return g).
    ``simple``: x <- g.  ``anderson``: plain steps until the residual falls below ``_SWITCH`` times its
    value at the (re)start, then Anderson mixing with memory ``_MEMORY`` (regularised normal equations);
    on a non-finite value, a residual ``_BLOWUP`` times the best, or ``_PATIENCE`` evaluations without a
    new best, restart plain steps from the best point found (at most ``_MAX_RESTARTS`` times).
    """
    tol, max_evals, method = stopping
    state = _ChunkState(start)
    while True:
        act = np.flatnonzero(~state.done & (state.evals < max_evals))
        if act.size == 0:
            break
        g, foc, _, _, _ = _zeta_numpy(base[act], d[act], w[act], state.x[act], costs[act], H[act], avail[act])
        finite = np.isfinite(foc)
        live = state.record(act, g, foc, tol)
        # plain phase (always for the simple method)
        plain = live & ~state.accelerating[act]
        state.done[act[plain & ~finite]] = True
        switch = plain & finite & (method == 1) & (foc < _SWITCH * state.f_ref[act])
        state.accelerating[act[switch]] = True
        state.since[act[switch]] = 0
        step_plain = plain & finite & ~switch
        state.x[act[step_plain]] = g[step_plain]
        # accelerated phase
        acc = live & (state.accelerating[act] | switch)
        restart = acc & (~finite | (foc > _BLOWUP * state.best_foc[act]) | (state.since[act] >= _PATIENCE))
        if np.any(restart):
            state.restart(act[restart])
        step = acc & ~restart
        if np.any(step):
            state.anderson(act[step], g[step])
    unconv = ~state.converged
    state.result[unconv] = np.where(state.have_best[unconv, None], state.best_g[unconv], start[unconv])
    return state.result, state.evals, state.converged

def _final_state_numpy(base, d, w, p, costs, H, avail):
    _, _, S, L, G = _zeta_numpy(base, d, w, p, costs, H, avail)
    with np.errstate(invalid="ignore"):
        foc = np.where(avail, np.abs(S + L * np.where(avail, p - costs, 0.0) - G), 0.0)
    return S, np.max(foc, axis=1, initial=0.0)


# ----------------------------------------------------------------------------------------------
# Newton on the FOCs (numpy, one market at a time): the fallback
# ----------------------------------------------------------------------------------------------


def _foc_and_jacobian(base, d, w, p, costs, H, jacobian=True):
    """FOC residual F [J], shares s [J] and the Jacobian dF/dp [J,J] in one market (available products).

    With a_i the price derivative of utility, m = p - c and M_ij = sum_k H_jk s_ik m_k:
    F_j = sum_i w_i s_ij B_ij, B_ij = 1 + a_i (H_jj m_j - M_ij), and
    dF_j/dp_l = 1[j=l] sum_i w_i a_i s_ij (B_ij + H_jj) - sum_i w_i a_i s_ij s_il (B_ij - a_i M_ij)
                - H_jl sum_i w_i a_i s_ij s_il (a_i m_l + 1).
    """
    u = base + d[:, None] * p[None, :]
    peak = np.maximum(np.max(u, axis=1), 0.0)
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        e = np.exp(u - peak[:, None])
        s = e / (np.exp(-peak) + e.sum(axis=1))[:, None]
        m = p - costs
        M = (s * m[None, :]) @ H.T
        h_diag = np.diagonal(H)
        B = 1.0 + d[:, None] * (h_diag[None, :] * m[None, :] - M)
        F = np.einsum("i,ij->j", w, s * B)
        shares = w @ s
        if not jacobian:
            return F, shares, None
        was = (w * d)[:, None] * s  # [I,J]
        jac = -(was * (B - d[:, None] * M)).T @ s
        jac -= H * (was.T @ (s * (d[:, None] * m[None, :] + 1.0)))
        jac[np.diag_indices_from(jac)] += np.einsum("ij,ij->j", was, B + h_diag[None, :])
    return F, shares, jac


def _newton(base, d, w, costs, start, H, tol):
    """Newton's method on the FOCs of one market.

    ``base`` [I,J], ``H`` [J,J], vectors [J] for available products only.  The FOC residual alone is
    badly scaled (tiny for products with tiny shares even when their prices are far off), so the line
    search is an Armijo test on ``||F / s||_2`` with the shares of the current point (the Newton step is
    a descent direction for it), and convergence needs max|F| <= tol and max|F / s| <= ``_NEWTON_REL_TOL``
    within ``_NEWTON_STEPS`` steps.  Returns (prices, evaluations, converged)."""
    p = start.copy()
    F, shares, jac = _foc_and_jacobian(base, d, w, p, costs, H)
    evals = 1
    for _ in range(_NEWTON_STEPS):
        scale = np.where(shares > 0, 1.0 / np.maximum(shares, 1e-300), 1.0)
        value = np.sum((F * scale) ** 2)
        if not np.isfinite(value):
            break
        if np.max(np.abs(F), initial=0.0) <= tol and np.max(np.abs(F * scale), initial=0.0) <= _NEWTON_REL_TOL:
            return p, evals, True
        try:
            step = np.linalg.solve(jac, -F)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)):
            break
        t = 1.0
        for _ in range(40):
            q = p + t * step
            Fq, _, _ = _foc_and_jacobian(base, d, w, q, costs, H, jacobian=False)
            evals += 1
            vq = np.sum((Fq * scale) ** 2)
            if np.isfinite(vq) and vq <= (1.0 - 1e-4 * t) * value:
                break
            t *= 0.5
        else:
            break  # no descent: at rounding level, or stuck at a near-root
        p = q
        F, shares, jac = _foc_and_jacobian(base, d, w, p, costs, H)
        evals += 1
    return p, evals, bool(np.max(np.abs(F), initial=0.0) <= tol)


# ----------------------------------------------------------------------------------------------
# public solver
# ----------------------------------------------------------------------------------------------


def _labels_from_ownership(ownership: np.ndarray, available: np.ndarray) -> np.ndarray | None:
    """Firm labels if ``ownership`` is a 0/1 partition on available products, else None."""
    pair = available[:, :, None] & available[:, None, :]
    own = np.where(pair, ownership, 0.0)
    if not np.all((own == 0.0) | (own == 1.0)):
        return None
    labels = np.argmax(own == 1.0, axis=2)  # first product of the same firm
    same = labels[:, :, None] == labels[:, None, :]
    if not np.array_equal(np.where(pair, same, False), own == 1.0):
        return None
    return labels


def _prepare(delta, products, tastes, costs, start):
    delta = np.asarray(delta, dtype=np.float64)
    if delta.shape != products.price.shape:
        raise ValueError(f"delta {delta.shape} must be [B,J] = {products.price.shape}")
    if products.markets != tastes.markets or products.x2.shape[2] != tastes.sigma_nu.shape[2]:
        raise ValueError("products and tastes disagree on markets or characteristics")
    costs = np.asarray(costs, dtype=np.float64)
    if costs.shape != delta.shape:
        raise ValueError(f"costs {costs.shape} must be [B,J] = {delta.shape}")
    start = products.price if start is None else np.asarray(start, dtype=np.float64)
    if start.shape != delta.shape:
        raise ValueError(f"start {start.shape} must be [B,J] = {delta.shape}")
    avail = products.available
    if not (
        np.all(np.isfinite(costs[avail]))
        and np.all(np.isfinite(start[avail]))
        and np.all(np.isfinite(delta[avail]))
    ):
        raise ValueError("delta, costs and start prices of available products must be finite")
    delta0 = np.where(avail, delta - tastes.alpha_mean[:, None] * products.price, 0.0)
    costs = np.where(avail, costs, 0.0)
    start = np.where(avail, start, products.price)
    return delta0, costs, start


def _writable(array):
    """A C-contiguous, writable array (read-only inputs, e.g. from pandas, would make numba compile
    another specialisation)."""
    array = np.asarray(array)
    if array.flags.c_contiguous and array.flags.writeable:
        return array
    return np.array(array, order="C")


def _thread_count(threads):
    if threads is None:
        return max(1, min(os.cpu_count() or 1, nb.config.NUMBA_NUM_THREADS))
    return max(1, int(threads))


def _is_identity(sigma_nu) -> bool:
    """Whether every market's ``sigma_nu`` [B,I,K] is the identity matrix (checked once if broadcast)."""
    B, I, K = sigma_nu.shape
    if I != K:
        return False
    eye = np.eye(I)
    if B and sigma_nu.strides[0] == 0:
        return bool(np.array_equal(sigma_nu[0], eye))
    return bool(np.array_equal(sigma_nu, np.broadcast_to(eye, sigma_nu.shape)))


_POOLS: dict[int, ThreadPoolExecutor] = {}  # helper threads by count, kept for the process's life
_POOLS_LOCK = threading.Lock()


def _pool(helpers: int) -> ThreadPoolExecutor:
    """The process's pool of ``helpers`` threads (created once: starting threads on every call of
    :func:`solve_prices` costs more than a small batch's solve)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(helpers)
        if pool is None:
            pool = _POOLS[helpers] = ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="evlaunch-prices")
        return pool


def _run_chunks(solve, chunks, workers: int) -> None:
    """``solve(chunk)`` for every chunk on ``workers`` threads, the calling thread one of them: each pulls
    the next chunk in order until none is left (which thread solves a chunk does not change its result)."""
    lock = threading.Lock()
    position = [0]

    def drain() -> None:
        while True:
            with lock:
                k = position[0]
                position[0] += 1
            if k >= len(chunks):
                return
            solve(chunks[k])

    helpers = [_pool(workers - 1).submit(drain) for _ in range(workers - 1)]
    drain()
    for future in helpers:
        future.result()


def _run_numba(market: _Market, costs, start, active, stopping: _Stopping, threads):
    """The fixed point of the ``active`` markets on the numba kernel (ownership a partition into firms);
    returns (prices, shares, evaluations, converged, foc_norm)."""
    delta0, products, tastes, labels = market.delta0, market.products, market.tastes, market.labels
    B, J = delta0.shape
    avail = products.available
    # sort each market's products: available first, grouped by firm
    key = np.where(avail, 0, 1)
    order = np.lexsort((labels, key), axis=1) if B else np.zeros((0, J), dtype=np.int64)
    n_avail = avail.sum(axis=1).astype(np.int64)
    sorted_labels = np.take_along_axis(labels, order, axis=1)
    change = np.ones((B, J), dtype=bool)
    change[:, 1:] = sorted_labels[:, 1:] != sorted_labels[:, :-1]
    change &= np.arange(J)[None, :] < n_avail[:, None]
    n_seg = change.sum(axis=1).astype(np.int64)
    # each market's firm starts, then its count of available products: seg_bounds[b, :n_seg[b] + 1]
    seg_bounds = np.zeros((B, J + 1), dtype=np.int64)
    rows, starts = np.nonzero(change)
    seg_bounds[rows, (np.cumsum(change, axis=1) - 1)[rows, starts]] = starts
    seg_bounds[np.arange(B), n_seg] = n_avail

    def take(values):
        return _writable(np.take_along_axis(values, order, axis=1))

    # consumer types carried as characteristics (sigma_nu = I, e.g. supply.repricing): skip the [B,I,K] copy
    # and the I x K products per utility
    identity = _is_identity(tastes.sigma_nu) and bool(np.all(np.isfinite(products.x2)))

    inputs = (
        take(delta0),
        _writable(np.take_along_axis(products.x2, order[:, :, None], axis=1)),
        np.zeros((1, 1, 1)) if identity else _writable(tastes.sigma_nu),
        identity,
        _writable(tastes.price_derivative),
        _writable(tastes.weights),
        take(costs),
        take(market.rates),
        take(start),
        n_avail,
        seg_bounds,
        n_seg,
    )
    out_p = take(start)
    out_s = np.zeros((B, J))
    out_evals = np.zeros(B, dtype=np.int64)
    out_conv = np.zeros(B, dtype=bool)
    out_foc = np.zeros(B)
    outputs = (out_p, out_s, out_evals, out_conv, out_foc)
    settings = _Stopping(float(stopping.tol), int(stopping.max_evals), int(stopping.method))
    todo = np.flatnonzero(active)
    workers = min(_thread_count(threads), max(1, todo.size // 4))
    if workers <= 1:
        _solve_batch_numba(inputs, todo, settings, outputs)
    else:
        # the kernel releases the GIL; idle threads pull the next chunk of markets, largest first, so a few
        # slow markets do not leave a thread idle (each market's result does not depend on its thread)
        todo = todo[np.argsort(-n_avail[todo], kind="stable")]
        size = max(1, todo.size // (8 * workers))
        chunks = [todo[lo : lo + size] for lo in range(0, todo.size, size)]
        _run_chunks(lambda which: _solve_batch_numba(inputs, which, settings, outputs), chunks, workers)
    prices = np.empty_like(out_p)
    shares = np.empty_like(out_s)
    np.put_along_axis(prices, order, out_p, axis=1)
    np.put_along_axis(shares, order, out_s, axis=1)
    return prices, np.where(avail, shares, 0.0), out_evals, out_conv, out_foc


def _base_utilities(delta0, products, tastes, idx):
    mu = np.matmul(tastes.sigma_nu[idx], products.x2[idx].transpose(0, 2, 1))
    base = delta0[idx][:, None, :] + mu
    return np.where(products.available[idx][:, None, :], base, -np.inf)


def _run_numpy(market: _Market, costs, start, active, stopping: _Stopping, chunk_elements=2_000_000):
    """The fixed point of the ``active`` markets on the numpy path (any ownership), in chunks of about
    ``chunk_elements`` utilities; returns (prices, shares, evaluations, converged, foc_norm)."""
    delta0, products, tastes = market.delta0, market.products, market.tastes
    B, J = delta0.shape
    I = tastes.types
    prices = start.copy()
    shares = np.zeros((B, J))
    evals = np.zeros(B, dtype=np.int64)
    conv = np.zeros(B, dtype=bool)
    foc = np.zeros(B)
    idx_all = np.flatnonzero(active)
    per_chunk = max(1, chunk_elements // max(1, I * J))
    d = tastes.price_derivative
    for lo in range(0, idx_all.size, per_chunk):
        idx = idx_all[lo : lo + per_chunk]
        base = _base_utilities(delta0, products, tastes, idx)
        avail = products.available[idx]
        H = market.H(idx)
        p, e, c = _solve_chunk_numpy(
            base, d[idx], tastes.weights[idx], costs[idx], start[idx], H, avail, stopping
        )
        s, f = _final_state_numpy(base, d[idx], tastes.weights[idx], p, costs[idx], H, avail)
        prices[idx], shares[idx], evals[idx], conv[idx], foc[idx] = p, np.where(avail, s, 0.0), e, c, f
    return prices, shares, evals, conv, foc


@dataclass(frozen=True)
class _Market:
    """A :class:`PricingProblem` checked and prepared for the solvers (costs and start vary per call).

    delta0: ``[B,J]`` mean utilities net of the mean price term; rates: ``[B,J]`` (1 where unavailable);
    labels: ``[B,J]`` firm labels when the ownership is a partition (numba backend), else None;
    ownership: the problem's ``[B,J,J]`` ownership matrix, or None when it follows from ``labels``
    (see :meth:`H`: the numba backend never needs the dense matrix, which for 1000 markets of 150
    products is 180 MB and a fifth of a batch's time)."""

    delta0: np.ndarray
    products: ProductSet
    tastes: ConsumerTastes
    rates: np.ndarray
    labels: np.ndarray | None
    ownership: np.ndarray | None

    def H(self, markets: Any) -> np.ndarray:
        """``[n,J,J]`` ownership of the FOCs of ``markets`` (an index array), with the rates folded in."""
        if self.ownership is not None:
            return self.ownership[markets]
        rates = self.rates[markets]
        return ownership_matrix(self.labels[markets], self.products.available[markets]) * rates[:, :, None] / rates[
            :, None, :]


def _fixed_point(market: _Market, costs, start, active, options: EquilibriumOptions, max_evals, method):
    stopping = _Stopping(options.tol, max_evals, method)
    if options.backend == "numba" and market.labels is not None:
        return _run_numba(market, costs, start, active, stopping, options.threads)
    return _run_numpy(market, costs, start, active, stopping)


def _newton_fallback(market: _Market, costs, start, prices, conv, evals, todo, tol) -> None:
    """Newton on the FOCs for markets ``todo``, from the best point found, then from the start; updates
    prices, conv, evals and todo in place."""
    products, tastes = market.products, market.tastes
    for b in np.flatnonzero(todo):
        idx = np.flatnonzero(products.available[b])
        base = _base_utilities(market.delta0, products, tastes, np.array([b]))[0][:, idx]
        args = (base, tastes.price_derivative[b], tastes.weights[b], costs[b, idx])
        hb = market.H(np.array([b]))[0][np.ix_(idx, idx)]
        for origin in (prices[b, idx], start[b, idx]):
            if not np.all(np.isfinite(origin)):
                continue
            p, e, ok = _newton(*args, origin, hb, tol)
            evals[b] += e
            if ok:
                prices[b, idx] = p
                conv[b] = True
                todo[b] = False
                break


def _state_at(market: _Market, costs, prices, markets) -> tuple[np.ndarray, np.ndarray]:
    """(shares ``[n,J]``, max |FOC| ``[n]``) of ``markets`` at ``prices``."""
    products, tastes = market.products, market.tastes
    base = _base_utilities(market.delta0, products, tastes, markets)
    avail = products.available[markets]
    s, f = _final_state_numpy(
        base, tastes.price_derivative[markets], tastes.weights[markets], prices[markets], costs[markets],
        market.H(markets), avail,
    )
    return np.where(avail, s, 0.0), f


def _solve_unconstrained(market: _Market, costs, start, active, options: EquilibriumOptions):
    """Fixed point for every active market, then for markets that did not converge (cap, cycling,
    non-finite values): Newton on the FOCs from the best point found, then from the start; markets still
    unsolved resume plain fixed-point steps from the best point with the rest of the budget.
    Returns (prices, shares, evaluations, converged, foc_norm, used_fallback)."""
    B = market.delta0.shape[0]
    max_evals = options.max_evaluations
    newton_after = max_evals if options.newton_after is None else options.newton_after
    first_cap = min(newton_after, max_evals) if options.fallback else max_evals
    method = _METHODS[options.method]
    prices, shares, evals, conv, foc = _fixed_point(market, costs, start, active, options, first_cap, method)
    used_fallback = np.zeros(B, dtype=bool)
    if not options.fallback:
        return prices, shares, evals, conv, foc, used_fallback
    todo = active & ~conv
    used_fallback[todo] = True
    _newton_fallback(market, costs, start, prices, conv, evals, todo, options.tol)
    left = max_evals - evals
    resume = todo & (left > 0)
    if np.any(resume):
        p2, _, e2, c2, _ = _fixed_point(
            market, costs, prices, resume, options, int(left[resume].max()), _METHODS["simple"]
        )
        prices[resume], conv[resume] = p2[resume], c2[resume]
        evals[resume] += e2[resume]
    # shares and FOC residual at the returned prices of markets that went through the fallback
    for b in np.flatnonzero(used_fallback):
        s, f = _state_at(market, costs, prices, np.array([b]))
        shares[b], foc[b] = s[0], f[0]
    return prices, shares, evals, conv, foc, used_fallback


def _ownership(problem: PricingProblem, rates: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(firm labels or None, the ownership matrix ``[B,J,J]`` of the FOCs if the problem gives one, else
    None: it follows from the labels and rates, see :meth:`_Market.H`)."""
    B, J = rates.shape
    avail = problem.products.available
    if problem.ownership is not None:
        if problem.firm_ids is not None:
            raise ValueError("give firm_ids or ownership, not both")
        if problem.rates is not None:
            raise ValueError("give rates with firm_ids, not with an ownership matrix (fold them into it)")
        H = np.asarray(problem.ownership, dtype=np.float64)
        if H.shape != (B, J, J):
            raise ValueError(f"ownership {H.shape} must be [B,J,J] = {(B, J, J)}")
        H = np.where(avail[:, :, None] & avail[:, None, :], H, 0.0)
        return _labels_from_ownership(H, avail), H
    ids = problem.products.firm_ids if problem.firm_ids is None else np.asarray(problem.firm_ids)
    if ids is None:
        raise ValueError("give firm_ids or ownership (or ProductSet.firm_ids)")
    if ids.shape != (B, J):
        raise ValueError(f"firm_ids {ids.shape} must be [B,J] = {(B, J)}")
    _, labels = np.unique(ids, return_inverse=True)
    return labels.reshape(B, J).astype(np.int64), None


def _prepare_market(problem: PricingProblem, start) -> tuple[_Market, np.ndarray, np.ndarray]:
    """(the prepared market, costs ``[B,J]``, start prices ``[B,J]``), after checking the problem."""
    products, tastes = problem.products, problem.tastes
    delta0, costs, start_arr = _prepare(problem.delta, products, tastes, problem.costs, start)
    B, J = delta0.shape
    avail = products.available
    rates = np.ones((B, J)) if problem.rates is None else np.asarray(problem.rates, dtype=np.float64)
    if rates.shape != (B, J) or not np.all(rates[avail] > 0) or not np.all(np.isfinite(rates[avail])):
        raise ValueError(f"rates must be [B,J] = {(B, J)} positive finite numbers")
    rates = np.where(avail, rates, 1.0)
    labels, H = _ownership(problem, rates)
    return _Market(delta0, products, tastes, rates, labels, H), costs, start_arr


def _capacity_rounds(market: _Market, costs, capacity, solution, options: EquilibriumOptions) -> np.ndarray:
    """Shadow costs of capacity ``[B,J]`` by the outer loop of the module docstring; updates the
    unconstrained ``solution`` (prices, shares, evaluations, converged, foc_norm, used_fallback) in place."""
    products, tastes = market.products, market.tastes
    prices, shares, evals, conv, foc, used_fallback = solution
    avail = products.available
    B, J = prices.shape
    cap = np.asarray(capacity, dtype=np.float64)
    if cap.shape != (B, J):
        raise ValueError(f"capacity {cap.shape} must be [B,J] = {(B, J)}")
    cap = np.where(np.isnan(cap), np.inf, cap)
    if np.any(avail & (cap <= 0)):
        raise ValueError("capacity of available products must be > 0 (mark a product unavailable instead)")
    constrained = avail & np.isfinite(cap)
    shadow = np.zeros((B, J))
    slack_tol = options.capacity_tol
    for _ in range(options.max_capacity_rounds):
        over = constrained & (shares > cap * (1.0 + slack_tol))
        slack = constrained & (shadow > 0) & (shares < cap * (1.0 - slack_tol))
        todo = np.any(over | slack, axis=1) & conv
        if not np.any(todo):
            break
        s_ij, _ = choice_probabilities(
            np.where(avail, market.delta0, 0.0) + tastes.alpha_mean[:, None] * prices,
            ProductSet(products.x2, prices, avail),
            tastes,
        )
        wd = tastes.weights * tastes.price_derivative
        own = np.einsum("bi,bij->bj", wd, s_ij * (1.0 - s_ij))  # d s_j / d p_j (< 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            semi = own / shares  # d log s_j / d p_j
            step = (np.log(shares) - np.log(cap)) / -semi
        move = (over | slack) & todo[:, None] & np.isfinite(step)
        shadow = np.where(move, np.maximum(shadow + step, 0.0), shadow)
        p2, s2, e2, c2, f2, fb2 = _solve_unconstrained(market, costs + shadow, prices, todo, options)
        prices[todo], shares[todo], conv[todo], foc[todo] = p2[todo], s2[todo], c2[todo], f2[todo]
        evals += e2
        used_fallback |= fb2
    else:
        over = constrained & (shares > cap * (1.0 + slack_tol))
        conv &= ~np.any(over, axis=1)
    return shadow


def solve_prices(
    problem: PricingProblem, *, start: Any = None, options: EquilibriumOptions | None = None
) -> PriceEquilibrium:
    """Bertrand-Nash equilibrium prices in every market of ``problem`` by the zeta-markup fixed point.

    start: ``[B,J]`` starting prices (default ``problem.products.price``, as pyblp).
    options: how to solve (:class:`EquilibriumOptions`; default tolerance ``EQUILIBRIUM_TOLERANCE``).

    Markets are solved independently (a converged market stops updating), so a market's prices do not
    depend on the other markets in the batch.  Warns with :class:`EquilibriumWarning` giving the count
    of markets that did not converge.
    """
    options = EquilibriumOptions() if options is None else options
    market, costs, start_arr = _prepare_market(problem, start)
    B, J = costs.shape
    solution = _solve_unconstrained(market, costs, start_arr, np.ones(B, dtype=bool), options)
    if problem.capacity is not None:
        shadow = _capacity_rounds(market, costs, problem.capacity, solution, options)
    else:
        shadow = np.zeros((B, J))
    prices, shares, evals, conv, foc, used_fallback = solution
    n_bad = int(np.sum(~conv))
    if n_bad:
        warnings.warn(
            f"solve_prices: {n_bad} of {B} markets did not converge (FOC residual above tol={options.tol:g} "
            f"within {options.max_evaluations} evaluations{' and the Newton fallback' if options.fallback else ''}"
            "); their prices are the best iterate found — see PriceEquilibrium.converged and foc_norm",
            EquilibriumWarning,
            stacklevel=2,
        )
    avail = market.products.available
    prices = np.where(avail, prices, start_arr)
    return PriceEquilibrium(prices, np.where(avail, shares, 0.0), evals, conv, foc, used_fallback, shadow)
