"""The dashboard's lever form: which scenario fields it offers, their help text, and applying overrides.

The form is generated from the scenario schema (each lever's description, unit and allowed range come
from `evlaunch.config.scenario`) and from the scenario file (its current value and the `fact:`/`assumption:`
comment written next to the key). An empty lever keeps the file's value, which may be a distribution;
a filled one replaces it by a number (or by a distribution table typed in TOML syntax). Overrides are
applied to the parsed TOML and validated by `parse_scenario`, so a bad value gets exactly the
"file: field X: got V; expected E" lines the CLI prints.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from evlaunch.api.scenario import comments_by_key
from evlaunch.config.scenario import ALLOWED_RANGES, Scenario, parse_scenario, quantities
from evlaunch.errors import ScenarioError

MAX_FIELD_CHARS = 1024
MAX_BROWSER_DRAWS = 20_000
DEFAULT_BROWSER_DRAWS = 2_000
MARKER = "# Modified in the evlaunch dashboard"

LeverKind = Literal["quantity", "number", "month", "choice"]


@dataclass(frozen=True)
class Lever:
    """One form field: a dotted scenario key, a short label, the unit shown next to it and its kind."""

    key: str
    label: str
    unit: str
    kind: LeverKind = "quantity"
    options: tuple[str, ...] = ()   # for kind "choice"


LEVERS: tuple[Lever, ...] = (
    Lever("product.price", "Price", "CNY"),
    Lever("product.battery_kwh", "Battery", "kWh"),
    Lever("product.range_km", "Range", "km"),
    Lever("target_launch", "Target launch", "YYYY-MM", "month"),
    Lever("finance.budget_usd", "Budget", "US$", "number"),
    Lever("competition.reprice", "How incumbents price", "bertrand = re-price to the equilibrium; fixed = list "
          "prices with a cut", "choice", ("bertrand", "fixed")),
    Lever("competition.price_war_cut", "Incumbents' BEV price cut after launch (fixed prices only)",
          "fraction (0.05 = 5%)"),
    Lever("policy.extra_nev_subsidy", "Extra NEV purchase subsidy (assumed, e.g. brought back)", "CNY per vehicle"),
    Lever("market.charging_growth_per_year", "Growth of charging points", "fraction per year"),
    Lever("market.charging_effect", "Charging network effect on NEV utility", "utility per unit of log chargers"),
)
LEVER_KEYS = {lever.key: lever for lever in LEVERS}


# -- the schema side -------------------------------------------------------------------------------


def schema_field(key: str) -> tuple[str, tuple[float, float] | None]:
    """Description of a dotted scenario key from the pydantic schema, and its allowed range if any."""
    model: type[BaseModel] = Scenario
    info = None
    for part in key.split("."):
        info = model.model_fields[part]
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
    description = (info.description or "") if info is not None else ""
    return description, ALLOWED_RANGES.get(key.split(".")[-1])


# -- the scenario file side --------------------------------------------------------------------------


def get_dotted(data: Mapping[str, Any], key: str) -> Any:
    value: Any = data
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    target = data
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def describe_value(value: Any) -> str:
    """A file value for people: '230,000', 'triangular: low 180,000, mode 230,000, high 300,000'."""
    if value is None:
        return "not set (schema default)"
    if isinstance(value, Mapping):
        parts = [f"{k} {_number(v)}" for k, v in value.items() if k != "dist"]
        return f"{value.get('dist', 'table')}: " + ", ".join(parts)
    return _number(value)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4g}" if abs(value) >= 1000 else f"{value:g}"
    return f"{value:,.0f}"


@dataclass(frozen=True)
class LeverView:
    """What the form shows for one lever."""

    key: str
    label: str
    unit: str
    kind: LeverKind
    description: str
    comment: str
    current: str
    is_distribution: bool
    allowed: str
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class PathView:
    name: str
    label: str
    fallback: str | None
    comment: str


def lever_views(text: str) -> tuple[list[LeverView], list[PathView]]:
    """The form's levers and path checkboxes for a scenario file's text (assumed valid)."""
    raw = tomllib.loads(text)
    comments = comments_by_key(text)
    views = []
    for lever in LEVERS:
        description, allowed = schema_field(lever.key)
        value = get_dotted(raw, lever.key)
        views.append(LeverView(
            key=lever.key, label=lever.label, unit=lever.unit, kind=lever.kind, description=description,
            comment=comments.get(lever.key, ""), current=describe_value(value),
            is_distribution=isinstance(value, Mapping),
            allowed=(" or ".join(lever.options) if lever.kind == "choice" else
                     "" if allowed is None else f"{_number(allowed[0])} to {_number(allowed[1])}"),
            options=lever.options))
    paths = [PathView(name, str(spec.get("label", name)), spec.get("fallback"),
                      comments.get(f"paths.{name}.fallback", ""))
             for name, spec in raw.get("paths", {}).items()]
    return views, paths


# -- applying overrides ----------------------------------------------------------------------------


class FormError(Exception):
    """Problems with the submitted levers, as CLI-style lines and by lever key ('' = not one lever)."""

    def __init__(self, lines: list[str], by_field: dict[str, list[str]]):
        super().__init__("\n".join(lines))
        self.lines = lines
        self.by_field = by_field


@dataclass
class RunRequest:
    """A validated request: the scenario text to run, its parsed form, run options and what changed."""

    scenario_text: str
    scenario: Scenario
    draws: int
    seed: int
    changes: list[str] = field(default_factory=list)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# Numbers as people type them: decimal ASCII digits, optional sign, thousands separators, fraction, exponent.
_NUMBERISH = re.compile(r"^[+-]?[0-9][0-9,_]*(\.[0-9_]*)?([eE][+-]?[0-9]+)?$", re.ASCII)
# Inside a typed distribution table: TOML strings, and the number-like words TOML would also accept
# (hex/octal/binary integers, inf, nan), each of which must be a plain decimal number.
_TOML_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'')
_NUMBER_WORD = re.compile(r"(?<![\w.])[+-]?(?:[0-9][\w.+-]*|inf\b|nan\b)", re.ASCII)
_DECIMAL = re.compile(r"[+-]?[0-9][0-9_]*(\.[0-9][0-9_]*)?([eE][+-]?[0-9][0-9_]*)?", re.ASCII)
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}", re.ASCII)
_EXPECTED_QUANTITY = ('a decimal number (e.g. 200000), a distribution table such as { dist = "triangular", '
                      "low = 1, mode = 2, high = 3 }, or nothing to keep the file's value")


def finite_number(value: Any) -> bool:
    """True for an int or float (not a bool) that is finite as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond the float range
        return False


