"""Report section: each path in depth — when, how much, what can go wrong, which assumptions matter.

Per path: its stages (duration range and failure odds from the scenario), its fallback, how often it
failed and how many months were lost, the launch quantiles, deliveries, NPV and cash need, and the
three inputs that move its NPV most (PAWN indices from the run's own draws; only the inputs of the
path and its fallbacks, and only those above the noise reference). Partner facts come from the
scenario's own firms table when it names one (its path joined to the scenario's folder by `prepare`).
"""

from __future__ import annotations

import functools
import html
import math

import numpy as np

from evlaunch.config.columns import MONTHS_LOST, NPV, PATH_FAILED, path_column
from evlaunch.config.distributions import is_uncertain
from evlaunch.entry.partners import partner_facts
from evlaunch.report.formatting import bn_cny
from evlaunch.report.html import Section, table_html
from evlaunch.report.reference_class import file_version
from evlaunch.report.sensitivity import NOISE, input_label, pawn_ranking

DRIVER_DRAWS = 2000


def _range(value) -> str:
    if is_uncertain(value):
        low, mid, high = value.ppf(np.array([0.1, 0.5, 0.9]))
        return f"{mid:,.3g} ({low:,.3g}–{high:,.3g})"
    return f"{value:,.3g}"


def fallback_chain(scenario, name: str) -> list[str]:
    """The path and the fallbacks it may end on, in order (only their inputs can move its outcome)."""
    chain = [name]
    while scenario.paths[chain[-1]].fallback is not None:
        chain.append(scenario.paths[chain[-1]].fallback)
    return chain


def licence_plant_rows(scenario, summary) -> list[list[str]]:
    """One row per licence holder (own first, then partners in the scenario's order), one column per plant
    (own, partner's): the paths of that combination with their NPV mean and median launch; '–' where the
    scenario offers none."""
    in_order = list(dict.fromkeys(path.licence_holder for path in scenario.paths.values()))
    holders = sorted(in_order, key=lambda holder: (holder != "own", in_order.index(holder)))
    rows = []
    for holder in holders:
        row = [html.escape(holder if holder != "own" else "own licence")]
        for plant in ("own", "partner"):
            cells = [f"<b>{html.escape(name)}</b>: NPV {bn_cny(summary['paths'][name]['npv']['mean'], suffix=' bn')}, "
                     f"launch p50 {summary['paths'][name]['launch_month']['p50'] or 'never'}"
                     for name, path in scenario.paths.items()
                     if path.licence_holder == holder and path.plant_site == plant]
            row.append("<br>".join(cells) or "–")
        rows.append(row)
    return rows


def partner_lines(partner: str, as_of, firms: str | None) -> tuple[tuple[str, str, str], ...]:
    """`partner_facts(...).lines()` (year, facts, source), read from the firms table once per process and
    version of the scenario's own firms file."""
    return _partner_lines(partner, as_of, firms, file_version(firms) if firms is not None else None)


@functools.lru_cache(maxsize=64)
def _partner_lines(partner: str, as_of, firms: str | None, _version) -> tuple[tuple[str, str, str], ...]:
    return tuple(partner_facts(partner, as_of, firms).lines())


