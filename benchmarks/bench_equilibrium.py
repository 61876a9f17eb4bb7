"""Benchmark: Bertrand-Nash equilibrium prices, evlaunch vs pyblp, in one process, on two data sets.

* BLP: the 20 markets of pyblp's BLP (1995) automobile data, random-coefficients specification of
  pyblp's tutorial at BLP's published parameter values (sigma = diag(3.612, 0, 4.628, 1.818, 1.050,
  2.056), pi on prices x 1/income = -43.501).
* Nevo: the 94 markets of pyblp's Nevo (2000) fake cereal data, the specification of pyblp's tutorial
  (product fixed effects; random coefficients on 1, prices, sugar, mushy with income, income squared,
  age and child interactions) at the tutorial's estimates.

For each: marginal costs from pyblp's ``compute_costs``, counterfactual costs x 1.1, both solvers
starting from observed prices: per-market iteration counts and the largest relative price difference;
then ``REPLICAS`` perturbed copies of the markets, each product's cost x U(1.0, 1.25) (seed 2023).
pyblp's ``compute_prices`` takes costs (not mean utilities), so only costs are perturbed and both
solvers face identical problems.  pyblp is timed on the first ``PYBLP_REPLICAS`` replicas and scaled
per market; evlaunch solves all replicas in one batched call.  The speedup is split into its two factors:
evaluations of the zeta map per market (pyblp's equal the simple iteration's from the same start) and
time per evaluation; the markets needing over ``SLOW_EVALUATIONS`` evaluations are counted as the slow
tail.  A side-by-side table ends the run.

The last line reports the worse of the two data sets: the largest relative price difference on the
original markets (evlaunch's default solver vs pyblp's default ``compute_prices``) and the smaller
speedup on the perturbed batch.  Differences of ~1e-7 come from pyblp's stopping rule (|Lambda
(p' - p)| < 1e-12 leaves that much slack for tiny-share products); a tight solve is printed as the
referee.

BLAS is limited to one thread (threadpoolctl) for both: multithreaded OpenBLAS is slower on a busy
2-core machine, so this is the fairer setting for pyblp.  evlaunch spreads markets over all cores
(``--threads``, default the CPU count); the single-thread figure is printed too.

Run: .venv/bin/python benchmarks/bench_equilibrium.py
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyblp

from evlaunch.market.rc_logit import ConsumerTastes, ProductSet, pad_markets
from evlaunch.supply.equilibrium import EquilibriumOptions, PricingProblem, solve_prices

SIGMA = np.array([3.612, 0.0, 4.628, 1.818, 1.050, 2.056])
PI_PRICE_INCOME = -43.501
# pyblp's Nevo tutorial estimates (X2 = 1, prices, sugar, mushy; demographics income, income^2, age, child)
NEVO_SIGMA = np.diag([0.5579, 3.312, -0.005784, 0.09349])
NEVO_PI = np.array(
    [
        [2.292, 0.0, 1.284, 0.0],
        [588.3, -30.19, 0.0, 11.05],
        [-0.3849, 0.0, 0.05240, 0.0],
        [0.7481, 0.0, -1.353, 0.0],
    ]
)
REPLICAS = {"BLP": 50, "Nevo": 10}
PYBLP_REPLICAS = 3
SLOW_EVALUATIONS = 200  # a market needing more evaluations than this counts as the slow tail
SEED = 2023


def blas_single_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


@dataclass
class Markets:
    """One data set in pyblp form (``results``) and in evlaunch's padded form."""

    name: str
    results: Any
    market_ids: np.ndarray
    unique: np.ndarray
    mask: np.ndarray
    products: ProductSet
    tastes: ConsumerTastes
    delta: np.ndarray

    def pad(self, values, fill=0.0):
        return pad_markets(self.market_ids, np.asarray(values).ravel(), fill)[0]


def _solve_at(problem, sigma, pi):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # importance-sampling weights do not sum to 1
        return problem.solve(
            sigma, pi, method="1s", optimization=pyblp.Optimization("return"), check_optimality="gradient"
        )


