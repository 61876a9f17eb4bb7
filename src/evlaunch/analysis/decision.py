"""Comparing manufacturing paths from per-draw simulation outputs, and recommending one.

Everything here is a pure function over 1-D arrays with one entry per Monte Carlo draw:

* `summarise` — mean and p10/p50/p90 of any per-draw output;
* `p_launch_by`, `cvar`, `p_exceeds` — the three risk numbers a path is judged on;
* `first_order_dominance` — does one path's distribution beat another's at every level;
* `path_stats` / `recommend_path` — the per-path summary and the decision rule applied to it;
* `recommendation_mark` — the mark a table shows beside the chosen path (★, ○ or ☆);
* `budget_at_tolerance` — the budget at which P(budget exceeded) would reach a tolerance (what would make the
  budget criterion bind).

Conventions (units): launch months are month indices from the scenario start, and a path that never
launches within the horizon has launch month +inf (NaN is accepted and read as +inf, "never");
money (NPV, cash need, budget) is in CNY.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from evlaunch.errors import EvlaunchError


class DecisionError(EvlaunchError):
    """Inputs to a path comparison are unusable (empty, wrong shape, NaN where a number is needed)."""


# ----------------------------------------------------------------------------------------------
# per-draw statistics


def _as_draws(values: np.ndarray, what: str, *, nan_as: float | None = None) -> np.ndarray:
    """Check `values` is a non-empty 1-D float array; replace NaN by `nan_as` or refuse NaN."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise DecisionError(f"{what} must be one value per draw (1-D), got shape {arr.shape}; "
                            "select one column (e.g. one year) first")
    if arr.size == 0:
        raise DecisionError(f"{what} has no draws; run at least one draw")
    nan = np.isnan(arr)
    if nan.any():
        if nan_as is None:
            raise DecisionError(f"{what} has {int(nan.sum())} NaN draws; fix the model output or "
                                "replace NaN explicitly (np.inf for 'never launched')")
        arr = np.where(nan, nan_as, arr)
    return arr


@dataclass(frozen=True)
class Summary:
    """Mean and 10th/50th/90th percentiles of one per-draw output (same units as the output).

    Percentiles use linear interpolation; when some draws are infinite (e.g. never launched) they use
    the inverted-CDF rule instead, so every percentile is an actual draw and inf never turns into NaN.
    """

    mean: float
    p10: float
    p50: float
    p90: float
    n_draws: int
    n_infinite: int


def summarise(values: np.ndarray, *, nan_as: float | None = None) -> Summary:
    """Mean and p10/p50/p90 of per-draw `values`; NaN draws are refused unless `nan_as` replaces them."""
    arr = _as_draws(values, "values", nan_as=nan_as)
    infinite = ~np.isfinite(arr)
    p10, p50, p90 = np.quantile(arr, [0.10, 0.50, 0.90], method="inverted_cdf" if infinite.any() else "linear")
    with np.errstate(invalid="ignore"):
        mean = float(np.mean(arr))
    return Summary(mean=mean, p10=float(p10), p50=float(p50), p90=float(p90),
                   n_draws=int(arr.size), n_infinite=int(infinite.sum()))


def p_launch_by(launch_month_index: np.ndarray, target_month: float) -> float:
    """P(launch month index <= target_month): the share of draws launched by the target (inf/NaN = never)."""
    months = _as_draws(launch_month_index, "launch_month_index", nan_as=math.inf)
    return float(np.mean(months <= target_month))


def cvar(values: np.ndarray, alpha: float = 0.10) -> float:
    """Conditional value at risk of the lower tail: the mean of the worst `alpha` share of draws.

    Uses the exact fractional rule: with n draws sorted ascending and k = alpha*n, the k worst draws
    are averaged, the draw straddling the boundary entering with weight k - floor(k). So CVaR at
    alpha = 1 is the mean and CVaR at alpha -> 0 tends to the minimum. Units: those of `values` (CNY).
    """
    if not 0.0 < alpha <= 1.0:
        raise DecisionError(f"CVaR level alpha must be in (0, 1], got {alpha}; e.g. 0.10 for the worst 10%")
    arr = np.sort(_as_draws(values, "values"))
    k = alpha * arr.size
    whole = math.floor(k)
    total = float(arr[:whole].sum())
    if whole < arr.size and k > whole:
        total += (k - whole) * float(arr[whole])
    return total / k


