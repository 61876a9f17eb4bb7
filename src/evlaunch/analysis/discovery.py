"""Scenario discovery: which ranges of the uncertain inputs make a condition (e.g. `npv < 0`) likely?

PRIM (Friedman & Fisher's Patient Rule Induction Method, as implemented by ema_workbench) starts
from a box holding every draw and repeatedly peels a thin slice off one input's range, keeping the
slice whose removal most raises the share of condition-holding draws inside the box. That yields a
peeling trajectory of ever smaller, purer boxes, traded off by:

* density  = share of draws inside the box where the condition holds (how reliable the box is);
* coverage = share of all condition-holding draws that fall inside the box (how much it explains);
* mass     = share of all draws inside the box;
* n_restricted = how many inputs the box restricts (fewer = easier to tell a story about).

Box choice (`DiscoveryConfig`): among the trajectory's boxes with coverage >= `min_coverage`
(default 0.5: the box must explain at least half of the cases), find the highest density; boxes whose
density is within `density_tolerance_se` binomial standard errors of it (sqrt(d(1-d)/n) of that best
box) are statistically as dense, and among them the one with the highest coverage (then fewest
restricted inputs) wins — so sampling noise does not push the choice into needlessly small boxes.
If no box reaches `min_coverage`, the most covering box is taken.

Then each restricted side of the chosen box is tested with ema's quasi-p value (Bryant & Lempert
2010: a one-sided binomial test of whether removing that limit lowers density); sides with quasi-p
above `max_quasi_p` (default 0.05) are dropped as noise, and the box's coverage, density and mass
are recomputed on the draws for the limits that remain (so they can differ slightly from the
trajectory row). With `max_boxes` > 1, PRIM runs again on the draws outside the earlier boxes;
coverage and mass stay shares of all cases / all draws.

ema_workbench logs and warns a lot on import and while peeling; both are silenced here.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from evlaunch.errors import EvlaunchError


class DiscoveryError(EvlaunchError):
    """Scenario discovery cannot run on these inputs (shape, types, or a condition that never/always holds)."""


@dataclass(frozen=True)
class DiscoveryConfig:
    """PRIM settings and the box-choice rule (see the module docstring).

    peel_alpha: share of the box's draws peeled per step (smaller = finer, slower trajectory);
    paste_alpha: share re-added per pasting step;
    mass_min: peeling stops when a box would hold fewer than this share of the draws;
    min_coverage, density_tolerance_se: which trajectory box is reported;
    max_quasi_p: restricted sides with a larger quasi-p value are dropped (None keeps all);
    max_boxes: how many boxes to find (each later box explains cases the earlier ones left out).
    """

    peel_alpha: float = 0.05
    paste_alpha: float = 0.05
    mass_min: float = 0.05
    min_coverage: float = 0.5
    density_tolerance_se: float = 2.0
    max_quasi_p: float | None = 0.05
    max_boxes: int = 1


@dataclass(frozen=True)
class Limit:
    """A box's range for one input; None on a side the box leaves unrestricted."""

    lower: float | None
    upper: float | None

    def describe(self, name: str) -> str:
        if self.lower is not None and self.upper is not None:
            return f"{name} >= {_num(self.lower)} and {name} <= {_num(self.upper)}"
        if self.lower is not None:
            return f"{name} >= {_num(self.lower)}"
        return f"{name} <= {_num(self.upper)}"


@dataclass(frozen=True)
class Box:
    """One discovered box: the trajectory it was chosen from and its statistics and limits.

    trajectory has columns coverage, density, mass, n_restricted, n_draws (one row per peel/paste
    step, in PRIM's order; coverage and mass as shares of all cases/draws); `chosen` is the row the
    reported box came from; `limits` has only the inputs (and sides) the reported box restricts, and
    coverage/density/mass are those of exactly these limits (after dropping insignificant sides).
    For a second or later box the choice rule's min_coverage applies to the cases the earlier boxes
    left unexplained.
    """

    trajectory: pd.DataFrame
    chosen: int
    coverage: float
    density: float
    mass: float
    limits: dict[str, Limit]
    sentence: str

    @property
    def rule(self) -> str:
        """The box as a condition string (our conditions grammar accepts it, e.g. for filtering draws)."""
        return " and ".join(limit.describe(name) for name, limit in self.limits.items()) or "(no restriction)"


