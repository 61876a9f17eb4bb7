"""`Scenario`: a validated scenario file, and copies of it with levers changed.

A lever change edits the scenario's TOML text (comments and layout kept) and validates the result
with the same parser the files go through, so a bad value raises the same `ScenarioError` lines
("FILE: field X: got V; expected E") that `evlaunch validate` prints for a file holding that value.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomlkit
from tomlkit.items import AoT, InlineTable, Item, Table

from evlaunch.config import scenario as schema
from evlaunch.config.distributions import is_uncertain
from evlaunch.config.scenario import load_scenario, parse_scenario, quantities
from evlaunch.errors import EvlaunchError, ScenarioError, naming_source
from evlaunch.runs.runner import DEFAULT_SEED, load_model
from evlaunch.runs.sampling import simulate_draws
from evlaunch.simulation import Model, prepare

PathLike = str | os.PathLike[str]
CHANGE_MARKER = "# Changed with evlaunch's Scenario.with_levers from"
_FIELD_PATH = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")


def _plain(value: Any, source: str, key: str) -> Any:
    """A lever value as TOML can hold it: numbers, text, flags, dates, lists, distribution tables."""
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "ppf") and hasattr(value, "model_dump"):  # a config distribution object
        value = value.model_dump()
    if isinstance(value, bool | int | float | str | dt.date):
        return value
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        table.update({str(k): _plain(v, source, f"{key}.{k}") for k, v in value.items()})
        return table
    if isinstance(value, Sequence):
        return [_plain(item, source, f"{key}.{index}") for index, item in enumerate(value)]
    raise ScenarioError(f"{source}: field {key}: got a {type(value).__name__}; expected a number, text, a flag, "
                        "a date, a list or a distribution table (a mapping with dist = ...)")


def _shown(value: Any) -> str:
    """A lever value as written in the change header (TOML syntax)."""
    if isinstance(value, Item):
        return str(value.as_string()).strip()
    return str(tomlkit.item(value).as_string()).strip()


def _set(document: tomlkit.TOMLDocument, key: str, value: Any, source: str) -> None:
    """Set dotted `key` (list items by index, e.g. paths.BAIC.stages.0.failure) in a parsed TOML document."""
    if not _FIELD_PATH.fullmatch(key):
        raise ScenarioError(f"{source}: field {key!r}: expected a dotted field path such as product.price "
                            "(names of letters, digits, '_' and '-'; list items by number)")
    parts = key.split(".")
    container: Any = document
    for depth, part in enumerate(parts[:-1]):
        here = ".".join(parts[:depth + 1])
        if isinstance(container, AoT | list):
            if not part.isdigit() or int(part) >= len(container):
                raise ScenarioError(f"{source}: field {here}: got index {part!r}; expected an item number "
                                    f"from 0 to {len(container) - 1}")
            container = container[int(part)]
            continue
        if part not in container:
            container[part] = tomlkit.table()
        container = container[part]
        if not isinstance(container, Table | InlineTable | AoT | dict | list):
            raise ScenarioError(f"{source}: field {here}: got {_shown(container)}; expected a table with a "
                                f"field {parts[depth + 1]!r}")
    last = parts[-1]
    if isinstance(container, AoT | list):
        if not last.isdigit() or int(last) >= len(container):
            raise ScenarioError(f"{source}: field {key}: got index {last!r}; expected an item number from 0 to "
                                f"{len(container) - 1}")
        container[int(last)] = value
    else:
        container[last] = value


def _without_header(text: str) -> str:
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].startswith(CHANGE_MARKER):
        return text
    index = 1
    while index < len(lines) and lines[index].startswith("#   "):
        index += 1
    if index < len(lines) and not lines[index].strip():
        index += 1
    return "".join(lines[index:])


_HEADER_ARRAY = re.compile(r"^\[\[\s*([^\]]+?)\s*\]\]$")
_HEADER = re.compile(r"^\[\s*([^\]]+?)\s*\]$")
_KEY = re.compile(r"^([A-Za-z0-9_\-.\"' ]+?)\s*=")


def _split_comment(line: str) -> tuple[str, str]:
    """(code, comment) of a TOML line: the first '#' outside a string starts the comment."""
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:index], line[index + 1:].strip()
        index += 1
    return line, ""


def _dotted(name: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


def comments_by_key(text: str) -> dict[str, str]:
    """The comment written for each key of a scenario's TOML (arrays of tables by index): the comment
    lines directly above the key, then the comment on its own line — where `fact:`/`assumption:` go."""
    comments: dict[str, str] = {}
    prefix = ""
    counts: dict[str, int] = {}
    pending: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            pending = []
            continue
        if line.startswith("#"):
            pending.append(line.lstrip("#").strip())
            continue
        code, trailing = _split_comment(line)
        code = code.strip()
        if match := _HEADER_ARRAY.match(code):
            name = _dotted(match.group(1))
            counts[name] = counts.get(name, -1) + 1
            prefix, pending = f"{name}.{counts[name]}", []
            continue
        if match := _HEADER.match(code):
            prefix, pending = _dotted(match.group(1)), []
            continue
        if match := _KEY.match(code):
            key = _dotted(match.group(1))
            full = f"{prefix}.{key}" if prefix else key
            text_parts = [*pending, trailing] if trailing else pending
            if pending and prefix and prefix not in comments:  # comment lines opening a table: its note
                comments[prefix] = " ".join(pending)
            if text_parts:
                comments[full] = " ".join(text_parts)
        pending = []
    return comments


def _section_comment(comments: Mapping[str, str], key: str) -> str:
    """A key's comment, else the nearest enclosing key's (a distribution's fields share its comment)."""
    parts = key.split(".")
    while parts:
        found = comments.get(".".join(parts))
        if found:
            return found
        parts.pop()
    return ""


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: its TOML text, where it came from, and the parsed configuration.

    Build one with `Scenario.load(path)` or `Scenario.from_text(text)`; derive variants with
    `with_levers`. Instances are immutable; `config` is the validated `evlaunch.config.scenario.Scenario`.
    """

    text: str
    source: str
    file: Path
    config: schema.Scenario
    changes: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: PathLike) -> Scenario:
        """Read and validate a scenario file (ScenarioError names the file, field, value and expectation)."""
        parsed = load_scenario(Path(path))
        return cls(Path(path).read_text(encoding="utf-8"), str(path), Path(path), parsed)

    @classmethod
    def from_text(cls, text: str, source: str = "<scenario>", base_dir: PathLike = ".", *,
                  file: PathLike | None = None) -> Scenario:
        """Validate scenario TOML text; own data tables it names are found relative to `base_dir`. `file`
        is the scenario file the text stands for, e.g. an edited copy of it (default: scenario.toml in
        `base_dir`): runs name it in messages and read relative data tables from its folder."""
        where = Path(file) if file is not None else Path(base_dir) / "scenario.toml"
        return cls(text, source, where, parse_scenario(text, source))

    # -- what it is -----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The scenario's name (its `name` field)."""
        return self.config.name

    @property
    def as_of(self) -> dt.date:
        """The as-of date: nothing dated later is read."""
        return self.config.as_of

    @property
    def paths(self) -> tuple[str, ...]:
        """The manufacturing paths' names, in file order."""
        return tuple(self.config.paths)

    @property
    def years(self) -> list[int]:
        """Calendar years within the horizon (the summary's per-year keys)."""
        return self.config.years

    def __repr__(self) -> str:
        changed = f", {len(self.changes)} lever(s) changed" if self.changes else ""
        return f"<Scenario {self.name!r} as of {self.as_of} from {self.source}{changed}>"

    def get(self, key: str) -> Any:
        """The value written for dotted `key` (e.g. "product.price", "paths.BAIC.stages.0.failure"):
        a number, text, or a distribution table as a dict; KeyError if the file does not set it."""
        value: Any = tomllib.loads(self.text)
        for part in key.split("."):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, dict) and part in value:
                value = value[part]
            else:
                raise KeyError(key)
        return value

    # -- levers ---------------------------------------------------------------------------------------

    def with_levers(self, changes: Mapping[str, Any] | None = None, /, **levers: Any) -> Scenario:
        """A copy with fields changed, validated exactly as a file holding those values would be.

        Keys are dotted field paths — `{"product.price": 229_900, "paths.BAIC.stages.0.failure": 0.2}` —
        or keyword arguments with `__` for the dots (`product__price=229_900`). A value is a number,
        text, flag, list, or a distribution as a mapping (`{"dist": "triangular", "low": .., "mode": ..,
        "high": ..}`). Raises ScenarioError with the lines `evlaunch validate` prints for such a file.
        """
        wanted = {**(changes or {}), **{key.replace("__", "."): value for key, value in levers.items()}}
        if not wanted:
            return self
        document = tomlkit.parse(_without_header(self.text))
        made = list(self.changes)
        for key, value in wanted.items():
            plain = _plain(value, self.source, key)
            _set(document, key, plain, self.source)
            made = [line for line in made if not line.startswith(f"{key} = ")] + [f"{key} = {_shown(plain)}"]
        header = [f"{CHANGE_MARKER} {self.source}:", *(f"#   {line}" for line in made)]
        text = "\n".join(header) + "\n\n" + tomlkit.dumps(document)
        return Scenario(text, self.source, self.file, parse_scenario(text, self.source), tuple(made))

    # -- assumptions ------------------------------------------------------------------------------------

    def assumptions(self) -> pd.DataFrame:
        """Every numeric input, one row each: field, fixed value or distribution with its p10/p50/p90 and
        0.1%..99.9% range, whether the file marks it a fact or an assumption, and the file's reason."""
        comments = comments_by_key(_without_header(self.text))
        changed = {line.split(" = ", 1)[0] for line in self.changes}
        rows = []
        for key, value in quantities(self._model().scenario).items():  # estimated distributions resolved
            reason = _section_comment(comments, key)
            basis = next((word for word in ("fact", "assumption") if reason.startswith(f"{word}:")), "")
            if any(key == c or key.startswith(f"{c}.") for c in changed):
                basis, reason = "lever", f"changed with with_levers (the file's note: {reason or 'none'})"
            if is_uncertain(value):
                p10, p50, p90 = (float(v) for v in value.ppf(np.array([0.1, 0.5, 0.9])))
                low, high = value.bounds()
                parameters = ", ".join(f"{k}={v}" for k, v in value.model_dump().items() if k != "dist")
                rows.append({"field": key, "distribution": f"{value.dist}({parameters})", "value": None,
                             "p10": p10, "p50": p50, "p90": p90, "low": low, "high": high,
                             "basis": basis, "reason": reason})
            else:
                rows.append({"field": key, "distribution": "fixed", "value": float(value), "p10": None,
                             "p50": None, "p90": None, "low": None, "high": None, "basis": basis, "reason": reason})
        return pd.DataFrame(rows, columns=["field", "distribution", "value", "p10", "p50", "p90", "low", "high",
                                           "basis", "reason"])

    def check(self, draws: int = 64, seed: int = DEFAULT_SEED) -> None:
        """What `evlaunch validate` checks beyond the schema: prepare the data the scenario needs and simulate
        `draws` sampled draws, so problems only a run would meet raise here (ScenarioError/DataError naming
        the file and field)."""
        try:
            simulate_draws(self._model(), seed, 0, draws)
        except EvlaunchError as error:
            raise naming_source(error, self.source) from None

    def _model(self) -> Model:
        """The prepared model (distributions estimated from the data, e.g. the NEV trend, resolved)."""
        if self.source == str(self.file) and self.file.is_file():  # a file: share a run's prepared model
            return load_model(self.file, self.text)
        return prepare(self.config, self.file.resolve().parent, self.source)

    def uncertain(self) -> list[str]:
        """Dotted names of the inputs the Monte Carlo varies (the fields given as distributions)."""
        return sorted(schema.uncertain_parameters(self.config))

    def save(self, path: PathLike) -> Path:
        """Write the scenario's TOML (with the lever header, if any) to `path`."""
        target = Path(path)
        target.write_text(self.text, encoding="utf-8")
        return target