def p_exceeds(values: np.ndarray, threshold: float) -> float:
    """P(value > threshold), e.g. the probability that the peak cash need exceeds the budget (CNY)."""
    arr = _as_draws(values, "values")
    return float(np.mean(arr > threshold))


def budget_at_tolerance(budget_needed: np.ndarray, tolerance: float) -> float:
    """The budget (CNY) at which P(budget exceeded) reaches `tolerance`: the (1 - tolerance) quantile of each
    draw's budget needed (a draw exceeds a budget B exactly when B < its budget needed). Below it the budget
    criterion fails the path; at or above it the path passes (up to the interpolation between two draws)."""
    if not 0.0 <= tolerance <= 1.0:
        raise DecisionError(f"tolerance is a probability in [0, 1], got {tolerance}")
    return float(np.quantile(_as_draws(budget_needed, "budget_needed"), 1.0 - tolerance))


# ----------------------------------------------------------------------------------------------
# stochastic dominance


class Dominance(StrEnum):
    """Outcome of a first-order stochastic dominance test of A over B."""

    STRICT = "strict"  # A at least as good at every level, and better at some
    WEAK = "weak"      # A at least as good at every level, never better (same distribution)
    NONE = "none"      # A worse than B at some level


def first_order_dominance(a: np.ndarray, b: np.ndarray, *, higher_is_better: bool = True,
                          tolerance: float = 0.0) -> Dominance:
    """Test whether sample `a` first-order stochastically dominates sample `b`.

    With "more is better" (NPV), A dominates B when A's empirical CDF is <= B's everywhere:
    at every level x, A is no more likely than B to end at or below x. With
    `higher_is_better=False` (launch month: earlier is better) the inequality flips: A's CDF is
    >= B's everywhere, i.e. A is at least as likely as B to have launched by any month.
    Infinite draws (never launched = +inf) take part as ordinary values; NaN is refused — replace it
    by np.inf first if it means "never". `tolerance` is the CDF slack allowed before a level counts as
    a violation (absorbs sampling noise; 0 = exact). The samples may differ in size.
    """
    x = _as_draws(a, "sample a")
    y = _as_draws(b, "sample b")
    if not 0.0 <= tolerance < 1.0:
        raise DecisionError(f"tolerance is a CDF slack in [0, 1), got {tolerance}")
    if not higher_is_better:
        x, y = -x, -y
    x.sort()
    y.sort()
    levels = np.union1d(x, y)
    cdf_a = np.searchsorted(x, levels, side="right") / x.size
    cdf_b = np.searchsorted(y, levels, side="right") / y.size
    gap = cdf_a - cdf_b  # > 0 where A is more likely than B to be at or below the level: A worse
    if np.any(gap > tolerance):
        return Dominance.NONE
    if np.any(gap < -tolerance):
        return Dominance.STRICT
    return Dominance.WEAK


# ----------------------------------------------------------------------------------------------
# per-path statistics and the decision rule


@dataclass(frozen=True)
class DecisionConfig:
    """What the per-path statistics are measured against.

    target_month: month index (from the scenario start) a launch must happen by to count;
    budget_cny: the budget available at the start (the pledge less what was spent before it); a draw whose
        peak cash need exceeds it is a breach;
    cvar_alpha: the lower-tail share of NPV draws averaged for CVaR (0.10 = worst 10%).
    The defaults are placeholders for tests and quick looks; a scenario supplies its own values.
    """

    target_month: float = 24.0
    budget_cny: float = 10e9
    cvar_alpha: float = 0.10