@dataclass(frozen=True)
class DiscoveryResult:
    """The boxes PRIM found for a condition, best first; `box` is the first."""

    condition: str
    n_draws: int
    n_cases: int
    boxes: tuple[Box, ...]

    @property
    def box(self) -> Box:
        return self.boxes[0]


def _num(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.3g}"


def choose_box(trajectory: pd.DataFrame, config: DiscoveryConfig) -> int:
    """Row position of the box to report from a trajectory (columns coverage, density, n_restricted,
    n_draws), by the rule in the module docstring."""
    eligible = trajectory[trajectory["coverage"] >= config.min_coverage]
    if eligible.empty:
        eligible = trajectory[trajectory["coverage"] == trajectory["coverage"].max()]
    top = eligible.loc[eligible["density"].idxmax()]
    standard_error = np.sqrt(top["density"] * (1 - top["density"]) / max(float(top["n_draws"]), 1.0))
    near = eligible[eligible["density"] >= top["density"] - config.density_tolerance_se * standard_error - 1e-12]
    ordered = near.sort_values(["coverage", "n_restricted"], ascending=[False, True], kind="stable")
    return int(trajectory.index.get_loc(ordered.index[0]))


def _quiet_prim():
    """Import ema_workbench's PRIM without its import-time warnings. Imported here, not at the top: it
    takes about 4 s to import and only discovery needs it (tests/test_layout.py allows it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import prim
    return prim


def _check_inputs(inputs: pd.DataFrame, mask: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    if not isinstance(inputs, pd.DataFrame):
        raise DiscoveryError(f"inputs must be a DataFrame of draws x parameters, got {type(inputs).__name__}")
    flags = np.asarray(mask)
    if flags.dtype != bool:
        raise DiscoveryError(f"the mask must be boolean (one True/False per draw), got dtype {flags.dtype}")
    if flags.ndim != 1 or flags.size != len(inputs):
        raise DiscoveryError(f"the mask has shape {flags.shape} but there are {len(inputs)} draws; "
                             "evaluate the condition on the same draws as the inputs")
    non_numeric = [c for c in inputs.columns if not pd.api.types.is_numeric_dtype(inputs[c])]
    if non_numeric:
        raise DiscoveryError(f"inputs {non_numeric} are not numeric; encode them as numbers first")
    x = inputs.astype(float).reset_index(drop=True)
    x.columns = [str(c) for c in x.columns]
    if not np.all(np.isfinite(x.to_numpy())):
        raise DiscoveryError("inputs contain NaN or inf; scenario discovery needs finite sampled inputs")
    constant = [c for c in x.columns if x[c].nunique() < 2]
    x = x.drop(columns=constant)
    if x.shape[1] == 0:
        raise DiscoveryError("no input varies across draws; nothing can explain the condition")
    n_cases = int(flags.sum())
    if n_cases == 0:
        raise DiscoveryError("the condition holds in no draw; loosen it or run more draws")
    if n_cases == flags.size:
        raise DiscoveryError("the condition holds in every draw, so no input range explains it; tighten it")
    return x, flags


def _in_box(x: pd.DataFrame, limits: dict[str, Limit]) -> np.ndarray:
    inside = np.ones(len(x), dtype=bool)
    for name, limit in limits.items():
        if limit.lower is not None:
            inside &= x[name].to_numpy() >= limit.lower
        if limit.upper is not None:
            inside &= x[name].to_numpy() <= limit.upper
    return inside


def _significant_limits(prim_box, chosen: int, box_init: pd.DataFrame, max_quasi_p: float | None) -> dict[str, Limit]:
    """The chosen box's restricted sides, minus those whose quasi-p value exceeds `max_quasi_p`."""
    lims = prim_box.box_lims[chosen]
    quasi_p = prim_box.qp[chosen] if chosen < len(prim_box.qp) else {}
    limits = {}
    for name in box_init.columns:
        sides = []
        for side, (value, unlimited) in enumerate(zip(lims[name], box_init[name])):
            restricted = value > unlimited if side == 0 else value < unlimited
            p_value = quasi_p.get(name, [-1, -1])[side]
            keep = restricted and (max_quasi_p is None or p_value < 0 or p_value <= max_quasi_p)
            sides.append(float(value) if keep else None)
        if sides[0] is not None or sides[1] is not None:
            limits[name] = Limit(*sides)
    return limits


