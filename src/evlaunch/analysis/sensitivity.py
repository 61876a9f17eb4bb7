"""Global sensitivity analysis (Sobol and Morris) of any vectorised model, through SALib.

Which uncertain inputs move an output most? The workflow is: `build_design` draws a SALib design
in the unit hypercube and maps each column through that input's inverse CDF (so a triangular or
log-normal input is sampled as such, not as a uniform between bounds); the model runs ONCE on the
whole design (`model(design.values) -> dict of per-row outputs`); `analyse` checks the outputs
belong to this design and hands them to `SALib.analyze.sobol` or `SALib.analyze.morris`.

Why the checks: SALib's estimators pair rows by position (row k of block A_B^i must be row k of A
with column i swapped), but nothing in SALib records which design produced the outputs. A design
here carries its method, seed, base sample size, parameter order and a fingerprint; `analyse`
refuses outputs whose row count does not match and, when given the inputs the model actually saw,
refuses any row that differs from the design.

Non-finite outputs (a path that never launches has launch month +inf or NaN) are made finite by a
`NonFiniteRule` before analysis: +inf becomes a cap (default: the largest finite value seen; pass
e.g. the horizon in months), -inf a floor, and NaN is read as +inf ("never"), or refused. The
number of values replaced is reported with the result.

`rank_decision_drivers` applies the same machinery to the difference between two paths' outputs:
the inputs with the largest total index on (best - runner-up) are the assumptions that decide the
path choice.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample

from evlaunch.errors import EvlaunchError

Model = Callable[[dict[str, np.ndarray]], Mapping[str, np.ndarray]]


class SensitivityError(EvlaunchError):
    """A sensitivity analysis cannot run as configured (bad problem, design size or outputs)."""


class DesignMismatchError(SensitivityError):
    """The outputs handed to the analysis were not produced from this design, row for row."""


# ----------------------------------------------------------------------------------------------
# the problem


@dataclass(frozen=True)
class Parameter:
    """One uncertain input: its name, its range and, optionally, its inverse CDF.

    Without `ppf` the input is uniform on [lower, upper]. With `ppf` (a callable mapping
    probabilities in (0, 1) to values, e.g. a frozen scipy distribution's `.ppf`) unit samples are
    mapped through it and [lower, upper] is only the range reported to users.
    """

    name: str
    lower: float
    upper: float
    ppf: Callable[[np.ndarray], np.ndarray] | None = None

    def values(self, unit: np.ndarray) -> np.ndarray:
        """Input values for unit-hypercube coordinates `unit` (probabilities in [0, 1])."""
        if self.ppf is None:
            return self.lower + unit * (self.upper - self.lower)
        out = np.asarray(self.ppf(np.clip(unit, 1e-12, 1 - 1e-12)), dtype=float)
        if out.shape != unit.shape or not np.all(np.isfinite(out)):
            raise SensitivityError(f"the inverse CDF of {self.name!r} returned non-finite values or the wrong "
                                   "shape; give a ppf that maps an array of probabilities to finite values")
        return out


def parameters_from_marginals(marginals: Mapping[str, Any]) -> list[Parameter]:
    """Parameters from `{name: distribution}` where each distribution has `.ppf(probabilities)`.

    Bounds come from the distribution's `bounds()` method if it has one, else from its 0.1% and
    99.9% quantiles. Order follows the mapping's order.
    """
    params = []
    for name, dist in marginals.items():
        if not callable(getattr(dist, "ppf", None)):
            raise SensitivityError(f"the distribution of {name!r} has no ppf (inverse CDF); give a scipy "
                                   "frozen distribution or an object with .ppf(probabilities)")
        if callable(getattr(dist, "bounds", None)):
            lower, upper = dist.bounds()
        else:
            lower, upper = np.asarray(dist.ppf(np.array([0.001, 0.999])), dtype=float)
        params.append(Parameter(name, float(lower), float(upper), dist.ppf))
    return params


def _check_parameters(parameters: Sequence[Parameter]) -> None:
    if len(parameters) < 2:
        raise SensitivityError(f"sensitivity analysis needs at least 2 uncertain inputs, got {len(parameters)}; "
                               "make more scenario inputs uncertain")
    names = [p.name for p in parameters]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SensitivityError(f"duplicate parameter names {duplicates}; each input must appear once")
    for p in parameters:
        if not (math.isfinite(p.lower) and math.isfinite(p.upper) and p.lower < p.upper):
            raise SensitivityError(f"parameter {p.name!r} has bounds [{p.lower}, {p.upper}]; "
                                   "give finite bounds with lower < upper")


# ----------------------------------------------------------------------------------------------
# the design


class Method(StrEnum):
    """Sobol: variance-based S1/ST (Saltelli design). Morris: cheap elementary-effects screening."""

    SOBOL = "sobol"
    MORRIS = "morris"


@dataclass(frozen=True)
class DesignConfig:
    """How to build the design.

    base_samples: Sobol's N (a power of 2; the model runs N*(D+2) rows, N*(2D+2) with second
        order) or Morris's number of trajectories (N*(D+1) rows);
    morris_levels: grid levels per input for Morris;
    morris_tail: inputs with an inverse CDF are screened over their [tail, 1 - tail] quantile range
        under Morris, whose grid includes the cube's edges (quantiles 0 and 1 are infinite for
        unbounded distributions). Sobol samples the distributions in full.
    """

    method: Method = Method.SOBOL
    base_samples: int = 1024
    calc_second_order: bool = False
    morris_levels: int = 4
    morris_tail: float = 0.001


@dataclass(frozen=True)
class DesignMetadata:
    """What produced a design: enough to rebuild it and to tell whether outputs belong to it."""

    method: Method
    seed: int
    base_samples: int
    names: tuple[str, ...]
    n_rows: int
    calc_second_order: bool
    morris_levels: int
    fingerprint: str


@dataclass(frozen=True)
class Design:
    """A sensitivity design: `unit` rows in [0, 1]^D as SALib produced them (row order matters), and
    `values`, the same rows as input values `{name: array[n_rows]}` to feed the model."""

    meta: DesignMetadata
    unit: np.ndarray = field(repr=False)
    values: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_rows(self) -> int:
        return self.meta.n_rows


def _fingerprint(unit: np.ndarray, names: Sequence[str]) -> str:
    digest = hashlib.sha256("\x1f".join(names).encode())
    digest.update(np.ascontiguousarray(unit, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def _salib_problem(names: Sequence[str]) -> dict:
    return {"num_vars": len(names), "names": list(names), "bounds": [[0.0, 1.0]] * len(names)}


def build_design(parameters: Sequence[Parameter], config: DesignConfig, rng: np.random.Generator) -> Design:
    """Draw a Sobol (Saltelli) or Morris design for `parameters`; the seed is drawn from `rng` and recorded."""
    _check_parameters(parameters)
    n = config.base_samples
    names = tuple(p.name for p in parameters)
    seed = int(rng.integers(0, 2**31 - 1))
    problem = _salib_problem(names)
    if config.method is Method.SOBOL:
        if n < 2 or n & (n - 1):
            raise SensitivityError(f"Sobol base_samples must be a power of 2 (e.g. 512, 1024), got {n}")
        unit = sobol_sample.sample(problem, n, calc_second_order=config.calc_second_order, seed=seed)
        mapped = unit
    elif config.method is Method.MORRIS:
        if n < 2:
            raise SensitivityError(f"Morris needs at least 2 trajectories (base_samples), got {n}")
        if config.morris_levels < 2 or config.morris_levels % 2:
            raise SensitivityError(f"morris_levels must be an even number >= 2, got {config.morris_levels}")
        if not 0.0 < config.morris_tail < 0.5:
            raise SensitivityError(f"morris_tail must be in (0, 0.5), got {config.morris_tail}")
        unit = morris_sample.sample(problem, n, num_levels=config.morris_levels, seed=seed)
        tail = config.morris_tail
        mapped = unit.copy()
        for j, p in enumerate(parameters):
            if p.ppf is not None:
                mapped[:, j] = tail + (1 - 2 * tail) * unit[:, j]
    else:  # pragma: no cover - Method is closed
        raise SensitivityError(f"unknown method {config.method!r}; use 'sobol' or 'morris'")
    values = {p.name: p.values(mapped[:, j]) for j, p in enumerate(parameters)}
    meta = DesignMetadata(method=config.method, seed=seed, base_samples=n, names=names, n_rows=unit.shape[0],
                          calc_second_order=config.calc_second_order, morris_levels=config.morris_levels,
                          fingerprint=_fingerprint(unit, names))
    return Design(meta=meta, unit=unit, values=values)


# ----------------------------------------------------------------------------------------------
# outputs


@dataclass(frozen=True)
class NonFiniteRule:
    """How non-finite outputs become finite before analysis (SALib's estimators need finite values).

    posinf_cap: value replacing +inf (None: the largest finite value in the output, so "never" counts
        as "as late as the latest draw"; pass the horizon in months to count it as the horizon);
    neginf_floor: value replacing -inf (None: the smallest finite value);
    nan: "posinf" reads NaN as +inf (never launched), "neginf" as -inf, "error" refuses NaN.
    """

    posinf_cap: float | None = None
    neginf_floor: float | None = None
    nan: str = "posinf"


def make_finite(values: np.ndarray, rule: NonFiniteRule, label: str) -> tuple[np.ndarray, int]:
    """Apply `rule` to per-row `values`; return the finite array and how many entries were replaced."""
    arr = np.array(values, dtype=float)
    nan = np.isnan(arr)
    if nan.any():
        if rule.nan == "error":
            raise SensitivityError(f"output {label!r} has {int(nan.sum())} NaN rows; fix the model or set "
                                   "NonFiniteRule(nan='posinf') to read NaN as 'never'")
        if rule.nan not in ("posinf", "neginf"):
            raise SensitivityError(f"NonFiniteRule.nan must be 'posinf', 'neginf' or 'error', got {rule.nan!r}")
        arr[nan] = math.inf if rule.nan == "posinf" else -math.inf
    finite = np.isfinite(arr)
    replaced = int((~finite).sum())
    if replaced:
        high: float | None
        low: float | None
        if finite.any():
            high = rule.posinf_cap if rule.posinf_cap is not None else float(arr[finite].max())
            low = rule.neginf_floor if rule.neginf_floor is not None else float(arr[finite].min())
        elif rule.posinf_cap is not None or rule.neginf_floor is not None:
            high, low = rule.posinf_cap, rule.neginf_floor
        else:
            raise SensitivityError(f"output {label!r} is non-finite in every row; give NonFiniteRule caps "
                                   "(e.g. posinf_cap = the horizon in months)")
        if high is not None:
            arr[arr == math.inf] = high
        if low is not None:
            arr[arr == -math.inf] = low
        if not np.all(np.isfinite(arr)):
            raise SensitivityError(f"output {label!r} still has infinite rows; set both posinf_cap and "
                                   "neginf_floor in NonFiniteRule")
    return arr, replaced


@dataclass(frozen=True)
class DerivedOutput:
    """An output computed from the model's outputs, e.g. the NPV difference between two paths."""

    label: str
    compute: Callable[[Mapping[str, np.ndarray]], np.ndarray]


OutputSpec = str | DerivedOutput


def _select(outputs: Mapping[str, np.ndarray], spec: OutputSpec) -> tuple[str, np.ndarray]:
    if isinstance(spec, DerivedOutput):
        return spec.label, np.asarray(spec.compute(outputs), dtype=float)
    if spec not in outputs:
        raise SensitivityError(f"the model has no output {spec!r}; available outputs: {sorted(outputs)}")
    return spec, np.asarray(outputs[spec], dtype=float)


# ----------------------------------------------------------------------------------------------
# analysis


@dataclass(frozen=True)
class AnalysisOptions:
    """Bootstrap settings for confidence intervals, and the non-finite rule."""

    num_resamples: int = 100
    conf_level: float = 0.95
    nonfinite: NonFiniteRule = NonFiniteRule()


@dataclass(frozen=True)
class SensitivityResult:
    """Sensitivity of one output to each input, in the design's parameter order.

    Sobol: first_order (S1) and total (ST) indices with confidence half-widths (*_conf, at
    `conf_level`); ranking is by ST. Morris: mu_star (mean |elementary effect|, in output units per
    full range of the input in the unit hypercube — comparable across inputs of different units),
    its confidence half-width and sigma (spread of effects: non-linearity/interaction); ranking is by
    mu_star. Fields of the other method are None.
    """

    output: str
    design: DesignMetadata
    names: tuple[str, ...]
    ranking: tuple[str, ...]
    first_order: np.ndarray | None = None
    first_order_conf: np.ndarray | None = None
    total: np.ndarray | None = None
    total_conf: np.ndarray | None = None
    mu_star: np.ndarray | None = None
    mu_star_conf: np.ndarray | None = None
    sigma: np.ndarray | None = None
    n_nonfinite_replaced: int = 0
    conf_level: float = 0.95

    def table(self) -> pd.DataFrame:
        """One row per input, in ranking order."""
        columns = {
            "S1": self.first_order, "S1_conf": self.first_order_conf, "ST": self.total,
            "ST_conf": self.total_conf, "mu_star": self.mu_star, "mu_star_conf": self.mu_star_conf,
            "sigma": self.sigma,
        }
        frame = pd.DataFrame({k: v for k, v in columns.items() if v is not None}, index=list(self.names))
        frame.index.name = "parameter"
        return frame.loc[list(self.ranking)]


def check_outputs_match(design: Design, values: np.ndarray, label: str,
                        evaluated_inputs: Mapping[str, np.ndarray] | None = None) -> None:
    """Refuse outputs that cannot have come from `design` row for row.

    Checks the row count always; with `evaluated_inputs` (the input arrays the model actually ran
    on, e.g. read back from a results file) also that every row equals the design's row.
    """
    meta = design.meta
    if values.ndim != 1:
        raise DesignMismatchError(f"output {label!r} has shape {values.shape}; sensitivity needs one value per "
                                  "design row — select one column (e.g. one year) with a DerivedOutput")
    if values.shape[0] != meta.n_rows:
        raise DesignMismatchError(
            f"output {label!r} has {values.shape[0]} rows but design {meta.fingerprint} ({meta.method}, "
            f"N={meta.base_samples}, {len(meta.names)} inputs) has {meta.n_rows}; run the model on "
            "design.values, all rows, in order")
    if evaluated_inputs is None:
        return
    for name in meta.names:
        if name not in evaluated_inputs:
            raise DesignMismatchError(f"the evaluated inputs lack {name!r}, which design {meta.fingerprint} varies; "
                                      "pass the inputs the model ran on")
        seen = np.asarray(evaluated_inputs[name], dtype=float)
        expected = design.values[name]
        if seen.shape != expected.shape:
            raise DesignMismatchError(f"input {name!r} has {seen.shape[0] if seen.ndim else 0} rows, the design "
                                      f"{meta.n_rows}; run the model on design.values in order")
        bad = ~np.isclose(seen, expected, rtol=1e-9, atol=0.0)
        if bad.any():
            row = int(np.argmax(bad))
            raise DesignMismatchError(
                f"row {row} of the outputs was computed with {name} = {seen[row]!r} but design "
                f"{meta.fingerprint} has {expected[row]!r} there; SALib pairs rows by position, so outputs "
                "must be in design row order — do not shuffle, filter or concatenate runs")


def analyse(design: Design, outputs: Mapping[str, np.ndarray], output: OutputSpec,
            options: AnalysisOptions = AnalysisOptions(),
            evaluated_inputs: Mapping[str, np.ndarray] | None = None) -> SensitivityResult:
    """Sensitivity indices of one output (a key of `outputs` or a DerivedOutput) for `design`."""
    label, raw = _select(outputs, output)
    check_outputs_match(design, raw, label, evaluated_inputs)
    values, replaced = make_finite(raw, options.nonfinite, label)
    if np.ptp(values) == 0.0:
        raise SensitivityError(f"output {label!r} is the same in every design row, so no input explains any of "
                               "its variance; analyse an output that varies")
    meta = design.meta
    problem = _salib_problem(meta.names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if meta.method is Method.SOBOL:
            si = sobol_analyze.analyze(problem, values, calc_second_order=meta.calc_second_order,
                                       num_resamples=options.num_resamples, conf_level=options.conf_level,
                                       seed=meta.seed)
            total = np.asarray(si["ST"], dtype=float)
            order = np.argsort(-np.nan_to_num(total, nan=-np.inf), kind="stable")
            return SensitivityResult(
                output=label, design=meta, names=meta.names, ranking=tuple(meta.names[i] for i in order),
                first_order=np.asarray(si["S1"], float), first_order_conf=np.asarray(si["S1_conf"], float),
                total=total, total_conf=np.asarray(si["ST_conf"], float), n_nonfinite_replaced=replaced,
                conf_level=options.conf_level)
        si = morris_analyze.analyze(problem, design.unit, values, num_resamples=options.num_resamples,
                                    conf_level=options.conf_level, num_levels=meta.morris_levels,
                                    seed=meta.seed)
    mu_star = np.asarray(si["mu_star"], dtype=float)
    order = np.argsort(-mu_star, kind="stable")
    return SensitivityResult(
        output=label, design=meta, names=meta.names, ranking=tuple(meta.names[i] for i in order),
        mu_star=mu_star, mu_star_conf=np.asarray(si["mu_star_conf"], float),
        sigma=np.asarray(si["sigma"], float), n_nonfinite_replaced=replaced, conf_level=options.conf_level)


def run_model(design: Design, model: Model) -> Mapping[str, np.ndarray]:
    """Run `model` once on the whole design (vectorised over rows) and check it returned a mapping."""
    outputs = model({name: values.copy() for name, values in design.values.items()})
    if not isinstance(outputs, Mapping):
        raise SensitivityError(f"the model must return a dict of per-row output arrays, got {type(outputs).__name__}")
    return outputs


def run_sensitivity(parameters: Sequence[Parameter], model: Model, outputs: Sequence[OutputSpec],
                    config: DesignConfig, rng: np.random.Generator,
                    options: AnalysisOptions = AnalysisOptions()) -> dict[str, SensitivityResult]:
    """Build a design, run the model once on it, and analyse each requested output; keyed by output label."""
    if isinstance(outputs, (str, DerivedOutput)):
        outputs = [outputs]
    design = build_design(parameters, config, rng)
    results = run_model(design, model)
    analysed = {}
    for spec in outputs:
        result = analyse(design, results, spec, options)
        analysed[result.output] = result
    return analysed


def difference_output(best: str, runner_up: str, metric: str = "npv", *, key: str = "{path}.{metric}",
                      nonfinite: NonFiniteRule = NonFiniteRule()) -> DerivedOutput:
    """The per-row difference `best.metric - runner_up.metric`, each side made finite first.

    `key` builds output names from path and metric ("{path}.{metric}" gives e.g. "BAIC.npv").
    Non-finite values (never launched) are replaced per path by `nonfinite` before subtracting, so
    inf - inf never becomes NaN.
    """

    def compute(outputs: Mapping[str, np.ndarray]) -> np.ndarray:
        sides = []
        for path in (best, runner_up):
            name = key.format(path=path, metric=metric)
            if name not in outputs:
                raise SensitivityError(f"the model has no output {name!r} (path {path!r}, metric {metric!r}); "
                                       f"available outputs: {sorted(outputs)}")
            sides.append(make_finite(outputs[name], nonfinite, name)[0])
        return sides[0] - sides[1]

    return DerivedOutput(label=f"{key.format(path=best, metric=metric)} - {key.format(path=runner_up, metric=metric)}",
                         compute=compute)


def rank_decision_drivers(  # noqa: PLR0913 - the last three are keyword-only option objects
        parameters: Sequence[Parameter], model: Model, best: str, runner_up: str,
        rng: np.random.Generator, metric: str = "npv", *,
        config: DesignConfig = DesignConfig(), key: str = "{path}.{metric}",
        options: AnalysisOptions = AnalysisOptions()) -> SensitivityResult:
    """Which inputs decide the path choice: sensitivity of (best - runner_up) in `metric`.

    Inputs ranked first are those whose uncertainty most moves the gap between the two leading paths
    (by ST for Sobol, mu_star for Morris); an input that shifts both paths equally ranks low even if
    it moves each path's output a lot.
    """
    if best == runner_up:
        raise SensitivityError(f"best and runner-up are both {best!r}; give two different paths")
    spec = difference_output(best, runner_up, metric, key=key, nonfinite=options.nonfinite)
    return run_sensitivity(parameters, model, [spec], config, rng, options)[spec.label]