@dataclass(frozen=True)
class PathStats:
    """Decision statistics of one manufacturing path (money in CNY, months as indices)."""

    path: str
    npv: Summary
    launch_month: Summary
    peak_cash_need: Summary
    p_launch_by_target: float
    npv_cvar: float
    p_budget_exceeded: float
    config: DecisionConfig
    # pacing, reported beside the budget test (not part of the rule): P(cash is needed faster than the
    # pledge is paid in); None where the run has no pledge schedule column
    p_ahead_of_pledge_schedule: float | None = None


def path_stats(path: str, *, npv: np.ndarray, launch_month_index: np.ndarray, peak_cash_need: np.ndarray,
               config: DecisionConfig = DecisionConfig()) -> PathStats:
    """Summarise one path's per-draw NPV, launch month (inf/NaN = never) and peak cash need."""
    npv_arr = _as_draws(npv, f"{path}: npv")
    launch = _as_draws(launch_month_index, f"{path}: launch_month_index", nan_as=math.inf)
    cash = _as_draws(peak_cash_need, f"{path}: peak_cash_need")
    if not npv_arr.size == launch.size == cash.size:
        raise DecisionError(f"{path}: npv, launch_month_index and peak_cash_need must have one value per "
                            f"draw each, got {npv_arr.size}, {launch.size}, {cash.size} draws")
    return PathStats(
        path=path,
        npv=summarise(npv_arr),
        launch_month=summarise(launch),
        peak_cash_need=summarise(cash),
        p_launch_by_target=p_launch_by(launch, config.target_month),
        npv_cvar=cvar(npv_arr, config.cvar_alpha),
        p_budget_exceeded=p_exceeds(cash, config.budget_cny),
        config=config,
    )


def stats_by_path(outputs: Mapping[str, Mapping[str, np.ndarray]],
                  config: DecisionConfig = DecisionConfig()) -> dict[str, PathStats]:
    """`path_stats` for every path in `{path: {"npv": ..., "launch_month_index": ..., "peak_cash_need": ...}}`."""
    result = {}
    for path, out in outputs.items():
        missing = {"npv", "launch_month_index", "peak_cash_need"} - set(out)
        if missing:
            raise DecisionError(f"path {path!r} lacks outputs {sorted(missing)}; have {sorted(out)}")
        result[path] = path_stats(path, npv=out["npv"], launch_month_index=out["launch_month_index"],
                                  peak_cash_need=out["peak_cash_need"], config=config)
    return result


class Objective(StrEnum):
    """What the recommended path maximises."""

    EXPECTED_NPV = "expected_npv"
    P_LAUNCH_BY_TARGET = "p_launch_by_target"
    NPV_CVAR = "npv_cvar"
    MEDIAN_NPV = "median_npv"


@dataclass(frozen=True)
class DecisionCriterion:
    """The decision rule: maximise `objective` among paths with P(budget exceeded) <= `max_p_budget_exceeded`.

    The default is "max expected NPV subject to P(peak cash need > budget available) <= 10%". Set
    `max_p_budget_exceeded=None` to drop the constraint. The constraint applies to every objective.
    """

    objective: Objective = Objective.EXPECTED_NPV
    max_p_budget_exceeded: float | None = 0.10


@dataclass(frozen=True)
class Recommendation:
    """The chosen path, the rule in words, and one line per other path saying why it lost.

    constraint_met (also `passes`) is False when no path meets the budget tolerance; the path is then the
    best on the objective among all paths, flagged as such in `note`, and `least_violating` names the path
    with the lowest P(budget exceeded). `binds` is True when the budget constraint changes or fails the
    choice (the best path on the objective alone breaks the tolerance); False when the choice is by the
    objective alone. `beats_not_entering` is False when the objective is an NPV measure and the chosen path's
    value is not above zero: staying out (NPV 0 from the scenario start; money spent before it is sunk) would
    then do better on the objective, and `note` says so.
    """

    path: str
    criterion: str
    why_others_lost: dict[str, str] = field(default_factory=dict)
    constraint_met: bool = True
    note: str = ""
    least_violating: str | None = None
    binds: bool = False
    beats_not_entering: bool = True

    @property
    def passes(self) -> bool:
        """The recommended path meets the budget tolerance (no tolerance: always)."""
        return self.constraint_met


