"""Consumer types: the buyers of each region as a finite population of types (random-coefficients demand).

Region r (`market.regions`) is split into Q equally weighted types (`market.tastes.types_per_region`).
Type t of region r(t) has

    weight            w_t = w_r / Q
    price coefficient alpha * m_t,  m_t proportional to m_r * exp(income_dispersion * z_t0): price
                      sensitivity is proportional to 1 / income with log income normal within the region
                      (BLP's price x 1/income term); normalised so the buyer-weighted mean of m_t is 1
    tastes            sigma_c * z_tc for each characteristic c of CHARACTERISTICS

and gets from product k the utility

    u[t, k] = xi[k] + alpha * m_t * p_eff[k] + extra[r(t), k] + sum_c sigma_c * z_tc * x[k, c]

(`extra`: the regional NEV terms of `market.regions`; eps type-I extreme value; outside option 0). The
nodes z ([Q, 1 + C]) are the same for every region and draw: scrambled Halton points with a fixed seed
mapped to standard normals, then centred and whitened so that across a region's Q types every column has
mean 0, standard deviation 1 and no correlation with the others (exactly when Q > 1 + C; with fewer
types they are centred and scaled only). So sigma_c is the taste's spread across types whatever Q is,
and the Monte Carlo varies the sigmas, never the nodes.

With Q = 1, or every sigma and the income dispersion 0, demand is logit within each region.

Product characteristics x[k, c] (`characteristic_matrix`):
  new_car  1 for every product: the taste for buying a new car at all (it lowers diversion to no purchase)
  nev      1 for BEVs and PHEVs
  suv      1 for SUVs, 0.5 for 'sedan/SUV', 0 otherwise
  size     segment steps from the A segment (A00 -2, A0 -1, A 0, B 1, C 2, D 3)
  range    log(range / 500 km) for BEVs, 0 for other powertrains
  adas     1 where the data name an ADAS feature; `market.tastes.adas_unknown` where they are silent
  brand    1 for the entrant only (the taste for its maker's brand)
The 'other' aggregates take the sales-weighted means of the named models of their powertrain.

Pure array functions; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
from scipy.stats import norm, qmc

from evlaunch.config.parameters import TasteParameters
from evlaunch.errors import DataError
from evlaunch.market.regions import RegionSet

CHARACTERISTICS = ("new_car", "nev", "suv", "size", "range", "adas", "brand")
SIGMA_FIELDS = {name: f"sigma_{name}" for name in CHARACTERISTICS}
SEGMENT_STEPS = {"A00": -2.0, "A0": -1.0, "A": 0.0, "B": 1.0, "C": 2.0, "D": 3.0}
REFERENCE_RANGE_KM = 500.0
NODE_SEED = 20_140_612  # fixed: the nodes are part of the model's population, not of the Monte Carlo


def taste_nodes(count: int, dimensions: int = 1 + len(CHARACTERISTICS)) -> np.ndarray:
    """[count, dimensions] standardised nodes: column means 0, sds 1, uncorrelated where count allows."""
    if count == 1:
        return np.zeros((1, dimensions))
    points = qmc.Halton(d=dimensions, scramble=True, seed=NODE_SEED).random(count)
    nodes = norm.ppf(points)
    nodes -= nodes.mean(axis=0)
    if count > dimensions:
        covariance = nodes.T @ nodes / count
        values, vectors = np.linalg.eigh(covariance)
        nodes = nodes @ vectors @ np.diag(values ** -0.5) @ vectors.T
    else:
        nodes /= np.sqrt((nodes ** 2).mean(axis=0))
    return nodes


@dataclass(frozen=True)
class ConsumerTypes:
    """Per-draw consumer types, T = regions x types per region (type t belongs to region `region_of[t]`)."""

    regions: RegionSet
    region_of: np.ndarray          # [T] index into regions.names
    weights: np.ndarray            # [N, T] share of potential buyers, sums to 1 per draw
    price_sensitivity: np.ndarray  # [N, T] multiplier on the price coefficient, buyer-weighted mean 1
    tastes: np.ndarray             # [N, T, C] sigma_c * z_tc, logit units per unit of characteristic c

    @property
    def names(self) -> tuple[str, ...]:
        per_region = len(self.region_of) // len(self.regions.names)
        return tuple(f"{self.regions.names[r]}#{t % per_region + 1}" for t, r in enumerate(self.region_of))

    @property
    def membership(self) -> np.ndarray:
        """[T, R] 1 where type t belongs to region r."""
        return (self.region_of[:, None] == np.arange(len(self.regions.names))[None, :]).astype(float)

    def expand(self, regional: np.ndarray) -> np.ndarray:
        """[N, R, ...] per-region values -> [N, T, ...] per type."""
        return regional[:, self.region_of]

    def taste_utility(self, characteristics: np.ndarray) -> np.ndarray:
        """[N, T, K] utility deviations sum_c sigma_c z_tc x[k, c] from characteristics [N, K, C] (an unknown,
        NaN, characteristic counts as 0: `simulate.prepare` refuses scenarios whose tastes need one)."""
        return np.einsum("ntc,nkc->ntk", self.tastes, np.nan_to_num(characteristics))

    def within_regions(self, typed: np.ndarray) -> np.ndarray:
        """[N, R, K] shares within each region from type shares [N, T, K] (buyer-weighted)."""
        mass = _region_mass(np.ascontiguousarray(self.weights, dtype=float), np.ascontiguousarray(typed, dtype=float),
                            np.ascontiguousarray(self.region_of, dtype=np.int64), len(self.regions.names))
        return mass / self.regions.weights[:, :, None]

    def rows(self, rows: np.ndarray) -> ConsumerTypes:
        return ConsumerTypes(self.regions.rows(rows), self.region_of, self.weights[rows],
                             self.price_sensitivity[rows], self.tastes[rows])


@nb.njit(cache=True)
def _region_mass(weights, typed, region_of, regions):  # pragma: no cover - compiled
    """[N, R, K] sum over the types t of region r of weights[n, t] * typed[n, t, k], types in order."""
    draws, types, products = typed.shape
    mass = np.zeros((draws, regions, products))
    for n in range(draws):
        for t in range(types):
            r, w = region_of[t], weights[n, t]
            for k in range(products):
                mass[n, r, k] += w * typed[n, t, k]
    return mass


def consumer_types(regions: RegionSet, tastes: TasteParameters, draws: int, per_region: int) -> ConsumerTypes:
    """The scenario's consumer types (its tastes per draw) for `regions`."""
    nodes = taste_nodes(per_region)
    count = len(regions.names)
    region_of = np.repeat(np.arange(count), per_region)
    node_of = np.tile(np.arange(per_region), count)
    weights = regions.weights[:, region_of] / per_region
    dispersion = np.broadcast_to(tastes.income_dispersion, (draws,))
    if np.any(dispersion < 0):
        raise DataError(f"field market.tastes.income_dispersion: got {dispersion.min():.3g} in some draws; expected "
                        f">= 0 (a non-negative distribution, e.g. triangular or lognormal)")
    multiplier = regions.price_sensitivity[:, region_of] * np.exp(dispersion[:, None] * nodes[node_of, 0][None, :])
    multiplier = multiplier / (weights * multiplier).sum(axis=1, keepdims=True)
    sigmas = np.stack([np.broadcast_to(getattr(tastes, SIGMA_FIELDS[name]), (draws,))
                       for name in CHARACTERISTICS], axis=1)                                # [N, C]
    negative = np.flatnonzero(np.any(sigmas < 0, axis=0))
    if negative.size:
        c = negative[0]
        raise DataError(f"field market.tastes.{SIGMA_FIELDS[CHARACTERISTICS[c]]}: got {sigmas[:, c].min():.3g} "
                        f"in some draws; expected >= 0 (a standard deviation across consumer types)")
    tastes = sigmas[:, None, :] * nodes[node_of, 1:][None, :, :]
    return ConsumerTypes(regions, region_of, weights, multiplier, tastes)