def paths_in_depth(context):
    scenario, summary = context.scenario, context.summary
    values = context.quantities
    input_names = [n for n in sorted(context.uncertain) + list(context.model.event_names)
                   if n in context.table.columns]
    columns = input_names + [path_column(p, name) for p in scenario.paths for name in (NPV, PATH_FAILED, MONTHS_LOST)]
    data = context.table.to_numpy([c for c in columns if c in context.table.columns], limit=DRIVER_DRAWS)
    inputs = {name: data[name].astype(float) for name in input_names}
    parts = ["<p>Paths by who holds the licence (rows) and where the cars are built (columns):</p>"
             + table_html(["licence", "own plant", "partner's plant"], licence_plant_rows(scenario, summary))]
    for name, path in scenario.paths.items():
        result = summary["paths"][name]
        stages = [[html.escape(stage.name), _range(values[f"paths.{name}.stages.{k}.months"]),
                   _range(values[f"paths.{name}.stages.{k}.failure"])] for k, stage in enumerate(path.stages)]
        failed_column = path_column(name, PATH_FAILED)
        failed = float(np.mean(data[failed_column])) if failed_column in data else math.nan
        lost = data.get(path_column(name, MONTHS_LOST), np.zeros(1))
        lost_when_failed = float(np.mean(lost[lost > 0])) if np.any(lost > 0) else 0.0
        chain = fallback_chain(scenario, name)
        relevant = {n: v for n, v in inputs.items() if not n.startswith("paths.") or n.split(".")[1] in chain}
        ranking = pawn_ranking(relevant, data[path_column(name, NPV)].astype(float))
        noise = next((v for n, v in ranking if n == NOISE), 0.0)
        drivers = [item for item in ranking if item[0] != NOISE and item[1] > noise][:3]
        launch = result["launch_month"]
        years = sorted(result["deliveries"])
        deliveries = ", ".join(f"{year}: {result['deliveries'][year]['mean']:,.0f}" for year in years
                               if result["deliveries"][year]["mean"])
        facts = [
            ["when", f"launch p10/p50/p90: {' / '.join(launch[k] or 'never' for k in ('p10', 'p50', 'p90'))}; "
                     f"P(launch by {scenario.target_launch}) {result['p_launch_by_target']:.0%}"],
            ["how much", f"mean deliveries by year — {deliveries or 'none'}"],
            ["money", f"NPV mean {bn_cny(result['npv']['mean'], suffix=' bn')} "
                      f"(p10 {bn_cny(result['npv']['p10'], suffix=' bn')}, p90 {bn_cny(result['npv']['p90'], suffix=' bn')}); "
                      f"peak cash need p90 {bn_cny(result['peak_cash_need']['p90'], suffix=' bn')}; "
                      f"P(budget exceeded) {result['p_budget_exceeded']:.1%}"],
            ["what can go wrong", f"a stage fails in {failed:.0%} of draws"
                                  + (f", then falls back to <b>{html.escape(path.fallback)}</b> after "
                                     f"{lost_when_failed:.1f} months lost on average" if path.fallback else
                                     ", and with no fallback the car never launches on this path")
                                  + "; supply shocks: " + (", ".join(scenario.supply_shocks) or "none")],
            ["what matters most for its NPV", (", ".join(f"{html.escape(input_label(n))} ({v:.2f})" for n, v in drivers)
                                               or "no input above the noise level") + f" (PAWN; noise {noise:.2f})"],
        ]
        capacity = _range(values[f"paths.{name}.capacity_per_year"])
        partner = ""
        if path.partner is not None:
            rows = [[html.escape(year), html.escape(text), html.escape(source)]
                    for year, text, source in partner_lines(path.partner, scenario.as_of,
                                                            context.model.tables.get("firms"))]
            partner = (f"<p>What firms.csv says about {html.escape(path.partner)} (rows public by "
                       f"{scenario.as_of}); the path's capacity, fee and deal risk above are assumptions judged "
                       f"against these facts:</p>" + table_html(["year", "facts", "source"], rows or [["–", "none", ""]]))
        site = "the own plant" if path.plant_site == "own" else "the partner's plant"
        parts.append(f"<h3>{html.escape(name)} — {html.escape(path.label)}</h3>"
                     f"<p>Licence: {html.escape(path.licence_holder)}; built in {site}.</p>"
                     + table_html(["question", "answer"], facts)
                     + f"<p>Capacity available: {capacity} vehicles/year; stages (median (p10–p90)):</p>"
                     + table_html(["stage", "months", "failure probability"], stages) + partner)
    return Section("Each path in depth", "".join(parts), "paths-in-depth")