def _run_prim(prim, x: pd.DataFrame, flags: np.ndarray, config: DiscoveryConfig):
    """One PRIM box on these draws: (the ema PrimBox, the initial box), logging and warnings silenced."""
    ema_logger = logging.getLogger("EMA")
    level, propagate = ema_logger.level, ema_logger.propagate
    ema_logger.setLevel(logging.WARNING)
    ema_logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # ema's threshold both defines the cases (y >= threshold) and the density a box needs to be
            # kept; a tiny positive value counts exactly the True draws and keeps every trajectory, which
            # choose_box then judges.
            algorithm = prim.Prim(x.reset_index(drop=True), flags.astype(int), threshold=1e-9,
                                  peel_alpha=config.peel_alpha, paste_alpha=config.paste_alpha,
                                  mass_min=config.mass_min)
            return algorithm.find_box(), algorithm.box_init
    finally:
        ema_logger.setLevel(level)
        ema_logger.propagate = propagate


def discover(inputs: pd.DataFrame, mask: np.ndarray, condition: str = "the condition",
             config: DiscoveryConfig = DiscoveryConfig()) -> DiscoveryResult:
    """Find input ranges where `mask` (one bool per draw, e.g. from `conditions.evaluate`) is likely.

    `inputs` has one row per draw and one numeric column per sampled parameter; inputs constant
    across draws are ignored. `condition` is only used in the sentences.
    """
    x, flags = _check_inputs(inputs, mask)
    if config.max_boxes < 1:
        raise DiscoveryError(f"max_boxes must be at least 1, got {config.max_boxes}")
    if not 0.0 <= config.min_coverage <= 1.0:
        raise DiscoveryError(f"min_coverage is a share in [0, 1], got {config.min_coverage}")
    prim = _quiet_prim()
    n_draws, n_cases = len(x), int(flags.sum())
    remaining = np.ones(n_draws, dtype=bool)
    boxes: list[Box] = []
    for _ in range(config.max_boxes):
        sub_x, sub_flags = x[remaining], flags[remaining]
        if sub_flags.all() or not sub_flags.any() or sub_x.nunique().max() < 2:
            break
        found, box_init = _run_prim(prim, sub_x, sub_flags, config)
        if found is None or len(found.peeling_trajectory) < 2:
            break
        raw = found.peeling_trajectory.reset_index(drop=True)
        trajectory = pd.DataFrame({
            "coverage": raw["coverage"].astype(float) * sub_flags.sum() / n_cases,
            "density": raw["density"].astype(float),
            "mass": raw["mass"].astype(float) * sub_flags.size / n_draws,
            "n_restricted": raw["res_dim"].astype(int),
            "n_draws": raw["n"].astype(int),
        })
        # the choice rule judges coverage among the cases this run could still explain
        chosen = choose_box(trajectory.assign(coverage=raw["coverage"].astype(float)), config)
        limits = _significant_limits(found, chosen, box_init, config.max_quasi_p)
        inside = remaining & _in_box(x, limits)
        if not limits or not inside.any():
            break  # nothing beyond "all remaining draws": no further box worth reporting
        coverage = float(flags[inside].sum() / n_cases)
        density = float(flags[inside].mean())
        mass = float(inside.sum() / n_draws)
        rule = " and ".join(limit.describe(name) for name, limit in limits.items()) or "no input restricted"
        sentence = (f"{condition} holds in {100 * density:.0f}% of draws (density) inside this box, which covers "
                    f"{100 * coverage:.0f}% of all such draws (coverage) and holds {100 * mass:.0f}% of all draws "
                    f"(mass): {rule}")
        boxes.append(Box(trajectory=trajectory, chosen=chosen, coverage=coverage, density=density, mass=mass,
                         limits=limits, sentence=sentence))
        remaining &= ~inside
    if not boxes:
        raise DiscoveryError("PRIM found no box that concentrates the condition; try a smaller peel_alpha or "
                             "a lower mass_min, or accept that no input range explains it")
    return DiscoveryResult(condition=condition, n_draws=n_draws, n_cases=n_cases, boxes=tuple(boxes))


WEAK_LIFT = 1.5  # a box whose density is below this multiple of the base rate explains little


def weak_box_message(density: float, base_rate: float, condition: str) -> str | None:
    """Why a box explains little, when its density is under WEAK_LIFT times the condition's overall rate."""
    if base_rate <= 0:
        return None
    lift = density / base_rate
    if lift >= WEAK_LIFT:
        return None
    return (f"its density {density:.0%} is only {lift:.2f} times the {base_rate:.0%} overall rate; no range of the "
            f"screened inputs concentrates {condition!r}: it depends on many inputs a little, or on chance")
