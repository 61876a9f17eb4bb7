"""What the results and compare pages show, computed from summary.json documents and run records.

Pure functions of their arguments (no store, no request): key figures per path, the side-by-side rows
of a comparison with the difference and whether it is better or worse, the inputs two runs differ in,
and links in source texts.
"""

from __future__ import annotations

import math
import re
import tomllib
from typing import Any

from markupsafe import Markup, escape

from evlaunch.analysis.decision import recommendation_mark
from evlaunch.config.scenario import parse_scenario, quantities
from evlaunch.errors import ScenarioError
from evlaunch.report.formatting import MISSING, bn_cny, is_number, month, percent, units
from evlaunch.web.forms import describe_value

_URL = re.compile(r"https?://[^\s;,<>\"']+")

# (key, label, format, which direction is better)
COMPARE_METRICS = (
    ("launch_p50", "launch month p50", "month", "lower"),
    ("p_launch_by_target", "P(launch by target)", "pct", "higher"),
    ("deliveries_last", "deliveries in {last}, mean", "units", "higher"),
    ("deliveries_total", "deliveries, all years, mean", "units", "higher"),
    ("npv_mean", "NPV mean, bn CNY", "bn", "higher"),
    ("npv_p10", "NPV p10, bn CNY", "bn", "higher"),
    ("peak_cash_mean", "peak cash need mean, bn CNY", "bn", "lower"),
    ("p_budget_exceeded", "P(budget exceeded)", "pct1", "lower"),
)


def linkify(text: str) -> Markup:
    """Escaped text with its http(s) URLs as links (sources often list several)."""
    parts, last = [], 0
    for match in _URL.finditer(text):
        parts.append(escape(text[last:match.start()]))
        parts.append(Markup('<a href="{0}" rel="noopener noreferrer" target="_blank">{0}</a>').format(match.group(0)))
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


def months_between(first: str | None, second: str | None) -> int | None:
    """Months from 'YYYY-MM' `first` to `second` (None if either is missing)."""
    if not first or not second:
        return None
    return (int(second[:4]) * 12 + int(second[5:7])) - (int(first[:4]) * 12 + int(first[5:7]))


def path_labels(scenario_text: str) -> dict[str, str]:
    """Path name -> label, in the scenario's order (summaries come back from the store sorted by name)."""
    try:
        paths = tomllib.loads(scenario_text).get("paths", {})
    except tomllib.TOMLDecodeError:
        return {}
    return {name: str(spec.get("label", name)) for name, spec in paths.items() if isinstance(spec, dict)}


def _path_figures(path: dict[str, Any], years: list[str], last: str | None) -> dict[str, Any]:
    deliveries = {year: (path.get("deliveries", {}).get(year) or {}).get("mean") for year in years}
    launch = path.get("launch_month") or {}
    npv = path.get("npv") or {}
    return {
        "launch_p10": launch.get("p10"), "launch_p50": launch.get("p50"), "launch_p90": launch.get("p90"),
        "p_launch_by_target": path.get("p_launch_by_target"),
        "deliveries_by_year": deliveries,
        "deliveries_last": deliveries.get(last) if last else None,
        "deliveries_total": sum(v for v in deliveries.values() if is_number(v)),
        "npv_mean": npv.get("mean"), "npv_p10": npv.get("p10"), "npv_p90": npv.get("p90"),
        "peak_cash_mean": (path.get("peak_cash_need") or {}).get("mean"),
        "p_budget_exceeded": path.get("p_budget_exceeded"),
    }


def key_figures(summary: dict[str, Any], order: list[str] | None = None) -> dict[str, Any]:
    """The figures the results and compare pages show, per path, from a summary.json document.

    Deliveries in vehicles (mean per calendar year), NPV and cash need in CNY, probabilities as fractions,
    launch months as 'YYYY-MM' (None = never). Paths in `order` first, then the rest by name."""
    paths = summary.get("paths") or {}
    if order:
        paths = {name: paths[name] for name in [*order, *sorted(paths)] if name in paths}
    years = sorted({year for path in paths.values() for year in path.get("deliveries", {})})
    last = years[-1] if years else None
    figures = {name: _path_figures(path, years, last) for name, path in paths.items()}
    recommended = summary.get("recommended_path") or {}
    return {"paths": figures, "years": years, "last_year": last, "recommended": recommended.get("name"),
            "criterion": recommended.get("criterion", ""), "note": recommended.get("note", ""),
            "mark": recommendation_mark(recommended.get("passes", True), recommended.get("beats_not_entering"))}


