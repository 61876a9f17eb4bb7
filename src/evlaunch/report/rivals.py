"""Report sections on the announced rivals (whose buyers each takes; the entrant's share with and without
them) and on what entry does to buyers (the change in consumer surplus) and to welfare (the incumbents' lost
profit and the entrant's variable profit beside it).

Each section is `(context) -> Section | None` (`report.build` lists them). They read summary.json's
`paths.*.order_share`, `order_share_without_rivals`, `surplus_change`, `incumbent_profit_change`,
`entrant_variable_profit`, `welfare_change` and `rival_diversion` (from the
per-draw outputs of `simulation.simulate`; `simulation.welfare` explains them) and return None for runs
made before those outputs existed.
"""

from __future__ import annotations

import html
from typing import Any

from evlaunch.config.columns import ENTRANT_GROUP
from evlaunch.config.distributions import is_uncertain
from evlaunch.report.html import Section, table_html
from evlaunch.supply.repricing import OUTSIDE


def quantity_text(value: Any, money: bool = False) -> str:
    """A scenario quantity in words: a fixed number, or its distribution and range."""
    def number(x: float) -> str:
        return f"{x:,.0f}" if money else f"{x:g}"

    if not is_uncertain(value):
        return number(float(value))
    fields = value.model_dump() if hasattr(value, "model_dump") else dict(value)
    kind = fields.get("dist", "")
    if kind == "normal":
        return f"normal, mean {number(fields['mean'])}, sd {number(fields['sd'])}"
    if kind == "triangular":
        return f"triangular {number(fields['low'])} / {number(fields['mode'])} / {number(fields['high'])}"
    if "low" in fields and "high" in fields:
        return f"{kind} {number(fields['low'])} .. {number(fields['high'])}"
    return html.escape(str(kind))


def _block(stats: dict[str, float | None] | None, scale: float, form: str) -> str:
    mean = stats.get("mean") if stats else None
    if stats is None or mean is None:
        return "–"
    low, high = stats.get("p10"), stats.get("p90")
    interval = f" ({format(low * scale, form)} .. {format(high * scale, form)})" if low is not None and high is not None else ""
    return f"{format(mean * scale, form)}{interval}"


def _group_label(group: str) -> str:
    if group == OUTSIDE:
        return "no new car"
    if group == ENTRANT_GROUP:
        return "the entrant"
    return group


def rivals_section(context) -> Section | None:
    scenario = context.scenario
    launches = scenario.competition.launches
    chosen = context.summary["recommended_path"]["name"]
    entry = context.summary["paths"].get(chosen, {})
    if not launches or "order_share_without_rivals" not in entry:
        return None
    diversion = entry.get("rival_diversion", {})
    rows = []
    for launch in launches:
        takes = diversion.get(launch.name) or {}
        known = sorted(((g, v) for g, v in takes.items() if v is not None), key=lambda item: -item[1])
        top = ", ".join(f"{html.escape(_group_label(g))} {v:.0%}" for g, v in known[:4]) or "did not sell in its first year"
        rows.append([html.escape(launch.name), html.escape(launch.group), html.escape(launch.month),
                     quantity_text(launch.price, money=True), quantity_text(launch.quality_utility),
                     quantity_text(launch.probability), top])
    pipeline = table_html(["launch", "group", "from", "price (CNY)", "quality vs comparables (utility)",
                           "probability", f"whose buyers it takes (path {chosen}, mean of first-year shares)"], rows)
    years = list(entry["order_share"])
    share_rows = [[html.escape(path)] + [
        f"{_block(context.summary['paths'][path]['order_share'][y], 100, '.2f')} vs "
        f"{_block(context.summary['paths'][path]['order_share_without_rivals'][y], 100, '.2f')}" for y in years]
        for path in scenario.paths if "order_share_without_rivals" in context.summary["paths"][path]]
    shares = table_html(["path: % with rivals vs without (mean, p10..p90)"] + years, share_rows)
    body = ("<p>The competitor launches the scenario schedules (<code>[[competition.launches]]</code>; sources in the "
            "bundled table <code>announced_rivals</code>: <code>evlaunch data announced_rivals</code>). Each enters "
            "level with its comparables' utility at its launch plus a quality drawn from the range shown; a launch "
            "with a probability below 1 happens in that share of draws. Whose buyers each takes: of its buyers in "
            "its first 12 months on sale, the share whose second choice is each group, the entrant or no new car "
            "(within each consumer type the logit's second choices; averaged over the draws in which it sells).</p>"
            + pipeline +
            "<p>The entrant's share of buyers' choices (orders over new-car buyers, before capacity rationing) with "
            "the scheduled launches and without them. The comparison is a counterfactual inside each draw: the "
            "launches' buyers re-choose among the remaining products at the same prices (within each consumer "
            "type the logit's odds are unchanged), so it isolates the rivals' demand effect; incumbents' and the "
            "entrant's prices are not re-solved for the world without them. A launch that is itself uncertain "
            "(probability below 1) also varies across draws.</p>" + shares)
    return Section("Announced rivals", body, "rivals")


def _per_car(path: dict, year: str) -> str:
    """Mean consumer-surplus change over mean deliveries of a path's year, thousand CNY ('-' without cars)."""
    surplus, delivered = path["surplus_change"].get(year), path.get("deliveries", {}).get(year)
    if not surplus or not delivered or surplus.get("mean") is None or not delivered.get("mean"):
        return "-"
    return f"{surplus['mean'] / delivered['mean'] / 1e3:,.0f}"