MARK_LEGEND = ("★ = recommended; ○ = the best path, but staying out does better on the objective (every "
               "path's NPV measure is at or below zero); ☆ = no path meets the budget tolerance, the best on the "
               "objective is shown instead")


def recommendation_mark(passes: bool, beats_not_entering: bool | None) -> str:
    """The mark beside the chosen path in a table (see `MARK_LEGEND`): '☆' when no path meets the budget
    tolerance, '○' when the chosen path does not beat staying out on an NPV objective, else '★'. `None` for
    `beats_not_entering` (a summary written before the rule reported it, or a non-NPV objective) counts as
    beating it."""
    if not passes:
        return "☆"
    return "○" if beats_not_entering is False else "★"


def _bn(cny: float) -> str:
    return f"{cny / 1e9:,.2f} bn CNY"


def _pct(p: float | None) -> str:
    return "no limit" if p is None else f"{100 * p:.1f}%"


def _objective_value(stats: PathStats, objective: Objective) -> float:
    return {
        Objective.EXPECTED_NPV: stats.npv.mean,
        Objective.P_LAUNCH_BY_TARGET: stats.p_launch_by_target,
        Objective.NPV_CVAR: stats.npv_cvar,
        Objective.MEDIAN_NPV: stats.npv.p50,
    }[objective]


def _objective_label(objective: Objective, config: DecisionConfig) -> str:
    return {
        Objective.EXPECTED_NPV: "expected NPV",
        Objective.P_LAUNCH_BY_TARGET: f"P(launch by month {config.target_month:g})",
        Objective.NPV_CVAR: f"NPV CVaR{100 * config.cvar_alpha:g} (mean of the worst "
                            f"{100 * config.cvar_alpha:g}% of draws)",
        Objective.MEDIAN_NPV: "median NPV",
    }[objective]


def _format_objective(value: float, objective: Objective) -> str:
    return _pct(value) if objective is Objective.P_LAUNCH_BY_TARGET else _bn(value)


def describe_criterion(criterion: DecisionCriterion, config: DecisionConfig) -> str:
    """The decision rule in words, e.g. "maximise expected NPV subject to P(peak cash need > budget available
    of 10.00 bn CNY) <= 10.0%"."""
    text = f"maximise {_objective_label(criterion.objective, config)}"
    if criterion.max_p_budget_exceeded is not None:
        text += (f" subject to P(peak cash need > budget available of {_bn(config.budget_cny)}) <= "
                 f"{_pct(criterion.max_p_budget_exceeded)}")
    return text


def _common_config(stats_by_path: Mapping[str, PathStats]) -> DecisionConfig:
    if not stats_by_path:
        raise DecisionError("no paths to compare; simulate at least one manufacturing path")
    configs = {s.config for s in stats_by_path.values()}
    if len(configs) != 1:
        raise DecisionError("paths were summarised with different DecisionConfigs (target month, budget or "
                            "CVaR level); summarise them all with the same config")
    return configs.pop()