def format_metric(kind: str, value: Any) -> str:
    """A metric's value as the compare page writes it (kinds of COMPARE_METRICS)."""
    if kind == "month":
        return month(value)
    if kind == "pct":
        return percent(value)
    if kind == "pct1":
        return percent(value, 1)
    if kind == "bn":
        return bn_cny(value)
    return units(value)


def difference(kind: str, a: Any, b: Any) -> tuple[str, float | None]:
    """(text of b - a, signed number or None) for a metric."""
    if kind == "month":
        months = months_between(a, b)
        if months is None:
            return ("" if a == b else "changed"), None
        return (f"{months:+d} months" if months else ""), float(months)
    if not (is_number(a) and is_number(b)):
        return "", None
    delta = b - a
    if delta == 0:
        return "", 0.0
    if kind in ("pct", "pct1"):
        return f"{delta * 100:+.1f} pts", delta
    if kind == "bn":
        return bn_cny(delta, sign=True), delta
    relative = f" ({delta / abs(a):+.0%})" if a else ""
    return f"{delta:+,.0f}{relative}", delta


def _metric_rows(name: str, a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """The compare rows of one path (a, b: key_figures of the two runs)."""
    pa, pb = a["paths"].get(name, {}), b["paths"].get(name, {})
    rows = []
    for index, (key, label, kind, better) in enumerate(COMPARE_METRICS):
        va, vb = pa.get(key), pb.get(key)
        delta_text, delta = difference(kind, va, vb)
        verdict = ""
        if delta:
            good = delta < 0 if better == "lower" else delta > 0
            verdict = "better" if good else "worse"
        shown_a = format_metric(kind, va) if name in a["paths"] else MISSING
        shown_b = format_metric(kind, vb) if name in b["paths"] else MISSING
        rows.append({"path": name, "span": len(COMPARE_METRICS) if index == 0 else 0,
                     "label": label.format(last=a["last_year"] or b["last_year"]),
                     "a": shown_a, "b": shown_b, "a_value": va, "b_value": vb, "key": key,
                     "delta": delta_text,
                     "changed": format_metric(kind, va) != format_metric(kind, vb) or bool(delta),
                     "verdict": verdict})
    return rows


def compare_rows(first: dict[str, Any], second: dict[str, Any], order: list[str] | None = None
                 ) -> list[dict[str, Any]]:
    """Side-by-side rows of key figures per path, with the difference and whether it is better or worse."""
    a, b = key_figures(first, order), key_figures(second, order)
    names = list(a["paths"]) + [name for name in b["paths"] if name not in a["paths"]]
    rows = [{"path": "", "span": 1, "label": "recommended path", "a": a["recommended"] or MISSING,
             "b": b["recommended"] or MISSING, "delta": "" if a["recommended"] == b["recommended"] else "changed",
             "changed": a["recommended"] != b["recommended"], "verdict": ""}]
    for name in names:
        rows.extend(_metric_rows(name, a, b))
    return rows


def compare_chart(first: dict[str, Any], second: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """The compare page's chart data: last-year deliveries and NPV mean per path, for run records a and b."""
    fa, fb = key_figures(first["summary"], order), key_figures(second["summary"], order)

    def series(record: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
        return {"id": record["run_id"], **{key: {path: values[key] for path, values in figures["paths"].items()}
                                           for key in ("deliveries_last", "npv_mean")}}

    return {"paths": list(dict.fromkeys([*fa["paths"], *fb["paths"]])), "last_year": fa["last_year"],
            "a": series(first, fa), "b": series(second, fb)}


def run_inputs(record: dict[str, Any]) -> dict[str, str]:
    """A run's inputs as text by dotted key (numbers and distributions, plus month and path choices)."""
    try:
        scenario = parse_scenario(record["scenario_text"], f"run {record['run_id']}")
    except ScenarioError:
        return {}
    values = {key: describe_value(value.model_dump() if hasattr(value, "model_dump") else value)
              for key, value in quantities(scenario).items()}
    values["target_launch"] = scenario.target_launch
    values["paths"] = ", ".join(scenario.paths)
    values["draws"] = f"{record['draws']:,}"
    values["seed"] = str(record["seed"])
    return values


def input_differences(first: dict[str, Any], second: dict[str, Any], limit: int = 60) -> list[tuple[str, str, str]]:
    """(key, value in a, value in b) for the inputs two run records differ in, at most `limit` of them."""
    a, b = run_inputs(first), run_inputs(second)
    keys = list(a) + [key for key in b if key not in a]
    return [(key, a.get(key, MISSING), b.get(key, MISSING)) for key in keys if a.get(key) != b.get(key)][:limit]


def jsonable(value: Any) -> Any:
    """Plain JSON values: non-finite floats become null, other odd types their text."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