def build_blp() -> Markets:
    products = pd.read_csv(pyblp.data.BLP_PRODUCTS_LOCATION)
    agents = pd.read_csv(pyblp.data.BLP_AGENTS_LOCATION)
    formulations = (
        pyblp.Formulation("1 + hpwt + air + mpd + space"),
        pyblp.Formulation("1 + prices + hpwt + air + mpd + space"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        problem = pyblp.Problem(formulations, products, pyblp.Formulation("0 + I(1 / income)"), agents)
    results = _solve_at(problem, np.diag(SIGMA), np.c_[[0, PI_PRICE_INCOME, 0, 0, 0, 0]])
    market_ids = products["market_ids"].to_numpy()
    x2, mask, unique = pad_markets(
        market_ids, np.c_[np.ones(len(products)), products[["hpwt", "air", "mpd", "space"]]]
    )
    nodes = pad_markets(agents["market_ids"], agents[[f"nodes{k}" for k in range(5)]].to_numpy())[0]
    income = pad_markets(agents["market_ids"], agents["income"].to_numpy())[0]
    weights = pad_markets(agents["market_ids"], agents["weights"].to_numpy())[0]
    tastes = ConsumerTastes(0.0, PI_PRICE_INCOME / income, nodes * SIGMA[SIGMA != 0], weights)
    data = Markets("BLP", results, market_ids, unique, mask, None, tastes, None)  # type: ignore[arg-type]
    data.products = ProductSet(x2, data.pad(products["prices"]), mask, data.pad(products["firm_ids"], -1))
    data.delta = data.pad(results.delta)
    return data


def build_nevo() -> Markets:
    products = pd.read_csv(pyblp.data.NEVO_PRODUCTS_LOCATION)
    agents = pd.read_csv(pyblp.data.NEVO_AGENTS_LOCATION)
    formulations = (
        pyblp.Formulation("0 + prices", absorb="C(product_ids)"),
        pyblp.Formulation("1 + prices + sugar + mushy"),
    )
    demographics = ["income", "income_squared", "age", "child"]
    problem = pyblp.Problem(
        formulations, products, pyblp.Formulation("0 + " + " + ".join(demographics)), agents
    )
    results = _solve_at(problem, NEVO_SIGMA, NEVO_PI)
    market_ids = products["market_ids"].to_numpy()
    x2, mask, unique = pad_markets(market_ids, np.c_[np.ones(len(products)), products[["sugar", "mushy"]]])
    nodes = pad_markets(agents["market_ids"], agents[[f"nodes{k}" for k in range(4)]].to_numpy())[0]
    demo = pad_markets(agents["market_ids"], agents[demographics].to_numpy())[0]
    weights = pad_markets(agents["market_ids"], agents["weights"].to_numpy())[0]
    # each type's taste for X2 column k: sigma[k] @ nu_i + pi[k] @ d_i; column 1 (prices) is alpha_i
    taste = np.einsum("kl,bil->bik", NEVO_SIGMA, nodes) + np.einsum("kl,bil->bik", NEVO_PI, demo)
    alpha = float(np.asarray(results.beta).ravel()[0])
    tastes = ConsumerTastes(alpha, taste[:, :, 1], taste[:, :, [0, 2, 3]], weights)
    data = Markets("Nevo", results, market_ids, unique, mask, None, tastes, None)  # type: ignore[arg-type]
    data.products = ProductSet(x2, data.pad(products["prices"]), mask, data.pad(products["firm_ids"], -1))
    data.delta = data.pad(results.delta)
    return data


def pyblp_iterations(data: Markets, costs):
    counts = []
    for t in data.unique:
        calls = []

        def norm(x, calls=calls):  # called once per evaluation of the zeta map
            calls.append(1)
            return np.abs(x).max()

        data.results.compute_prices(
            costs=costs[data.market_ids == t],
            market_id=t,
            iteration=pyblp.Iteration("simple", {"atol": 1e-12, "norm": norm}),
        )
        counts.append(len(calls))
    return np.array(counts)


def rel_diff(ours, theirs, mask):
    return float(np.max(np.abs(ours[mask] - theirs[mask]) / np.abs(theirs[mask])))


def replicate(array, times):
    return np.concatenate([array] * times, axis=0)


def problem_of(delta, products, tastes, costs, rows=slice(None)) -> PricingProblem:
    """The pricing problem of the markets ``rows``."""
    sub_products = ProductSet(
        products.x2[rows], products.price[rows], products.available[rows], products.firm_ids[rows]
    )
    sub_tastes = ConsumerTastes(
        tastes.alpha_mean[rows], tastes.alpha_i[rows], tastes.sigma_nu[rows], tastes.weights[rows]
    )
    return PricingProblem(delta=delta[rows], products=sub_products, tastes=sub_tastes, costs=costs[rows])


def compare_observed(data: Markets, costs_long, threads: int) -> dict:
    """Part 1: the original markets, costs x 1.1."""
    costs = data.pad(costs_long)
    problem = problem_of(data.delta, data.products, data.tastes, costs * 1.1)
    t0 = time.perf_counter()
    theirs = data.pad(data.results.compute_prices(costs=costs_long * 1.1))
    t_pyblp = time.perf_counter() - t0
    their_iters = pyblp_iterations(data, costs_long * 1.1)
    ours, times = {}, {}
    for method in ("anderson", "simple"):
        t0 = time.perf_counter()
        ours[method] = solve_prices(problem, options=EquilibriumOptions(method=method, threads=threads))
        times[method] = time.perf_counter() - t0
    print(f"\n{data.name}: {data.mask.shape[0]} markets, costs x 1.1, start = observed prices")
    print(
        f"{'market':>8} {'J':>4} {'pyblp':>6} {'simple':>7} {'anderson':>9}   max rel diff (simple, anderson)"
    )
    for b in range(data.mask.shape[0]):
        row = data.mask[b][None]
        d_s = rel_diff(ours["simple"].prices[b : b + 1], theirs[b : b + 1], row)
        d_a = rel_diff(ours["anderson"].prices[b : b + 1], theirs[b : b + 1], row)
        print(
            f"{data.unique[b]!s:>8} {row.sum():>4} {their_iters[b]:>6} {ours['simple'].iterations[b]:>7} "
            f"{ours['anderson'].iterations[b]:>9}   {d_s:.2e}  {d_a:.2e}"
        )
    diff_simple = rel_diff(ours["simple"].prices, theirs, data.mask)
    diff_default = rel_diff(ours["anderson"].prices, theirs, data.mask)
    print(
        f"total evaluations: pyblp {their_iters.sum()}, simple {ours['simple'].iterations.sum()}, "
        f"anderson {ours['anderson'].iterations.sum()}"
    )
    print(
        f"max rel price diff vs pyblp: simple {diff_simple:.2e}, anderson (default) {diff_default:.2e} "
        "(pyblp's stopping rule |Lambda dp| < 1e-12 leaves slack for tiny-share products)"
    )
    print(f"time: pyblp {t_pyblp:.3f} s, simple {times['simple']:.4f} s, anderson {times['anderson']:.4f} s")
    return {
        "max_rel_diff": diff_default,
        "evaluations": (their_iters.sum(), ours["anderson"].iterations.sum()),
    }


def compare_batch(data: Markets, costs_long, threads: int) -> dict:
    """Part 2: REPLICAS perturbed copies of the markets, one batched call."""
    replicas, B = REPLICAS[data.name], data.mask.shape[0]
    rng = np.random.default_rng(SEED)
    factors_long = rng.uniform(1.0, 1.25, size=(replicas, costs_long.size))
    n = replicas * B
    products, tastes = data.products, data.tastes
    batch_products = ProductSet(
        *(
            replicate(a, replicas)
            for a in (products.x2, products.price, products.available, products.firm_ids)
        )
    )
    batch_tastes = ConsumerTastes(
        replicate(tastes.alpha_mean, replicas),
        *(replicate(a, replicas) for a in (tastes.alpha_i, tastes.sigma_nu, tastes.weights)),
    )
    batch_delta = replicate(data.delta, replicas)
    batch_costs = np.concatenate([data.pad(costs_long.ravel() * f) for f in factors_long], axis=0)
    batch_mask = replicate(data.mask, replicas)
    batch = problem_of(batch_delta, batch_products, batch_tastes, batch_costs)

    t0 = time.perf_counter()
    theirs_subset = [
        data.pad(data.results.compute_prices(costs=costs_long * f[:, None]))
        for f in factors_long[:PYBLP_REPLICAS]
    ]
    t_pyblp = (time.perf_counter() - t0) / (PYBLP_REPLICAS * B)
    timings = {}
    for count in sorted({1, threads}):
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            eq = solve_prices(batch, options=EquilibriumOptions(threads=count))
            best = min(best, time.perf_counter() - t0)
        timings[count] = best / n
    assert eq.converged.all(), "some perturbed markets did not converge"
    sub = slice(0, PYBLP_REPLICAS * B)
    theirs_batch = np.concatenate(theirs_subset, axis=0)
    diff_batch = rel_diff(eq.prices[sub], theirs_batch, batch_mask[sub])
    # who is closer to the exact fixed point?  A tight solve (FOC residual <= 1e-15) as reference.
    tight = solve_prices(
        problem_of(batch_delta, batch_products, batch_tastes, batch_costs, sub),
        options=EquilibriumOptions(tol=1e-15),
    )
    pyblp_vs_tight = rel_diff(theirs_batch, tight.prices, batch_mask[sub])
    ours_vs_tight = rel_diff(eq.prices[sub], tight.prices, batch_mask[sub])
    # where the ratio comes from: evaluations (pyblp's = the simple iteration's from the same start, as the
    # observed markets show) x time per evaluation; and the slow tail of the accelerated iteration
    simple_sub = solve_prices(
        problem_of(batch_delta, batch_products, batch_tastes, batch_costs, sub),
        options=EquilibriumOptions(method="simple", threads=1),
    )
    evals_pyblp = simple_sub.iterations.mean()
    evals_ours = eq.iterations[sub].mean()  # on the same markets
    slow = eq.iterations > SLOW_EVALUATIONS
    numpy_n = 2 * B
    t0 = time.perf_counter()
    solve_prices(
        problem_of(batch_delta, batch_products, batch_tastes, batch_costs, slice(0, numpy_n)),
        options=EquilibriumOptions(backend="numpy"),
    )
    t_numpy = (time.perf_counter() - t0) / numpy_n
    print(
        f"\n{data.name}: {n} perturbed markets (costs x U(1, 1.25), seed {SEED}); pyblp timed on "
        f"{PYBLP_REPLICAS * B} markets and scaled per market"
    )
    print(
        f"evaluations per market (anderson): mean {eq.iterations.mean():.1f}, max {eq.iterations.max()}; "
        f"fallbacks {int(eq.fallback.sum())}"
    )
    print(
        f"max rel price diff vs pyblp on the {PYBLP_REPLICAS * B} markets pyblp solved: {diff_batch:.2e}; "
        f"vs a tight solve (FOC <= 1e-15): pyblp {pyblp_vs_tight:.2e}, evlaunch {ours_vs_tight:.2e}"
    )
    print(
        f"evaluations per market: pyblp (= simple) {evals_pyblp:.1f} on the {PYBLP_REPLICAS * B} markets, "
        f"evlaunch {evals_ours:.1f} ({evals_pyblp / evals_ours:.1f}x fewer; {eq.iterations.mean():.1f} on all {n}); "
        f"{int(slow.sum())} markets over {SLOW_EVALUATIONS} evaluations take {eq.iterations[slow].sum() / eq.iterations.sum():.0%} of them"
    )
    per_eval_pyblp, per_eval_ours = t_pyblp / evals_pyblp, timings[1] / eq.iterations.mean()
    print(
        f"time per evaluation: pyblp {per_eval_pyblp * 1e3:.3f} ms, evlaunch 1 thr {per_eval_ours * 1e3:.3f} ms "
        f"({per_eval_pyblp / per_eval_ours:.1f}x)"
    )
    print(f"pyblp compute_prices : {1 / t_pyblp:10.1f} markets/s  ({t_pyblp * 1e3:.2f} ms/market)")
    print(
        f"evlaunch numpy       : {1 / t_numpy:10.1f} markets/s  ({t_numpy * 1e3:.2f} ms/market, {numpy_n} markets)"
    )
    for count, t in timings.items():
        print(
            f"evlaunch numba {count} thr : {1 / t:10.1f} markets/s  ({t * 1e3:.3f} ms/market)  "
            f"speedup {t_pyblp / t:.1f}x"
        )
    return {
        "speedup": t_pyblp / timings[threads],
        "speedup_1": t_pyblp / timings[1],
        "batch_diff": diff_batch,
        "markets": n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    pyblp.options.verbose = False
    rows = {}
    with blas_single_thread():
        sets = [build_blp(), build_nevo()]
        t0 = time.perf_counter()
        for data in sets:  # JIT compile or load the disk cache
            costs = data.pad(data.results.compute_costs())
            solve_prices(
                problem_of(data.delta, data.products, data.tastes, costs * 1.1),
                options=EquilibriumOptions(threads=1),
            )
        print(
            f"numba kernel ready (compile or cache load) in {time.perf_counter() - t0:.2f} s; threads={args.threads}"
        )
        for data in sets:
            costs_long = data.results.compute_costs()
            rows[data.name] = compare_observed(data, costs_long, args.threads) | compare_batch(
                data, costs_long, args.threads
            )
    print(
        f"\n{'data set':<8} {'markets':>8} {'batch':>6} {'evals pyblp/ours':>17} {'max rel diff':>13} "
        f"{'batch diff':>11} {'speedup 1 thr':>14} {'speedup':>8}"
    )
    for name, row in rows.items():
        theirs, ours = row["evaluations"]
        print(
            f"{name:<8} {len(sets[0].unique) if name == 'BLP' else len(sets[1].unique):>8} {row['markets']:>6} "
            f"{theirs / ours:>16.1f}x {row['max_rel_diff']:>13.2e} {row['batch_diff']:>11.2e} "
            f"{row['speedup_1']:>13.1f}x {row['speedup']:>7.1f}x"
        )
    max_rel_diff = max(row["max_rel_diff"] for row in rows.values())
    speedup = min(row["speedup"] for row in rows.values())
    print(f"equilibrium: max_rel_diff={max_rel_diff:.2e} speedup={speedup:.1f}x")


if __name__ == "__main__":
    main()
