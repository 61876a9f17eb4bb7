"""The scenarios the dashboard offers: the `*.toml` files directly in its scenarios directory, by name.

A scenario is referred to by its file stem and looked up in the directory's listing, so nothing from a
request becomes a file path. Files are parsed once per (path, modification time, size).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from evlaunch.config.scenario import MAX_SCENARIO_BYTES, Scenario, parse_scenario
from evlaunch.errors import ScenarioError

SCENARIO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


@dataclass(frozen=True)
class ScenarioEntry:
    """One offered scenario: its name, file, the name shown for the file, and its text and parsed form
    (or the error that stops it from parsing)."""

    name: str
    path: Path
    source: str
    text: str | None
    scenario: Scenario | None
    error: str | None


def scenario_files(directory: Path) -> dict[str, Path]:
    """The scenarios on offer: regular `*.toml` files directly in `directory`, by file stem."""
    if not directory.is_dir():
        return {}
    return {path.stem: path for path in sorted(directory.glob("*.toml"))
            if SCENARIO_NAME.match(path.stem) and path.is_file()}


@functools.lru_cache(maxsize=32)
def parse_file(path: str, mtime_ns: int, size: int, source: str) -> tuple[str | None, Scenario | None, str | None]:
    """(text, scenario, error) of a scenario file; cached by path, modification time and size."""
    if size > MAX_SCENARIO_BYTES:
        return None, None, f"{source}: file is larger than {MAX_SCENARIO_BYTES // 1000} kB"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, None, f"{source}: cannot read ({error})"
    try:
        return text, parse_scenario(text, source), None
    except ScenarioError as error:
        return text, None, str(error)


def load_entry(directory: Path, name: str) -> ScenarioEntry | None:
    """The scenario called `name` in `directory`, or None if there is no such (well-named) file."""
    files = scenario_files(directory)
    if not SCENARIO_NAME.match(name) or name not in files:
        return None
    path = files[name]
    source = f"{directory.name}/{path.name}"
    stat = path.stat()
    text, scenario, error = parse_file(str(path), stat.st_mtime_ns, stat.st_size, source)
    return ScenarioEntry(name, path, source, text, scenario, error)
