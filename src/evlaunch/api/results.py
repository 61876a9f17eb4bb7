"""What a run's draws answer, as tables: paths' key figures, comparisons, sensitivity, scenario discovery.

These functions take the draws (a `runs.draw_table.DrawTable` or any table with `columns` and
`to_numpy`) and the validated scenario configuration; `Run` calls them with its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from evlaunch.analysis.conditions import evaluate, names_in, parse_condition
from evlaunch.analysis.decision import Recommendation
from evlaunch.analysis.discovery import Box, DiscoveryConfig, weak_box_message
from evlaunch.analysis.discovery import discover as find_boxes
from evlaunch.analysis.sensitivity import SensitivityResult
from evlaunch.atomic import write_json_atomic
from evlaunch.config.scenario import Scenario as Config
from evlaunch.config.scenario import month_label, uncertain_parameters
from evlaunch.errors import EvlaunchError
from evlaunch.report.sensitivity import write_sensitivity_report
from evlaunch.runs.summary import DrawStatistics, path_statistics, recommendation
from evlaunch.studies.scenario_analysis import DecisionStudy, discovery_frame, dominance_table, screen_inputs

KEY_FIGURES = ["path", "licence", "plant", "recommended", "launch_p10", "launch_p50", "launch_p90", "launch_month_mean", "p_never",
               "p_launch_by_target", "deliveries_total_mean", "npv_mean", "npv_p10", "npv_p50", "npv_p90",
               "npv_cvar10", "p_budget_exceeded", "p_ahead_of_pledge_schedule"]


def _launch_label(config: Config, index: float) -> str | None:
    """'YYYY-MM' of a launch month index, None beyond the horizon (as in summary.json)."""
    if not math.isfinite(index) or index >= config.horizon_months:
        return None
    return month_label(config.start_month + int(index))


def key_figures(config: Config, table: DrawStatistics) -> tuple[list[dict[str, Any]], Recommendation, dict[str, Any]]:
    """Per path: launch quantiles (as "YYYY-MM" labels, and as months after the start in the rows but not
    in KEY_FIGURES) and mean, P(never), P(by target), total deliveries, NPV mean, quantiles
    and CVaR10, P(budget exceeded) and, beside it, P(cash needed faster than the pledge is paid in) (None for
    runs without it). Also the recommendation and the per-path NPV and launch-month arrays
    (for dominance tests). Launch means are months after the scenario's start, over draws that launch."""
    statistics = path_statistics(table, config)
    chosen = recommendation(statistics, config)
    rows, arrays_by_path = [], {}
    for path, stats in statistics.items():
        names = [f"{path}.npv", f"{path}.launch_month_index"] + [f"{path}.deliveries.{y}" for y in config.years]
        arrays = table.to_numpy(names)
        months = np.asarray(arrays[f"{path}.launch_month_index"], dtype=float)
        launched = np.isfinite(months)
        deliveries = sum(np.asarray(arrays[f"{path}.deliveries.{year}"], dtype=float) for year in config.years)
        arrays_by_path[path] = (np.asarray(arrays[f"{path}.npv"], dtype=float), months)
        rows.append({
            "path": path, "licence": config.paths[path].licence_holder, "plant": config.paths[path].plant_site,
            "recommended": path == chosen.path,
            "launch_p10": _launch_label(config, stats.launch_month.p10),
            "launch_p50": _launch_label(config, stats.launch_month.p50),
            "launch_p90": _launch_label(config, stats.launch_month.p90),
            "launch_month_mean": float(np.mean(months[launched])) if launched.any() else None,
            "launch_month_p10": stats.launch_month.p10, "launch_month_p50": stats.launch_month.p50,
            "launch_month_p90": stats.launch_month.p90,
            "p_never": float(1.0 - launched.mean()),
            "p_launch_by_target": stats.p_launch_by_target,
            "deliveries_total_mean": float(np.mean(deliveries)),
            "npv_mean": stats.npv.mean, "npv_p10": stats.npv.p10, "npv_p50": stats.npv.p50,
            "npv_p90": stats.npv.p90, "npv_cvar10": stats.npv_cvar, "p_budget_exceeded": stats.p_budget_exceeded,
            "p_ahead_of_pledge_schedule": stats.p_ahead_of_pledge_schedule,
        })
    return rows, chosen, arrays_by_path


