"""Where scenario files are found: the reference scenarios bundled with the package, or ./scenarios."""

from __future__ import annotations

from pathlib import Path


def bundled_scenarios_dir() -> Path:
    """The reference scenarios shipped with the package (xiaomi-2021.toml, xiaomi-2023.toml)."""
    return Path(__file__).resolve().parent.parent / "scenarios"


def default_scenarios_dir() -> Path:
    """./scenarios when there is one (a checkout, or the analyst's own), else the bundled reference scenarios."""
    local = Path("scenarios")
    return local if local.is_dir() else bundled_scenarios_dir()