def segment_steps(segments: list[str] | tuple[str, ...]) -> np.ndarray:
    """Segment labels -> steps from the A segment (NaN for 'mixed' and labels outside SEGMENT_STEPS)."""
    return np.array([SEGMENT_STEPS.get(segment, np.nan) for segment in segments], dtype=float)


def suv_level(body: str) -> float:
    """1 for an SUV, 0.5 for a 'sedan/SUV' family, 0 otherwise, NaN for the 'mixed' aggregates."""
    text = body.lower()
    if text == "mixed":
        return np.nan
    if "suv" in text:
        return 0.5 if "/" in text else 1.0
    return 0.0


@dataclass(frozen=True)
class ProductTraits:
    """What the data say about each of K products, the same in every draw.

    powertrains, segments, bodies [K]; adas [K] (1, 0, or NaN = the data are silent); is_entrant [K];
    aggregate_of [K]: the powertrain an 'other' aggregate stands for (None for named models)."""

    powertrains: list[str]
    segments: list[str]
    bodies: list[str]
    adas: np.ndarray
    is_entrant: np.ndarray
    aggregate_of: list[str | None]


def characteristic_matrix(traits: ProductTraits, range_km: np.ndarray, base_shares: np.ndarray,
                          adas_unknown: np.ndarray) -> np.ndarray:
    """[N, K, C] characteristics of the products (module docstring).

    traits: the products' [K] descriptions; range_km [N, K] (NaN allowed where not BEV); base_shares
    [N, K] weight the aggregates' means (0 for products not in the base period); adas_unknown [N]."""
    bodies, adas, is_entrant, aggregate_of = traits.bodies, traits.adas, traits.is_entrant, traits.aggregate_of
    segments = traits.segments
    draws, size = range_km.shape
    powertrains = np.asarray(traits.powertrains)
    is_bev = powertrains == "BEV"
    x = np.zeros((draws, size, len(CHARACTERISTICS)))
    x[:, :, 0] = 1.0
    x[:, :, 1] = np.isin(powertrains, ("BEV", "PHEV"))[None, :]
    x[:, :, 2] = np.array([suv_level(b) for b in bodies])[None, :]
    x[:, :, 3] = segment_steps(segments)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        x[:, :, 4] = np.where(is_bev[None, :], np.log(range_km / REFERENCE_RANGE_KM), 0.0)
    x[:, :, 5] = np.where(np.isnan(adas)[None, :], np.asarray(adas_unknown, dtype=float)[:, None],
                          np.nan_to_num(adas)[None, :])
    x[:, :, 6] = np.asarray(is_entrant, dtype=float)[None, :]
    aggregates = [k for k, of in enumerate(aggregate_of) if of is not None]
    for k in aggregates:
        members = [j for j, of in enumerate(aggregate_of) if of is None and powertrains[j] == aggregate_of[k]
                   and base_shares[0, j] > 0]
        if not members:  # no named model of this powertrain: take every named model
            members = [j for j, of in enumerate(aggregate_of) if of is None and base_shares[0, j] > 0]
        weight = base_shares[:, members] / base_shares[:, members].sum(axis=1, keepdims=True)
        for c in (2, 3, 4, 5):
            x[:, k, c] = (weight * np.nan_to_num(x[:, members, c])).sum(axis=1)
    return x
