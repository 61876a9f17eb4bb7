"""Benchmark: Bertrand-Nash equilibrium prices, evlaunch vs pyblp, in one process.

1. The 20 markets of pyblp's BLP (1995) automobile data, random-coefficients specification of pyblp's
   tutorial at BLP's published parameter values (sigma = diag(3.612, 0, 4.628, 1.818, 1.050, 2.056),
   pi on prices x 1/income = -43.501), marginal costs from pyblp's ``compute_costs``, counterfactual
   costs x 1.1, both solvers starting from observed prices: per-market iteration counts and the
   largest relative price difference.
2. 1,000 perturbed markets: the 20 markets x 50 replicas, each product's cost x U(1.0, 1.25) (seed
   2023).  pyblp's ``compute_prices`` takes costs (not mean utilities), so only costs are perturbed and
   both solvers face identical problems.  pyblp is timed on the first ``PYBLP_REPLICAS`` replicas and
   scaled per market; evlaunch solves all 1,000 in one batched call.

The last line reports the largest relative price difference on the 20 BLP markets (evlaunch's default
solver vs pyblp's default ``compute_prices``) and the speedup on the 1,000-market batch.  Differences
of ~1e-6 come from pyblp's stopping rule (|Lambda (p' - p)| < 1e-12 leaves that much slack for
tiny-share products); a tight solve is printed as the referee.

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

import numpy as np
import pandas as pd
import pyblp

from evlaunch.market.rc_logit import ConsumerTastes, ProductSet, pad_markets
from evlaunch.supply.equilibrium import EquilibriumOptions, PricingProblem, solve_prices

SIGMA = np.array([3.612, 0.0, 4.628, 1.818, 1.050, 2.056])
PI_PRICE_INCOME = -43.501
REPLICAS = 50
PYBLP_REPLICAS = 3
SEED = 2023


def blas_single_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def build():
    pyblp.options.verbose = False
    products = pd.read_csv(pyblp.data.BLP_PRODUCTS_LOCATION)
    agents = pd.read_csv(pyblp.data.BLP_AGENTS_LOCATION)
    formulations = (
        pyblp.Formulation("1 + hpwt + air + mpd + space"),
        pyblp.Formulation("1 + prices + hpwt + air + mpd + space"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # importance-sampling weights do not sum to 1
        problem = pyblp.Problem(formulations, products, pyblp.Formulation("0 + I(1 / income)"), agents)
        results = problem.solve(
            np.diag(SIGMA),
            np.c_[[0, PI_PRICE_INCOME, 0, 0, 0, 0]],
            method="1s",
            optimization=pyblp.Optimization("return"),
            check_optimality="gradient",
        )
    market_ids = products["market_ids"].to_numpy()
    x2, mask, unique = pad_markets(
        market_ids, np.c_[np.ones(len(products)), products[["hpwt", "air", "mpd", "space"]]]
    )

    def pad(values, fill=0.0):
        return pad_markets(market_ids, np.asarray(values).ravel(), fill)[0]

    nodes = pad_markets(agents["market_ids"], agents[[f"nodes{k}" for k in range(5)]].to_numpy())[0]
    income = pad_markets(agents["market_ids"], agents["income"].to_numpy())[0]
    weights = pad_markets(agents["market_ids"], agents["weights"].to_numpy())[0]
    tastes = ConsumerTastes(0.0, PI_PRICE_INCOME / income, nodes * SIGMA[SIGMA != 0], weights)
    product_set = ProductSet(x2, pad(products["prices"]), mask, pad(products["firm_ids"], -1))
    return results, market_ids, unique, mask, pad, product_set, tastes, pad(results.delta)


def pyblp_iterations(results, market_ids, unique, costs):
    counts = []
    for t in unique:
        calls = []

        def norm(x, calls=calls):  # called once per evaluation of the zeta map
            calls.append(1)
            return np.abs(x).max()

        results.compute_prices(
            costs=costs[market_ids == t],
            market_id=t,
            iteration=pyblp.Iteration("simple", {"atol": 1e-12, "norm": norm}),
        )
        counts.append(len(calls))
    return np.array(counts)


def rel_diff(ours, theirs, mask):
    return float(np.max(np.abs(ours[mask] - theirs[mask]) / np.abs(theirs[mask])))


def replicate(array, times):
    return np.concatenate([array] * times, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    with blas_single_thread():
        results, market_ids, unique, mask, pad, products, tastes, delta = build()
        costs_long = results.compute_costs()
        costs = pad(costs_long)
        B = mask.shape[0]

        t0 = time.perf_counter()
        solve_prices(
            PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs * 1.1),
            options=EquilibriumOptions(threads=1),
        )  # JIT compile or load the disk cache
        print(
            f"numba kernel ready (compile or cache load) in {time.perf_counter() - t0:.2f} s; "
            f"threads={args.threads}"
        )

        # ---- 1. the 20 BLP markets, costs x 1.1 --------------------------------------------------
        t0 = time.perf_counter()
        theirs_long = results.compute_prices(costs=costs_long * 1.1)
        t_pyblp20 = time.perf_counter() - t0
        theirs = pad(theirs_long)
        their_iters = pyblp_iterations(results, market_ids, unique, costs_long * 1.1)
        ours = {}
        for method in ("anderson", "simple"):
            t0 = time.perf_counter()
            ours[method] = solve_prices(
                PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs * 1.1),
                options=EquilibriumOptions(method=method, threads=args.threads),
            )
            ours[method + "_time"] = time.perf_counter() - t0
        print("\n20 BLP markets, costs x 1.1, start = observed prices")
        print(
            f"{'market':>6} {'J':>4} {'pyblp':>6} {'simple':>7} {'anderson':>9}   max rel diff (simple, anderson)"
        )
        for b in range(B):
            row = mask[b]
            d_s = rel_diff(ours["simple"].prices[b : b + 1], theirs[b : b + 1], row[None])
            d_a = rel_diff(ours["anderson"].prices[b : b + 1], theirs[b : b + 1], row[None])
            print(
                f"{unique[b]:>6} {row.sum():>4} {their_iters[b]:>6} {ours['simple'].iterations[b]:>7} "
                f"{ours['anderson'].iterations[b]:>9}   {d_s:.2e}  {d_a:.2e}"
            )
        diff_simple = rel_diff(ours["simple"].prices, theirs, mask)
        diff_default = rel_diff(ours["anderson"].prices, theirs, mask)
        print(
            f"total evaluations: pyblp {their_iters.sum()}, simple {ours['simple'].iterations.sum()}, "
            f"anderson {ours['anderson'].iterations.sum()}"
        )
        print(
            f"max rel price diff vs pyblp: simple {diff_simple:.2e}, anderson (default) {diff_default:.2e} "
            "(pyblp's stopping rule |Lambda dp| < 1e-12 leaves ~1e-6 relative slack for tiny-share products)"
        )
        print(
            f"time: pyblp {t_pyblp20:.3f} s, simple {ours['simple_time']:.4f} s, "
            f"anderson {ours['anderson_time']:.4f} s"
        )

        # ---- 2. 1,000 perturbed markets -------------------------------------------------------------
        rng = np.random.default_rng(SEED)
        factors_long = rng.uniform(1.0, 1.25, size=(REPLICAS, costs_long.size))
        n = REPLICAS * B
        batch_products = ProductSet(
            replicate(products.x2, REPLICAS),
            replicate(products.price, REPLICAS),
            replicate(products.available, REPLICAS),
            replicate(products.firm_ids, REPLICAS),
        )
        batch_tastes = ConsumerTastes(
            0.0,
            replicate(tastes.alpha_i, REPLICAS),
            replicate(tastes.sigma_nu, REPLICAS),
            replicate(tastes.weights, REPLICAS),
        )
        batch_delta = replicate(delta, REPLICAS)
        batch_costs = np.concatenate([pad(costs_long.ravel() * f) for f in factors_long], axis=0)
        batch_mask = replicate(mask, REPLICAS)

        t0 = time.perf_counter()
        theirs_subset = [
            pad(results.compute_prices(costs=costs_long * f[:, None])) for f in factors_long[:PYBLP_REPLICAS]
        ]
        t_pyblp = (time.perf_counter() - t0) / (PYBLP_REPLICAS * B)

        timings = {}
        for threads in sorted({1, args.threads}):
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                eq = solve_prices(
                    PricingProblem(
                        delta=batch_delta, products=batch_products, tastes=batch_tastes, costs=batch_costs
                    ),
                    options=EquilibriumOptions(threads=threads),
                )
                best = min(best, time.perf_counter() - t0)
            timings[threads] = best / n
        assert eq.converged.all(), "some perturbed markets did not converge"
        sub = slice(0, PYBLP_REPLICAS * B)
        theirs_batch = np.concatenate(theirs_subset, axis=0)
        diff_batch = rel_diff(eq.prices[sub], theirs_batch, batch_mask[sub])
        # who is closer to the exact fixed point?  A tight solve (FOC residual <= 1e-15) as reference.
        sub_products = ProductSet(
            batch_products.x2[sub],
            batch_products.price[sub],
            batch_products.available[sub],
            batch_products.firm_ids[sub],
        )
        sub_tastes = ConsumerTastes(
            0.0, batch_tastes.alpha_i[sub], batch_tastes.sigma_nu[sub], batch_tastes.weights[sub]
        )
        tight = solve_prices(
            PricingProblem(
                delta=batch_delta[sub], products=sub_products, tastes=sub_tastes, costs=batch_costs[sub]
            ),
            options=EquilibriumOptions(tol=1e-15),
        )
        pyblp_vs_tight = rel_diff(theirs_batch, tight.prices, batch_mask[sub])
        ours_vs_tight = rel_diff(eq.prices[sub], tight.prices, batch_mask[sub])

        t0 = time.perf_counter()
        numpy_n = 2 * B
        solve_prices(
            PricingProblem(
                delta=batch_delta[:numpy_n],
                products=ProductSet(
                    batch_products.x2[:numpy_n],
                    batch_products.price[:numpy_n],
                    batch_products.available[:numpy_n],
                    batch_products.firm_ids[:numpy_n],
                ),
                tastes=ConsumerTastes(
                    0.0,
                    batch_tastes.alpha_i[:numpy_n],
                    batch_tastes.sigma_nu[:numpy_n],
                    batch_tastes.weights[:numpy_n],
                ),
                costs=batch_costs[:numpy_n],
            ),
            options=EquilibriumOptions(backend="numpy"),
        )
        t_numpy = (time.perf_counter() - t0) / numpy_n

        print(
            f"\n{n} perturbed markets (costs x U(1, 1.25), seed {SEED}); pyblp timed on {PYBLP_REPLICAS * B} "
            "markets and scaled per market"
        )
        print(
            f"evaluations per market (anderson): mean {eq.iterations.mean():.1f}, max {eq.iterations.max()}; "
            f"fallbacks {int(eq.fallback.sum())}"
        )
        print(
            f"max rel price diff vs pyblp on the {PYBLP_REPLICAS * B} markets pyblp solved: {diff_batch:.2e}; "
            f"vs a tight solve (FOC <= 1e-15): pyblp {pyblp_vs_tight:.2e}, evlaunch {ours_vs_tight:.2e}"
        )
        print(f"pyblp compute_prices : {1 / t_pyblp:10.1f} markets/s  ({t_pyblp * 1e3:.2f} ms/market)")
        print(
            f"evlaunch numpy       : {1 / t_numpy:10.1f} markets/s  ({t_numpy * 1e3:.2f} ms/market, {numpy_n} markets)"
        )
        for threads, t in timings.items():
            print(
                f"evlaunch numba {threads} thr : {1 / t:10.1f} markets/s  ({t * 1e3:.3f} ms/market)  "
                f"speedup {t_pyblp / t:.1f}x"
            )
        speedup = t_pyblp / timings[args.threads]
        max_rel_diff = diff_default  # the 20 BLP markets, default solver vs pyblp's compute_prices
    print(f"equilibrium: max_rel_diff={max_rel_diff:.2e} speedup={speedup:.1f}x")


if __name__ == "__main__":
    main()