def _plain_decimals(table_text: str) -> bool:
    """True if every number written in a TOML inline table is a plain decimal number."""
    code = _TOML_STRING.sub('""', table_text)
    return all(_DECIMAL.fullmatch(word) for word in _NUMBER_WORD.findall(code))


def parse_lever_text(text: str) -> Any:
    """A typed value: a number ('200000', '200,000', '2e5', '0.05') or a TOML inline table
    ('{ dist = "triangular", low = 1, mode = 2, high = 3 }'); ValueError if neither. Numbers must be
    decimal ASCII: no '0x1000', 'inf', 'nan' or non-ASCII digits, in a table either."""
    if _NUMBERISH.match(text):
        cleaned = text.replace(",", "")
    elif text.startswith("{") and _plain_decimals(text):
        cleaned = text
    else:
        raise ValueError(text)
    try:
        value = tomllib.loads(f"v = {cleaned}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        raise ValueError(text) from None
    if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
        raise ValueError(text)  # a user's text that is not a number or a table
    return value


def distribution_problem(table: Mapping[str, Any]) -> str | None:
    """What is wrong with the types in a distribution table (None if nothing): `dist` names the
    distribution; every other entry is a finite number (or, for discrete values and weights, a list)."""
    if not isinstance(table.get("dist"), str):
        return "a distribution table with dist = \"<name>\""
    for key, item in table.items():
        if key == "dist":
            continue
        items = item if isinstance(item, list) and item else [item]
        if not all(finite_number(number) for number in items):
            return f"{key} as a finite number" + (" or a list of them" if isinstance(item, list) else "")
    return None


def _convert_choice(lever: Lever, value: Any) -> str:
    if lever.kind == "month":
        if not isinstance(value, str) or not _MONTH.fullmatch(value.strip()):
            raise ValueError("a month as 'YYYY-MM' in digits 0-9")
        return value.strip()
    if not isinstance(value, str) or value.strip() not in lever.options:
        raise ValueError(f"one of {', '.join(lever.options)}")
    return value.strip()


def _convert_quantity(lever: Lever, value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = parse_lever_text(value.strip())
        except ValueError:
            raise ValueError("a decimal number, e.g. 200000" if lever.kind == "number" else _EXPECTED_QUANTITY) from None
    if isinstance(value, dict) and lever.kind == "quantity":
        problem = distribution_problem(value)
        if problem:
            raise ValueError(problem)
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("a number")
    if not finite_number(value):
        raise ValueError("a finite number")
    return value


def _convert(lever: Lever, value: Any, source: str) -> Any:
    """The lever's value for the TOML dict, or raise ValueError with the CLI-style line."""
    try:
        if isinstance(value, str) and ("\n" in value or "\r" in value):
            raise ValueError("one line")
        if lever.kind in ("month", "choice"):
            return _convert_choice(lever, value)
        return _convert_quantity(lever, value)
    except ValueError as error:
        raise ValueError(f"{source}: field {lever.key}: got {_shown(value)}; expected {error}") from None


def _whole_number(name: str, value: Any, low: int, high: int) -> tuple[int | None, str | None]:
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "")
        if not re.fullmatch(r"[0-9]{1,20}", text):
            return None, f"{name}: got {_shown(value)}; expected a whole number from {low:,} to {high:,}"
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None, f"{name}: got {_shown(value)}; expected a whole number from {low:,} to {high:,}"
    return value, None


class _Problems:
    """Problems found so far: CLI-style lines, and the same lines by lever key ('' = not one lever)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.by_field: dict[str, list[str]] = {}

    def add(self, key: str, line: str) -> None:
        self.lines.append(line)
        self.by_field.setdefault(key, []).append(line)


def _apply_levers(raw: dict[str, Any], changed: dict[str, Any], levers: Mapping[str, Any], source: str,
                  problems: _Problems) -> list[str]:
    """Set the filled levers in `changed` (a copy of `raw`); the change lines."""
    changes: list[str] = []
    for key, value in levers.items():
        lever = LEVER_KEYS.get(key)
        if lever is None:
            problems.add("", f"{source}: field {_shown(key)[:60]}: not a lever of this form; levers are "
                             f"{', '.join(LEVER_KEYS)}")
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            problems.add(key, f"{source}: field {key}: got {len(value):,} characters; expected at most "
                              f"{MAX_FIELD_CHARS:,}")
            continue
        try:
            converted = _convert(lever, value, source)
        except ValueError as error:
            problems.add(key, str(error))
            continue
        if get_dotted(raw, key) != converted:
            _set_dotted(changed, key, converted)
            changes.append(f"{key} = {_toml_value(converted)} (file: {describe_value(get_dotted(raw, key))})")
    return changes


def _apply_paths(raw: dict[str, Any], changed: dict[str, Any], paths: list[str] | None, source: str,
                 problems: _Problems) -> list[str]:
    """Leave out the paths not chosen (and fallbacks to them) in `changed`; the change lines."""
    all_paths = list(raw.get("paths", {}))
    if paths is None:
        return []
    unknown = [name for name in paths if name not in all_paths]
    if unknown:
        problems.add("paths", f"{source}: field paths: got {_shown(unknown[0])}; expected one of "
                              f"{', '.join(all_paths)}")
        return []
    if not paths:
        problems.add("paths", f"{source}: field paths: got none; expected at least one path to consider")
        return []
    dropped = [name for name in all_paths if name not in paths]
    if not dropped:
        return []
    changes = [f"paths considered: {', '.join(n for n in all_paths if n in paths)} (left out: {', '.join(dropped)})"]
    for name in dropped:
        del changed["paths"][name]
    for name, spec in changed["paths"].items():
        if spec.get("fallback") in dropped:
            changes.append(f"paths.{name}.fallback {spec['fallback']!r} removed, as that path is "
                           f"left out: if {name} fails, there is no launch")
            del spec["fallback"]
    return changes


def _run_options(draws: Any, seed: Any, default_seed: int, problems: _Problems) -> tuple[int | None, int | None]:
    """(draws, seed) as whole numbers in range, or None where a problem was recorded."""
    draws_value, draws_problem = _whole_number("draws", draws, 1, MAX_BROWSER_DRAWS)
    if draws_problem:
        problems.add("draws", draws_problem)
    if seed is None or (isinstance(seed, str) and not seed.strip()):
        return draws_value, default_seed
    seed_value, seed_problem = _whole_number("seed", seed, 0, 2**63 - 1)
    if seed_problem:
        problems.add("seed", seed_problem)
    return draws_value, seed_value


def _lever_of(field_name: str) -> str:
    """The lever key (or 'paths', or '') a scenario error's field belongs to."""
    return next((k for k in [*LEVER_KEYS, "paths"] if field_name == k or field_name.startswith(k + ".")), "")


def _parse(scenario_text: str, source: str, problems: _Problems) -> Scenario | None:
    """The scenario, validated as the CLI validates a file; None with the problems recorded by lever."""
    try:
        return parse_scenario(scenario_text, source)
    except ScenarioError as error:
        for line in str(error).splitlines():
            match = re.search(r": field ([^:]+):", line)
            problems.add(_lever_of(match.group(1) if match else ""), line)
        return None


def _check_supports(scenario: Scenario, keys: list[str], source: str, problems: _Problems) -> None:
    """A distribution set by a lever must draw finite numbers (e.g. not a normal truncated so far out
    in its tail that the truncation bounds overflow)."""
    values = quantities(scenario)
    for key in keys:
        value = values.get(key)
        if value is None or not hasattr(value, "ppf"):
            continue
        try:
            with np.errstate(all="ignore"):
                support = np.asarray(value.ppf(np.array([1e-6, 0.5, 1 - 1e-6])), dtype=np.float64)
            finite = bool(np.isfinite(support).all())
        except (ValueError, ArithmeticError):
            finite = False
        if not finite:
            problems.add(key, f"{source}: field {key}: got a {value.dist} distribution that draws values "
                              "that are not finite numbers; expected a distribution within the allowed range")


def build_request(text: str, source: str, levers: Mapping[str, Any], paths: list[str] | None,
                  draws: Any, seed: Any, default_seed: int) -> RunRequest:
    """Apply lever overrides and the chosen paths to a scenario file's text and validate the result.

    `levers` maps lever keys to text (from the form: empty = keep) or to typed values (from the JSON
    API). `paths=None` keeps all paths. Raises `FormError` with every problem found.
    """
    problems = _Problems()
    raw = tomllib.loads(text)
    changed = copy.deepcopy(raw)
    changes = _apply_levers(raw, changed, levers, source, problems)
    set_levers = [key for key in LEVER_KEYS if key in levers and get_dotted(changed, key) != get_dotted(raw, key)]
    changes += _apply_paths(raw, changed, paths, source, problems)
    draws_value, seed_value = _run_options(draws, seed, default_seed, problems)
    # Validate what could be applied even if some fields were unreadable, to report every problem at once.
    scenario_text = text if not changes else modified_text(changed, source, changes)
    scenario = _parse(scenario_text, source, problems)
    if scenario is not None:
        _check_supports(scenario, set_levers, source, problems)
    if problems.lines or scenario is None or draws_value is None or seed_value is None:
        raise FormError(problems.lines, problems.by_field)
    return RunRequest(scenario_text, scenario, draws_value, seed_value, changes)


def modified_text(data: Mapping[str, Any], source: str, changes: list[str]) -> str:
    """TOML of a modified scenario, headed by what was changed from which file."""
    header = [f"{MARKER} from {source}:"] + [f"#   {change}" for change in changes]
    header.append("# (the file's comments on facts and assumptions are in the original file)")
    return "\n".join(header) + "\n\n" + dumps(data)


def dashboard_changes(scenario_text: str) -> list[str]:
    """The change lines a dashboard run recorded at the top of its scenario text (empty if none)."""
    lines = scenario_text.splitlines()
    if not lines or not lines[0].startswith(MARKER):
        return []
    changes = []
    for line in lines[1:]:
        if not line.startswith("#   "):
            break
        changes.append(line[4:])
    return changes


# -- a small TOML writer (the standard library only reads TOML) -----------------------------------------


_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping) and "dist" not in value


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, Mapping) for item in value)


def _write_table(lines: list[str], table: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
    for key, value in table.items():
        if not _is_table(value) and not _is_table_array(value):
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    for key, value in table.items():
        name = ".".join(_toml_key(part) for part in (*prefix, key))
        if _is_table(value):
            lines.extend(["", f"[{name}]"])
            _write_table(lines, value, (*prefix, key))
        elif _is_table_array(value):
            for item in value:
                lines.extend(["", f"[[{name}]]"])
                _write_table(lines, item, (*prefix, key))


def dumps(data: Mapping[str, Any]) -> str:
    """TOML text for a dict as `tomllib` returns it (tables, arrays of tables, inline distributions)."""
    lines: list[str] = []
    _write_table(lines, data, ())
    return "\n".join(lines) + "\n"