# The rows of `evlaunch compare --json`, in its order: launch months are months after each scenario's
# start (the mean over draws that launch; quantiles inf where more than that share never launches).
COMPARE_FIELDS = ["licence", "plant", "recommended", "launch_month_mean", "p_never", "launch_month_p10", "launch_month_p50",
                  "launch_month_p90", "p_launch_by_target", "deliveries_total_mean", "npv_mean", "npv_p10",
                  "npv_p50", "npv_p90", "npv_cvar10", "p_budget_exceeded", "p_ahead_of_pledge_schedule"]


@dataclass(frozen=True)
class Comparison:
    """Paths within and across runs: one row per (run, path), dominance statements, each run's choice."""

    table: pd.DataFrame                        # KEY_FIGURES with a leading "run" column
    dominance: list[str]                       # first-order stochastic dominance, in words
    recommendations: dict[str, Recommendation]  # by run label: path, criterion, why the others lost
    rows: list[dict[str, Any]] = field(default_factory=list)  # COMPARE_FIELDS per path, as plain Python values

    def groups(self) -> dict[str, dict[str, list[str]]]:
        """Paths grouped by who holds the licence ("own" or the partner firm) and by where cars are built
        ("own" or "partner" plant); within a group, ranked by NPV mean (highest first)."""
        ranked = sorted(self.rows, key=lambda row: -row["npv_mean"] if math.isfinite(row["npv_mean"]) else math.inf)
        out: dict[str, dict[str, list[str]]] = {"licence": {}, "plant": {}}
        for row in ranked:
            for key in ("licence", "plant"):
                out[key].setdefault(row[key], []).append(row["path"])
        return out

    def to_dict(self) -> dict[str, Any]:
        """The `evlaunch compare --json` document: "paths" (one row per path, named "run:path" when several
        runs are compared; launch months as months after the start; with its licence holder and plant),
        "groups" (paths by licence and by plant, ranked by NPV mean), "dominance" and "recommended" (per run:
        the path, criterion, why the others lost, whether it meets the budget tolerance (`passes`; when no
        path does, the path is the best on the objective, flagged in `note`), the least-violating path then,
        and whether the budget constraint binds)."""
        return {"paths": [dict(row) for row in self.rows], "groups": self.groups(), "dominance": list(self.dominance),
                "recommended": {label: {"path": r.path, "criterion": r.criterion,
                                        "why_others_lost": r.why_others_lost, "note": r.note, "passes": r.passes,
                                        "least_violating": r.least_violating, "budget_binds": r.binds}
                                for label, r in self.recommendations.items()}}


def compare(runs: Sequence[tuple[str, Config, DrawStatistics]]) -> Comparison:
    """Compare the paths of labelled runs (label, scenario configuration, draws); with one run, the rows
    are that run's paths; with several, paths are named "label:path" in the dominance statements."""
    rows, named, npv, launch, chosen = [], [], {}, {}, {}
    for label, config, table in runs:
        figures, recommended, arrays = key_figures(config, table)
        chosen[label] = recommended
        for row in figures:
            key = f"{label}:{row['path']}" if len(runs) > 1 else row["path"]
            npv[key], launch[key] = arrays[row["path"]]
            rows.append({"run": label, **row})
            named.append({"path": key, **{name: row[name] for name in COMPARE_FIELDS}})
    dominance = [statement for _, _, statement in dominance_table(npv, launch)]
    return Comparison(pd.DataFrame(rows, columns=["run", *KEY_FIGURES]), dominance, chosen, named)


@dataclass(frozen=True)
class Sensitivity:
    """Sensitivity indices (SALib) per output, and what decides the recommended path over the runner-up."""

    scenario: str
    method: str
    recommended: str
    runner_up: str | None
    results: dict[str, SensitivityResult]   # by output label

    @classmethod
    def from_study(cls, scenario: str, method: str, study: DecisionStudy) -> Sensitivity:
        return cls(scenario, method, study.recommended, study.runner_up, dict(study.results))

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Per output: one row per input, ranked (Sobol S1/ST with confidence intervals, or Morris mu*)."""
        return {label: result.table().reset_index() for label, result in self.results.items()}

    def to_dict(self) -> dict[str, Any]:
        """The `sensitivity.json` document `evlaunch sensitivity --out` writes."""
        outputs = {}
        for label, result in self.results.items():
            frame = result.table().reset_index()
            outputs[label] = {"design": {"method": result.design.method, "seed": result.design.seed,
                                         "rows": result.design.n_rows},
                              "indices": json.loads(frame.to_json(orient="records")),
                              "non_finite_replaced": result.n_nonfinite_replaced}
        return {"scenario": self.scenario, "method": self.method, "recommended_path": self.recommended,
                "runner_up": self.runner_up, "outputs": outputs}

    def write(self, directory: str | Path) -> tuple[Path, Path]:
        """Write sensitivity.json and sensitivity.html (tornado charts) into `directory`."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "sensitivity.json", self.to_dict())
        study = DecisionStudy(self.recommended, self.runner_up, self.results)
        write_sensitivity_report(out / "sensitivity.html", self.scenario, study)
        return out / "sensitivity.json", out / "sensitivity.html"