def recommend_path(stats_by_path: Mapping[str, PathStats],
                   criterion: DecisionCriterion = DecisionCriterion()) -> Recommendation:
    """Pick the path that best meets `criterion`; explain why every other path lost.

    Feasible paths (P(budget exceeded) within the limit) are ranked by the objective, ties broken by
    lower P(budget exceeded), then by name.

    If no path is feasible, the rule says so (constraint_met=False, a note) and falls back to the path
    that is best on the objective among all paths (ties as above), naming the least-violating path
    (lowest P(budget exceeded); ties by objective, then name) beside it. Why not the least-violating
    path: when every path breaks the tolerance, the budget no longer separates acceptable from
    unacceptable paths, and the least-violating one may trade a large expected loss for a few points
    of breach probability (the reference run once recommended a path with a negative mean NPV for a
    7-point lower breach). A decision-maker then wants the best path on their own objective, flagged,
    with the budget shortfall stated, so that they can raise the budget or look for a cheaper path.
    """
    config = _common_config(stats_by_path)
    objective = criterion.objective
    limit = criterion.max_p_budget_exceeded
    if limit is not None and not 0.0 <= limit <= 1.0:
        raise DecisionError(f"max_p_budget_exceeded is a probability in [0, 1], got {limit}")

    def value(name: str) -> float:
        v = _objective_value(stats_by_path[name], objective)
        return -math.inf if math.isnan(v) else v

    def breach(name: str) -> float:
        return stats_by_path[name].p_budget_exceeded

    def by_objective(names: Iterable[str]) -> str:
        return min(names, key=lambda n: (-value(n), breach(n), n))

    feasible = [n for n in stats_by_path if limit is None or breach(n) <= limit]
    best = by_objective(feasible or stats_by_path)
    least = min(stats_by_path, key=lambda n: (breach(n), -value(n), n))
    unconstrained = by_objective(stats_by_path)
    note = "" if feasible else _no_path_passes_note(best, least, value, breach, objective, config, limit)
    beats_not_entering = objective is Objective.P_LAUNCH_BY_TARGET or value(best) > 0.0
    if not beats_not_entering:
        note = " ".join(filter(None, [note, _not_entering_note(best, value, objective, config)]))
    reasons = _why_others_lost(stats_by_path, best, feasible, value, breach, objective, config, limit)
    return Recommendation(path=best, criterion=describe_criterion(criterion, config), why_others_lost=reasons,
                          constraint_met=bool(feasible), note=note, least_violating=None if feasible else least,
                          binds=limit is not None and breach(unconstrained) > limit,
                          beats_not_entering=beats_not_entering)


Score = Callable[[str], float]  # a path's objective value or P(budget exceeded), by name


def _no_path_passes_note(best: str, least: str, value: Score, breach: Score, objective: Objective,
                         config: DecisionConfig, limit: float | None) -> str:
    label = _objective_label(objective, config)
    return (f"No path meets the budget tolerance (P(peak cash need > budget available of {_bn(config.budget_cny)}) "
            f"<= {_pct(limit)}); best {label} among all paths is {best!r} "
            f"({_format_objective(value(best), objective)}, P(budget exceeded) {_pct(breach(best))}), shown as the "
            f"fallback; least-violating is {least!r} (P(budget exceeded) {_pct(breach(least))}, {label} "
            f"{_format_objective(value(least), objective)}). Consider a larger budget or a cheaper path.")


def _not_entering_note(best: str, value: Score, objective: Objective, config: DecisionConfig) -> str:
    label = _objective_label(objective, config)
    return (f"The {label} of every path is at or below zero (best: {best!r}, "
            f"{_format_objective(value(best), objective)}): on these inputs staying out (NPV 0 from the scenario "
            f"start; money spent before it is sunk) does better on the objective than any path.")


def _why_others_lost(stats_by_path: Mapping[str, PathStats], best: str, feasible: list[str], value: Score,
                     breach: Score, objective: Objective, config: DecisionConfig, limit: float | None
                     ) -> dict[str, str]:
    label = _objective_label(objective, config)
    best_value = value(best)
    reasons: dict[str, str] = {}
    for name in stats_by_path:
        if name == best:
            continue
        if feasible and name not in feasible:
            reasons[name] = (f"P(peak cash need > budget available of {_bn(config.budget_cny)}) = "
                             f"{_pct(breach(name))} exceeds the {_pct(limit)} limit")
        elif value(name) < best_value:
            reasons[name] = (f"{label} {_format_objective(value(name), objective)} < "
                             f"{_format_objective(best_value, objective)} for {best!r}"
                             + ("" if feasible else f" (no path meets the budget tolerance; P(budget exceeded) "
                                                    f"{_pct(breach(name))} vs {_pct(breach(best))})"))
        else:
            reasons[name] = (f"ties with {best!r} on {label} "
                             f"({_format_objective(value(name), objective)}); lost on the tie-break "
                             f"(P(budget exceeded) {_pct(breach(name))} vs {_pct(breach(best))}, then name)")
    return reasons