def surplus_section(context) -> Section | None:
    scenario = context.scenario
    paths = context.summary["paths"]
    if not any("surplus_change" in paths.get(path, {}) for path in scenario.paths):
        return None
    years = list(next(paths[p]["surplus_change"] for p in scenario.paths if "surplus_change" in paths[p]))
    rows = [[html.escape(path)] + [_block(paths[path]["surplus_change"][y], 1e-9, ".2f") for y in years]
            for path in scenario.paths if "surplus_change" in paths[path]]
    reprice = ("incumbents' prices at their Bertrand-Nash equilibrium without the entrant"
               if scenario.competition.reprice == "bertrand" else "incumbents' prices without the entry cut")
    per_car = [[html.escape(path)] + [_per_car(paths[path], y) for y in years]
               for path in scenario.paths if "surplus_change" in paths[path]]
    body = ("<p>The change in consumer surplus from the entrant's launch, bn CNY per calendar year (mean, and the "
            "10-90% interval over draws): for each month and consumer type, the log-sum of utilities (the expected "
            "utility of the best choice) with the entrant on sale, less the log-sum without it and with "
            f"{reprice}, divided by the type's marginal utility of money, summed over types, regions and potential "
            "buyers (<code>simulation.welfare</code>; the same quantity as pyblp's consumer surplus, against which "
            "the log-sum kernel is checked on Petrin's minivan case). Each buyer is counted once. A buyer who "
            "orders the entrant's car leaves the market for its rivals while waiting; a buyer whose order is "
            "cancelled returns in the month of cancellation and buys their next choice (the logit second "
            "choices, or no car); the incumbents re-price against the share of the entrant's orders expected to "
            "be delivered, not against every order. The gain has two parts: the price cuts the entrant draws from "
            "incumbents, which every buyer gets, and the value of the new car to the buyers who choose it, which "
            "counts only for cars delivered: orders join the book with their month's gain per order and are "
            "served or cancelled at random (Conlon &amp; Mortimer 2013), so a waiting order counts when its car "
            "arrives and a cancelled one never. It is zero before the launch and in draws in which the path never "
            "produces. Within a consumer type the gain per buyer of the entrant is about one over the type's "
            "marginal utility of money, so it is set by the price sensitivity of the entrant's buyers (richer, "
            "less price-sensitive types gain more CNY per car).</p>"
            + table_html(["path (bn CNY)"] + years, rows)
            + "<p>Per delivered car, thousand CNY (mean surplus change over mean deliveries; it includes the "
              "incumbents' price cuts to all buyers; within a consumer type the new car's value to its buyer is about "
              "one over the type's marginal utility of money, the logit taste term's upper bound on it):</p>"
            + table_html(["path (k CNY per car)"] + years, per_car)
            + _welfare_html(context, years))
    return Section("What entry does to buyers", body, "surplus")


WELFARE_PARTS = (("surplus_change", "consumer surplus"), ("incumbent_profit_change", "incumbents' variable profit"),
                 ("entrant_variable_profit", "entrant's variable profit"),
                 ("welfare_change", "total, gross of the entrant's fixed costs"))


def _welfare_html(context, years: list[str]) -> str:
    """Consumer surplus is not welfare: the recommended path's surplus change, the incumbents' variable-profit
    change and the entrant's variable profit with their sum, and every path's total (bn CNY, mean and 10-90%
    interval); '' for runs made before these outputs existed."""
    paths, scenario = context.summary["paths"], context.scenario
    chosen = context.summary["recommended_path"]["name"]
    if "welfare_change" not in paths.get(chosen, {}):
        return ""
    parts = [[label] + [_block(paths[chosen][key][y], 1e-9, ".2f") for y in years] for key, label in WELFARE_PARTS]
    totals = [[html.escape(path)] + [_block(paths[path]["welfare_change"][y], 1e-9, ".2f") for y in years]
              for path in scenario.paths if "welfare_change" in paths[path]]
    return ("<p>Consumer surplus is not welfare. The entrant's buyers come partly from the incumbents, whose "
            "variable profit ((price &minus; marginal cost) &times; units, net of VAT, summed over the re-priced "
            "incumbents and the fringe; their equilibrium with the entrant against the one without it) falls; the "
            "entrant earns its own variable profit (revenue less cost of goods, before R&amp;D, overheads and "
            "capex). The change in total welfare of the year is the sum of the three. Taxes and subsidies (the "
            "state's side) and the scheduled launches' profit (no recovered costs) are left out. With fixed "
            "incumbent prices no costs are recovered and the incumbents' change is not available (&ndash;). "
            "The total is <b>gross</b> of the entrant's fixed costs: the R&amp;D and overheads the NPV charges "
            f"({quantity_text(scenario.finance.rnd_per_month, money=True)} and "
            f"{quantity_text(scenario.finance.opex_per_month, money=True)} CNY a month while the path is pursued) "
            "and its capex are real resources too; net of them entry can lower welfare although the total here "
            "is positive (business stealing: the incumbents' lost profit can exceed the entrant's variable "
            "profit, Mankiw &amp; Whinston 1986). "
            f"Path <b>{html.escape(chosen)}</b>, bn CNY:</p>"
            + table_html(["welfare (bn CNY)"] + years, parts)
            + "<p>Total welfare change by path, gross of the entrant's fixed costs, bn CNY:</p>"
            + table_html(["path (bn CNY)"] + years, totals))
