"""What matters: tornado charts of sensitivity indices, for the run report and `evlaunch sensitivity`.

In the run report the indices come from the run's own draws with the PAWN method (a given-data
method: no extra model runs; SALib's definition, computed by `evlaunch.analysis.pawn`), against a
dummy input of pure noise whose index shows the noise floor.
`evlaunch sensitivity` runs a proper Sobol or Morris design and writes its own page.
"""

from __future__ import annotations

import html
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import plotly.io as pio

from evlaunch.analysis.pawn import pawn
from evlaunch.atomic import write_text_atomic
from evlaunch.config.columns import LAUNCH_MONTH_INDEX, NPV, path_column
from evlaunch.report import charts
from evlaunch.report.html import Section
from evlaunch.simulation.parameters import AWARENESS_EVENTS

PAWN_DRAWS = 4000
PAWN_SLICES = 10
NOISE = "(noise reference: a dummy input)"
# readable labels for inputs whose column name says little (the draws' column names are kept)
LABELS = {AWARENESS_EVENTS[0]: "delivery ramp speed (reference-class draw; low = fast)",
          AWARENESS_EVENTS[1]: "delivery ramp width (reference-class draw)"}


def input_label(name: str) -> str:
    """The label a chart shows for an input column: `LABELS` where the name is opaque, else the name."""
    return LABELS.get(name, name)


def _varies(matrix: np.ndarray) -> np.ndarray:
    """Whether each column takes at least two values (NaN ignored; an all-NaN column does not vary)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmax/nanmin of an all-NaN column: NaN, as meant
        return np.nanmax(matrix, axis=0) > np.nanmin(matrix, axis=0)


def pawn_ranking(inputs: dict[str, np.ndarray], output: np.ndarray, seed: int = 0) -> list[tuple[str, float]]:
    """PAWN median KS statistics of each input for one output, largest first, with a noise reference.

    Inputs that do not vary are left out; draws with a non-finite output are dropped (none if fewer than
    100 finite ones remain, or the output does not vary). The indices are SALib's `pawn.analyze` with
    10 slices, to the last bit (`evlaunch.analysis.pawn`), at a small fraction of its cost."""
    finite = np.isfinite(output)
    if finite.sum() < 100 or np.std(output[finite]) == 0:
        return []
    # inputs as rows ([inputs, draws]): the layout PAWN's passes over the draws read, without a transpose
    stacked = np.stack([np.asarray(v, float) for v in inputs.values()]) if inputs else np.zeros((0, len(output)))
    varies = _varies(stacked.T)
    names = [n for n, keep in zip(inputs, varies) if keep] + [NOISE]
    dummy = np.random.default_rng(seed).uniform(size=len(output))
    matrix = np.vstack([stacked[varies][:, finite], dummy[finite]])
    result = pawn(matrix.T, output[finite], slices=PAWN_SLICES)
    return sorted(zip(names, (float(v) for v in result.median)), key=lambda item: -item[1])


def what_matters(context) -> Any:
    """Report section: the assumptions that move the recommended path's NPV and launch month, and the
    NPV gap to the runner-up (which assumptions decide the ranking)."""
    scenario, summary = context.scenario, context.summary
    chosen = summary["recommended_path"]["name"]
    others = sorted((p for p in summary["paths"] if p != chosen),
                    key=lambda p: -(summary["paths"][p]["npv"]["mean"] or -math.inf))
    input_names = sorted(context.uncertain) + list(context.model.event_names)
    outputs = [path_column(chosen, NPV), path_column(chosen, LAUNCH_MONTH_INDEX)] + (
        [path_column(others[0], NPV)] if others else [])
    columns = [c for c in input_names + outputs if c in context.table.columns]
    data = context.table.to_numpy(columns, limit=PAWN_DRAWS)
    inputs = {n: data[n].astype(float) for n in input_names if n in data}
    targets = {f"{chosen} NPV": data[path_column(chosen, NPV)],
               f"{chosen} launch month": np.minimum(data[path_column(chosen, LAUNCH_MONTH_INDEX)],
                                                    scenario.horizon_months)}
    if others:
        targets[f"NPV gap {chosen} − {others[0]} (decides the choice)"] = (
            data[path_column(chosen, NPV)] - data[path_column(others[0], NPV)])
    body = [f"<p>Which assumptions move the answer: PAWN sensitivity indices (SALib) from the run's first "
            f"{min(PAWN_DRAWS, summary['draws']):,} draws; bars at or below the noise reference are not "
            f"distinguishable from chance. <code>evlaunch sensitivity</code> gives Sobol indices with confidence "
            f"intervals.</p>"]
    for label, values in targets.items():
        ranking = pawn_ranking(inputs, np.asarray(values, float))
        if not ranking:
            continue
        top = ranking[:12] + ([item for item in ranking if item[0] == NOISE] if NOISE not in dict(ranking[:12]) else [])
        figure = charts.bar_chart([input_label(name) for name, _ in top], [value for _, value in top], label,
                                  "PAWN index (median KS distance)")
        body.append(context.figure(figure))
    return Section("What matters", "".join(body), "what-matters")


def write_sensitivity_report(path: Path, scenario_name: str, study) -> Path:
    """A self-contained page of tornado charts for a Sobol or Morris study."""
    parts, first = [], True
    for label, result in study.results.items():
        frame = result.table().reset_index().head(15)
        if result.total is not None:
            values, name = frame["ST"].tolist(), "total-order Sobol index ST"
            errors = frame["ST_conf"].tolist()
        else:
            values, name, errors = frame["mu_star"].tolist(), "Morris mu*", frame["mu_star_conf"].tolist()
        figure = charts.bar_chart([input_label(n) for n in frame["parameter"]], values, label, name)
        figure.update_traces(error_x=dict(type="data", array=errors))
        parts.append(pio.to_html(figure, full_html=False, include_plotlyjs=first))
        first = False
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>sensitivity — {html.escape(scenario_name)}"
            f"</title></head><body><h1>Sensitivity — {html.escape(scenario_name)}</h1>"
            f"<p>Recommended path: {html.escape(study.recommended)}; runner-up: {html.escape(str(study.runner_up))}."
            f"</p>{''.join(parts)}</body></html>")
    write_text_atomic(path, page)
    return path