def describe_event(name: str) -> str:
    """Plain words for a chance draw's column (uniform on [0, 1], one per draw)."""
    parts = name.split(".")
    if name.endswith(".failure_event") and parts[0] == "paths":
        return (f"the chance draw that decides whether stage {int(parts[3]) + 1} of path {parts[1]} fails "
                f"(it fails when the draw is below the stage's failure probability)")
    if name.endswith(".occurrence_event"):
        return f"the chance draw that decides whether supply shock {parts[1]} happens (below its probability)"
    if "awareness_shape_event" in name:
        return ("the chance draw that picks the entrant's delivery ramp (plant and buyers together) from the "
                "new-brand reference class (low = fast ramp)")
    return "a chance draw of the Monte Carlo"


@dataclass(frozen=True)
class Discovery:
    """Scenario discovery (PRIM): the box of inputs under which a condition on the draws mostly holds."""

    condition: str
    share: float            # of all draws where the condition holds
    n_draws: int
    path: str               # the path bare output names refer to (the recommended one)
    box: Box
    warning: str | None     # set when the box hardly concentrates the condition
    events: dict[str, str]  # the box's chance-draw inputs, in words
    columns: dict[str, str] = field(default_factory=dict)  # each name in the condition -> the draws' column read

    @property
    def limits(self) -> pd.DataFrame:
        """The box's restricted inputs: input, lower, upper (None = that side unrestricted)."""
        return pd.DataFrame([{"input": name, "lower": limit.lower, "upper": limit.upper}
                             for name, limit in self.box.limits.items()], columns=["input", "lower", "upper"])

    @property
    def trajectory(self) -> pd.DataFrame:
        """PRIM's peeling trajectory: coverage, density, mass, inputs restricted, per step."""
        return self.box.trajectory

    @property
    def sentence(self) -> str:
        """The box in words, with its coverage and density."""
        return self.box.sentence

    @property
    def rule(self) -> str:
        """The box as a condition string (the conditions grammar accepts it)."""
        return self.box.rule


def discover_in(config: Config, table: DrawStatistics, events: Sequence[str], when: str | npt.ArrayLike,
                min_coverage: float = 0.3, inputs: int = 8, label: str | None = None) -> Discovery:
    """PRIM boxes for a condition on the draws: `when` is a condition on per-draw outputs (bare names refer
    to the recommended path, e.g. "npv < 0"; full names like "BAIC.npv" to any column), or one True/False
    per draw in draw order (e.g. a comparison of `Run.draws` columns), named by `label`. The inputs PRIM
    may restrict are the uncertain parameters and the chance-draw columns `events`. ConditionError,
    DiscoveryError or EvlaunchError name what is wrong."""
    chosen = recommendation(path_statistics(table, config), config).path
    columns: dict[str, str] = {}
    if isinstance(when, str):
        condition = parse_condition(when)
        data = {}
        for name in names_in(condition):
            column = name if name in table.columns else f"{chosen}.{name}"
            if column not in table.columns:
                raise EvlaunchError(
                    f"--when: {name!r} is neither a per-draw column nor an output of the recommended path "
                    f"{chosen!r}; e.g. npv, launch_month_index, peak_cash_need, deliveries.2026, or {chosen}.npv")
            data[name] = table.to_numpy([column])[column]
            columns[name] = column
        mask = evaluate(condition, data)
        label = label or when
    else:
        mask = np.asarray(when)
        label = label or "the condition"
    frame = screen_inputs(discovery_frame(table, sorted(uncertain_parameters(config)) + list(events)), mask, inputs)
    box = find_boxes(frame, mask, label, DiscoveryConfig(min_coverage=min_coverage)).box
    share = float(np.mean(mask))
    return Discovery(label, share, len(mask), chosen, box, weak_box_message(box.density, share, label),
                     {name: describe_event(name) for name in box.limits if name.endswith("_event")}, columns)


def summary_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Key-figure rows as a DataFrame indexed by path."""
    return pd.DataFrame(list(rows), columns=KEY_FIGURES).set_index("path")
